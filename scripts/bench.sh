#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the benchmark harness (Release, in build-bench/) and runs every arm:
# the table goes to stdout and to bench/results/<date>_<device>.txt, the JSON
# report to bench/results/<date>_<device>.json and the plots to
# bench/results/<date>_<device>_plots/. A few minutes on one GPU.
# Arguments go to megaring_bench, e.g. `scripts/bench.sh --short` or
# `scripts/bench.sh --arms rt,tput`. Knobs: MEGARING_BENCH_BUILD_DIR,
# MEGARING_BENCH_RESULTS (output folder), MEGARING_BENCH_CMAKE_ARGS (extra
# configure arguments, e.g. -DCMAKE_CUDA_ARCHITECTURES=80), MEGARING_JOBS.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=bench/env.sh
source "$MEGARING_ROOT/bench/env.sh"

BUILD="${MEGARING_BENCH_BUILD_DIR:-$MEGARING_ROOT/build-bench}"
OUT="${MEGARING_BENCH_RESULTS:-$MEGARING_ROOT/bench/results}"
mr_ensure_concurrentqueue
# shellcheck disable=SC2086  # word splitting of the extra arguments is intended
mr_configure "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMEGARING_BUILD_TESTS=OFF \
  -DMEGARING_BUILD_SAMPLES=OFF -DMEGARING_BUILD_BENCH=ON ${MEGARING_BENCH_CMAKE_ARGS:-}
cmake --build "$BUILD" -j "$MR_JOBS" --target megaring_bench

# The revision the report records (read-only git calls).
if git -C "$MEGARING_ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
  rev="$(git -C "$MEGARING_ROOT" rev-parse --short HEAD)"
  [[ -n "$(git -C "$MEGARING_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]] && rev="$rev-dirty"
  export MEGARING_BENCH_GIT="$rev"
fi

mkdir -p "$OUT"
log="$BUILD/bench-last.txt"
set +e
"$BUILD/bench/megaring_bench" --results-dir "$OUT" "$@" | tee "$log"
rc=${PIPESTATUS[0]}
set -e
json="$(sed -n 's/^json: //p' "$log" | tail -n 1)"
if [[ -n "$json" && -f "$json" ]]; then
  cp "$log" "${json%.json}.txt"
  if mr_ensure_matplotlib; then
    python3 "$MEGARING_ROOT/bench/plot.py" "$json"
  else
    echo "scripts/bench.sh: no matplotlib: plots skipped (python3 bench/plot.py $json)" >&2
  fi
fi
exit "$rc"
