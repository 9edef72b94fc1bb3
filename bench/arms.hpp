// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the arm functions, one a family (megaring_bench.cpp runs
// them from its table), and the measurements that more than one family uses.
// Each arm function appends its arms to run.arms (BenchRun::add), skipped
// with the reason where it cannot run.
#pragma once

#include <megaring/runtime.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "harness.hpp"

namespace mrbench {

// ---------------------------------------------------------------------------
// Arm families (the file that defines each)
// ---------------------------------------------------------------------------
// cuda_baseline_arms.cpp: the raw CUDA baselines of gpu_arms.cu. Before any
// runtime exists: an idle megakernel would share the GPU (and PCIe) with
// them; the interference arm measures that.
void set_up_gpu(BenchRun& run);  // loads every kernel, graph and cuBLAS path first
void cuda_round_trip_arms(BenchRun& run);  // rt.pingpong_floor, rt.read.*, rt.*_sync
void cuda_throughput_arms(BenchRun& run);  // tput.launch_b2b, tput.graph_many

// On the shared runtime (run.runtime):
void megaring_round_trip_arm(BenchRun& run);  // round_trip_arms.cpp: rt.megaring_call
void megaring_throughput_arms(BenchRun& run);  // throughput_arms.cpp: tput.megaring.b*
void producer_scaling_arms(BenchRun& run);     // scaling_arms.cpp: scaling.{p,r,t}*

// Each on runtimes of its own:
void timeline_cost_arms(BenchRun& run);  // timeline_arms.cpp: rt.megaring_call_timeline,
                                         // tput.timeline.b64, the trace
bool timeline_cost_arms_apply(const BenchRun& run);  // whether they run at all
void interference_arms(BenchRun& run);   // interference_arms.cpp: interf.*
void host_cost_arms(BenchRun& run);      // host_cost.cpp: host.megaring.p*, host.moodycamel.p*
void fairness_arms(BenchRun& run);       // fairness.cpp: fair.*
void control_arms(BenchRun& run);        // control_arms.cpp: ctl.*

// ---------------------------------------------------------------------------
// Measurements shared between families
// ---------------------------------------------------------------------------
// round_trip_arms.cpp. Round trips: call(NOP) with a distinct echo each time;
// optional idle gap before each call (wake-up latency).
bool megaring_round_trips(megaring::Runtime& rt, int warmup, int iters, double gap_ns,
                          std::vector<double>* ns, std::string* error);

// round_trip_arms.cpp. Where a call's time goes, from timeline mode: `calls`
// more calls, each timed on the host's steady clock (the runtime's timeline
// clock), matched by ticket with the slot's publish, claim and complete times
// (the consumer's clock mapped onto the host's by the runtime's calibration,
// +- its uncertainty). Medians of each leg, in ns:
//   publish:  call() entered -> the runtime's publish time (taken once the
//             tickets are reserved, just before the slot's stores)
//   to_claim: -> an executor copied the staged body (the slot's stores, the
//             fetcher's poll and body round trips, staging, the claim)
//   run:      claim -> handler done
//   to_host:  handler done -> call() returned (done flag, the completer's
//             flush and fences, DONE_COUNT across PCIe, the host's read)
struct CallLegs {
  double publish = 0, to_claim = 0, run = 0, to_host = 0, uncertainty = 0;
  size_t matched = 0;
};
bool megaring_call_legs(megaring::Runtime& rt, int calls, CallLegs* legs, std::string* error);

// throughput_arms.cpp. A throughput arm: one producer at `batch`, over
// sz.tput_trials trials after a warm-up of a tenth, as a rate, or the error
// that stopped it.
void measure_throughput(megaring::Runtime& rt, uint32_t batch, const Sizes& sz, Arm& a);

// tenant_scaling.cpp. P producers' NOPs through a tenant each (throughput
// only); checks that every tenant's slots were drained once, all OK.
bool megaring_tenant_scaling(megaring::Runtime& rt, int producers, uint64_t slots, int batch,
                             double* rate, std::string* error);

}  // namespace mrbench
