// The cost model (issue 14, part 1): what the ring protocol costs a GPU per
// slot, counted on the CPU backend (Config::count_costs), and a model that
// turns those counts into GPU throughput.
//
// Counting: measure_protocol_costs() runs the CPU backend with one producer
// publishing batches, the consumer counting every host read, awaited round
// trip, system fence, shared- and partial-line write, device RMW and lock
// (megaring/detail/cost_count.hpp), and the producer its shared-line RMWs.
//
// Model: a closed queueing network of `units` consumer units. Each slot a
// unit spends Z in parallel with the others (round trips it waits for,
// system fences, device RMWs) and S in one GPU-wide serial resource (partial
// writes to shared host lines, each holding a token), solved exactly by
// mean-value analysis: deterministic, so a CI check of it cannot flake.
// The latencies are the H100 figures of 2026-11-22 (bench/NOTES.md), and one
// calibrated term: the device-side time of a slot (device RMWs and loads,
// wake-ups), expressed per device RMW and fitted so that one unit models the
// H100's 118 k slots/s. With it the model predicts 8 and 32 units
// (tests/test_cost_model.cpp holds it to the measured 700 k and 860 k).
//
// The counts come from the CPU backend's default 2 workers and stand for
// every unit count: a first-order model, not a simulator of the GPU.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <megaring/runtime.hpp>

namespace mrbench {

// Per slot, in steady state.
struct PerSlotCosts {
  double host_reads = 0;
  double awaited_round_trips = 0;
  double system_fences = 0;
  double fences_under_lock = 0;
  double host_writes = 0;
  double shared_line_writes = 0;
  double partial_line_writes = 0;
  double device_rmws = 0;
  double locks = 0;
  double host_shared_rmws = 0;  // producer side
};

struct ProtocolCosts {
  PerSlotCosts per_slot;
  double host_ns_per_slot = 0;  // the producer's publish + reap time
  uint64_t slots = 0;
  uint32_t workers = 0;         // CPU units that counted
  uint32_t batch = 0;
};

// Runs `slots` NOPs through a counting CPU runtime, `batch` to a publish.
bool measure_protocol_costs(uint64_t slots, uint32_t batch, uint32_t workers,
                            ProtocolCosts* out, std::string* error);

struct CostLatencies {
  double read_round_trip_us = 1.3;     // a host read a unit waits for (H100)
  double system_fence_us = 0.75;       // a system-scope release (H100)
  double shared_write_token_us = 0.3;  // a partial write to a shared line holds a GPU-wide token
  double device_rmw_us = 1.6;          // calibrated (see the top)
};

// Modelled slots/s for `units` consumer units.
double modelled_slots_per_s(const PerSlotCosts& c, uint32_t units, const CostLatencies& l);

// Issue 14's per-slot budgets for the data path: value <= limit.
struct CostBudget {
  const char* name;
  double value;
  double limit;
};
std::vector<CostBudget> cost_budgets(const PerSlotCosts& p, double modelled_slots_per_s);

// megaring_bench --cost-model [--cost-budgets] [--json PATH]: prints the
// counts, the model and the budgets, writes {"cost_model": ...}. Returns the
// process's exit code: 1 on a missed budget when `enforce_budgets` (today's
// protocol misses them all; CI reports them until the new data path lands).
int run_cost_model(const std::string& json_path, bool short_mode, bool enforce_budgets);

}  // namespace mrbench
