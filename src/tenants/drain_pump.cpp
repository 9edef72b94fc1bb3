// SPDX-License-Identifier: Apache-2.0
// The drain pump: its thread, one pass (pump_once: drain and stage), and
// the delivery of the staged records to their tenants' callbacks
// (registry_core.hpp, DrainPump).
#include <algorithm>
#include <chrono>
#include <thread>

#include "megaring/detail/host_waiter.hpp"
#include "support/log.hpp"
#include "support/nvtx.hpp"
#include "support/thread_name.hpp"
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

// Stages one completion of its tenant: the status counts and the kept
// result (wait() takes it from here, before the callback has run).
void stage_one(TenantState& t, const DrainRecord& r) noexcept {
  t.completions.count_shared(r.status, r.fault);
  if (r.origin.kept) {
    try {
      t.kept.put(r.ticket, completion_of(r));
    } catch (...) {
      // Out of host memory: wait() will report the ticket as not pending
      // (put() woke it to look); it still counts as drained.
    }
  }
}

// Hands one completion to its tenant's callback. Nothing here may stop
// the delivery.
void call_back(TenantState& t, const DrainRecord& r) noexcept {
  if (!t.identity.on_completion) return;
  try {
    t.identity.on_completion(completion_of(r));
  } catch (...) {
    // A throwing callback must not stop the pump for every tenant.
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
  name_this_thread("megaring-pump");
  const auto max_sleep_us =
      std::chrono::duration_cast<std::chrono::microseconds>(config_.pump_idle_sleep_max);
  HostWaiter waiter(static_cast<uint32_t>(std::clamp<int64_t>(max_sleep_us.count(), 1, 1000000)));
  while (!pump_.stop.load(std::memory_order_acquire)) {
    const LogHold hold;  // what a pass logs reaches the callback after it, outside its locks
    if (pump_once() != 0) {
      waiter.reset();
    } else {
      waiter.pause();  // spin, yield, then sleep up to pump_idle_sleep_max
    }
  }
}

// The pump pulls: it takes the completed records from the runtime and
// stages them under the pass lock, then delivers them itself, outside it.
size_t RegistryCore::pump_once() {
  if (closed()) return 0;
  size_t n = 0;
  {
    std::lock_guard<std::mutex> pass(pump_.pass_mutex);
    if (closed()) return 0;  // closed (and detached) while we waited for the lock
    const size_t before = pump_.queued.size();
    n = RuntimeInternals::drain(runtime_, &pump_.queued);  // appends; on failure adds nothing
    stage(pump_.queued.data() + before, pump_.queued.size() - before);
  }
  deliver_queued();
  // A revoked tenant whose last reservation was rolled back has no record
  // left to trigger its retirement; check here too.
  if (n == 0 && draining_any_.load(std::memory_order_acquire)) retry_retire();
  return n;
}

// Runs in the pass, after the ring positions were recycled: what wait()
// and the statistics need at once. No allocation: a lost record would
// leave a tenant that never drains.
void RegistryCore::stage(const DrainRecord* records, size_t count) noexcept {
  std::shared_ptr<TenantState> current;  // tenant of the run of records being staged
  uint32_t current_id = 0;
  for (size_t i = 0; i < count; ++i) {
    const DrainRecord& r = records[i];
    if (r.origin.tenant == 0) continue;  // a plain Runtime::publish
    if (!current || r.origin.tenant != current_id) {
      std::lock_guard<std::mutex> lock(mutex_);
      current = table_.find(r.origin.tenant);
      current_id = r.origin.tenant;
    }
    if (current) stage_one(*current, r);
  }
}

// The combiner: whoever finds no deliverer becomes it and delivers every
// queued record, its own pass's and those that other passes (on other
// threads, or inside its own callbacks) queue meanwhile. A pass that finds
// a deliverer leaves its records to it and returns.
void RegistryCore::deliver_queued() noexcept {
  for (;;) {
    // ACQUIRE: the last deliverer's use of `batch` happens before ours.
    if (pump_.delivering.exchange(true, std::memory_order_acquire)) return;
    for (;;) {
      {
        std::lock_guard<std::mutex> pass(pump_.pass_mutex);
        pump_.batch.swap(pump_.queued);  // `queued` takes the empty one, capacity kept
      }
      if (pump_.batch.empty()) break;
      deliver(pump_.batch.data(), pump_.batch.size());
      pump_.batch.clear();
    }
    // RELEASE: our use of `batch` before the next deliverer's.
    pump_.delivering.store(false, std::memory_order_release);
    // A pass that queued after our last look found us delivering and left
    // its records to us: look once more (its queueing and ours are ordered
    // by pass_mutex, so it saw us delivering only before the store above).
    {
      std::lock_guard<std::mutex> pass(pump_.pass_mutex);
      if (pump_.queued.empty()) return;
    }
  }
}

// close(), once closed_ is stored: waits for a deliverer on another thread
// (it holds none of our locks, and its callbacks' pumps and waits see the
// close), then delivers what is left itself, and keeps the delivery: no
// callback runs after the close. Not from inside a completion callback,
// which would wait for itself (tenant.hpp says so).
void RegistryCore::deliver_leftovers() noexcept {
  // ACQUIRE: as in deliver_queued.
  while (pump_.delivering.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
  {
    std::lock_guard<std::mutex> pass(pump_.pass_mutex);
    pump_.batch.swap(pump_.queued);  // closed: no pass queues after this
  }
  deliver(pump_.batch.data(), pump_.batch.size());
  pump_.batch.clear();
}

// Hands each staged completion to its tenant's callback, then counts it
// drained. No allocation on the delivery path: a lost record would leave a
// tenant that never drains.
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
    call_back(*current, r);
    ++run;
  }
  if (current) count_drained(*current, run);
  current.reset();
  if (draining_any_.load(std::memory_order_acquire)) retry_retire();
}

}  // namespace megaring::detail
