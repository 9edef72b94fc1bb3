# cmake -P script run by the install_consumer test (tests/install_consumer.cmake):
#   1. cmake --install MEGARING_BUILD_DIR --prefix WORK_DIR/prefix
#   2. configure + build CONSUMER_SOURCE_DIR against that prefix
#   3. run the consumer; it must exit 0.
cmake_minimum_required(VERSION 3.25)

foreach(var MEGARING_BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_and_run.cmake: -D${var}=... is required")
  endif()
endforeach()

function(run_step name)
  message(STATUS "install_consumer: ${name}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc COMMAND_ECHO STDOUT)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${name} failed (${rc})")
  endif()
endfunction()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(config_args)
if(NOT "${CONFIG}" STREQUAL "")
  set(config_args --config "${CONFIG}")
endif()
run_step("install" "${CMAKE_COMMAND}" --install "${MEGARING_BUILD_DIR}" --prefix "${prefix}"
         ${config_args})
foreach(f include/megaring/runtime.hpp include/megaring/megakernel.cuh
          include/megaring/slot_abi.h)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install_consumer: ${f} was not installed")
  endif()
endforeach()

# Settings go through an initial-cache file (-C): values with spaces or
# semicolons ("80;90") survive intact.
set(init "${WORK_DIR}/init-cache.cmake")
file(WRITE "${init}" "# written by install_and_run.cmake\n")
function(cache_set name value)
  file(APPEND "${init}" "set(${name} [==[${value}]==] CACHE STRING \"\")\n")
endfunction()
cache_set(CMAKE_PREFIX_PATH "${prefix}")
cache_set(CONSUMER_EXPECT_PREFIX "${prefix}")
# Only the installed package counts: no package registries.
cache_set(CMAKE_FIND_USE_PACKAGE_REGISTRY OFF)
cache_set(CMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY OFF)
if(NOT "${CONFIG}" STREQUAL "")
  cache_set(CMAKE_BUILD_TYPE "${CONFIG}")
endif()
foreach(pair MAKE_PROGRAM:CMAKE_MAKE_PROGRAM CXX_COMPILER:CMAKE_CXX_COMPILER
             CUDA_COMPILER:CMAKE_CUDA_COMPILER CUDA_HOST_COMPILER:CMAKE_CUDA_HOST_COMPILER)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 in)
  list(GET pair 1 out)
  if(NOT "${${in}}" STREQUAL "")
    cache_set(${out} "${${in}}")
  endif()
endforeach()
if(NOT "${CUDA_ARCHITECTURES}" STREQUAL "")
  string(REPLACE "|" ";" archs "${CUDA_ARCHITECTURES}")
  cache_set(CMAKE_CUDA_ARCHITECTURES "${archs}")
endif()
run_step("configure consumer" "${CMAKE_COMMAND}" -C "${init}" -S "${CONSUMER_SOURCE_DIR}"
         -B "${build}" -G "${GENERATOR}")
run_step("build consumer" "${CMAKE_COMMAND}" --build "${build}" ${config_args})
run_step("run consumer" "${build}/bin/consumer${CMAKE_EXECUTABLE_SUFFIX}")
message(STATUS "install_consumer: OK")
