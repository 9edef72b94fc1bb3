// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the command line (`megaring_bench --help`) and the sizes
// of every arm in full and short mode.
#pragma once

#include <megaring/runtime.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "host_cost.hpp"

namespace mrbench {

struct Options {
  bool short_mode = false;
  std::set<std::string> arms = {"rt", "tput", "scaling", "interf", "host", "fair", "ctl"};
  std::string json_path;
  std::string results_dir;
  megaring::Backend backend = megaring::Backend::kAuto;
  int device = 0;
  uint32_t ring = 1024;
  int host_consumers = 2;
  int scaling_batch = 1;
  int workers = -1;      // Config::workers for the rt/tput/scaling runtime (-1: default)
  long backoff_max = -1;  // Config::poll_backoff_max_ns for it (-1: default)
  int fetch_warps = -1;   // Config::fetch_warps for it (-1: default)
  uint32_t timeline = 0;  // Config::timeline_capacity for it (0: off), to measure its cost
  std::string trace_path;  // the timeline arms' trace (Perfetto JSON); empty: none
  bool cost_model = false;  // --cost-model: the cost model alone (cost_model.hpp)
  bool cost_budgets = false;  // --cost-budgets: and fail on a missed budget
};

struct Sizes {
  int rt_warmup, rt_iters;
  int launch_iters, graph_iters, ping_iters;
  uint64_t tput_slots;
  int tput_trials;
  int launch_tput, graph_replays, graph_nodes, tput_raw_trials;
  uint64_t scaling_slots;
  int scaling_trials, scaling_sample_every;
  std::vector<int> scaling_producers;
  int gemm_n, gemm_reps, gemm_trials, wake_samples;
  size_t copy_mb;  // interference: host-to-device copy size and copies a trial
  int copy_reps;
  double wake_gap_us;
  // Config::workers values: 0 = the library default (kDefaultGpuWorkers
  // blocks), kAllSms = one block per SM.
  std::vector<uint32_t> interf_workers;
  std::vector<uint32_t> interf_backoff;
  // Also at these block counts (default backoff): a one-warp consumer
  // (gpu::narrow_consumer), which leaves a GEMM CTA more of each SM.
  std::vector<uint32_t> interf_narrow_workers;
  HostCostOptions host;
  int fair_samples;
  std::vector<uint64_t> fair_caps;
};

// In Sizes::interf_*workers: one block per SM.
constexpr uint32_t kAllSms = std::numeric_limits<uint32_t>::max();

Sizes sizes_for(bool short_mode);

void usage(const char* argv0);

// Fills *options from the command line. False (after a message on stderr)
// on a bad one; --help prints the usage and exits 0.
bool parse_options(int argc, char** argv, Options* options);

}  // namespace mrbench
