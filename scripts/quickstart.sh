#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures and builds megaring in build/, then runs samples/quickstart:
# several host threads publish slots to one resident consumer, the persistent
# megakernel on a GPU or the CPU backend when there is none, and every result
# is checked. Arguments go to quickstart, e.g.
#   scripts/quickstart.sh --backend cpu --threads 8 --slots-per-thread 100000
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

BUILD="${MEGARING_BUILD_DIR:-$MEGARING_ROOT/build}"
# Tests stay on (the default) so that scripts/test.sh can share build/; the
# quickstart itself does not need GoogleTest, so without it they go off.
if mr_have_gtest; then
  mr_configure "$BUILD"
else
  mr_configure "$BUILD" -DMEGARING_BUILD_TESTS=OFF
fi
cmake --build "$BUILD" -j "$MR_JOBS" --target quickstart
exec "$BUILD/samples/quickstart" "$@"
