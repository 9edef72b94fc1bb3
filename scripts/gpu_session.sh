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
# before the fetch-crew steps, which add up to about a minute more, each
# capped); `tests` and `bench`
# alone are for a rerun of one half. Every step runs even if an earlier one
# failed, each under a time limit that keeps the whole call inside
# MEGARING_GPU_DEADLINE_S (default 480 s for `all`, 570 s for a phase) so
# that the summary is always written; it says which steps did not pass.
#
# Output for the device tool's $OUT (at most 8 files a call), or build-gpu/out:
#   tests: env.txt probe.txt (driver behaviours, order costs, doorbells, host-memory reads)
#          coexist.txt (which application calls wait for a persistent kernel)
#          python.txt (the package's gpu tests, with PyTorch)
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

if [[ "$PHASE" == tests || "$PHASE" == all ]]; then
  # Driver behaviours the CUDA backend relies on (scripts/gpu_probe.cu),
  # then what system-scope orders and host-memory writes cost per block and
  # in total (scripts/gpu_order_cost.cu, about 10 s: the throughput question
  # of bench/NOTES.md), then which ways the host can ring a doorbell in
  # device memory and their round trips (scripts/gpu_doorbell.cu, under 20 s:
  # issue 14's way below the mapped-memory floor), then how fast SMs read
  # pinned host memory in the fetcher's round shape, rounds shaped like the
  # fetcher's, and whether a warp's read of one host line can tear
  # (scripts/gpu_fetch_bw.cu, about 10 s: what bounds the fetcher, and
  # whether a slot's body could come with its header). The doorbell probe is
  # built and run even when the first two fail, and its unsupported paths
  # do not fail the step. One step, one file: the tool returns 8 files a call.
  run_step "gpu_probe + gpu_order_cost + gpu_doorbell" "$DEST/probe.txt" 120 \
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
  # Which of an application's calls (cudaDeviceSynchronize, cudaFree,
  # cudaMalloc) wait for a persistent kernel in the primary context, in a
  # context of its own and in a green context; whether a kernel there reaches
  # primary-context memory; and what the application's stream capture does to
  # a library thread's calls (scripts/gpu_coexist.cu, about 20 s; issue 17,
  # item 3). A call that waits is reported, then released: never a hang.
  run_step "gpu_coexist (contexts, capture)" "$DEST/coexist.txt" 75 \
    bash -c "mkdir -p '$BUILD' &&
             nvcc -std=c++17 -arch=sm_90 -o '$BUILD/gpu_coexist' scripts/gpu_coexist.cu -lcuda &&
             '$BUILD/gpu_coexist'"
  run_step "build (Release, tests, samples, bench)" "$DEST/build.txt" 400 "$SELF" __build_all
  # A hang next to the persistent kernel must not eat the phase: 60 s a test.
  run_step "ctest -L gpu" "$DEST/ctest-gpu.txt" 300 \
    ctest --test-dir "$BUILD" -L gpu --output-on-failure --timeout 60 --no-tests=error
  # The stress tests again with a fetch crew of one warp and of seven (the
  # default is four): every crew size's barrier and shared votes on a GPU,
  # and its poll of all rings (ProducerTest).
  for warps in 1 7; do
    run_step "ctest -L gpu stress, fetch_warps $warps" "$DEST/ctest-gpu-crew$warps.txt" 120 \
      env MEGARING_TEST_FETCH_WARPS="$warps" ctest --test-dir "$BUILD" -L gpu \
      -R 'Gpu/(TornReadTest|RingStressTest|ProducerTest)' --output-on-failure --timeout 60 --no-tests=error
  done
  run_step "quickstart --backend cuda (ring 0, then a ring a thread)" "$DEST/quickstart.txt" 90 \
    bash -c "'$BUILD/samples/quickstart' --backend cuda --threads 8 --slots-per-thread 100000 &&
             '$BUILD/samples/quickstart' --backend cuda --threads 8 --slots-per-thread 100000 --rings own"
  # A downstream project's custom consumer on the GPU, built against the
  # installed megaring with the static cudart (CMake's default) and with the
  # shared one: its kernel registered and launched through one runtime.
  # Before the sanitizer, whose hang could crowd it out of the phase.
  run_step "installed consumer --backend cuda (static, shared cudart)" "$DEST/consumer.txt" 150 \
    bash -c "ctest --test-dir '$BUILD' -R '^install_consumer' --output-on-failure &&
             '$BUILD/tests/install_consumer/build/bin/consumer' --backend cuda &&
             '$BUILD/tests/install_consumer_shared/build/bin/consumer' --backend cuda"
  # The Python package beside PyTorch (the image's python3 holds torch and
  # nanobind; nothing can be installed there): the extension built by CMake
  # in a tree of its own (not pip: no network), packed with python/megaring
  # into a site folder, then the gpu-marked pytest tests: PyTorch tensors as
  # buffers, and suspend() around torch.cuda.synchronize() / empty_cache()
  # (python/tests/test_torch_coexist.py). Its own build: a failure here must
  # not take the C++ build down with it.
  run_step "python package + pytest -m gpu (PyTorch)" "$DEST/python.txt" 200 \
    bash -c "mr_py_build='$BUILD-python' && site='$BUILD-python/site' &&
             cmake -S . -B \"\$mr_py_build\" -DCMAKE_BUILD_TYPE=Release -DMEGARING_BUILD_PYTHON=ON \
               -DMEGARING_BUILD_TESTS=OFF -DMEGARING_BUILD_SAMPLES=OFF -DMEGARING_BUILD_BENCH=OFF \
               -DPython_EXECUTABLE=\"\$(command -v python3)\" &&
             cmake --build \"\$mr_py_build\" -j '$MR_JOBS' --target _core &&
             rm -rf \"\$site\" && mkdir -p \"\$site\" && cp -r python/megaring \"\$site/\" &&
             cp \"\$mr_py_build\"/python/_core*.so \"\$site/megaring/\" &&
             PYTHONPATH=\"\$site\" python3 -m pytest -q -m gpu -p no:cacheprovider python/tests"
  # Last, with a short cap: it may hang, if it holds a launch back until the
  # kernel completes (NVIDIA/stdexec#964 suspects so), which a persistent
  # kernel never does unasked. Memory errors only: the runtime polls its
  # kernel with cudaStreamQuery, whose cudaErrorNotReady is an API "error" on
  # every call. On two_tenants, not the quickstart: on the first H100 run
  # memcheck reported every access to the quickstart's counters, a buffer
  # allocated after Runtime::create had launched the kernel, as out of bounds
  # "inside the nearest allocation", and nothing else (bench/NOTES.md); it
  # seems to check a kernel against the allocations made before its launch.
  # two_tenants allocates no buffer (not yet run under memcheck).
  if command -v compute-sanitizer >/dev/null 2>&1; then
    run_step "compute-sanitizer memcheck two_tenants (short)" "$DEST/sanitizer.txt" 90 \
      compute-sanitizer --tool memcheck --error-exitcode 9 --report-api-errors no \
      "$BUILD/samples/two_tenants" --backend cuda --requests 200
  else
    note "SKIP  compute-sanitizer (not installed)"
  fi
fi

if [[ "$PHASE" == bench || "$PHASE" == all ]]; then
  [[ "$PHASE" == bench ]] && run_step "build (bench)" "$DEST/build.txt" 400 "$SELF" __build_bench
  # The table streams to bench.txt arm by arm, so a run cut short still
  # leaves every finished arm's figures.
  MEGARING_BENCH_GIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    run_step "megaring_bench (all arms)" "$DEST/bench.txt" 450 \
    "$BUILD/bench/megaring_bench" --json "$DEST/bench.json" --trace "$DEST/trace.json"
  # The scaling arm again, 8 slots a publish: an eighth of the reservations
  # on the shared tail_, to tell its ceiling from the consumer's (NOTES.md).
  run_step "megaring_bench scaling, batch 8" "$DEST/scaling-b8.txt" 120 \
    "$BUILD/bench/megaring_bench" --arms scaling --scaling-batch 8
  # Issue 14's "8 producers together >= 40 M slots/s", batched as its
  # one-producer target is (batch 64): scaling.r8, a ring each, is judged.
  run_step "megaring_bench scaling, batch 64" "$DEST/scaling-b64.txt" 120 \
    "$BUILD/bench/megaring_bench" --arms scaling --scaling-batch 64
  # The fetch crew (consumer_core.cuh) at one warp and at seven, beside the
  # default four above: does a round's time follow its busiest warp's loads
  # (bench/NOTES.md, "The fetch crew")?
  for warps in 1 7; do
    run_step "megaring_bench rt,tput, fetch_warps $warps" "$DEST/fetch-warps-$warps.txt" 60 \
      "$BUILD/bench/megaring_bench" --arms rt,tput --fetch-warps "$warps" \
      --json "$DEST/fetch-warps-$warps.json"
  done
fi

echo
echo "==== summary ($PHASE)"
cat "$SUMMARY"
if [[ "$PHASE" == all ]]; then
  mkdir -p "$FINAL"
  tar -czf "$FINAL/session.tar.gz" -C "$DEST" .
  cp "$SUMMARY" "$FINAL/summary.txt"
  [[ -f "$DEST/bench.txt" ]] && cp "$DEST/bench.txt" "$FINAL/bench.txt"
  echo "(all files: $FINAL/session.tar.gz)"
fi
! grep -q '^FAIL' "$SUMMARY"
