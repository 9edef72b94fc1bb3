#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command per phase for a session's lent GPU machine.
#
#   scripts/gpu_session.sh tests   a probe of driver behaviours
#                                  (scripts/gpu_probe.cu) and of memory-order
#                                  costs (scripts/gpu_order_cost.cu); build everything
#                                  (Release: library, tests, samples, bench);
#                                  then the gpu-labelled tests (among them the
#                                  torn-read stress, TornReadTest.*: host
#                                  threads rewrite a small ring while the
#                                  fetcher reads it), the quickstart
#                                  on the CUDA backend, an installed downstream
#                                  consumer on the CUDA backend, and
#                                  compute-sanitizer on a short two_tenants
#   scripts/gpu_session.sh bench   build the bench (a no-op after `tests` on
#                                  the same machine), then every bench arm
#   scripts/gpu_session.sh all     both, in one call of at most 480 s: THE
#                                  session-start check (a session has 15
#                                  minutes of device time, start-up included)
#
# A session makes one call, `all` (on the H100 the whole of it took about
# 5 minutes: build 34 s, gpu tests 34 s, bench 109 s; on the H200 160-206 s,
# with half as many gpu tests, before the fetch-crew, Python and coexistence
# steps); `tests` and `bench` alone are for a rerun of one half. `all` runs
# the steps most needed first (build, gpu tests, the bench, PyTorch, the
# coexistence probe, the 8-producer scaling, the probes, the crew reruns,
# the samples, the sanitizer), since a step that would start past the
# deadline is skipped, and builds the Python module in the background
# beside the gpu tests. Every step runs even if an earlier one failed, each
# under a time limit that keeps the whole call inside
# MEGARING_GPU_DEADLINE_S (default 480 s for `all`, 570 s for a phase) so
# that the summary is always written; it says which steps did not pass.
# `all` packs what has finished into $OUT after every step: give the device
# call a timeout_s of at least the deadline plus 20 s.
#
# Output for the device tool's $OUT (at most 8 files a call), or build-gpu/out:
#   tests: env.txt probe.txt (driver behaviours, order costs, doorbells, host-memory reads)
#          coexist.txt (which application calls wait for a persistent kernel)
#          python-build.txt python.txt (the package's gpu tests, with PyTorch)
#          build.txt ctest-gpu.txt ctest-gpu-crew{1,7}.txt
#          quickstart.txt consumer.txt sanitizer.txt summary.txt
#   bench: env.txt build.txt bench.json bench.txt trace.json scaling-b8.txt
#          scaling-b64.txt fetch-warps-{1,7}.{txt,json} summary.txt
#          (trace.json: the timeline arms' last tickets, for ui.perfetto.dev)
#   all:   summary.txt, bench.txt, and session.tar.gz holding every file above
# Plots are drawn afterwards, here: python3 bench/plot.py <bench.json>.
#
# The GPU machines have no network, no GoogleTest and no moodycamel queue
# (the host-cost arm's comparison): before the calls, here,
#   mkdir -p .deps && cp -r /usr/src/googletest /usr/include/concurrentqueue .deps/
# and name `.deps` in the device tool's `carry` of both calls
# (tests/CMakeLists.txt builds GoogleTest from .deps/googletest when no package
# is installed; bench/CMakeLists.txt finds .deps/concurrentqueue/).
set -uo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$MEGARING_ROOT" || exit 1

BUILD="${MEGARING_GPU_BUILD_DIR:-$MEGARING_ROOT/build-gpu}"
configure() {
  mr_configure "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMEGARING_BUILD_TESTS=ON \
    -DMEGARING_BUILD_SAMPLES=ON -DMEGARING_BUILD_BENCH=ON
}

# How the built-in megakernel's memory orders were lowered (bench/NOTES.md,
# "Questions for the first GPU run"): per kernel function, counts of the SASS
# instructions that carry them. For the build log; never fails the build.
sass_facts() {
  local sass
  if ! sass="$(cuobjdump -sass "$BUILD/libmegaring.a" 2>&1)"; then
    echo "sass: cuobjdump unavailable or failed"
    return 0
  fi
  awk '/Function : / { fn = $NF; order[++n] = fn }
       fn != "" { for (i = 1; i <= 6; ++i) if (index($0, pat[i])) count[fn, i]++ }
       BEGIN { split("CCTL MEMBAR FENCE STRONG.SYS STRONG.GPU NANOSLEEP", pat, " ") }
       END { for (k = 1; k <= n; ++k) {
               line = "sass: " order[k]
               for (i = 1; i <= 6; ++i) line = line " " pat[i] "=" (count[order[k], i] + 0)
               print line } }' <<<"$sass"
}

PHASE="${1:-all}"
case "$PHASE" in
  tests | bench | all) ;;
  # Internal: the build steps, as commands that `timeout` can run.
  __build_all) configure && cmake --build "$BUILD" -j "$MR_JOBS" && sass_facts; exit ;;
  __build_bench) configure && exec cmake --build "$BUILD" -j "$MR_JOBS" --target megaring_bench ;;
  *) mr_die "usage: scripts/gpu_session.sh tests|bench|all" ;;
esac
if [[ "$PHASE" == all ]]; then
  DEADLINE=$((SECONDS + ${MEGARING_GPU_DEADLINE_S:-480}))
else
  DEADLINE=$((SECONDS + ${MEGARING_GPU_DEADLINE_S:-570}))
fi

# `all` writes more files than the device tool brings back (8): they go to a
# folder of their own, packed into $OUT at the end.
FINAL="${OUT:-$BUILD/out}"
DEST="$FINAL"
[[ "$PHASE" == all ]] && DEST="$BUILD/out-all"
rm -rf "$BUILD/out-all"
mkdir -p "$DEST"
SUMMARY="$DEST/summary.txt"
: >"$SUMMARY"
note() { echo "$*" | tee -a "$SUMMARY"; }

# run_step NAME LOG CAP_S command...: runs the command for at most CAP_S
# seconds, and never past the phase's deadline (less 15 s for the summary).
run_step() {
  local name="$1" log="$2" cap="$3" t=$SECONDS rc=0
  shift 3
  local left=$((DEADLINE - SECONDS - 15))
  ((left < cap)) && cap=$left
  if ((cap < 10)); then
    note "SKIP  $name  (no time left in this phase)"
    return
  fi
  echo "==== $name (limit ${cap} s)"
  timeout --kill-after=10 "$cap" "$@" >"$log" 2>&1 || rc=$?
  tail -n 25 "$log"
  local verdict="PASS"
  if ((rc == 124 || rc == 137)); then
    verdict="FAIL (timed out after ${cap} s)"
  elif ((rc != 0)); then
    verdict="FAIL (exit $rc)"
  fi
  note "$verdict  $name  ($((SECONDS - t)) s)"
  pack
}

# `all`: every finished step's files are packed into $FINAL after each
# step, so a call cut short (its own limit, or the device tool's) still
# brings back all that finished.
pack() {
  [[ "$PHASE" == all ]] || return 0
  mkdir -p "$FINAL"
  tar -czf "$FINAL/.session.tmp" -C "$DEST" . 2>/dev/null &&
    mv -f "$FINAL/.session.tmp" "$FINAL/session.tar.gz"
  cp "$SUMMARY" "$FINAL/summary.txt"
  if [[ -f "$DEST/bench.txt" ]]; then cp "$DEST/bench.txt" "$FINAL/bench.txt"; fi
  return 0
}

{
  date -u +"date: %Y-%m-%dT%H:%M:%SZ"
  echo "phase: $PHASE"
  echo "git: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  nvidia-smi -q -d CLOCK,PERFORMANCE 2>&1 | head -n 60 || true
  nvcc --version 2>&1 | tail -n 2
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(nproc) threads"
} >"$DEST/env.txt"

SELF="$MEGARING_ROOT/scripts/gpu_session.sh"
PY_BUILD="$BUILD-python"

# ---- the steps (each one run_step, so each is capped and noted) ----------

# Driver behaviours the CUDA backend relies on (scripts/gpu_probe.cu), then
# what system-scope orders and host-memory writes cost per block and in
# total (scripts/gpu_order_cost.cu, about 10 s: the throughput question of
# bench/NOTES.md), then which ways the host can ring a doorbell in device
# memory and their round trips (scripts/gpu_doorbell.cu, under 20 s: issue
# 14's way below the mapped-memory floor), then how fast SMs read pinned
# host memory in the fetcher's round shape, rounds shaped like the
# fetcher's, and whether a warp's read of one host line can tear
# (scripts/gpu_fetch_bw.cu, about 10 s: what bounds the fetcher, and whether
# a slot's body could come with its header). The doorbell probe is built and
# run even when the first two fail, and its unsupported paths do not fail
# the step. One step, one file. (13 s in all on the H200, 2026-12-04.)
step_probe() {
  run_step "gpu_probe + gpu_order_cost + gpu_doorbell + gpu_fetch_bw" "$DEST/probe.txt" 90 \
    bash -c "mkdir -p '$BUILD' &&
             nvcc -std=c++17 -arch=sm_90 -o '$BUILD/gpu_probe' scripts/gpu_probe.cu &&
             nvcc -std=c++17 -arch=sm_90 -o '$BUILD/gpu_order_cost' scripts/gpu_order_cost.cu &&
             '$BUILD/gpu_probe' && '$BUILD/gpu_order_cost'; rc=\$?
             echo '==== gpu_doorbell'
             nvcc -std=c++17 -arch=sm_90 -o '$BUILD/gpu_doorbell' scripts/gpu_doorbell.cu -ldl &&
             '$BUILD/gpu_doorbell' || rc=1
             echo '==== gpu_fetch_bw'
             nvcc -std=c++17 -arch=sm_90 -o '$BUILD/gpu_fetch_bw' scripts/gpu_fetch_bw.cu &&
             '$BUILD/gpu_fetch_bw' || rc=1
             exit \$rc"
}

# Which of an application's calls (cudaDeviceSynchronize, cudaFree,
# cudaMalloc) wait for a persistent kernel in the primary context, in a
# context of its own and in a green context; whether a kernel there reaches
# primary-context memory; and what the application's stream capture does to
# a library thread's calls (scripts/gpu_coexist.cu, about 20 s; issue 17,
# item 3). A call that waits is reported, then released: never a hang.
step_coexist() {
  run_step "gpu_coexist (contexts, capture)" "$DEST/coexist.txt" 60 \
    bash -c "mkdir -p '$BUILD' &&
             nvcc -std=c++17 -arch=sm_90 -o '$BUILD/gpu_coexist' scripts/gpu_coexist.cu -lcuda &&
             '$BUILD/gpu_coexist'"
}

step_build() {
  run_step "build (Release, tests, samples, bench)" "$DEST/build.txt" 240 "$SELF" __build_all
}

# The Python extension, in a tree of its own (a failure there must not take
# the C++ build down with it): the image's python3 holds torch, nanobind and
# pytest, and nothing can be installed there (no network), so CMake builds
# the module and it is packed with python/megaring into a site folder. It is
# CPU work, so `all` runs it in the background beside the gpu tests
# (py_build_start), with a share of the cores, and waits before the bench.
py_build_cmd() {
  echo "cmake -S . -B '$PY_BUILD' -DCMAKE_BUILD_TYPE=Release -DMEGARING_BUILD_PYTHON=ON \
          -DMEGARING_BUILD_TESTS=OFF -DMEGARING_BUILD_SAMPLES=OFF -DMEGARING_BUILD_BENCH=OFF \
          -DPython_EXECUTABLE=\"\$(command -v python3)\" &&
        cmake --build '$PY_BUILD' -j $1 --target _core &&
        rm -rf '$PY_BUILD/site' && mkdir -p '$PY_BUILD/site' && cp -r python/megaring '$PY_BUILD/site/' &&
        cp '$PY_BUILD'/python/_core*.so '$PY_BUILD/site/megaring/'"
}
PY_BUILD_PID=""
py_build_start() {
  rm -f "$BUILD/python-build.rc"
  local jobs=$(((MR_JOBS + 1) / 2))
  (timeout --kill-after=10 240 bash -c "$(py_build_cmd "$jobs")" >"$DEST/python-build.txt" 2>&1
   echo $? >"$BUILD/python-build.rc") &
  PY_BUILD_PID=$!
  echo "==== python package build: in the background (pid $PY_BUILD_PID, -j $jobs)"
}
# Waits for the background build (at most 120 s more), or builds now when
# none was started (the `tests` phase).
py_build_wait() {
  if [[ -z "$PY_BUILD_PID" ]]; then
    run_step "python package build" "$DEST/python-build.txt" 200 bash -c "$(py_build_cmd "$MR_JOBS")"
    return
  fi
  run_step "python package build (background, waited for)" "$DEST/python-build-wait.txt" 120 \
    bash -c "while [[ ! -f '$BUILD/python-build.rc' ]]; do sleep 1; done; cat '$DEST/python-build.txt' | tail -n 5;
             exit \$(cat '$BUILD/python-build.rc')"
  PY_BUILD_PID=""
}

# The gpu-marked pytest tests with the image's PyTorch: tensors as buffers,
# suspend() around torch.cuda.synchronize() / empty_cache() and a graph
# capture (python/tests/test_torch_coexist.py), the server sample on CUDA
# tensors. Each test bounds itself; pytest-timeout, where present, too.
step_python() {
  run_step "pytest -m gpu (PyTorch)" "$DEST/python.txt" 120 \
    bash -c "[[ -f '$PY_BUILD/site/megaring/__init__.py' ]] || { echo 'no python build'; exit 1; }
             timeout_flag=''; python3 -c 'import pytest_timeout' 2>/dev/null && timeout_flag='--timeout=100'
             PYTHONPATH='$PY_BUILD/site' PYTHONUNBUFFERED=1 python3 -m pytest -q -m gpu \
               -p no:cacheprovider \$timeout_flag python/tests"
}

# A hang next to the persistent kernel must not eat the phase: 60 s a test.
step_ctest() {
  run_step "ctest -L gpu" "$DEST/ctest-gpu.txt" 240 \
    ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 60 --no-tests=error
}

# The stress tests again with a fetch crew of one warp and of seven (the
# default is four): every crew size's barrier and shared votes on a GPU, its
# poll of all rings (ProducerTest), the priority schedule (PriorityTest) and
# the exit and relaunch (SuspendTest).
step_crews() {
  local warps
  for warps in 1 7; do
    run_step "ctest -L gpu stress, fetch_warps $warps" "$DEST/ctest-gpu-crew$warps.txt" 90 \
      env MEGARING_TEST_FETCH_WARPS="$warps" ctest --test-dir "$BUILD" -L gpu \
      -R 'Gpu/(TornReadTest|RingStressTest|ProducerTest|PriorityTest|SuspendTest)' \
      --output-on-failure --timeout 60 --no-tests=error
  done
}

step_quickstart() {
  run_step "quickstart --backend cuda (ring 0, then a ring a thread)" "$DEST/quickstart.txt" 60 \
    bash -c "'$BUILD/samples/quickstart' --backend cuda --threads 8 --slots-per-thread 100000 &&
             '$BUILD/samples/quickstart' --backend cuda --threads 8 --slots-per-thread 100000 --rings own"
}

# A downstream project's custom consumer on the GPU, built against the
# installed megaring with the static cudart (CMake's default) and with the
# shared one: its kernel registered and launched through one runtime.
step_consumer() {
  run_step "installed consumer --backend cuda (static, shared cudart)" "$DEST/consumer.txt" 120 \
    bash -c "ctest --test-dir '$BUILD' -R '^install_consumer' --output-on-failure &&
             '$BUILD/tests/install_consumer/build/bin/consumer' --backend cuda &&
             '$BUILD/tests/install_consumer_shared/build/bin/consumer' --backend cuda"
}

# Last, with a short cap: it may hang, if it holds a launch back until the
# kernel completes (NVIDIA/stdexec#964 suspects so), which a persistent
# kernel never does unasked. Memory errors only: the runtime polls its
# kernel with cudaStreamQuery, whose cudaErrorNotReady is an API "error" on
# every call. On two_tenants, not the quickstart: on the first H100 run
# memcheck reported every access to the quickstart's counters, a buffer
# allocated after Runtime::create had launched the kernel, as out of bounds
# "inside the nearest allocation", and nothing else (bench/NOTES.md); it
# seems to check a kernel against the allocations made before its launch.
# two_tenants allocates no buffer.
step_sanitizer() {
  if command -v compute-sanitizer >/dev/null 2>&1; then
    run_step "compute-sanitizer memcheck two_tenants (short)" "$DEST/sanitizer.txt" 60 \
      compute-sanitizer --tool memcheck --error-exitcode 9 --report-api-errors no \
      "$BUILD/samples/two_tenants" --backend cuda --requests 200
  else
    note "SKIP  compute-sanitizer (not installed)"
  fi
}

# The table streams to bench.txt arm by arm, so a run cut short still
# leaves every finished arm's figures.
step_bench() {
  MEGARING_BENCH_GIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    run_step "megaring_bench (all arms)" "$DEST/bench.txt" 240 \
    "$BUILD/bench/megaring_bench" --json "$DEST/bench.json" --trace "$DEST/trace.json"
}

# The scaling arm again, 8 slots a publish: an eighth of the reservations
# on ring 0's shared tail, to tell its ceiling from the consumer's.
step_scaling8() {
  run_step "megaring_bench scaling, batch 8" "$DEST/scaling-b8.txt" 60 \
    "$BUILD/bench/megaring_bench" --arms scaling --scaling-batch 8
}

# Issue 14's "8 producers together >= 40 M slots/s", batched as its
# one-producer target is (batch 64): scaling.r8, a ring each, is judged.
step_scaling64() {
  run_step "megaring_bench scaling, batch 64" "$DEST/scaling-b64.txt" 60 \
    "$BUILD/bench/megaring_bench" --arms scaling --scaling-batch 64
}

# The fetch crew (consumer/fetcher.cuh) at one warp and at seven, beside the
# default four above: does a round's time follow its busiest warp's loads
# (bench/NOTES.md, "The fetch crew")?
step_fetch_warps() {
  local warps
  for warps in 1 7; do
    run_step "megaring_bench rt,tput, fetch_warps $warps" "$DEST/fetch-warps-$warps.txt" 45 \
      "$BUILD/bench/megaring_bench" --arms rt,tput --fetch-warps "$warps" \
      --json "$DEST/fetch-warps-$warps.json"
  done
}

# ---- the phases ----------------------------------------------------------

case "$PHASE" in
  tests)
    step_probe; step_coexist; step_build; step_ctest; step_crews; step_quickstart
    step_consumer; py_build_wait; step_python; step_sanitizer ;;
  bench)
    run_step "build (bench)" "$DEST/build.txt" 400 "$SELF" __build_bench
    step_bench; step_scaling8; step_scaling64; step_fetch_warps ;;
  all)
    # Most needed first, since the deadline skips what is left: the build,
    # every gpu test, the bench arms that measure the open targets, life
    # beside PyTorch (issue 17), then the probes and reruns.
    step_build
    py_build_start
    step_ctest
    py_build_wait
    step_bench
    step_python
    step_coexist
    step_scaling64
    step_probe
    step_crews
    step_fetch_warps
    step_quickstart
    step_consumer
    step_sanitizer
    step_scaling8 ;;
esac

echo
echo "==== summary ($PHASE)"
cat "$SUMMARY"
if [[ "$PHASE" == all ]]; then
  pack
  echo "(all files: $FINAL/session.tar.gz)"
fi
! grep -q '^FAIL' "$SUMMARY"
