#!/usr/bin/env bash
# One command for a session's lent GPU machine: builds everything (Release,
# tests, samples, bench) and runs, in order, the gpu-labelled tests, the
# quickstart on the CUDA backend, compute-sanitizer on a short quickstart,
# and the full benchmark harness. Every step runs even if an earlier one
# failed; the summary says which did not pass.
#
# Output (at most 8 files, for the device tool's $OUT): env.txt, build.txt,
# ctest-gpu.txt, quickstart.txt, sanitizer.txt, bench.json, bench.txt,
# summary.txt, in $OUT (the device tool's folder) or build-gpu/out.
#
# The GPU machines have no network and no GoogleTest: before the call, here,
#   mkdir -p .deps && cp -r /usr/src/googletest .deps/
# and name `.deps` in the device tool's `carry` (tests/CMakeLists.txt builds
# GoogleTest from .deps/googletest when no package is installed).
set -uo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MEGARING_ROOT"

BUILD="${MEGARING_GPU_BUILD_DIR:-$MEGARING_ROOT/build-gpu}"
DEST="${OUT:-$BUILD/out}"
mkdir -p "$DEST"
SUMMARY="$DEST/summary.txt"
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }
run_step() {  # run_step NAME LOG command...
  local name="$1" log="$2" t=$SECONDS rc=0
  shift 2
  echo "==== $name"
  "$@" >"$log" 2>&1 || rc=$?
  tail -n 25 "$log"
  note "$([[ $rc -eq 0 ]] && echo PASS || echo "FAIL (exit $rc)")  $name  ($((SECONDS - t)) s)"
}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  nvcc --version 2>&1 | tail -n 2
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
} >"$DEST/env.txt"

build() {
  mr_configure "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMEGARING_BUILD_TESTS=ON \
    -DMEGARING_BUILD_SAMPLES=ON -DMEGARING_BUILD_BENCH=ON &&
    cmake --build "$BUILD" -j "$MR_JOBS"
}
run_step "build (Release, tests, samples, bench)" "$DEST/build.txt" build

run_step "ctest -L gpu" "$DEST/ctest-gpu.txt" \
  ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 180 --no-tests=error

run_step "quickstart --backend cuda" "$DEST/quickstart.txt" \
  timeout 120 "$BUILD/samples/quickstart" --backend cuda --threads 8 --slots-per-thread 100000

if command -v compute-sanitizer >/dev/null 2>&1; then
  run_step "compute-sanitizer memcheck quickstart (short)" "$DEST/sanitizer.txt" \
    timeout 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
    "$BUILD/samples/quickstart" --backend cuda --threads 2 --slots-per-thread 2000
else
  note "SKIP  compute-sanitizer (not installed)"
fi

MEGARING_BENCH_GIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  run_step "megaring_bench (all arms)" "$DEST/bench.txt" \
  "$BUILD/bench/megaring_bench" --json "$DEST/bench.json"

echo
echo "==== summary"
cat "$SUMMARY"
! grep -q '^FAIL' "$SUMMARY"
