/* SPDX-License-Identifier: Apache-2.0 */
/*
 * megaring's version: the one place it is written. The root CMakeLists.txt
 * reads the three numbers below into project(VERSION ...), so the installed
 * CMake package (megaringConfigVersion.cmake) and the shared library's file
 * name carry the same version.
 *
 * Plain C macros, usable from C, C++ and CUDA code:
 *   MEGARING_VERSION_MAJOR / _MINOR / _PATCH   the numbers
 *   MEGARING_VERSION          one integer, major * 10000 + minor * 100 + patch
 *                             (0.2.0 -> 200), for #if comparisons
 *   MEGARING_VERSION_STRING   "major.minor.patch"
 * While the major is 0, a new minor version may break the API and the ABI.
 *
 * In C++, megaring::version() and megaring::version_string() answer for the
 * library that is linked, the macros for the headers that were compiled in:
 * they differ when a program runs against another (shared) build.
 */
#ifndef MEGARING_VERSION_H_
#define MEGARING_VERSION_H_

#define MEGARING_VERSION_MAJOR 0
#define MEGARING_VERSION_MINOR 2
#define MEGARING_VERSION_PATCH 0

#define MEGARING_VERSION \
  (MEGARING_VERSION_MAJOR * 10000 + MEGARING_VERSION_MINOR * 100 + MEGARING_VERSION_PATCH)

/* Built from the numbers, so it cannot disagree with them. */
#define MEGARING_VERSION_STRINGIFY_(x) #x
#define MEGARING_VERSION_STRINGIFY(x) MEGARING_VERSION_STRINGIFY_(x)
#define MEGARING_VERSION_STRING                          \
  MEGARING_VERSION_STRINGIFY(MEGARING_VERSION_MAJOR) "." \
  MEGARING_VERSION_STRINGIFY(MEGARING_VERSION_MINOR) "." \
  MEGARING_VERSION_STRINGIFY(MEGARING_VERSION_PATCH)

#ifdef __cplusplus
namespace megaring {

struct Version {
  int major;
  int minor;
  int patch;
};

/* The linked library's version, e.g. {0, 2, 0}. */
Version version() noexcept;
/* The linked library's version as "major.minor.patch", e.g. "0.2.0"; a
 * string with static storage. */
const char* version_string() noexcept;

} /* namespace megaring */
#endif /* __cplusplus */

#endif /* MEGARING_VERSION_H_ */
