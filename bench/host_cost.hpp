// SPDX-License-Identifier: Apache-2.0
// megaring_bench: host cost per slot on the CPU backend, against moodycamel's
// ConcurrentQueue on the same workload (bench/README.md explains the setup).
#pragma once

#include <cstdint>
#include <vector>

#include "bench_common.hpp"

namespace mrbench {

struct HostCostOptions {
  std::vector<int> producers = {1, 2, 4};
  int consumers = 2;          // megaring CPU workers = moodycamel consumer threads
  uint64_t slots = 100000;    // per trial, split across the producers
  int trials = 3;
  uint32_t ring = 1024;       // in-flight window (megaring ring; queue back-pressure)
  int sample_every = 64;      // time every Nth publish/enqueue call
};

bool have_moodycamel();
// Appends host.megaring.pN and host.moodycamel.pN arms, calling on_arm (when
// set) on each as it is appended: the harness's watchdog counts that as progress.
void run_host_cost(const HostCostOptions& options, std::vector<Arm>* arms,
                   void (*on_arm)(const Arm&) = nullptr);

}  // namespace mrbench
