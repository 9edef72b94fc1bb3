# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/quickstart.sh, scripts/test.sh and .ci/run: finds the
# tools megaring builds with and picks the CMake generator. Installs nothing
# that is already there; the only package it may install is GoogleTest.
# shellcheck shell=bash

MEGARING_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MEGARING_ROOT

mr_die() { echo "megaring: $*" >&2; exit 1; }

# nvcc: on the PATH, or in the usual CUDA install folders.
if ! command -v nvcc >/dev/null 2>&1; then
  for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda /opt/cuda; do
    if [[ -n "$d" && -x "$d/bin/nvcc" ]]; then
      export PATH="$d/bin:$PATH"
      break
    fi
  done
fi
command -v nvcc >/dev/null 2>&1 || mr_die "nvcc not found: install the CUDA toolkit (12.x or 13.x) or set CUDA_HOME"
command -v cmake >/dev/null 2>&1 || mr_die "cmake not found (3.25 or newer is needed)"
command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || mr_die "no C++ compiler (g++) found"

# Ninja when available, else CMake's default generator (Makefiles).
MR_GENERATOR=()
if command -v ninja >/dev/null 2>&1; then MR_GENERATOR=(-G Ninja); fi

# shellcheck disable=SC2034  # used by the scripts that source this file
MR_JOBS="${MEGARING_JOBS:-$(nproc 2>/dev/null || echo 2)}"

# mr_configure BUILD_DIR [cmake args...]: configure once; later calls reuse the
# generator already in the cache (cmake refuses to switch generators).
mr_configure() {
  local build="$1"
  shift
  local gen=("${MR_GENERATOR[@]}")
  if [[ -f "$build/CMakeCache.txt" ]]; then gen=(); fi
  cmake -S "$MEGARING_ROOT" -B "$build" "${gen[@]}" "$@"
}

# GoogleTest (the tests need it; Debian/Ubuntu package libgtest-dev).
mr_have_gtest() {
  [[ -f /usr/include/gtest/gtest.h || -f /usr/local/include/gtest/gtest.h ]] ||
    dpkg -s libgtest-dev >/dev/null 2>&1
}
mr_ensure_gtest() {
  mr_have_gtest && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "megaring: GoogleTest is missing; installing libgtest-dev" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgtest-dev >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libgtest-dev >&2; } ||
      mr_die "could not install libgtest-dev"
  else
    mr_die "GoogleTest not found: install libgtest-dev (or GTest 1.12+), or configure with -DMEGARING_BUILD_TESTS=OFF"
  fi
}
