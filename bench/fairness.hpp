// SPDX-License-Identifier: Apache-2.0
// megaring_bench: tenant fairness. A light tenant's round-trip latency alone,
// then beside a tenant that floods the ring as fast as it can, with its
// outstanding-slot quota at several caps (bench/README.md, "fair").
#pragma once

#include <megaring/runtime.hpp>

#include <cstdint>
#include <vector>

#include "bench_common.hpp"

namespace mrbench {

struct FairnessOptions {
  megaring::Backend backend = megaring::Backend::kAuto;
  int device = 0;
  uint32_t ring = 1024;
  int workers = -1;                 // Config::workers (-1: default)
  int light_samples = 2000;         // light-tenant round trips per setting
  int flood_threads = 2;            // producer threads of the flooding tenant
  uint32_t flood_slot_ns = 2000;    // work per flood slot (MR_OP_DELAY_NS)
  std::vector<uint64_t> flood_caps = {16, 256, 0};  // 0: the ring capacity (no effective quota)
  // Called every 256 light samples, for the harness's watchdog: beside an
  // uncapped flood on a few CPU cores, one arm's samples take over a minute.
  void (*progress)() = nullptr;
};

// Appends fair.light_alone and fair.flood_capN arms, calling on_arm (when
// set) on each as it is appended: the harness's watchdog counts that as progress.
void run_fairness(const FairnessOptions& options, std::vector<Arm>* arms,
                  void (*on_arm)(const Arm&) = nullptr);

// priority_fairness.cpp: fair.prio_critical_alone, fair.prio_critical_bulk_flood
// and fair.prio_normal_flood: a critical producer's call round trip alone,
// beside flood_threads bulk producers, and beside the same flood with every
// ring normal; light_samples each.
void run_priority(const FairnessOptions& options, std::vector<Arm>* arms,
                  void (*on_arm)(const Arm&) = nullptr);

}  // namespace mrbench
