// SPDX-License-Identifier: Apache-2.0
// The cost model's counters (bench --cost-model, tests/test_cost_model.cpp):
// what the ring protocol does per slot that costs time on a GPU across PCIe,
// counted where the protocol does it, on the CPU backend, where the same
// protocol code runs. A GPU build compiles every count to nothing.
//
// A unit's counters are written by that unit alone (a consumer worker, or a
// producer thread on the host side), with relaxed load + store pairs rather
// than read-modify-writes, so counting adds no shared-line traffic of its
// own; readers take relaxed loads. A thread counts only while a CostScope
// names its counters (the CPU worker opens one when Config::count_costs is
// set; the bench opens one on its producer thread).
#pragma once

#include <cuda/atomic>

#include "megaring/detail/atomic_ref.hpp"

#include <cstdint>

namespace megaring {

// Totals since counting began. "Host memory" is what a GPU reaches over
// PCIe: the submission region (slots, stop/abort words) and the completion
// region (records, DONE_COUNT, heartbeat).
struct CostCounters {
  uint64_t host_reads = 0;           // load instructions to host memory (a warp's counts once)
  uint64_t awaited_round_trips = 0;  // round trips the unit waits for that bring work
  uint64_t fetch_warp_loads = 0;     // in those: host loads of the fetch crew's busiest warp
                                     // (a warp's loads leave it one after another)
  uint64_t idle_polls = 0;           // round trips that found nothing (latency, not throughput)
  uint64_t system_fences = 0;        // system-scope releases and fences
  uint64_t fences_under_lock = 0;    // of those, taken while holding a device lock
  uint64_t host_writes = 0;          // stores to host memory
  uint64_t shared_line_writes = 0;   // of those, to a line another unit or the host writes too
  uint64_t partial_line_writes = 0;  // of those, covering less than a whole 64-byte line
  uint64_t device_rmws = 0;          // device-scope read-modify-writes (incl. lock attempts)
  uint64_t device_round_trips = 0;   // device-memory loads the completer waits for, one batch
                                     // after another (a batch in flight counts once)
  uint64_t locks = 0;                // device locks taken
  uint64_t host_shared_rmws = 0;     // host side: RMWs on words other host threads write
  uint64_t slots = 0;                // slots completed (consumer) or published (producer)
};

namespace detail {

// Every counter of CostCounters with its name, for code that walks them all
// (sums, reports).
using CostMember = uint64_t CostCounters::*;  // an alias: nvcc's host pass
                                              // otherwise trips -Wparentheses
struct CostField {
  const char* name;
  CostMember member;
};
inline constexpr CostField kCostFields[] = {
    {"host_reads", &CostCounters::host_reads},
    {"awaited_round_trips", &CostCounters::awaited_round_trips},
    {"fetch_warp_loads", &CostCounters::fetch_warp_loads},
    {"idle_polls", &CostCounters::idle_polls},
    {"system_fences", &CostCounters::system_fences},
    {"fences_under_lock", &CostCounters::fences_under_lock},
    {"host_writes", &CostCounters::host_writes},
    {"shared_line_writes", &CostCounters::shared_line_writes},
    {"partial_line_writes", &CostCounters::partial_line_writes},
    {"device_rmws", &CostCounters::device_rmws},
    {"device_round_trips", &CostCounters::device_round_trips},
    {"locks", &CostCounters::locks},
    {"host_shared_rmws", &CostCounters::host_shared_rmws},
    {"slots", &CostCounters::slots},
};

#if !defined(__CUDA_ARCH__)
// The calling thread's counters, or null while it does not count.
inline CostCounters*& current_costs() {
  thread_local CostCounters* costs = nullptr;
  return costs;
}

// Names the counters this thread adds to until the scope ends.
class CostScope {
 public:
  explicit CostScope(CostCounters* costs) : previous_(current_costs()) { current_costs() = costs; }
  ~CostScope() { current_costs() = previous_; }
  CostScope(const CostScope&) = delete;
  CostScope& operator=(const CostScope&) = delete;

 private:
  CostCounters* previous_;
};

// Single writer: a relaxed load and store, never an RMW (see the top).
inline void cost_add(uint64_t CostCounters::*field, uint64_t n) {
  if (CostCounters* c = current_costs()) {
    SysRef<uint64_t> word(c->*field);
    word.store(word.load(cuda::std::memory_order_relaxed) + n, cuda::std::memory_order_relaxed);
  }
}
#define MR_COST(field, n) ::megaring::detail::cost_add(&::megaring::CostCounters::field, (n))
#else
// The device pass parses host templates too: nothing is counted there.
class CostScope {
 public:
  __device__ explicit CostScope(CostCounters*) {}
};
#define MR_COST(field, n) ((void)0)
#endif

}  // namespace detail
}  // namespace megaring
