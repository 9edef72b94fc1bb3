# SPDX-License-Identifier: Apache-2.0
# Checks that each entry of the built-in megakernel needs at most
# MAX_REGISTERS registers a thread (ptxas -v on its PTX). Our blocks never
# leave their SMs: at 128 registers and 256 threads a block holds half an
# SM's register file, so a second of our blocks, or a GEMM's, still fits
# beside it. Past that, one block fills an SM's registers so far that
# Runtime::create cannot place a block on every SM (the H200 run of
# 2026-12-04, 927a08a: 178 registers from a completer scan of 32 flags in
# flight, and the 132-block arms could not start).
#
#   cmake -DPTXAS=ptxas -DPTX_FILES="a.ptx|b.ptx" -DARCH=sm_90 -DMAX_REGISTERS=128
#         -P check_kernel_registers.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var PTXAS PTX_FILES ARCH MAX_REGISTERS)
  if(NOT ${var})
    message(FATAL_ERROR "${var} is empty")
  endif()
endforeach()
string(REPLACE "|" ";" ptx_files "${PTX_FILES}")

set(errors "")
set(entries 0)
foreach(ptx IN LISTS ptx_files)
  execute_process(COMMAND "${PTXAS}" -arch=${ARCH} -v "${ptx}" -o /dev/null
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "ptxas failed on ${ptx}:\n${err}")
  endif()
  string(REPLACE "\n" ";" lines "${out}${err}")
  set(entry "")
  foreach(line IN LISTS lines)
    if(line MATCHES "Compiling entry function '([^']+)'")
      set(entry "${CMAKE_MATCH_1}")
    elseif(entry AND line MATCHES "Used ([0-9]+) registers")
      set(used "${CMAKE_MATCH_1}")
      math(EXPR entries "${entries} + 1")
      message(STATUS "${entry}: ${used} registers")
      if(used GREATER MAX_REGISTERS)
        list(APPEND errors "${entry}: ${used} registers a thread, more than ${MAX_REGISTERS}")
      endif()
      set(entry "")
    endif()
  endforeach()
endforeach()

if(entries EQUAL 0)
  message(FATAL_ERROR "ptxas reported no kernel entry for ${PTX_FILES}")
endif()
if(errors)
  list(JOIN errors "\n  " text)
  message(FATAL_ERROR "megakernel registers over budget:\n  ${text}")
endif()
message(STATUS "megakernel: ${entries} entries within ${MAX_REGISTERS} registers")
