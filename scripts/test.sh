#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds megaring with its tests and samples in build/, then
# runs every ctest test: the `cpu` label (CPU backend, runs anywhere) and the
# `gpu` label (CUDA backend; skipped when there is no GPU). Arguments go to
# ctest, e.g. `scripts/test.sh -L cpu` or `scripts/test.sh -R install`.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

BUILD="${MEGARING_BUILD_DIR:-$MEGARING_ROOT/build}"
mr_ensure_gtest
mr_configure "$BUILD" -DMEGARING_BUILD_TESTS=ON -DMEGARING_BUILD_SAMPLES=ON
cmake --build "$BUILD" -j "$MR_JOBS"
ctest --test-dir "$BUILD" --output-on-failure --no-tests=error "$@"
