// SPDX-License-Identifier: Apache-2.0
// megaring_bench: one producer's throughput on the shared runtime
// (tput.megaring.b{1,8,64,256}): fire-and-forget batches of NOPs.
#include <algorithm>
#include <string>
#include <vector>

#include "arms.hpp"

namespace mrbench {

using namespace megaring;

namespace {

// One producer, fire and forget in batches, then wait_done on the last ticket.
bool megaring_throughput(Runtime& rt, uint32_t batch, uint64_t slots, double* rate,
                         std::string* error) {
  std::vector<SlotRequest> requests(batch, ops::nop(7));
  Ticket first, last;
  const auto t0 = Clock::now();
  for (uint64_t left = slots; left > 0;) {
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(batch, left));
    const Status st = rt.publish_batch(requests.data(), n, &first);
    if (!st) {
      *error = "publish_batch: " + st.to_string();
      return false;
    }
    last = Ticket{first.value + n - 1, false};
    left -= n;
  }
  const Status st = rt.wait_done(last);
  if (!st) {
    *error = "wait_done: " + st.to_string();
    return false;
  }
  *rate = double(slots) / (elapsed_ns(t0, Clock::now()) * 1e-9);
  return true;
}

}  // namespace

void measure_throughput(Runtime& rt, uint32_t batch, const Sizes& sz, Arm& a) {
  a.params["batch"] = batch;
  a.params["slots"] = static_cast<unsigned long long>(sz.tput_slots);
  a.params["producers"] = 1;
  std::vector<double> rates;
  std::string err;
  double r = 0;
  bool ok = megaring_throughput(rt, batch, sz.tput_slots / 10, &r, &err);  // warm-up
  // The fetcher's and completer's counters over the trials: how many
  // tickets a fetch round (one PCIe round trip on a GPU) and a DONE_COUNT
  // store (one system fence) cover.
  ConsumerCounters before, after;
  const bool counted = ok && rt.consumer_counters(&before);
  for (int t = 0; ok && t < sz.tput_trials; ++t) {
    ok = megaring_throughput(rt, batch, sz.tput_slots, &r, &err);
    if (ok) rates.push_back(r);
  }
  set_rate_result(a, ok, rates, "slots/s", err);
  if (ok && counted && rt.consumer_counters(&after)) {
    const uint64_t rounds = after.fetch_rounds - before.fetch_rounds;
    const uint64_t tickets = after.tickets_fetched - before.tickets_fetched;
    const uint64_t flushes = after.flushes - before.flushes;
    a.extra["fetch_rounds"] = static_cast<unsigned long long>(rounds);
    a.extra["tickets_per_fetch_round"] = rounds ? double(tickets) / double(rounds) : 0.0;
    a.extra["tickets_per_flush"] = flushes ? double(tickets) / double(flushes) : 0.0;
    a.extra["idle_polls"] = static_cast<unsigned long long>(after.idle_polls - before.idle_polls);
    // Every round trip that found work, header-only rounds included: at a
    // rate the fetcher bounds, the trials' time over these is a round's time.
    const uint64_t round_trips = rounds + (after.header_rounds - before.header_rounds);
    a.extra["tickets_per_round_trip"] = round_trips ? double(tickets) / double(round_trips) : 0.0;
  }
}

void megaring_throughput_arms(BenchRun& run) {
  for (uint32_t batch : {1u, 8u, 64u, 256u}) {
    const std::string name = "tput.megaring.b" + std::to_string(batch);
    const std::string label = "megaring 1 producer, batch " + std::to_string(batch) + " [" +
                              run.backend_tag + "]";
    if (!run.runtime) {
      run.add(skipped(name.c_str(), "throughput", label, run.runtime_error));
      continue;
    }
    Arm a = make_arm(name.c_str(), "throughput", label);
    a.params["backend"] = run.backend_tag;
    measure_throughput(*run.runtime, batch, run.sizes, a);
    run.add(a);
  }
}

}  // namespace mrbench
