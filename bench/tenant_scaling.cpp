// SPDX-License-Identifier: Apache-2.0
// megaring_bench: producer scaling through tenants (scaling.t*), the
// measurement behind those arms (scaling_arms.cpp runs them).
#include <megaring/tenant.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "arms.hpp"

namespace mrbench {

using namespace megaring;

// The scaling arms' NOPs through tenants: each of P producers owns a tenant (its own
// opcode window and an outstanding-slot quota of ring / P, so that together
// they can fill the ring) and publishes its share of NOPs through its
// TenantHandle; the registry's pump thread drains them. The run ends when
// every tenant has quiesced, and checks conservation: each tenant's slots
// drained exactly once, every one OK. Throughput only (the fairness arms
// measure a tenant slot's round trip).
bool megaring_tenant_scaling(Runtime& rt, int producers, uint64_t slots, int batch,
                             double* rate, std::string* error) {
  std::unique_ptr<TenantRegistry> registry;
  if (Status st = TenantRegistry::create(rt, RegistryConfig{}, &registry); !st) {
    *error = "registry: " + st.to_string();
    return false;
  }
  const uint64_t quota = std::max<uint64_t>(static_cast<uint64_t>(batch),
                                            rt.capacity() / static_cast<uint64_t>(producers));
  std::vector<TenantHandle> tenants(static_cast<size_t>(producers));
  for (int p = 0; p < producers; ++p) {
    TenantConfig tc;
    tc.label = "producer " + std::to_string(p);
    tc.quotas.max_outstanding_slots = quota;
    if (Status ts = registry->register_tenant(tc, &tenants[static_cast<size_t>(p)]); !ts) {
      *error = "register_tenant: " + ts.to_string();
      return false;
    }
  }
  const std::vector<uint64_t> share = split_evenly(slots, producers);
  std::vector<std::string> errors(static_cast<size_t>(producers));
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      const size_t me = static_cast<size_t>(p);
      const TenantHandle& tenant = tenants[me];
      std::vector<SlotRequest> requests(static_cast<size_t>(batch), ops::nop(p));
      TenantPublishOptions wait;
      wait.timeout = std::chrono::seconds(30);  // for quota, then ring space
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (uint64_t done = 0; done < share[me];) {
        const uint32_t n = static_cast<uint32_t>(
            std::min<uint64_t>(static_cast<uint64_t>(batch), share[me] - done));
        Ticket first;
        if (Status ts = tenant.publish_batch(requests.data(), n, &first, wait); !ts) {
          errors[me] = "publish_batch: " + ts.to_string();
          return;
        }
        done += n;
      }
      if (Status ts = tenant.quiesce(std::chrono::seconds(60)); !ts)
        errors[me] = "quiesce: " + ts.to_string();
    });
  }
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  *rate = double(slots) / (elapsed_ns(t0, Clock::now()) * 1e-9);
  for (int p = 0; p < producers; ++p) {
    const size_t me = static_cast<size_t>(p);
    if (!errors[me].empty()) {
      *error = errors[me];
      return false;
    }
    const TenantRuntimeCounters c = tenants[me].runtime_counters();
    if (c.published != share[me] || c.drained != share[me] || c.completed_ok != share[me]) {
      *error = "tenant " + std::to_string(p) + ": published " + std::to_string(c.published) +
               ", drained " + std::to_string(c.drained) + ", ok " +
               std::to_string(c.completed_ok) + " of " + std::to_string(share[me]);
      return false;
    }
  }
  for (const TenantHandle& t : tenants) (void)registry->unregister_tenant(t);
  return true;
}

}  // namespace mrbench
