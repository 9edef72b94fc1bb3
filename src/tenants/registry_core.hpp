// SPDX-License-Identifier: Apache-2.0
// The registry behind TenantRegistry and every TenantHandle (tenant.hpp):
// the id and index table, the opcode windows, registration, revocation and
// retirement, close, and the drain pump that attributes completions to
// tenants. registry_core.cpp holds the table's life, drain_pump.cpp the pump.
//
// Lock order: the pump's delivery (DrainPump::delivering, which only
// close() waits for), a pump pass (DrainPump::pass_mutex), the registry's
// control_mutex_ (never under a pump lock or mutex_), then the
// registry's mutex_, then a tenant's QuotaUsage mutex. A tenant's
// KeptResults is never locked with mutex_ or a QuotaUsage mutex held (the
// pump puts into it inside its pass, with mutex_ let go).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "megaring/tenant.hpp"
#include "runtime/runtime_internal.hpp"
#include "tenants/opcode_windows.hpp"
#include "tenants/tenant_state.hpp"

namespace megaring::detail {

// Ids and indices of live and draining tenants. Guarded by the registry's
// mutex_.
struct TenantTable {
  uint32_t size = 0;  // indices [1, size)
  std::vector<std::shared_ptr<TenantState>> by_index;  // live and draining tenants
  std::vector<uint16_t> generation;
  std::vector<uint32_t> free_indices;
  std::vector<std::shared_ptr<TenantState>> draining;
  uint32_t live = 0;

  // The live or draining tenant with this id, or null.
  std::shared_ptr<TenantState> find(uint32_t id) const {
    const uint32_t index = id & MR_TENANT_INDEX_MASK;
    return index < by_index.size() && by_index[index] && by_index[index]->identity.id == id
               ? by_index[index]
               : nullptr;
  }
};

// The drain pump (drain_pump.cpp). A pass drains the runtime and stages
// each record (status counts, kept results, so wait() sees them at once)
// under pass_mutex; the completion callbacks and the drained counts follow
// outside it, delivered by one thread at a time (the deliverer, who holds
// `delivering`) in the order the passes queued them. So a callback may pump:
// its pass queues behind the delivery it is part of, and returns.
struct DrainPump {
  std::atomic<bool> stop{false};
  std::thread thread;
  // One pass at a time: the records enter `queued` in ticket order.
  std::mutex pass_mutex;
  std::vector<DrainRecord> queued;  // staged, not yet delivered (guarded by pass_mutex)
  // Held (true) by the thread delivering; it alone touches `batch`.
  // Acquired with an exchange, never waited for, except by close(), which
  // keeps it.
  std::atomic<bool> delivering{false};
  std::vector<DrainRecord> batch;  // what the deliverer took from `queued`
  // Relaxed: statistics.
  std::atomic<uint64_t> drained_slots{0}, untenanted_slots{0};
};

class RegistryCore final : public std::enable_shared_from_this<RegistryCore> {
 public:
  RegistryCore(Runtime& runtime, const RegistryConfig& config)
      : runtime_(runtime), config_(config) {}

  ~RegistryCore();
  Status init();
  // Revokes every tenant, stops the pump and detaches from the runtime.
  // With `drain`, first lets the revoked tenants' queued slots drain
  // (bounded by close_timeout); without, leaves the runtime at once (it is
  // being destroyed: on_runtime_end).
  void close(bool drain = true);
  // The runtime's end hook (runtime_link.hpp), run first in ~Runtime: the
  // registry closes at once, as if destroyed with it (every tenant revoked,
  // the pump stopped, the drain let go), and never touches the runtime again.
  void on_runtime_end();

  Status register_tenant(const TenantConfig& config, TenantHandle* out);
  Status unregister_tenant(const std::shared_ptr<TenantState>& state);
  // TenantHandle::set_grants and grants (tenant_grants.cpp).
  Status set_grants(TenantState& state, const OpcodeGrants& grants);
  OpcodeGrants grants(const TenantState& state) const;
  size_t pump_once();
  RegistryStats stats() const;
  // The live and draining tenants, by index (TenantRegistry::metrics_text).
  std::vector<std::shared_ptr<TenantState>> tenants() const;

  bool manual() const { return config_.pump == PumpMode::kManual; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // A publish rolled back a reservation of a revoked tenant: it may be the
  // last thing that kept the tenant from retiring.
  void retry_retire();
  Runtime& runtime() { return runtime_; }
  // Reads the consumer's counters of a tenant (live, or frozen once retired).
  mr_tenant_counters device_counters(TenantState& state);

  // Why a call on a closed registry fails.
  Status closed_status() const {
    return Status(Result::kRevoked, runtime_gone_.load() ? "the runtime was destroyed"
                                                         : "the tenant registry is closed");
  }

 private:
  Status check_config_and_size_table();
  static std::vector<BufferHandle> release_quotas(TenantState& state,
                                                  std::vector<RegionHandle>* regions = nullptr);
  // Frees the ids and windows of revoked tenants that fully drained.
  void retire_drained_locked();
  void read_device_counters_locked(TenantState& state);
  void freeze_counters_locked(TenantState& state);
  // close(): revokes the live tenants (the runtime frees their slots and
  // buffers, or, going, does it itself); then stops the pump and detaches.
  void revoke_for_close(const std::vector<std::shared_ptr<TenantState>>& live, bool drain);
  void drain_for_close();
  void detach_for_close();
  void pump_thread_main();
  // A pass's records, staged (status counts, kept results) under pass_mutex.
  void stage(const DrainRecord* records, size_t count) noexcept;
  // Delivers the queued records (callbacks, then drained counts) if no other
  // thread or frame is delivering; that one delivers them otherwise.
  void deliver_queued() noexcept;
  void deliver(const DrainRecord* records, size_t count) noexcept;
  // close(), once closed: waits for the deliverer, delivers what is left
  // itself, and keeps the delivery.
  void deliver_leftovers() noexcept;

  Runtime& runtime_;
  RegistryConfig config_;

  mutable std::mutex mutex_;  // guards table_, windows_, closing_, the tenants' DeviceCounters
  // One control operation of this registry at a time (set_grants), held
  // across its wait for the executors with mutex_ let go; register_tenant
  // takes it too (an index is never reused under a grants write). Taken
  // before mutex_, never while holding mutex_ or a pump lock.
  std::mutex control_mutex_;
  uint32_t controls_in_flight_ = 0;      // set_grants between its checks and its commit (mutex_)
  std::condition_variable control_done_;  // controls_in_flight_ reached 0
  TenantTable table_;
  OpcodeWindows windows_;
  bool closing_ = false;  // close() started: no new registrations (guarded by mutex_)
  bool claimed_ = false;  // init() claimed the runtime's drain

  std::atomic<bool> draining_any_{false};  // table_.draining is non-empty (a hint for pump_once)
  std::atomic<bool> closed_{false};
  std::atomic<bool> runtime_gone_{false};  // closed by on_runtime_end
  DrainPump pump_;
};

}  // namespace megaring::detail
