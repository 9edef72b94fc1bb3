// SPDX-License-Identifier: Apache-2.0
// Ring priorities (fairness family, see fairness.hpp): a critical producer's
// call(NOP) round trip, on a ring of its own, alone; beside a flood from
// bulk producers; and, for comparison, beside the same flood with every ring
// normal (the consumer's order before classes). The flood's threads publish
// batches of 8 DELAY_NS slots on rings of their own as fast as back-pressure
// lets them. The bound printed is slot_abi.h's ("Priorities"): a critical
// slot queues behind at most min(128, capacity / 4) bulk slots staged before
// it, plus the rest of a bulk turn and, once per MR_PRIORITY_CREDIT_SLOTS
// critical slots, one bulk turn.
#include <megaring/producer.hpp>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "arms.hpp"
#include "fairness.hpp"

namespace mrbench {
namespace {

using namespace megaring;

struct CriticalRun {
  bool ok = true;
  std::string error;
  std::vector<double> ns;
};

CriticalRun measure_critical(Producer& critical, int samples, void (*progress)()) {
  CriticalRun run;
  run.ns.reserve(static_cast<size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    if (progress && i % 256 == 0) progress();
    const auto t0 = Clock::now();
    Completion c;
    const Status st = critical.call(ops::nop(static_cast<uint64_t>(i)), &c, std::chrono::seconds(10));
    const auto t1 = Clock::now();
    if (!st || !c.ok() || c.result != static_cast<uint64_t>(i)) {
      run.ok = false;
      run.error = st ? "critical slot " + std::to_string(i) + " completed wrongly" : st.to_string();
      return run;
    }
    run.ns.push_back(elapsed_ns(t0, t1));
  }
  return run;
}

uint64_t bulk_bound(uint32_t capacity) {
  return std::max<uint64_t>(std::min<uint64_t>(capacity / 4, MR_PRIORITY_BULK_BACKLOG), 1);
}

}  // namespace

void run_priority(const FairnessOptions& o, std::vector<Arm>* arms, void (*on_arm)(const Arm&)) {
  const auto add = [&](const Arm& a) {
    arms->push_back(a);
    if (on_arm) on_arm(arms->back());
  };
  const int flood_producers = std::max(o.flood_threads, 1);
  Config config;
  config.backend = o.backend;
  config.device = o.device;
  config.ring_capacity = o.ring;
  config.producer_rings = static_cast<uint32_t>(flood_producers) + 1;
  if (o.workers >= 0) config.workers = static_cast<uint32_t>(o.workers);
  std::unique_ptr<Runtime> rt;
  const Status created = Runtime::create(config, &rt);
  const std::string backend = created ? backend_name(rt->backend()) : "?";
  Arm alone;
  alone.name = "fair.prio_critical_alone";
  alone.group = "fairness";
  alone.label = "critical producer alone (" + backend + ")";
  alone.params["backend"] = backend;
  alone.params["samples"] = o.light_samples;
  if (!created) {
    alone.status = "error";
    alone.reason = created.to_string();
    return add(alone);
  }
  const uint64_t bound = bulk_bound(o.ring);

  // Each arm opens its own producers, so the classes are the arm's.
  for (int mode = 0; mode < 3; ++mode) {
    const bool flood = mode != 0;
    const bool classes = mode == 1;
    Arm a = alone;
    if (flood) {
      a = Arm{};
      a.name = classes ? "fair.prio_critical_bulk_flood" : "fair.prio_normal_flood";
      a.group = "fairness";
      a.label = std::string(classes ? "critical producer beside a bulk flood"
                                    : "same, every ring normal") +
                " (" + backend + ")";
      a.params["backend"] = backend;
      a.params["samples"] = o.light_samples;
      a.params["flood_producers"] = flood_producers;
      a.params["flood_slot_ns"] = o.flood_slot_ns;
    }
    std::unique_ptr<Producer> critical;
    Status st = rt->open_producer(&critical, classes || !flood ? Priority::kCritical : Priority::kNormal);
    std::vector<std::unique_ptr<Producer>> flooders(static_cast<size_t>(flood ? flood_producers : 0));
    for (auto& f : flooders)
      if (st) st = rt->open_producer(&f, classes ? Priority::kBulk : Priority::kNormal);
    if (!st) {
      a.status = "error";
      a.reason = st.to_string();
      add(a);
      continue;
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> flood_done{0};
    std::vector<std::thread> threads;
    std::vector<Ticket> last(flooders.size(), Ticket{0, false});
    std::vector<bool> any(flooders.size(), false);
    for (size_t k = 0; k < flooders.size(); ++k) {
      threads.emplace_back([&, k, p = flooders[k].get()] {
        SlotRequest batch[8];
        for (auto& r : batch) r = ops::delay_ns(o.flood_slot_ns);
        PublishOptions wait_a_while;
        wait_a_while.timeout = std::chrono::milliseconds(100);
        while (!stop.load(std::memory_order_relaxed)) {
          Ticket t;
          if (p->publish_batch(batch, 8, &t, wait_a_while)) {
            flood_done.fetch_add(8, std::memory_order_relaxed);
            last[k] = Ticket{t.value + 7, false};
            any[k] = true;
          }
        }
      });
    }
    // Let the flood fill the rings before sampling.
    if (flood) {
      const auto fill_deadline = Clock::now() + std::chrono::seconds(5);
      while (flood_done.load() < 4ull * o.ring && Clock::now() < fill_deadline) std::this_thread::yield();
    }
    const uint64_t published_before = flood_done.load();
    const auto t0 = Clock::now();
    CriticalRun r = measure_critical(*critical, o.light_samples, o.progress);
    const double seconds = elapsed_ns(t0, Clock::now()) * 1e-9;
    const uint64_t flood_published = flood_done.load() - published_before;
    stop.store(true);
    for (auto& th : threads) th.join();
    // The flood drains before the next arm (its slots would queue ahead).
    for (size_t k = 0; k < flooders.size(); ++k)
      if (any[k]) (void)flooders[k]->wait_done(last[k], std::chrono::seconds(30));
    flooders.clear();
    if (r.ok) {
      a.has_latency = true;
      a.latency = summarize(r.ns);
      if (classes || !flood) a.extra["prio_bound"] = static_cast<unsigned long long>(bound);
      if (flood) {
        a.extra["flood_slots_per_s"] = seconds > 0 ? flood_published / seconds : 0.0;
        if (alone.has_latency && alone.latency.p99 > 0)
          a.extra["p99_vs_alone"] = a.latency.p99 / alone.latency.p99;
      }
    } else {
      a.status = "error";
      a.reason = r.error;
    }
    if (!flood) alone = a;
    add(a);
  }
  (void)rt->shutdown(std::chrono::seconds(30));
}

}  // namespace mrbench
