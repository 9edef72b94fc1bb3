# SPDX-License-Identifier: Apache-2.0
# Checks the built-in megakernel's PTX against the host/device memory rules of
# include/megaring/slot_abi.h, which no CPU-backend test can see:
#
#  1. No system-scope read-modify-write (atom.*.sys, red.*.sys). On x86 PCIe
#     hosts such an RMW on pinned host memory is not atomic with respect to
#     the CPU, so every word that crosses PCIe has one writer, and the
#     consumer's RMWs (claim cursor, advance lock, counters) stay in device
#     memory at device scope.
#  2. No volatile loads or stores: a volatile poll is relaxed, so the body
#     read after it could be ordered before it. Host-written words are read
#     through cuda::atomic_ref with an explicit order.
#  3. Each kernel entry keeps the ring's system-scope edges (ABI v4): the
#     fetcher's slot-header acquires (F1, ld.acquire.sys.global.u64, inline
#     asm), unit_exit's 32-bit release of exited_units and the completer's
#     release fence before the DONE_COUNT stores (C1: the inline asm marked
#     "megaring C1: DONE_COUNT release", whose next instruction must be
#     fence.acq_rel.sys or fence.sc.sys). Narrowing any of them to device
#     scope would still pass every CPU test. Minimum counts: the compiler
#     may duplicate an edge (unit_exit is inlined once per role).
#
# The checks read the entries' own bodies, so everything they call must be
# inlined into them (a .func in the PTX fails the check rather than hide an
# instruction from it).
#
#   cmake -DPTX_FILES="a.ptx|b.ptx" -P check_kernel_ptx.cmake
cmake_minimum_required(VERSION 3.25)

if(NOT PTX_FILES)
  message(FATAL_ERROR "PTX_FILES is empty")
endif()
string(REPLACE "|" ";" ptx_files "${PTX_FILES}")

set(errors "")
set(entries 0)
foreach(ptx IN LISTS ptx_files)
  if(NOT EXISTS "${ptx}")
    message(FATAL_ERROR "no such PTX file: ${ptx}")
  endif()
  file(STRINGS "${ptx}" lines)
  set(entry "")
  set(line_no 0)
  foreach(line IN LISTS lines)
    math(EXPR line_no "${line_no} + 1")
    if(line MATCHES "^[.a-z ]*\\.func[ \t]")
      list(APPEND errors "${ptx}:${line_no}: a .func (not inlined into its kernel): ${line}")
      continue()
    endif()
    if(line MATCHES "^[.a-z ]*\\.entry[ \t]+([A-Za-z0-9_$]+)")
      set(entry "${CMAKE_MATCH_1}")
      list(APPEND entry_names "${entry}")
      math(EXPR entries "${entries} + 1")
      set(count_${entry}_header_acquire 0)
      set(count_${entry}_exit_release 0)
      set(count_${entry}_done_count_release 0)
      set(expect_done_fence FALSE)
      continue()
    endif()
    if(line MATCHES "megaring C1: DONE_COUNT release")
      set(expect_done_fence TRUE)
      continue()
    endif()
    # An instruction: optional guard predicate, then the opcode with its
    # modifiers, e.g. "@%p3 atom.add.relaxed.gpu.u64".
    if(NOT line MATCHES "^[ \t]+(@!?%[a-z0-9_]+[ \t]+)?([a-z][a-z0-9_.]*)")
      continue()
    endif()
    set(op "${CMAKE_MATCH_2}")
    if(expect_done_fence)
      if(entry AND op MATCHES "^fence\\.(acq_rel|sc)\\.sys$")
        math(EXPR count_${entry}_done_count_release "${count_${entry}_done_count_release} + 1")
      endif()
      set(expect_done_fence FALSE)
    endif()
    if(op MATCHES "^(atom|red)\\." AND op MATCHES "\\.sys(\\.|$)")
      list(APPEND errors "${ptx}:${line_no}: system-scope RMW `${op}`")
    elseif(op MATCHES "^(ld|st)\\.volatile\\.")
      list(APPEND errors "${ptx}:${line_no}: volatile access `${op}`")
    elseif(entry)
      if(op MATCHES "^ld\\.acquire\\.sys(\\.global)?\\.[bu]64$")
        math(EXPR count_${entry}_header_acquire "${count_${entry}_header_acquire} + 1")
      elseif(op MATCHES "^st\\.release\\.sys\\.b32$")
        math(EXPR count_${entry}_exit_release "${count_${entry}_exit_release} + 1")
      endif()
    endif()
  endforeach()
endforeach()

if(entries EQUAL 0)
  list(APPEND errors "no kernel entry found in ${PTX_FILES}")
endif()
foreach(entry IN LISTS entry_names)
  message(STATUS "${entry}: header acquires ${count_${entry}_header_acquire}, "
                 "exit releases ${count_${entry}_exit_release}, "
                 "DONE_COUNT releases ${count_${entry}_done_count_release}")
  foreach(edge_min header_acquire:1 exit_release:1 done_count_release:1)
    string(REPLACE ":" ";" edge_min "${edge_min}")
    list(GET edge_min 0 edge)
    list(GET edge_min 1 min)
    if(count_${entry}_${edge} LESS min)
      list(APPEND errors "${entry}: fewer than ${min} system-scope ${edge}")
    endif()
  endforeach()
endforeach()

if(errors)
  list(JOIN errors "\n  " text)
  message(FATAL_ERROR "megakernel PTX breaks the ring's memory rules:\n  ${text}")
endif()
message(STATUS "megakernel PTX: ${entries} entries keep the ring's memory rules")
