# SPDX-License-Identifier: Apache-2.0
# cmake -DEXE=<sample> -DARGS=<arg,arg,...> -DEXPECT=<error|help> -P expect_usage.cmake
# A command line that a sample cannot parse must exit 2 with a usage line on
# stderr (not crash, not succeed, not fall back to a default); --help must
# exit 0 with the usage line on stdout.
string(REPLACE "," ";" args "${ARGS}")
execute_process(COMMAND "${EXE}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 60)
if(EXPECT STREQUAL "help")
  set(ok_rc 0)
  set(text "${out}")
else()
  set(ok_rc 2)
  set(text "${err}")
endif()
if(NOT rc STREQUAL "${ok_rc}" OR NOT text MATCHES "usage: ")
  message(FATAL_ERROR "${EXE} ${ARGS}: expected exit ${ok_rc} and a usage line, got exit ${rc}\n"
                      "stdout: ${out}\nstderr: ${err}")
endif()
message(STATUS "${EXE} ${ARGS}: exit ${rc}, as expected\n${err}${out}")
