// SPDX-License-Identifier: Apache-2.0
// TenantHandle: what it names, its kept tickets (wait, release), its slot
// counters (note_drained, quiesce, runtime_counters). Publishing is in
// tenant_publish.cpp, quotas and buffers in tenant_quotas.cpp.
#include <algorithm>
#include <chrono>
#include <iterator>
#include <string>
#include <thread>

#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"
#include "support/nvtx.hpp"
#include "tenants/registry_core.hpp"
#include "tenants/tenant_refusals.hpp"
#include "tenants/tenant_state.hpp"

namespace megaring {

using detail::KeptResults;
using detail::TenantState;

namespace {

using Clock = detail::SteadyClock;

const std::string kEmptyLabel;

}  // namespace

uint32_t TenantHandle::id() const noexcept { return state_ ? state_->identity.id : 0; }
const std::string& TenantHandle::label() const noexcept {
  return state_ ? state_->identity.label : kEmptyLabel;
}
uint32_t TenantHandle::base_opcode() const noexcept {
  return state_ ? state_->identity.base_opcode : 0;
}
uint32_t TenantHandle::opcode_cap() const noexcept {
  return state_ ? state_->identity.quotas.opcode_cap : 0;
}
bool TenantHandle::revoked() const noexcept {
  if (!state_) return true;
  return state_->revoked.load();
}
uint64_t TenantHandle::published_count() const noexcept {
  return state_ ? state_->slots.published.load(std::memory_order_acquire) : 0;
}
uint64_t TenantHandle::drained_count() const noexcept {
  return state_ ? state_->slots.drained.load(std::memory_order_acquire) : 0;
}
uint64_t TenantHandle::max_outstanding_slots() const noexcept {
  return state_ ? state_->identity.quotas.max_outstanding_slots : 0;
}

Status TenantHandle::wait(const Ticket& ticket, Completion* completion,
                          Nanoseconds timeout) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    if (completion == nullptr) return Status(Result::kInvalidArgument, "completion is null");
    if (!detail::valid_timeout(timeout)) return detail::negative_timeout("wait timeout");
    if (!ticket.kept)
      return Status(Result::kInvalidArgument,
                    "ticket " + std::to_string(ticket.value) + " was published without keep_result");
    TenantState& t = *state_;
    detail::RegistryCore& core = *t.core;
    const auto deadline = detail::deadline_after(timeout);
    for (;;) {
      // A manual pump delivers only when pumped (below); the pump thread
      // wakes the wait on every arrival, and a closed registry within 10 ms.
      const KeptResults::Look look =
          core.manual() ? t.kept.take(ticket.value, completion)
                        : t.kept.take_waiting(ticket.value, completion, deadline,
                                              std::chrono::milliseconds(10),
                                              [&] { return core.closed(); });
      if (look == KeptResults::Look::kTaken) return Status();
      if (look == KeptResults::Look::kNotPending)
        return Status(Result::kInvalidArgument,
                      "ticket " + std::to_string(ticket.value) +
                          " is not pending for this tenant (not kept, already read or released)");
      if (core.closed()) {
        // The last pass may have delivered it after our look: the close is
        // stored under the pass lock, so no delivery comes after it.
        if (t.kept.take(ticket.value, completion) == KeptResults::Look::kTaken) return Status();
        // No pump will ever deliver it: this answer is final, so the ticket
        // stops being pending (a later wait or release of it is refused, as
        // for any ticket already read).
        t.kept.forget(ticket.value);
        return Status(Result::kRevoked, "the registry was destroyed before ticket " +
                                            std::to_string(ticket.value) + " drained");
      }
      if (Clock::now() > deadline)
        return Status(Result::kTimeout,
                      "ticket " + std::to_string(ticket.value) + " not completed in time");
      if (core.manual() && core.pump_once() == 0) std::this_thread::yield();
    }
  });
}

Status TenantHandle::release(const Ticket& ticket) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    KeptResults& kept = state_->kept;
    // A delivered result goes in any case; a pending one only for a ticket
    // that says it was kept (then the pump drops it on delivery).
    const bool released = ticket.kept
                              ? kept.release(ticket.value)
                              : kept.take(ticket.value, nullptr) == KeptResults::Look::kTaken;
    if (released) return Status();
    return Status(Result::kInvalidArgument,
                  "ticket " + std::to_string(ticket.value) + " is not pending for this tenant");
  });
}

TenantRuntimeCounters TenantHandle::runtime_counters() const {
  TenantRuntimeCounters c;
  if (!state_) return c;
  TenantState& t = *state_;
  c.drained = t.slots.drained.load(std::memory_order_acquire);
  c.published = t.slots.published.load(std::memory_order_acquire);
  const detail::StatusCounts done = t.completions.read();
  c.completed_ok = done.ok;
  c.faulted = done.faulted;
  c.revoked = done.revoked;
  c.aborted = done.aborted;
  std::copy(std::begin(done.faults_by_code), std::end(done.faults_by_code), c.faults_by_code);
  c.backpressure_events = t.slots.backpressure_events.load(std::memory_order_relaxed);
  c.pipeline_errors = t.slots.pipeline_errors.load(std::memory_order_relaxed);
  try {
    const mr_tenant_counters d = t.core->device_counters(t);
    c.device_admitted = d.admitted;
    c.device_out_of_window = d.out_of_window;
    c.device_revoked = d.revoked;
    c.device_not_granted = d.not_granted;
  } catch (...) {
  }
  return c;
}

Status TenantHandle::note_drained(uint64_t count) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    detail::SlotCounters& slots = state_->slots;
    // Only what the pump has delivered can be drained, so a caller's count and
    // the pump's never add up to more than really completed (no early reuse of
    // the tenant's id, no outstanding count below zero).
    uint64_t d = slots.drained.load(std::memory_order_acquire);
    do {
      const uint64_t delivered = slots.delivered.load(std::memory_order_acquire);
      const uint64_t undrained = delivered - std::min(delivered, d);
      if (count > undrained)
        return Status(Result::kResourceUnderflow,
                      "draining " + std::to_string(count) + " but only " +
                          std::to_string(undrained) + " delivered and not yet drained",
                      undrained, count);
    } while (!slots.drained.compare_exchange_weak(d, d + count, std::memory_order_acq_rel));
    return Status();
  });
}

Status TenantHandle::quiesce(Nanoseconds timeout) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    if (!detail::valid_timeout(timeout)) return detail::negative_timeout("quiesce timeout");
    MR_NVTX_RANGE("megaring::quiesce");
    TenantState& t = *state_;
    const uint64_t cap = t.identity.quotas.max_outstanding_slots;
    const auto deadline = detail::deadline_after(timeout);
    detail::HostWaiter waiter;
    for (;;) {
      const uint64_t outstanding = t.slots.outstanding();
      if (outstanding == 0) return Status();
      if (t.core->closed())
        return Status(Result::kRevoked,
                      "the registry was destroyed with " + std::to_string(outstanding) +
                          " slots of this tenant undrained",
                      outstanding, cap);
      if (Clock::now() > deadline)
        return Status(Result::kQuiesceTimeout,
                      std::to_string(outstanding) + " slots still outstanding", outstanding, cap);
      if (t.core->manual() && t.core->pump_once() != 0) continue;
      waiter.pause();
    }
  });
}

}  // namespace megaring
