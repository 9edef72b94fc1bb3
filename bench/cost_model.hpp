// SPDX-License-Identifier: Apache-2.0
// The cost model (issue 14, part 1): what the ring protocol costs a GPU per
// slot, counted on the CPU backend (Config::count_costs), and a model that
// turns those counts into GPU throughput.
//
// Counting: measure_protocol_costs() runs the CPU backend with producers
// publishing batches (each on a ring of its own, or one thread on the shared
// ring 0), the consumer counting every host read, awaited round trip,
// system fence, shared- and partial-line write, device RMW and lock
// (megaring/consumer/cost_count.hpp) while it drains backlogs the producers
// published with it suspended (so its rounds are full, as at capacity), and
// the producers their shared-line RMWs and their CPU time publishing and
// reaping.
//
// Model: two parts, and the slower one bounds the rate.
//  * The executors: a closed queueing network of `units` executors. Each
//    slot an executor spends Z in parallel with the others (round trips it
//    waits for, system fences, device RMWs) and S in one GPU-wide serial
//    resource (partial writes to shared host lines, each holding a token),
//    solved exactly by mean-value analysis: deterministic, so a CI check of
//    it cannot flake.
//  * The I/O unit (ABI v3's fetch crew and completer): its costs are serial
//    for the whole consumer. The fetcher's awaited round trips, and the
//    loads its busiest warp issues in them (a warp's loads leave it one
//    after another), bound the rate at 1 / (round trips a slot x latency +
//    warp loads a slot x a load's issue time); the completer's system
//    fences likewise. The H200's rounds of 2026-12-04 took about twice what
//    this says (bench/NOTES.md, "Outcome (H200, 2026-12-04)"): not yet
//    explained, so not in the model.
// The latencies are the H100 figures of 2026-11-22 (bench/NOTES.md), and one
// calibrated term: the device-side time of a slot (device RMWs and loads,
// wake-ups), expressed per device RMW and fitted so that one unit of the
// ABI v2 scout protocol, where every unit did everything, models the H100's
// 118 k slots/s. With it the model predicts 8 and 32 units
// (tests/test_cost_model.cpp holds it to the measured 700 k and 860 k, from
// that protocol's counts, recorded below since the protocol is gone).
//
// What the model leaves out: an executor's own time a slot (block barriers,
// the handler) beyond its device RMWs. The first GPU run of ABI v3 measures
// it (bench/NOTES.md). The counts come from the CPU backend's default 2
// executors and stand for every unit count: a first-order model, not a
// simulator of the GPU.
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
  double fetch_warp_loads = 0;  // the busiest fetch warp's host loads in those round trips
  double idle_polls = 0;  // round trips that found nothing: not in the model
  double system_fences = 0;
  double fences_under_lock = 0;
  double host_writes = 0;
  double shared_line_writes = 0;
  double partial_line_writes = 0;
  double device_rmws = 0;
  double device_round_trips = 0;  // the completer's batches of done-flag loads
  double locks = 0;
  double host_shared_rmws = 0;  // producer side
};

struct ProtocolCosts {
  PerSlotCosts per_slot;   // everything (executors + I/O unit + producer)
  PerSlotCosts executors;  // the executors' part
  PerSlotCosts io;         // the I/O unit's part (fetcher and completer)
  double host_ns_per_slot = 0;  // the producers' CPU time publishing and reaping, summed
  uint64_t slots = 0;
  uint32_t workers = 0;         // CPU units that counted
  uint32_t batch = 0;
  uint32_t producers = 0;       // threads with a ring each; 0: one thread on ring 0
};

// Runs `slots` NOPs through a counting CPU runtime, `batch` to a publish:
// from `producers` threads, each with a Producer (a ring of its own), or,
// with producers = 0, from one thread through Runtime::publish_batch (the
// shared ring 0).
bool measure_protocol_costs(uint64_t slots, uint32_t batch, uint32_t workers, uint32_t producers,
                            ProtocolCosts* out, std::string* error);

struct CostLatencies {
  double read_round_trip_us = 1.3;     // a host read a unit waits for (H100)
  // Each more load a warp has in a round trip (they leave it one after
  // another): H200 2026-12-04, scripts/gpu_fetch_bw.cu, one warp, 16 loads
  // a lane 3.40 us, 4 loads 1.87 us: (3.40 - 1.87) / 12.
  double warp_load_us = 0.13;
  double system_fence_us = 0.75;       // a system-scope release (H100)
  double shared_write_token_us = 0.3;  // a partial write to a shared line holds a GPU-wide token
  double device_rmw_us = 1.6;          // calibrated (see the top)
  // A batch of device-memory loads one thread waits for: H200 2026-12-04,
  // the completer's first scan, one acquire load a done flag, 16 flags in
  // 4 us (bench/NOTES.md).
  double device_round_trip_us = 0.25;
};

// Done flags the completer loads in one batch (detail::kDoneScanBatch; a
// test holds them equal).
inline constexpr double kCompleterFlagsPerRoundTrip = 16;

// The completer's scan, one batch of done-flag loads waited for after
// another, bounds the consumer at this many slots/s even with full batches
// (the counted batches, at batch 64, are part-full: the completer looks
// before many have finished; they fill when it is the bound). Reported,
// not in modelled_slots_per_s: its flushes' fences, counted in the same
// unsaturated regime, would make the sum a guess (bench/NOTES.md, "The
// fetch crew").
double completer_scan_bound(const CostLatencies& l);

// Modelled slots/s for `units` executors and the I/O unit.
double modelled_slots_per_s(const PerSlotCosts& executors, const PerSlotCosts& io, uint32_t units,
                            const CostLatencies& l);
// The same for a protocol without an I/O unit (every unit does everything).
inline double modelled_slots_per_s(const PerSlotCosts& c, uint32_t units, const CostLatencies& l) {
  return modelled_slots_per_s(c, PerSlotCosts{}, units, l);
}

// ABI v2's scout protocol, counted by this bench at commit d3c360a
// (2026-12-04, the least disturbed of five counts, 2 CPU workers, batch 64):
// the calibration point of the model, kept since the protocol is gone.
inline PerSlotCosts scout_protocol_costs() {
  PerSlotCosts c;
  c.host_reads = 6.95;
  c.awaited_round_trips = 2.0;
  c.system_fences = 1.19;
  c.fences_under_lock = 0.19;
  c.host_writes = 4.19;
  c.shared_line_writes = 4.19;
  c.partial_line_writes = 4.19;
  c.device_rmws = 2.2;
  c.locks = 0.85;
  c.host_shared_rmws = 1.01;
  return c;
}

// Issue 14's per-slot budgets for the data path: value <= limit.
struct CostBudget {
  const char* name;
  double value;
  double limit;
};
// `p` and `modelled_slots_per_s`: one producer on its own ring; the rate of
// eight producers on eight rings beside it.
std::vector<CostBudget> cost_budgets(const PerSlotCosts& p, double modelled_slots_per_s,
                                     double modelled_8_producers);

// megaring_bench --cost-model [--cost-budgets] [--json PATH]: counts one
// producer on its own ring five times and prints the count whose modelled
// rate is the median, the model and the budgets; beside it eight producers
// on eight rings (median of three) and one thread on ring 0; writes
// {"cost_model": ...}. Returns the
// process's exit code: 1 on a missed budget when `enforce_budgets` (CI).
int run_cost_model(const std::string& json_path, bool short_mode, bool enforce_budgets);

}  // namespace mrbench
