// SPDX-License-Identifier: Apache-2.0
// Control operations (runtime.hpp, "Control operations"): how long one
// takes, a tenant's set_grants flipping between two grant sets, on a runtime
// of its own:
//   ctl.set_grants_idle  nothing else runs;
//   ctl.set_grants_busy  while two threads keep ring 0 full of DELAY_NS
//                        slots (batches of 8, flood_slot_ns each), so every
//                        executor is between two slots of a chunk when the
//                        request comes; also the flood's rate meanwhile.
// Each sample is set_grants called to returned: the token, the executors'
// parking (the busy arm waits for chunks to finish), the table write, the
// release.
#include <megaring/tenant.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "arms.hpp"

namespace mrbench {
namespace {

using namespace megaring;

constexpr uint32_t kFloodSlotNs = 2000;
constexpr int kFloodThreads = 2;

// Flips `tenant`'s grants `samples` times; the durations in *ns.
bool time_set_grants(const TenantHandle& tenant, int samples, std::vector<double>* ns,
                     std::string* error) {
  const OpcodeGrants a = OpcodeGrants::only({MR_OP_NOP, MR_OP_STORE_U32});
  const OpcodeGrants b = OpcodeGrants::only({MR_OP_NOP, MR_OP_FILL});
  ns->reserve(static_cast<size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    if (i % 64 == 0) g_watchdog.touch();
    const auto t0 = Clock::now();
    const Status st = tenant.set_grants(i % 2 == 0 ? b : a);
    const auto t1 = Clock::now();
    if (!st) {
      *error = "set_grants " + std::to_string(i) + ": " + st.to_string();
      return false;
    }
    ns->push_back(elapsed_ns(t0, t1));
  }
  // The host's view must be the last set.
  OpcodeGrants last;
  if (!tenant.grants(&last) || last.opcodes != (samples % 2 == 1 ? b : a).opcodes) {
    *error = "the grants read back are not the last ones set";
    return false;
  }
  return true;
}

Arm control_arm(const char* name, const std::string& label, const std::string& backend,
                int samples) {
  Arm a = make_arm(name, "control", label + " (" + backend + ")");
  a.params["backend"] = backend;
  a.params["samples"] = samples;
  return a;
}

}  // namespace

void control_arms(BenchRun& run) {
  const Options& opt = run.options;
  const int samples = opt.short_mode ? 200 : 2000;
  Config config;
  config.backend = opt.backend;
  config.device = opt.device;
  config.ring_capacity = opt.ring;
  if (opt.workers >= 0) config.workers = static_cast<uint32_t>(opt.workers);
  std::unique_ptr<Runtime> rt;
  std::unique_ptr<TenantRegistry> registry;
  TenantHandle tenant;
  Status st = Runtime::create(config, &rt);
  if (st) st = TenantRegistry::create(*rt, RegistryConfig{}, &registry);
  if (st) {
    TenantConfig tc;
    tc.label = "controlled";
    st = registry->register_tenant(tc, &tenant);
  }
  if (!st) {
    run.add(skipped("ctl.set_grants_idle", "control", "set_grants, idle", st.to_string()));
    return;
  }
  const std::string backend = backend_name(rt->backend());

  Arm idle = control_arm("ctl.set_grants_idle", "set_grants, ring idle", backend, samples);
  {
    std::vector<double> ns;
    std::string error;
    const bool ok = time_set_grants(tenant, samples, &ns, &error);
    set_latency_result(idle, ok, ns, error);
  }
  run.add(idle);

  Arm busy = control_arm("ctl.set_grants_busy", "set_grants, ring kept full", backend, samples);
  busy.params["flood_threads"] = kFloodThreads;
  busy.params["flood_slot_ns"] = kFloodSlotNs;
  {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> flood_failures{0};
    std::vector<std::thread> flooders;
    for (int i = 0; i < kFloodThreads; ++i) {
      flooders.emplace_back([&] {
        SlotRequest batch[8];
        for (auto& r : batch) r = ops::delay_ns(kFloodSlotNs);
        PublishOptions nowait;
        nowait.on_full = OnFull::kFail;
        while (!stop.load(std::memory_order_relaxed)) {
          Ticket t;
          const Status ps = rt->publish_batch(batch, 8, &t, nowait);
          if (ps.code() == Result::kRingFull)
            std::this_thread::yield();
          else if (!ps)
            flood_failures.fetch_add(1);
        }
      });
    }
    const uint64_t done_before = rt->done_count();
    const auto t0 = Clock::now();
    std::vector<double> ns;
    std::string error;
    bool ok = time_set_grants(tenant, samples, &ns, &error);
    const double seconds = elapsed_ns(t0, Clock::now()) * 1e-9;
    const uint64_t done = rt->done_count() - done_before;
    stop.store(true);
    for (auto& t : flooders) t.join();
    if (ok && flood_failures.load() != 0) {
      ok = false;
      error = std::to_string(flood_failures.load()) + " flood publishes failed";
    }
    set_latency_result(busy, ok, ns, error);
    busy.extra["flood_slots_per_s"] = seconds > 0 ? done / seconds : 0.0;
  }
  ControlStats cs;
  if (rt->control_stats(&cs)) {
    busy.extra["operations"] = static_cast<unsigned long long>(cs.operations);
    busy.extra["cancelled"] = static_cast<unsigned long long>(cs.cancelled);
  }
  run.add(busy);
  registry.reset();
  (void)rt->shutdown(std::chrono::seconds(30));
}

}  // namespace mrbench
