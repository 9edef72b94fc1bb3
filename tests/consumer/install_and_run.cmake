# SPDX-License-Identifier: Apache-2.0
# cmake -P script run by the install_consumer test (tests/install_consumer.cmake):
#   1. cmake --install MEGARING_BUILD_DIR --prefix WORK_DIR/prefix
#   2. configure + build CONSUMER_SOURCE_DIR against that prefix
#   3. check that the consumer holds one CUDA runtime, the one it chose
#      (-DCUDA_RUNTIME=Shared|Static, default Static as in CMake);
#   4. check that it links libmegaring.so by its SONAME when megaring is a
#      shared build (-DMEGARING_SHARED=ON), and not at all otherwise;
#   5. run the consumer and the C consumer (the C API); each must exit 0;
#   6. configure, build and run tests/consumer_c (a project in C alone,
#      CONSUMER_C_SOURCE_DIR) against the same prefix;
#   7. with -DPKG_CONFIG_CHECK=ON, and pkg-config installed: build the C
#      consumer and a C++ one with the installed megaring.pc's flags alone, and
#      run them (without pkg-config the step says so and is skipped).
# -DMEGARING_VERSION=x.y.z: the version the installed package must report.
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
if("${LIBDIR}" STREQUAL "")
  set(LIBDIR lib)  # GNUInstallDirs' CMAKE_INSTALL_LIBDIR of the megaring build
endif()
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
          include/megaring/slot_abi.h include/megaring/version.h include/megaring/megaring.h
          include/megaring/megaring_tenants.h ${LIBDIR}/pkgconfig/megaring.pc)
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
if(NOT "${MEGARING_VERSION}" STREQUAL "")
  cache_set(CONSUMER_EXPECT_VERSION "${MEGARING_VERSION}")
endif()
# Only the installed package counts: no package registries.
cache_set(CMAKE_FIND_USE_PACKAGE_REGISTRY OFF)
cache_set(CMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY OFF)
if(NOT "${CONFIG}" STREQUAL "")
  cache_set(CMAKE_BUILD_TYPE "${CONFIG}")
endif()
foreach(pair MAKE_PROGRAM:CMAKE_MAKE_PROGRAM CXX_COMPILER:CMAKE_CXX_COMPILER C_COMPILER:CMAKE_C_COMPILER
             CUDA_COMPILER:CMAKE_CUDA_COMPILER CUDA_HOST_COMPILER:CMAKE_CUDA_HOST_COMPILER)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 in)
  list(GET pair 1 out)
  if(NOT "${${in}}" STREQUAL "")
    cache_set(${out} "${${in}}")
  endif()
endforeach()
if("${CUDA_RUNTIME}" STREQUAL "")
  set(CUDA_RUNTIME Static)
endif()
if(NOT CUDA_RUNTIME MATCHES "^(Shared|Static)$")
  message(FATAL_ERROR "install_consumer: CUDA_RUNTIME must be Shared or Static, not ${CUDA_RUNTIME}")
endif()
if(CUDA_RUNTIME STREQUAL "Shared")  # Static: leave CMake's default alone, as most projects do
  cache_set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
endif()
if(NOT "${CUDA_ARCHITECTURES}" STREQUAL "")
  string(REPLACE "|" ";" archs "${CUDA_ARCHITECTURES}")
  cache_set(CMAKE_CUDA_ARCHITECTURES "${archs}")
endif()
run_step("configure consumer" "${CMAKE_COMMAND}" -C "${init}" -S "${CONSUMER_SOURCE_DIR}"
         -B "${build}" -G "${GENERATOR}")
run_step("build consumer" "${CMAKE_COMMAND}" --build "${build}" ${config_args})

# One CUDA runtime, the chosen one. The consumer's my_consumer.cu registers
# its kernels with the runtime its target links; megaring's must be the same,
# or launching them fails on a GPU (a CPU-backend run would not notice).
#   Shared: libcudart.so is NEEDED and the runtime's entry points are not
#           defined in the executable;
#   Static: no libcudart.so, and they are.
set(exe "${build}/bin/consumer${CMAKE_EXECUTABLE_SUFFIX}")
find_program(READELF readelf REQUIRED)
find_program(NM nm REQUIRED)
execute_process(COMMAND "${READELF}" -d "${exe}" OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install_consumer: readelf -d failed (${rc})")
endif()
execute_process(COMMAND "${NM}" "${exe}" OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install_consumer: nm failed (${rc})")
endif()
string(REGEX MATCH "NEEDED[^\n]*libcudart\\.so" needs_shared "${dynamic}")
set(defined_entry_points)
foreach(fn cudaGetDeviceCount cudaLaunchCooperativeKernel)
  if(symbols MATCHES "[0-9a-f]+ [TtWw] ${fn}\n")
    list(APPEND defined_entry_points ${fn})
  endif()
endforeach()
message(STATUS "install_consumer: CUDA runtime ${CUDA_RUNTIME}: NEEDED libcudart.so: "
               "'${needs_shared}', entry points defined in the executable: '${defined_entry_points}'")
if(CUDA_RUNTIME STREQUAL "Shared")
  if(NOT needs_shared OR defined_entry_points)
    message(FATAL_ERROR "install_consumer: expected the shared cudart alone")
  endif()
else()
  if(needs_shared OR NOT defined_entry_points STREQUAL "cudaGetDeviceCount;cudaLaunchCooperativeKernel")
    message(FATAL_ERROR "install_consumer: expected the static cudart alone")
  endif()
endif()

# The library: by its SONAME (libmegaring.so.MAJOR.MINOR) from a shared
# build, linked in from a static one.
string(REGEX MATCH "NEEDED[^\n]*\\[libmegaring\\.so[^]]*\\]" needs_megaring "${dynamic}")
message(STATUS "install_consumer: NEEDED libmegaring: '${needs_megaring}'")
if(MEGARING_SHARED)
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" soversion "${MEGARING_VERSION}")
  string(REPLACE "." "\\." soversion_regex "${soversion}")
  if(NOT needs_megaring MATCHES "\\[libmegaring\\.so\\.${soversion_regex}\\]$")
    message(FATAL_ERROR "install_consumer: expected NEEDED libmegaring.so.${soversion}")
  endif()
elseif(needs_megaring)
  message(FATAL_ERROR "install_consumer: static megaring build, yet a libmegaring.so is NEEDED")
endif()

run_step("run consumer" "${exe}")
run_step("run C consumer" "${build}/bin/consumer_c${CMAKE_EXECUTABLE_SUFFIX}")

# A shared libmegaring is found at run time from the prefix.
set(run_env "${CMAKE_COMMAND}" -E env "LD_LIBRARY_PATH=${prefix}/${LIBDIR}:$ENV{LD_LIBRARY_PATH}")

# A project in C alone: no C++ or CUDA language for CMake to add runtimes from.
if(DEFINED CONSUMER_C_SOURCE_DIR)
  set(build_c "${WORK_DIR}/build-c")
  run_step("configure C-only consumer" "${CMAKE_COMMAND}" -C "${init}" -S "${CONSUMER_C_SOURCE_DIR}"
           -B "${build_c}" -G "${GENERATOR}")
  run_step("build C-only consumer" "${CMAKE_COMMAND}" --build "${build_c}" ${config_args})
  run_step("run C-only consumer" ${run_env} "${build_c}/bin/consumer_c_only${CMAKE_EXECUTABLE_SUFFIX}")
endif()

# pkg-config: the flags of the installed megaring.pc, nothing else.
if(PKG_CONFIG_CHECK)
  find_program(PKG_CONFIG pkg-config)
  if(NOT PKG_CONFIG)
    message(STATUS "install_consumer: pkg-config not found, its check skipped")
  else()
    execute_process(COMMAND "${CMAKE_COMMAND}" -E env "PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig"
                            "${PKG_CONFIG}" --cflags --libs megaring
                    OUTPUT_VARIABLE pc_flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "install_consumer: pkg-config --cflags --libs megaring failed (${rc})")
    endif()
    separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
    set(cc "${C_COMPILER}")
    if("${cc}" STREQUAL "")
      set(cc cc)
    endif()
    set(cxx "${CXX_COMPILER}")
    if("${cxx}" STREQUAL "")
      set(cxx c++)
    endif()
    set(pc_dir "${WORK_DIR}/pkg-config")
    file(MAKE_DIRECTORY "${pc_dir}")
    run_step("build C consumer with pkg-config" "${cc}" -std=c99 "${CONSUMER_SOURCE_DIR}/main_c.c"
             ${pc_flags} -o "${pc_dir}/consumer_c")
    run_step("run C consumer built with pkg-config" ${run_env} "${pc_dir}/consumer_c")
    run_step("build C++ consumer with pkg-config" "${cxx}" -std=c++17
             "${CONSUMER_SOURCE_DIR}/main_pkg_config.cpp" ${pc_flags} -o "${pc_dir}/consumer_cpp")
    run_step("run C++ consumer built with pkg-config" ${run_env} "${pc_dir}/consumer_cpp")
  endif()
endif()
message(STATUS "install_consumer: OK")
