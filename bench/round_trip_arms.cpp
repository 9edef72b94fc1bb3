// SPDX-License-Identifier: Apache-2.0
// megaring_bench: the round trip of megaring itself: Runtime::call(NOP) on
// the shared runtime (rt.megaring_call), and the round-trip and call-leg
// measurements the timeline and interference arms reuse (arms.hpp).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "arms.hpp"

namespace mrbench {

using namespace megaring;

bool megaring_round_trips(Runtime& rt, int warmup, int iters, double gap_ns,
                          std::vector<double>* ns, std::string* error) {
  ns->clear();
  ns->reserve(static_cast<size_t>(iters));
  for (int i = -warmup; i < iters; ++i) {
    if (gap_ns > 0) busy_wait_ns(gap_ns);
    const uint64_t echo = 0x5000000000ull + static_cast<uint64_t>(i + warmup);
    Completion c;
    const auto t0 = Clock::now();
    const Status st = rt.call(ops::nop(echo), &c);
    const auto t1 = Clock::now();
    if (!st) {
      *error = "call: " + st.to_string();
      return false;
    }
    if (!c.ok() || c.result != echo) {
      *error = "call returned status " + std::to_string(c.status) + " result " +
               std::to_string(c.result) + " (expected " + std::to_string(echo) + ")";
      return false;
    }
    if (i >= 0) ns->push_back(elapsed_ns(t0, t1));
  }
  return true;
}

bool megaring_call_legs(Runtime& rt, int calls, CallLegs* legs, std::string* error) {
  struct Call {
    uint64_t ticket;
    int64_t enter_ns, return_ns;
  };
  const auto host_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  };
  std::vector<Call> timed;
  timed.reserve(static_cast<size_t>(calls));
  for (int i = 0; i < calls; ++i) {
    Completion c;
    const int64_t enter = host_ns();
    const Status st = rt.call(ops::nop(static_cast<uint64_t>(i)), &c);
    const int64_t ret = host_ns();
    if (!st || !c.ok()) return *error = "call: " + st.to_string(), false;
    timed.push_back(Call{c.ticket, enter, ret});
  }
  Timeline tl;
  if (const Status st = rt.timeline(&tl); !st) return *error = "timeline: " + st.to_string(), false;
  if (tl.slots.empty()) return *error = "timeline: no slots", false;
  const uint64_t first = tl.slots.front().ticket;
  std::vector<double> publish, to_claim, run, to_host;
  for (const Call& c : timed) {
    if (c.ticket < first || c.ticket - first >= tl.slots.size()) continue;
    const TimelineSlot& s = tl.slots[c.ticket - first];
    if (s.ticket != c.ticket) continue;  // the record ring is in ticket order; be sure
    publish.push_back(static_cast<double>(s.publish_ns - c.enter_ns));
    to_claim.push_back(static_cast<double>(s.claim_ns - s.publish_ns));
    run.push_back(static_cast<double>(s.complete_ns - s.claim_ns));
    to_host.push_back(static_cast<double>(c.return_ns - s.complete_ns));
  }
  if (publish.empty()) return *error = "timeline: none of the calls' slots was kept", false;
  const auto median = [](std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    return percentile_sorted(v, 0.5);
  };
  legs->publish = median(publish);
  legs->to_claim = median(to_claim);
  legs->run = median(run);
  legs->to_host = median(to_host);
  legs->uncertainty = static_cast<double>(tl.clock_uncertainty_ns);
  legs->matched = publish.size();
  return true;
}


void megaring_round_trip_arm(BenchRun& run) {
  const Sizes& sz = run.sizes;
  const std::string label = "megaring Runtime::call(NOP) [" + run.backend_tag + "]";
  if (!run.runtime) {
    run.add(skipped("rt.megaring_call", "round_trip", label, run.runtime_error));
    return;
  }
  Runtime& rt = *run.runtime;
  Arm a = make_arm("rt.megaring_call", "round_trip", label);
  a.params["iters"] = sz.rt_iters;
  a.params["backend"] = run.backend_tag;
  std::vector<double> ns;
  std::string err;
  ConsumerCounters before, after;
  const bool counted = static_cast<bool>(rt.consumer_counters(&before));
  const bool ok = megaring_round_trips(rt, sz.rt_warmup, sz.rt_iters, 0, &ns, &err);
  set_latency_result(a, ok, ns, err);
  if (ok && counted && rt.consumer_counters(&after)) {
    // What the consumer does a call: the fetcher's idle polls (stored
    // every 64th: close enough over 10^5 calls), body rounds and flushes.
    // Where the time goes: the timeline arm's leg_* extras.
    const double calls = static_cast<double>(sz.rt_warmup + sz.rt_iters);
    const double polls = static_cast<double>(after.idle_polls - before.idle_polls);
    a.extra["idle_polls_per_call"] = polls / calls;
    a.extra["fetch_rounds_per_call"] =
        static_cast<double>(after.fetch_rounds - before.fetch_rounds) / calls;
    a.extra["header_rounds_per_call"] =
        static_cast<double>(after.header_rounds - before.header_rounds) / calls;
    a.extra["flushes_per_call"] = static_cast<double>(after.flushes - before.flushes) / calls;
  }
  if (rt.backend() == Backend::kCuda) note_over_floor(run.arms, a);
  run.add(a);
}

}  // namespace mrbench
