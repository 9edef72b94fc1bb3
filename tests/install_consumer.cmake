# SPDX-License-Identifier: Apache-2.0
# install_consumer: `cmake --install` this build into a scratch prefix, then
# configure, build and run tests/consumer (C++, CUDA and C) and tests/consumer_c
# (C alone) against it with find_package, as a downstream project would, and
# (once) programs built with the installed megaring.pc's pkg-config flags.
# Included from tests/CMakeLists.txt.
#
# The compiler settings of this build are passed through. A CUDA architecture
# list ("80;90") travels with '|' for ';' (add_test would split it).
string(REPLACE ";" "|" _mr_cuda_archs "${CMAKE_CUDA_ARCHITECTURES}")
# Twice: with CMake's default CUDA runtime (static) and with the shared one;
# megaring must follow the consumer's choice either way. A shared libmegaring
# carries the shared cudart (the root CMakeLists.txt says why): only Shared.
set(_mr_runtimes Static Shared)
if(MEGARING_BUILD_SHARED)
  set(_mr_runtimes Shared)
endif()
foreach(_mr_runtime IN LISTS _mr_runtimes)
  set(_mr_name install_consumer)
  set(_mr_pkg_config_check ON)  # once: megaring.pc names the static cudart
  if(_mr_runtime STREQUAL "Shared")
    set(_mr_name install_consumer_shared)
    set(_mr_pkg_config_check ${MEGARING_BUILD_SHARED})
  endif()
  add_test(NAME ${_mr_name}
    COMMAND ${CMAKE_COMMAND}
      "-DMEGARING_BUILD_DIR=${PROJECT_BINARY_DIR}"
      "-DCONSUMER_SOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}/consumer"
      "-DCONSUMER_C_SOURCE_DIR=${CMAKE_CURRENT_LIST_DIR}/consumer_c"
      "-DPKG_CONFIG_CHECK=${_mr_pkg_config_check}"
      "-DC_COMPILER=${CMAKE_C_COMPILER}"
      "-DLIBDIR=${CMAKE_INSTALL_LIBDIR}"
      "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/${_mr_name}"
      "-DCONFIG=$<CONFIG>"
      "-DGENERATOR=${CMAKE_GENERATOR}"
      "-DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}"
      "-DCXX_COMPILER=${CMAKE_CXX_COMPILER}"
      "-DCUDA_COMPILER=${CMAKE_CUDA_COMPILER}"
      "-DCUDA_HOST_COMPILER=${CMAKE_CUDA_HOST_COMPILER}"
      "-DCUDA_ARCHITECTURES=${_mr_cuda_archs}"
      "-DCUDA_RUNTIME=${_mr_runtime}"
      "-DMEGARING_VERSION=${PROJECT_VERSION}"
      "-DMEGARING_SHARED=${MEGARING_BUILD_SHARED}"
      -P "${CMAKE_CURRENT_LIST_DIR}/consumer/install_and_run.cmake")
  # nvcc compiles the consumer's .cu (a few tens of seconds on 2 cores).
  # One at a time: both install the same build tree (its install_manifest.txt).
  set_tests_properties(${_mr_name} PROPERTIES LABELS cpu TIMEOUT 900
    RESOURCE_LOCK megaring_install)
endforeach()
unset(_mr_runtime)
unset(_mr_runtimes)
unset(_mr_name)
unset(_mr_pkg_config_check)
unset(_mr_cuda_archs)
