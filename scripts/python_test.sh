#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Python package the way a user does (`pip install .`: scikit-build-core
# runs this repository's CMake with MEGARING_BUILD_PYTHON=ON), into a virtual
# environment of its own, then runs its pytest suite (python/tests, CPU
# backend; the GPU test skips without a GPU). Arguments go to pytest.
#
# The venv (build-python/venv) holds the build requirements too, and pip
# builds without isolation in build-python/cmake, so a second run rebuilds
# only what changed. Knobs: MEGARING_PYTHON (the interpreter, default
# python3), MEGARING_PYTHON_DIR (default build-python/).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PY="${MEGARING_PYTHON:-python3}"
DIR="${MEGARING_PYTHON_DIR:-$MEGARING_ROOT/build-python}"
command -v "$PY" >/dev/null 2>&1 || mr_die "$PY not found (the Python package needs Python 3.9+)"
[[ -x "$DIR/venv/bin/python" ]] || "$PY" -m venv "$DIR/venv" ||
  mr_die "could not create a venv with $PY -m venv (Debian: apt-get install python3-venv)"
VPY="$DIR/venv/bin/python"
"$VPY" -m pip install --quiet --disable-pip-version-check \
  "scikit-build-core>=0.10" "nanobind>=3.0" numpy pytest
# The same compiler cache as the rest of the build, where there is one.
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache"
fi
export CMAKE_BUILD_PARALLEL_LEVEL="$MR_JOBS"
"$VPY" -m pip install --quiet --disable-pip-version-check --no-build-isolation \
  -Cbuild-dir="$DIR/cmake" "$MEGARING_ROOT"
# From the repository root: python/ is not on sys.path, so the tests import
# the installed package, not the sources.
cd "$MEGARING_ROOT"
"$VPY" -m pytest python/tests "$@"
