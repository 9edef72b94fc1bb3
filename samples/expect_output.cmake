# SPDX-License-Identifier: Apache-2.0
# cmake -DEXE=<sample> -DARGS=<arg,arg,...> -DEXPECT_1=<regex> [-DEXPECT_2=...]
#       -P expect_output.cmake
# Runs a sample that must exit 0 and print a line matching each EXPECT_n
# (n = 1..9; checked in its stdout). Exit 77 (no GPU) prints "SKIPPED" for
# the test's SKIP_REGULAR_EXPRESSION: a cmake -P script cannot exit 77 itself.
string(REPLACE "," ";" args "${ARGS}")
execute_process(COMMAND "${EXE}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 240)
message("${out}${err}")
if(rc STREQUAL "77")
  message(STATUS "${EXE}: SKIPPED (exit 77)")
  return()
endif()
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "${EXE} ${ARGS}: exit ${rc}, expected 0")
endif()
foreach(n RANGE 1 9)
  if(DEFINED EXPECT_${n} AND NOT out MATCHES "${EXPECT_${n}}")
    message(FATAL_ERROR "${EXE} ${ARGS}: no line matches '${EXPECT_${n}}'")
  endif()
endforeach()
message(STATUS "${EXE} ${ARGS}: exit 0 and every expected line")
