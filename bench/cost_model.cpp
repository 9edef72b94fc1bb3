// SPDX-License-Identifier: Apache-2.0
// See cost_model.hpp.
#include "cost_model.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <thread>
#include <time.h>
#include <vector>

#include <megaring/producer.hpp>

#include "bench_common.hpp"

namespace mrbench {

using namespace megaring;

namespace {
// Each per-slot figure, its name and the counter it is derived from.
using CountMember = uint64_t CostCounters::*;
using PerSlotMember = double PerSlotCosts::*;
struct PerSlotField {
  const char* name;
  CountMember count;
  PerSlotMember per_slot;
};
constexpr PerSlotField kPerSlotFields[] = {
    {"host_reads", &CostCounters::host_reads, &PerSlotCosts::host_reads},
    {"awaited_round_trips", &CostCounters::awaited_round_trips, &PerSlotCosts::awaited_round_trips},
    {"fetch_warp_loads", &CostCounters::fetch_warp_loads, &PerSlotCosts::fetch_warp_loads},
    {"idle_polls", &CostCounters::idle_polls, &PerSlotCosts::idle_polls},
    {"system_fences", &CostCounters::system_fences, &PerSlotCosts::system_fences},
    {"fences_under_lock", &CostCounters::fences_under_lock, &PerSlotCosts::fences_under_lock},
    {"host_writes", &CostCounters::host_writes, &PerSlotCosts::host_writes},
    {"shared_line_writes", &CostCounters::shared_line_writes, &PerSlotCosts::shared_line_writes},
    {"partial_line_writes", &CostCounters::partial_line_writes, &PerSlotCosts::partial_line_writes},
    {"device_rmws", &CostCounters::device_rmws, &PerSlotCosts::device_rmws},
    {"device_round_trips", &CostCounters::device_round_trips, &PerSlotCosts::device_round_trips},
    {"locks", &CostCounters::locks, &PerSlotCosts::locks},
    {"host_shared_rmws", &CostCounters::host_shared_rmws, &PerSlotCosts::host_shared_rmws},
};
}  // namespace

namespace {

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// One counted run: `slots` NOPs, `batch` to a publish, from `producers`
// threads (each on a ring of its own; 0: one thread on ring 0), then a
// graceful shutdown.
//
// The consumer drains backlogs: suspended, it lets each thread publish a
// window (kBacklogWindow slots of its share, one ring's worth), then
// resumes, and each window is reaped once it has completed. So each fetch
// round finds more published than it can take, whatever the producer's
// speed, and the counts are the consumer's at capacity, which is what the
// model turns into a rate. (Counted while the producer published live, the
// regime depended on the machine: a CI rehearsal modelled 25 M where a
// quiet run of the same build modelled 61 M, 2026-12-05.)
//
// The host's cost is measured on the same run, without waits or a consumer
// beside it: each thread's CPU time publishing its windows, plus the CPU
// time of the wait_done that reaps a window already completed. Each thread
// counts its own shared-line RMWs into producer_side (summed).
constexpr uint32_t kBacklogWindow = 16384;

struct PublishRun {
  double host_cpu_ns = 0;  // publishing and reaping, every producer thread's, summed
  uint32_t units = 0;      // the consumer's executors
  CostCounters producer_side, executors, io;
};
bool publish_run(uint64_t slots, uint32_t batch, uint32_t workers, uint32_t producers,
                 PublishRun* out, std::string* error) {
  Config config;
  config.backend = Backend::kCpu;
  config.workers = workers;
  config.count_costs = true;
  config.producer_rings = producers;
  config.ring_capacity = kBacklogWindow;
  std::unique_ptr<Runtime> rt;
  Status st = Runtime::create(config, &rt);
  if (!st) return *error = "create: " + st.to_string(), false;
  const uint32_t threads = producers == 0 ? 1 : producers;
  std::vector<std::unique_ptr<Producer>> rings(producers);
  for (auto& ring : rings)
    if (!(st = rt->open_producer(&ring))) return *error = "open_producer: " + st.to_string(), false;
  std::vector<CostCounters> counted(threads);
  std::vector<Status> failed(threads);
  std::vector<double> cpu_ns(threads);
  std::vector<uint64_t> left(threads), window(threads);
  std::vector<Ticket> last(threads);
  for (uint32_t id = 0; id < threads; ++id) left[id] = slots / threads + (id < slots % threads ? 1 : 0);
  const auto ring_of = [&](uint32_t id) { return producers == 0 ? nullptr : rings[id].get(); };
  // Thread `id` publishes its window.
  const auto produce = [&](uint32_t id) {
    detail::CostScope scope(&counted[id]);
    const double cpu_start = thread_cpu_ns();
    std::vector<SlotRequest> requests(batch, ops::nop(1));
    Producer* ring = ring_of(id);
    Status s;
    for (uint64_t done = 0; done < window[id] && s;) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(batch, window[id] - done));
      s = ring != nullptr ? ring->publish_batch(requests.data(), n, &last[id])
                          : rt->publish_batch(requests.data(), n, &last[id]);
      last[id].value += n - 1;
      done += n;
    }
    cpu_ns[id] += thread_cpu_ns() - cpu_start;
    failed[id] = s;
  };
  // Thread `id`'s window, once it has completed: waited for untimed, then
  // reaped by a timed wait_done that finds it done.
  double reap_ns = 0;
  const auto reap = [&](uint32_t id) -> Status {
    Producer* ring = ring_of(id);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while ((ring != nullptr ? ring->done_count() : rt->done_count()) <= last[id].value) {
      if (std::chrono::steady_clock::now() > deadline)
        return Status(Result::kTimeout, "a window did not complete in 60 s");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    const double t0 = thread_cpu_ns();
    const Status s = ring != nullptr ? ring->wait_done(last[id], std::chrono::seconds(60))
                                     : rt->wait_done(last[id], std::chrono::seconds(60));
    reap_ns += thread_cpu_ns() - t0;
    return s;
  };
  while (left[0] != 0) {  // thread 0's share is the largest
    if (!(st = rt->suspend())) return *error = "suspend: " + st.to_string(), false;
    for (uint32_t id = 0; id < threads; ++id) window[id] = std::min<uint64_t>(left[id], kBacklogWindow);
    {
      std::vector<std::thread> pool;
      for (uint32_t id = 1; id < threads; ++id) pool.emplace_back(produce, id);
      produce(0);
      for (auto& t : pool) t.join();
    }
    for (const Status& s : failed)
      if (!s) return *error = "publish: " + s.to_string(), false;
    if (!(st = rt->resume())) return *error = "resume: " + st.to_string(), false;
    for (uint32_t id = 0; id < threads; ++id) {
      if (window[id] == 0) continue;
      if (!(st = reap(id))) return *error = "wait: " + st.to_string(), false;
      left[id] -= window[id];
    }
  }
  out->units = rt->consumer_units();
  out->host_cpu_ns = reap_ns;
  for (const double ns : cpu_ns) out->host_cpu_ns += ns;
  out->producer_side = CostCounters{};
  for (const CostCounters& c : counted) out->producer_side.host_shared_rmws += c.host_shared_rmws;
  rings.clear();
  if (!(st = rt->shutdown())) return *error = "shutdown: " + st.to_string(), false;
  if (!(st = rt->consumer_costs(&out->executors, &out->io)))
    return *error = "costs: " + st.to_string(), false;
  if (out->executors.slots != slots)
    return *error = "the executors counted " + std::to_string(out->executors.slots) + " slots of " +
                    std::to_string(slots),
           false;
  return true;
}

}  // namespace

bool measure_protocol_costs(uint64_t slots, uint32_t batch, uint32_t workers, uint32_t producers,
                            ProtocolCosts* out, std::string* error) {
  PublishRun counted;
  if (!publish_run(slots, batch, workers, producers, &counted, error)) return false;
  const CostCounters& producer = counted.producer_side;
  const CostCounters& executors = counted.executors;
  const CostCounters& io = counted.io;
  const double n = static_cast<double>(slots);
  for (const PerSlotField& f : kPerSlotFields) {
    // The producer counts its own side; the consumer's roles everything else.
    const bool producer_side = f.count == &CostCounters::host_shared_rmws;
    out->executors.*f.per_slot = producer_side ? 0 : static_cast<double>(executors.*f.count) / n;
    out->io.*f.per_slot = producer_side ? 0 : static_cast<double>(io.*f.count) / n;
    out->per_slot.*f.per_slot = producer_side ? static_cast<double>(producer.*f.count) / n
                                              : out->executors.*f.per_slot + out->io.*f.per_slot;
  }
  // The producers' own CPU time publishing and reaping, over the slots
  // (publish_run): not the run's wall time, which on two shared cores is
  // mostly a producer asleep while the consumer has its turn.
  out->host_ns_per_slot = counted.host_cpu_ns / n;
  out->slots = slots;
  out->workers = counted.units;
  out->batch = batch;
  out->producers = producers;
  return true;
}

double modelled_slots_per_s(const PerSlotCosts& c, const PerSlotCosts& io, uint32_t units,
                            const CostLatencies& l) {
  // Serial: partial writes into lines that others write too (each one both),
  // by any role.
  const double serial_us =
      (std::min(c.shared_line_writes, c.partial_line_writes) +
       std::min(io.shared_line_writes, io.partial_line_writes)) *
      l.shared_write_token_us;
  const double parallel_us = c.awaited_round_trips * l.read_round_trip_us +
                             c.system_fences * l.system_fence_us +
                             c.device_rmws * l.device_rmw_us;
  // The I/O unit: the fetch crew's round trips (and its busiest warp's
  // loads in them) and the completer's fences are each serial for the whole
  // consumer; the two roles run side by side.
  const double fetch_us =
      io.awaited_round_trips * l.read_round_trip_us + io.fetch_warp_loads * l.warp_load_us;
  // Not the completer's device round trips: completer_scan_bound() below.
  const double complete_us = io.system_fences * l.system_fence_us + io.device_rmws * l.device_rmw_us;
  const double io_us = std::max(fetch_us, complete_us);
  // Exact mean-value analysis: one queueing centre (serial_us) and one delay
  // centre (parallel_us), `units` customers.
  // Executors that cost nothing the model counts are no bound at all.
  double queue = 0, throughput_per_us = std::numeric_limits<double>::infinity();
  for (uint32_t n = 1; n <= units && parallel_us + serial_us > 0; ++n) {
    const double residence = serial_us * (1 + queue);
    throughput_per_us = n / (parallel_us + residence);
    queue = throughput_per_us * residence;
  }
  if (io_us > 0) throughput_per_us = std::min(throughput_per_us, 1.0 / io_us);
  return throughput_per_us * 1e6;
}

double completer_scan_bound(const CostLatencies& l) {
  return kCompleterFlagsPerRoundTrip / l.device_round_trip_us * 1e6;
}

std::vector<CostBudget> cost_budgets(const PerSlotCosts& p, double modelled_slots_per_s,
                                     double modelled_8_producers) {
  // Issue 14's CPU budgets, per slot in steady state at batch 64, each
  // enforced by --cost-budgets. The counts come from a consumer draining
  // backlogs (publish_run), so the ones that depend on how full its rounds
  // are (round trips, fences, the modelled rates) no longer depend on how
  // fast the machine's producer happens to be.
  return {
      {"host_reads", p.host_reads, 1.0},
      {"awaited_round_trips", p.awaited_round_trips, 1.0 / 32},
      {"system_fences", p.system_fences, 1.0 / 32},
      {"fences_under_lock", p.fences_under_lock, 0.0},
      {"shared_line_writes", p.shared_line_writes, 0.0},
      {"locks", p.locks, 0.0},
      // A producer's own ring: a plain tail store, a reap without a lock.
      // (Ring 0's shared tail CAS is 1/64 at batch 64 and its reap lock
      // goes over: reported beside, not judged.)
      {"host_shared_rmws", p.host_shared_rmws, 1.0 / 64},
      // Floors, written as ceilings on their inverse (us a slot). Issue 14
      // asks 40 M of one producer here and of eight producers on the GPU.
      {"modelled_us_per_slot", 1e6 / modelled_slots_per_s, 1e6 / 40e6},
      {"modelled_us_per_slot_8_producers", 1e6 / modelled_8_producers, 1e6 / 40e6},
  };
}

namespace {

// `runs` counts of `slots` NOPs at `batch` from `producers` (see
// measure_protocol_costs); the one whose modelled rate is the median is
// returned, every count's rate in *rates: one unusual run neither passes
// nor fails a budget on its own.
bool median_count(uint64_t slots, uint32_t batch, uint32_t producers, int runs,
                  const CostLatencies& latencies, ProtocolCosts* out, std::vector<double>* rates) {
  std::vector<ProtocolCosts> counts(runs);
  rates->assign(runs, 0);
  for (int i = 0; i < runs; ++i) {
    std::string error;
    if (!measure_protocol_costs(slots, batch, /*workers=*/0, producers, &counts[i], &error)) {
      std::fprintf(stderr, "megaring_bench --cost-model: %s\n", error.c_str());
      return false;
    }
    (*rates)[i] = modelled_slots_per_s(counts[i].executors, counts[i].io, kDefaultGpuWorkers, latencies);
  }
  for (int i = 0; i < runs; ++i) {
    int below = 0;
    for (int j = 0; j < runs; ++j)
      below += (*rates)[j] < (*rates)[i] || ((*rates)[j] == (*rates)[i] && j < i);
    if (below == runs / 2) *out = counts[i];
  }
  return true;
}

void print_rates(const char* what, const std::vector<double>& rates) {
  std::printf("cost model, %s: %zu count(s), modelled", what, rates.size());
  for (size_t i = 0; i < rates.size(); ++i) std::printf("%s %.1f", i == 0 ? "" : " /", rates[i] / 1e6);
  std::printf(" M slots/s at %u units\n", kDefaultGpuWorkers);
}

}  // namespace

int run_cost_model(const std::string& json_path, bool short_mode, bool enforce_budgets) {
  const uint64_t slots = short_mode ? 200'000 : 1'000'000;
  constexpr uint32_t kBatch = 64;
  constexpr uint32_t kManyProducers = 8;
  const CostLatencies latencies;
  // The report: one producer on a ring of its own, five counts. Beside it,
  // eight producers on eight rings (issue 14's 40 M target for them), and
  // one thread on the shared ring 0 (Runtime::publish), for comparison.
  ProtocolCosts costs, many, shared;
  std::vector<double> rates, many_rates, shared_rates;
  if (!median_count(slots, kBatch, 1, 5, latencies, &costs, &rates) ||
      !median_count(slots, kBatch, kManyProducers, 3, latencies, &many, &many_rates) ||
      !median_count(slots, kBatch, 0, 1, latencies, &shared, &shared_rates))
    return 1;
  const PerSlotCosts& p = costs.per_slot;
  print_rates("one producer on its ring", rates);
  print_rates("8 producers on 8 rings", many_rates);
  print_rates("one thread on the shared ring 0", shared_rates);
  std::printf("cost model: %llu NOPs, batch %u, one producer on its own ring, %u CPU executors +"
              " the I/O thread (ABI v4: a fetch crew of %u warps, executors, completer), draining"
              " backlogs; the median count below\n",
              static_cast<unsigned long long>(costs.slots), costs.batch, costs.workers,
              kDefaultFetchWarps);
  std::printf("  per slot: host_reads %.3f  awaited_round_trips %.3f  system_fences %.3f"
              " (under a lock %.3f)\n",
              p.host_reads, p.awaited_round_trips, p.system_fences, p.fences_under_lock);
  std::printf("            host_writes %.3f  shared_line_writes %.3f  partial_line_writes %.3f\n",
              p.host_writes, p.shared_line_writes, p.partial_line_writes);
  std::printf("            device_rmws %.3f  locks %.3f  host_shared_rmws %.4f\n", p.device_rmws,
              p.locks, p.host_shared_rmws);
  std::printf("  of which the I/O unit (serial): awaited_round_trips %.4f  fetch_warp_loads %.4f"
              "  system_fences %.4f  device_round_trips %.4f  host_writes %.4f  idle polls %.3f\n",
              costs.io.awaited_round_trips, costs.io.fetch_warp_loads, costs.io.system_fences,
              costs.io.device_round_trips, costs.io.host_writes, costs.io.idle_polls);
  std::printf("  host ns/slot (publish + reap, the producer's CPU time): %.1f\n", costs.host_ns_per_slot);
  Json j = Json::object();
  const auto fields = [](const PerSlotCosts& c) {
    Json per = Json::object();
    for (const PerSlotField& f : kPerSlotFields) per[f.name] = c.*f.per_slot;
    return per;
  };
  j["protocol"] = "abi-v4";
  j["producers"] = costs.producers;
  j["per_slot"] = fields(p);
  j["per_slot_executors"] = fields(costs.executors);
  j["per_slot_io"] = fields(costs.io);
  j["host_ns_per_slot"] = costs.host_ns_per_slot;
  j["slots"] = static_cast<unsigned long long>(costs.slots);
  j["batch"] = costs.batch;
  j["cpu_workers"] = costs.workers;
  Json modelled = Json::object();
  for (uint32_t units : {1u, 8u, 32u, 132u}) {
    const double rate = modelled_slots_per_s(costs.executors, costs.io, units, latencies);
    modelled[std::to_string(units)] = rate;
    std::printf("  modelled GPU slots/s at %3u units: %.0f\n", units, rate);
  }
  j["modelled_slots_per_s_by_units"] = modelled;
  j["completer_scan_bound_slots_per_s"] = completer_scan_bound(latencies);
  std::printf("  the completer's scan alone, at full batches of %.0f done flags a device round trip"
              " (%.4f counted a slot): %.0f slots/s (not in the modelled rate)\n",
              kCompleterFlagsPerRoundTrip, costs.io.device_round_trips,
              completer_scan_bound(latencies));
  j["modelled_slots_per_s"] =
      modelled_slots_per_s(costs.executors, costs.io, kDefaultGpuWorkers, latencies);
  const auto rate_list = [](const std::vector<double>& list) {
    Json a = Json::array();
    for (const double r : list) a.push_back(r);
    return a;
  };
  j["modelled_slots_per_s_of_each_count"] = rate_list(rates);
  j["judged_count"] = "median of 5, the consumer draining backlogs (publish_run)";
  // Eight producers, a ring each: the rate of all of them together.
  const auto variant = [&](const ProtocolCosts& c, const std::vector<double>& list) {
    Json v = Json::object();
    v["producers"] = c.producers;
    v["per_slot"] = fields(c.per_slot);
    v["per_slot_io"] = fields(c.io);
    v["host_ns_per_slot"] = c.host_ns_per_slot;
    v["modelled_slots_per_s"] = modelled_slots_per_s(c.executors, c.io, kDefaultGpuWorkers, latencies);
    v["modelled_slots_per_s_of_each_count"] = rate_list(list);
    return v;
  };
  j["producers_8"] = variant(many, many_rates);
  j["shared_ring_0"] = variant(shared, shared_rates);
  std::printf("  8 producers, a ring each (median of 3): awaited_round_trips %.4f  host_shared_rmws"
              " %.4f  host ns/slot %.1f  modelled %.0f slots/s\n",
              many.per_slot.awaited_round_trips, many.per_slot.host_shared_rmws,
              many.host_ns_per_slot, j["producers_8"]["modelled_slots_per_s"].number());
  std::printf("  one thread on the shared ring 0: host_shared_rmws %.4f (its tail CAS and reap"
              " lock)  host ns/slot %.1f  modelled %.0f slots/s\n",
              shared.per_slot.host_shared_rmws, shared.host_ns_per_slot,
              j["shared_ring_0"]["modelled_slots_per_s"].number());
  // The protocol ABI v3 replaced, from its recorded counts (the model's
  // calibration point), for comparison.
  Json old = Json::object();
  old["per_slot"] = fields(scout_protocol_costs());
  old["modelled_slots_per_s"] = modelled_slots_per_s(scout_protocol_costs(), kDefaultGpuWorkers, latencies);
  old["counted_at"] = "d3c360a, 2026-12-04 (CPU backend, 2 workers, batch 64)";
  j["old_protocol_scout"] = old;
  std::printf("  the scout protocol it replaced (recorded counts): modelled %.0f slots/s at %u units\n",
              old["modelled_slots_per_s"].number(), kDefaultGpuWorkers);
  Json lat = Json::object();
  lat["read_round_trip_us"] = latencies.read_round_trip_us;
  lat["warp_load_us"] = latencies.warp_load_us;
  lat["system_fence_us"] = latencies.system_fence_us;
  lat["shared_write_token_us"] = latencies.shared_write_token_us;
  lat["device_rmw_us"] = latencies.device_rmw_us;
  lat["device_round_trip_us"] = latencies.device_round_trip_us;
  lat["device_rmw_calibrated_on"] = "H100 2026-11-22: 1 unit, 118 k slots/s";
  j["latencies"] = lat;
  std::printf("  (latencies: the H100 run of 2026-11-22; device-side time fitted at 1 unit)\n");
  // The budgets: what the new data path must reach (issue 14). Reported for
  // every protocol; --cost-budgets turns a miss into a failure.
  int misses = 0;
  Json budgets = Json::object();
  std::printf("  budgets (per slot, batch 64):\n");
  for (const CostBudget& b : cost_budgets(p, j["modelled_slots_per_s"].number(),
                                          j["producers_8"]["modelled_slots_per_s"].number())) {
    const bool pass = b.value <= b.limit + 1e-12;
    misses += !pass;
    Json bj = Json::object();
    bj["value"] = b.value;
    bj["limit"] = b.limit;
    bj["pass"] = pass;
    budgets[b.name] = bj;
    std::printf("    %-32s %10.4f  <= %8.4f  %s\n", b.name, b.value, b.limit, pass ? "pass" : "MISS");
  }
  j["budgets"] = budgets;
  j["budget_misses"] = misses;
  if (!json_path.empty()) {
    Json report = Json::object();
    report["schema"] = "megaring-bench/1";
    report["cost_model"] = j;
    std::ofstream f(json_path);
    f << report.dump();
    if (!f) {
      std::fprintf(stderr, "megaring_bench: cannot write %s\n", json_path.c_str());
      return 1;
    }
    std::printf("json: %s\n", json_path.c_str());
  }
  if (enforce_budgets && misses != 0) {
    std::fprintf(stderr, "megaring_bench --cost-budgets: %d budget(s) missed\n", misses);
    return 1;
  }
  return 0;
}

}  // namespace mrbench
