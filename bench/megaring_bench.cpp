// SPDX-License-Identifier: Apache-2.0
// megaring_bench: every arm of the benchmark in one process, warm, with the
// same clocks; a table on stdout and a JSON report. bench/README.md has the
// method; `megaring_bench --help` the options.
//
// Arms (groups), a function a family (arms.hpp), run from the table below:
//   rt        round trip: Runtime::call(NOP) beside empty-kernel launch+sync,
//             one-node graph launch+sync and the mapped-memory ping-pong floor
//   tput      throughput: 10^6 NOPs from one producer at batch 1/8/64/256,
//             beside back-to-back launches and a many-node graph replayed
//   scaling   1..16 producers: throughput and sampled per-slot latency
//   interf    a large cuBLAS GEMM alone and beside an idle megakernel at
//             several block counts and backoffs; wake-up latency per setting
//   host      host cost per slot on the CPU backend vs moodycamel's queue
//   fair      tenants: a light tenant's latency alone and beside a flooding
//             tenant held to several outstanding-slot quotas
//
// The GPU rules, which every arm keeps: CUDA_MODULE_LOADING=EAGER before CUDA
// initialises; every kernel, graph and the cuBLAS handle loaded before the
// first runtime exists; no cudaDeviceSynchronize (or cudaMalloc/cudaFree)
// while a runtime is alive; only our own streams and events are waited on.
#include <cstdlib>
// clang-format off
// (first thing: before any CUDA call, including static initialisers' ones)
namespace { const int kEagerSet = setenv("CUDA_MODULE_LOADING", "EAGER", 0); }
// clang-format on

#include <cstdio>

#include "arms.hpp"
#include "cost_model.hpp"
#include "harness.hpp"
#include "options.hpp"
#include "report.hpp"
#include "targets.hpp"

using namespace mrbench;

namespace {

// A family of arms: the --arms names that select it, its progress line on
// stderr and watchdog phase, and its function.
struct ArmFamily {
  const char* selected_by[2];  // either of these --arms names (the second may be null)
  const char* title;           // "megaring_bench: <title>" on stderr as it starts
  const char* phase;           // the watchdog's phase while it runs (null: the title)
  // On the shared runtime (run.runtime), which lives from the first such
  // family that runs to the next family that is not: the raw CUDA arms run
  // before it exists (an idle megakernel would share the GPU with them), the
  // others after it is gone, each on runtimes of its own.
  bool on_shared_runtime;
  void (*run)(BenchRun&);
  bool (*applies)(const BenchRun&);  // a further condition once selected (null: none)

  bool selected(const Options& o) const {
    for (const char* name : selected_by)
      if (name != nullptr && o.arms.count(name)) return true;
    return false;
  }
};

// In the order they run, which is the order of the arms in the report.
const ArmFamily kArmFamilies[] = {
    {{"rt"}, "round trip (raw CUDA)", nullptr, false, cuda_round_trip_arms, nullptr},
    {{"tput"}, "throughput (raw CUDA)", nullptr, false, cuda_throughput_arms, nullptr},
    {{"rt"}, "round trip (megaring)", nullptr, true, megaring_round_trip_arm, nullptr},
    {{"tput"}, "throughput (megaring)", nullptr, true, megaring_throughput_arms, nullptr},
    {{"scaling"}, "producer scaling", nullptr, true, producer_scaling_arms, nullptr},
    {{"rt", "tput"}, "timeline mode on", nullptr, false, timeline_cost_arms,
     timeline_cost_arms_apply},
    {{"interf"}, "interference", nullptr, false, interference_arms, nullptr},
    {{"host"}, "host cost (CPU backend vs moodycamel)", nullptr, false, host_cost_arms, nullptr},
    {{"fair"}, "tenant fairness (light tenant beside a flood)", "tenant fairness", false,
     fairness_arms, nullptr},
    {{"ctl"}, "control operations (set_grants), idle and beside a flood", "control", false,
     control_arms, nullptr},
};

}  // namespace

int main(int argc, char** argv) {
  // Already set by the static initialiser above (earlier than any CUDA call
  // from another static initialiser could come); repeated here for clarity.
  // An explicit CUDA_MODULE_LOADING from the environment is kept (recorded).
  (void)kEagerSet;
  setenv("CUDA_MODULE_LOADING", "EAGER", 0);
  Options opt;
  if (!parse_options(argc, argv, &opt)) return 2;
  if (opt.cost_model) return run_cost_model(opt.json_path, opt.short_mode, opt.cost_budgets);
  const Sizes sz = sizes_for(opt.short_mode);
  const auto run_start = Clock::now();
  // 120 s in both modes: a hang must leave most of a GPU session's bench step
  // (scripts/gpu_session.sh) to the steps after it. Every arm announces itself
  // as it finishes (the fairness arms also while they sample); the longest
  // gap is an interference arm whose GEMM starves (its shutdowns: under a
  // minute).
  g_watchdog.start(120000);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  BenchRun run(opt, sz);
  start_report(argc, argv, run);
  set_up_gpu(run);  // before any runtime exists
  for (const ArmFamily& family : kArmFamilies) {
    if (!family.selected(opt)) continue;
    if (family.on_shared_runtime)
      open_shared_runtime(run);
    else
      close_shared_runtime(run);
    if (family.applies != nullptr && !family.applies(run)) continue;
    std::fprintf(stderr, "megaring_bench: %s\n", family.title);
    g_watchdog.kick(family.phase != nullptr ? family.phase : family.title);
    family.run(run);
  }
  close_shared_runtime(run);
  return finish_report(run, evaluate_targets(run), run_start);
}
