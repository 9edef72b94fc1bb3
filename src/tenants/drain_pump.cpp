// SPDX-License-Identifier: Apache-2.0
// The drain pump: its thread, one pass (pump_once), and the delivery of a
// pass's records to their tenants.
#include <algorithm>
#include <chrono>

#include "megaring/detail/host_waiter.hpp"
#include "support/nvtx.hpp"
#include "tenants/registry_core.hpp"

namespace megaring::detail {

namespace {

Completion completion_of(const DrainRecord& r) {
  Completion c;
  c.ticket = r.ticket;
  c.result = r.result;
  c.status = r.status;
  c.fault = r.fault;
  return c;
}

// Hands one completion to its tenant: the status counts, the kept result,
// the callback. Nothing here may stop the pass.
void deliver_one(TenantState& t, const DrainRecord& r) noexcept {
  t.completions.count_shared(r.status, r.fault);
  const Completion c = completion_of(r);
  if (r.origin.kept) {
    try {
      t.kept.put(r.ticket, c);
    } catch (...) {
      // Out of host memory: wait() will report the ticket as not pending
      // (put() woke it to look); it still counts as drained.
    }
  }
  if (t.identity.on_completion) {
    try {
      t.identity.on_completion(c);
    } catch (...) {
      // A throwing callback must not stop the pump for every tenant.
    }
  }
}

// Counts `run` delivered completions of `t` drained.
void count_drained(TenantState& t, uint64_t run) noexcept {
  if (run == 0) return;
  // RELEASE (acq_rel): the deliveries happen before a quiesce, a quota
  // check or a note_drained that reads these counts. Then drain what was
  // delivered, less what a note_drained() caller already counted.
  const uint64_t delivered = t.slots.delivered.fetch_add(run, std::memory_order_acq_rel) + run;
  uint64_t d = t.slots.drained.load(std::memory_order_acquire);
  while (d < delivered &&
         !t.slots.drained.compare_exchange_weak(d, std::min(d + run, delivered),
                                                std::memory_order_acq_rel)) {
  }
}

}  // namespace

void RegistryCore::pump_thread_main() {
  const auto max_sleep_us =
      std::chrono::duration_cast<std::chrono::microseconds>(config_.pump_idle_sleep_max);
  HostWaiter waiter(static_cast<uint32_t>(std::clamp<int64_t>(max_sleep_us.count(), 1, 1000000)));
  while (!pump_.stop.load(std::memory_order_acquire)) {
    if (pump_once() != 0) {
      waiter.reset();
    } else {
      waiter.pause();  // spin, yield, then sleep up to pump_idle_sleep_max
    }
  }
}

// The pump pulls: it takes the completed records from the runtime, then
// delivers them itself.
size_t RegistryCore::pump_once() {
  if (closed()) return 0;
  // Called from inside this thread's own pass (a completion callback that
  // pumps, waits or quiesces): a no-op, the pass goes on when it returns.
  const std::thread::id self = std::this_thread::get_id();
  if (pump_.pass_owner.load(std::memory_order_relaxed) == self) return 0;
  // One pass at a time, for the delivery order per tenant: a pass on
  // another thread is waited for, then this one drains what came since.
  std::lock_guard<std::mutex> pass(pump_.pass_mutex);
  if (closed()) return 0;  // closed (and detached) while we waited for the lock
  pump_.pass_owner.store(self, std::memory_order_relaxed);
  pump_.records.clear();
  const size_t n = RuntimeInternals::drain(runtime_, &pump_.records);
  if (!pump_.records.empty()) deliver(pump_.records.data(), pump_.records.size());
  pump_.pass_owner.store(std::thread::id(), std::memory_order_relaxed);
  // A revoked tenant whose last reservation was rolled back has no record
  // left to trigger its retirement; check here too.
  if (n == 0 && draining_any_.load(std::memory_order_acquire)) retry_retire();
  return n;
}

// Runs inside pump_once(), after the ring positions were recycled. Delivers
// each completion to its tenant, then counts it drained. No allocation on
// the delivery path: a lost record would leave a tenant that never drains.
void RegistryCore::deliver(const DrainRecord* records, size_t count) noexcept {
  MR_NVTX_RANGE("megaring::tenant_drain");
  // Registry counters first: a waiter woken below may read them.
  uint64_t untenanted = 0;
  for (size_t i = 0; i < count; ++i) untenanted += records[i].origin.tenant == 0;
  pump_.untenanted_slots.fetch_add(untenanted, std::memory_order_relaxed);
  pump_.drained_slots.fetch_add(count - untenanted, std::memory_order_relaxed);

  std::shared_ptr<TenantState> current;  // tenant of the run of records being delivered
  uint32_t current_id = 0;
  uint64_t run = 0;                      // its records delivered and not yet counted drained
  for (size_t i = 0; i < count; ++i) {
    const DrainRecord& r = records[i];
    if (r.origin.tenant == 0) continue;  // a plain Runtime::publish
    const uint32_t id = r.origin.tenant;
    if (!current || id != current_id) {
      if (current) count_drained(*current, run);
      run = 0;
      std::lock_guard<std::mutex> lock(mutex_);
      current = table_.find(id);
      current_id = id;
    }
    if (!current) {  // only after close() gave up on the tenant
      pump_.untenanted_slots.fetch_add(1, std::memory_order_relaxed);
      pump_.drained_slots.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    deliver_one(*current, r);
    ++run;
  }
  if (current) count_drained(*current, run);
  current.reset();
  if (draining_any_.load(std::memory_order_acquire)) retry_retire();
}

}  // namespace megaring::detail
