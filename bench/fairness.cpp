// SPDX-License-Identifier: Apache-2.0
// Tenant fairness (see fairness.hpp). The light tenant publishes one kept NOP
// and waits for it, over and over; each sample is publish-to-wait-return.
// The flooding tenant's threads publish batches of DELAY_NS slots without
// waiting, retrying at once on back-pressure, so its quota is always full.
// What the quota bounds is the queue ahead of the light tenant: every ticket
// between DONE_COUNT and the light slot is an undrained flood slot, so at most
// cap of them; `max_ahead` records the largest queue seen.
#include "fairness.hpp"

#include <megaring/tenant.hpp>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>

#include "arms.hpp"

namespace mrbench {
namespace {

using namespace megaring;

struct LightRun {
  bool ok = true;
  std::string error;
  std::vector<double> ns;
  uint64_t max_ahead = 0;
};

LightRun measure_light(Runtime& rt, const TenantHandle& light, int samples,
                       void (*progress)()) {
  LightRun run;
  run.ns.reserve(static_cast<size_t>(samples));
  TenantPublishOptions keep;
  keep.keep_result = true;
  keep.timeout = std::chrono::seconds(10);
  for (int i = 0; i < samples; ++i) {
    if (progress && i % 256 == 0) progress();
    const auto t0 = Clock::now();
    Ticket t;
    Status st = light.publish_slot(ops::nop(static_cast<uint64_t>(i)), &t, keep);
    const uint64_t done = rt.done_count();
    Completion c;
    if (st) st = light.wait(t, &c, std::chrono::seconds(10));
    const auto t1 = Clock::now();
    if (!st || !c.ok() || c.result != static_cast<uint64_t>(i)) {
      run.ok = false;
      run.error = st ? "light slot " + std::to_string(i) + " completed wrongly" : st.to_string();
      return run;
    }
    run.max_ahead = std::max(run.max_ahead, t.value > done ? t.value - done : 0);
    run.ns.push_back(elapsed_ns(t0, t1));
  }
  return run;
}

}  // namespace

void run_fairness(const FairnessOptions& o, std::vector<Arm>* arms,
                  void (*on_arm)(const Arm&)) {
  const auto add = [&](const Arm& a) {
    arms->push_back(a);
    if (on_arm) on_arm(arms->back());
  };
  Config config;
  config.backend = o.backend;
  config.device = o.device;
  config.ring_capacity = o.ring;
  if (o.workers >= 0) config.workers = static_cast<uint32_t>(o.workers);
  std::unique_ptr<Runtime> rt;
  Status st = Runtime::create(config, &rt);
  auto fail_all = [&](const std::string& why) {
    Arm a;
    a.name = "fair.light_alone";
    a.group = "fairness";
    a.label = "light tenant round trip, alone";
    a.status = "error";
    a.reason = why;
    add(a);
  };
  if (!st) return fail_all(st.to_string());
  std::unique_ptr<TenantRegistry> registry;
  st = TenantRegistry::create(*rt, RegistryConfig{}, &registry);
  if (!st) return fail_all(st.to_string());
  TenantConfig light_config;
  light_config.label = "light";
  light_config.quotas.max_outstanding_slots = 4;
  TenantHandle light;
  if (Status ts = registry->register_tenant(light_config, &light); !ts)
    return fail_all(ts.to_string());
  const std::string backend = backend_name(rt->backend());

  Arm alone;
  alone.name = "fair.light_alone";
  alone.group = "fairness";
  alone.label = "light tenant alone (" + backend + ")";
  alone.params["backend"] = backend;
  alone.params["samples"] = o.light_samples;
  {
    LightRun r = measure_light(*rt, light, o.light_samples, o.progress);
    if (r.ok) {
      alone.has_latency = true;
      alone.latency = summarize(r.ns);
      alone.extra["max_ahead"] = static_cast<unsigned long long>(r.max_ahead);
    } else {
      alone.status = "error";
      alone.reason = r.error;
    }
  }
  add(alone);

  for (uint64_t cap_setting : o.flood_caps) {
    const uint64_t cap = cap_setting == 0 ? o.ring : cap_setting;
    Arm a;
    a.name = cap_setting == 0 ? "fair.flood_nocap" : "fair.flood_cap" + std::to_string(cap);
    a.group = "fairness";
    a.label = "light tenant, flood quota " +
              (cap_setting == 0 ? std::string("= ring") : std::to_string(cap)) + " (" + backend +
              ")";
    a.params["backend"] = backend;
    a.params["flood_cap"] = static_cast<unsigned long long>(cap);
    a.params["flood_threads"] = o.flood_threads;
    a.params["flood_slot_ns"] = o.flood_slot_ns;
    a.params["samples"] = o.light_samples;
    TenantConfig flood_config;
    flood_config.label = "flood";
    flood_config.quotas.max_outstanding_slots = cap;
    TenantHandle flood;
    if (Status ts = registry->register_tenant(flood_config, &flood); !ts) {
      a.status = "error";
      a.reason = ts.to_string();
      add(a);
      continue;
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> flood_published{0};
    std::vector<std::thread> flooders;
    for (int i = 0; i < o.flood_threads; ++i) {
      flooders.emplace_back([&] {
        SlotRequest batch[8];
        for (auto& r : batch) r = ops::delay_ns(o.flood_slot_ns);
        while (!stop.load(std::memory_order_relaxed)) {
          Ticket t;
          if (flood.publish_batch(batch, 8, &t)) {
            flood_published.fetch_add(8, std::memory_order_relaxed);
          } else {
            std::this_thread::yield();  // quota or ring full: try again at once
          }
        }
      });
    }
    // Let the flood fill its quota before sampling.
    const auto fill_deadline = Clock::now() + std::chrono::seconds(5);
    while (flood.quota_counters().outstanding_slots + 8 < cap && Clock::now() < fill_deadline)
      std::this_thread::yield();
    const uint64_t drained_before = flood.drained_count();
    const auto t0 = Clock::now();
    LightRun r = measure_light(*rt, light, o.light_samples, o.progress);
    const double seconds = elapsed_ns(t0, Clock::now()) * 1e-9;
    const uint64_t flood_drained = flood.drained_count() - drained_before;
    stop.store(true);
    for (auto& th : flooders) th.join();
    (void)registry->unregister_tenant(flood);
    const Status q = flood.quiesce(std::chrono::seconds(30));
    if (r.ok && q) {
      a.has_latency = true;
      a.latency = summarize(r.ns);
      a.extra["max_ahead"] = static_cast<unsigned long long>(r.max_ahead);
      a.extra["flood_slots_per_s"] = seconds > 0 ? flood_drained / seconds : 0.0;
      a.extra["flood_backpressure_events"] =
          static_cast<unsigned long long>(flood.runtime_counters().backpressure_events);
      if (alone.has_latency && alone.latency.p99 > 0)
        a.extra["p99_vs_alone"] = a.latency.p99 / alone.latency.p99;
    } else {
      a.status = "error";
      a.reason = r.ok ? q.to_string() : r.error;
    }
    add(a);
  }
  registry.reset();
  (void)rt->shutdown(std::chrono::seconds(30));
}

// The arm function (arms.hpp): run_fairness with the run's sizes and options;
// its samples kick the watchdog (beside an uncapped flood, an arm's samples
// take over a minute on a few CPU cores).
void fairness_arms(BenchRun& run) {
  const Options& opt = run.options;
  FairnessOptions fo;
  fo.backend = opt.backend;
  fo.device = opt.device;
  fo.ring = opt.ring;
  fo.workers = opt.workers;
  fo.light_samples = run.sizes.fair_samples;
  fo.flood_caps = run.sizes.fair_caps;
  fo.progress = [] { g_watchdog.touch(); };
  run_fairness(fo, &run.arms, &announce);
  run_priority(fo, &run.arms, &announce);
}

}  // namespace mrbench
