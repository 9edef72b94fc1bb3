// SPDX-License-Identifier: Apache-2.0
// two_tenants: two clients share one resident consumer. "batch" floods the
// ring with work as fast as it can; "interactive" sends one request at a time
// and waits for it. batch's outstanding-slot quota keeps interactive's queue
// short; then batch is unregistered while work of it is still queued, and
// that work completes REVOKED without touching interactive's.
//
//   two_tenants [--backend auto|cuda|gpu|cpu] [--requests N]
// Exits 0 when every check holds, 1 otherwise, 77 when --backend cuda finds
// no GPU.
#include <megaring/tenant.hpp>

#include "cli.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using namespace megaring;

static int fail(const char* what, const std::string& why) {
  std::fprintf(stderr, "two_tenants: %s: %s\n", what, why.c_str());
  return 1;
}

int main(int argc, char** argv) {
  Config config;
  uint64_t requests_arg = 500;
  sample_cli::Cli cli(argc, argv, "[--backend auto|cuda|gpu|cpu] [--requests 1..1000000]");
  while (cli.next()) {
    if (cli.flag() == "--backend") cli.backend(&config.backend);
    else if (cli.flag() == "--requests") cli.number(1, 1'000'000, &requests_arg);
    else cli.unknown();
  }
  if (cli.done()) return cli.exit_code();
  const int requests = static_cast<int>(requests_arg);
  if (config.backend == Backend::kCuda && !cuda_device_available()) {
    std::printf("two_tenants: no GPU; skipped\n");
    return 77;
  }

  std::unique_ptr<Runtime> rt;
  if (Status st = Runtime::create(config, &rt); !st) return fail("create", st.to_string());
  std::unique_ptr<TenantRegistry> registry;  // runs the drain pump on its own thread
  if (Status st = TenantRegistry::create(*rt, {}, &registry); !st)
    return fail("registry", st.to_string());

  TenantConfig batch_config;
  batch_config.label = "batch";
  batch_config.quotas.max_outstanding_slots = 32;  // the fairness knob
  TenantConfig interactive_config;
  interactive_config.label = "interactive";
  interactive_config.quotas.max_outstanding_slots = 4;
  TenantHandle batch, interactive;
  if (Status st = registry->register_tenant(batch_config, &batch); !st)
    return fail("register batch", st.to_string());
  if (Status st = registry->register_tenant(interactive_config, &interactive); !st)
    return fail("register interactive", st.to_string());
  std::printf("two_tenants: %s backend; batch owns opcodes [%u, %u), interactive [%u, %u)\n",
              backend_name(rt->backend()), batch.base_opcode(),
              batch.base_opcode() + batch.opcode_cap(), interactive.base_opcode(),
              interactive.base_opcode() + interactive.opcode_cap());

  // batch: publish 8 slots at a time, never waiting; back-pressure just retries.
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    SlotRequest work[8];
    for (auto& r : work) r = ops::delay_ns(2000);
    while (!stop.load()) {
      Ticket t;
      if (!batch.publish_batch(work, 8, &t)) std::this_thread::yield();
    }
  });

  // interactive: one request at a time, each kept and waited for.
  TenantPublishOptions keep;
  keep.keep_result = true;
  keep.timeout = std::chrono::seconds(10);
  std::vector<double> us;
  uint64_t worst_queue = 0;
  for (int i = 0; i < requests; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Ticket t;
    if (Status st = interactive.publish_slot(ops::nop(i), &t, keep); !st)
      return fail("interactive publish", st.to_string());
    const uint64_t done = rt->done_count();
    worst_queue = std::max(worst_queue, t.value > done ? t.value - done : 0);
    Completion c;
    if (Status st = interactive.wait(t, &c, std::chrono::seconds(10)); !st)
      return fail("interactive wait", st.to_string());
    if (!c.ok() || c.result != static_cast<uint64_t>(i))
      return fail("interactive result", "request " + std::to_string(i) + " came back wrong");
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("two_tenants: interactive: %d requests beside the flood, p50 %.1f us, p99 %.1f us, "
              "at most %" PRIu64 " slots queued ahead (batch quota 32)\n",
              requests, us[us.size() / 2], us[us.size() * 99 / 100], worst_queue);
  if (worst_queue > batch_config.quotas.max_outstanding_slots)
    return fail("fairness", "more slots queued ahead than batch's quota allows");

  // Unregister batch while its work is queued: new publishes fail, queued
  // slots complete REVOKED, interactive is untouched.
  stop.store(true);
  flood.join();
  if (Status st = registry->unregister_tenant(batch); !st)
    return fail("unregister", st.to_string());
  Ticket t;
  if (batch.publish_slot(ops::nop(), &t).code() != Result::kRevoked)
    return fail("revoked publish", "a revoked tenant could still publish");
  if (Status st = batch.quiesce(std::chrono::seconds(30)); !st)
    return fail("quiesce batch", st.to_string());
  const TenantRuntimeCounters b = batch.runtime_counters();
  const TenantRuntimeCounters i = interactive.runtime_counters();
  std::printf("two_tenants: batch: %" PRIu64 " published, %" PRIu64 " ran, %" PRIu64
              " revoked while queued, %" PRIu64 " refused by its quota\n",
              b.published, b.completed_ok, b.revoked, b.backpressure_events);
  std::printf("two_tenants: interactive: %" PRIu64 " published, %" PRIu64 " ran\n", i.published,
              i.completed_ok);
  if (b.published != b.drained || b.completed_ok + b.revoked != b.published)
    return fail("conservation", "batch's slots do not add up");
  if (i.completed_ok != static_cast<uint64_t>(requests) || i.revoked != 0)
    return fail("isolation", "interactive lost work");
  registry.reset();
  if (Status st = rt->shutdown(); !st) return fail("shutdown", st.to_string());
  std::printf("two_tenants: ok\n");
  return 0;
}
