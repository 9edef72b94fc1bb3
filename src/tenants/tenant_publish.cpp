// SPDX-License-Identifier: Apache-2.0
// TenantHandle's publishes, as named steps: translate the batch to global
// opcodes, reserve it against the outstanding quota, publish it to the ring,
// record its kept tickets.
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"
#include "support/nvtx.hpp"
#include "tenants/registry_core.hpp"
#include "tenants/tenant_refusals.hpp"
#include "tenants/tenant_state.hpp"

namespace megaring {

using detail::TenantState;

namespace {

using Clock = detail::SteadyClock;

// The window check of TenantHandle::global_opcode.
Status to_global_opcode(const TenantState& t, uint32_t local, uint32_t* global) {
  const uint32_t cap = t.identity.quotas.opcode_cap;
  if (local >= cap)
    return Status(Result::kOpcodeOutOfRange,
                  "local opcode " + std::to_string(local) + " outside the window of " +
                      std::to_string(cap) + " opcodes",
                  local, cap);
  *global = t.identity.base_opcode + local;
  return Status();
}

// What is refused before anything is looked at or counted.
Status check_publish_arguments(const TenantState& t, const SlotRequest* local_requests,
                               uint32_t count, const Ticket* first,
                               const TenantPublishOptions& options) {
  if (local_requests == nullptr || first == nullptr || count == 0)
    return Status(Result::kInvalidArgument, "publish needs requests, a ticket and count > 0");
  if (!detail::valid_timeout(options.timeout)) return detail::negative_timeout("publish timeout");
  if (t.revoked.load(std::memory_order_acquire)) return detail::revoked_status(t.identity.id);
  const uint64_t cap = t.identity.quotas.max_outstanding_slots;
  if (count > cap)
    return Status(Result::kInvalidArgument,
                  "batch of " + std::to_string(count) + " exceeds max_outstanding_slots " +
                      std::to_string(cap),
                  count, cap);
  return Status();
}

// A batch in global opcodes, stamped with the tenant; small batches stay on
// the stack.
class GlobalBatch {
 public:
  // Step 1: translates, before any counter moves.
  Status translate(const TenantState& t, const SlotRequest* local_requests, uint32_t count) {
    if (count > kSmall) {
      large_.resize(count);
      data_ = large_.data();
    }
    for (uint32_t i = 0; i < count; ++i) {
      const SlotRequest& r = local_requests[i];
      uint32_t op = 0;
      Status st = to_global_opcode(t, r.opcode, &op);
      if (!st) return st;
      if (r.tenant != 0 && r.tenant != t.identity.id)
        return Status(Result::kInvalidArgument,
                      "request names tenant " + std::to_string(r.tenant) + ", not this one (" +
                          std::to_string(t.identity.id) + ")");
      data_[i] = r;
      data_[i].opcode = op;
      data_[i].tenant = t.identity.id;
    }
    return Status();
  }
  const SlotRequest* data() const { return data_; }

 private:
  static constexpr uint32_t kSmall = 16;
  SlotRequest small_[kSmall];
  std::vector<SlotRequest> large_;
  SlotRequest* data_ = small_;
};

// Step 2: reserves `count` against the outstanding quota, waiting for the
// pump up to `deadline` (not at all with a zero timeout).
Status reserve_outstanding(TenantState& t, uint32_t count, Nanoseconds timeout,
                           Clock::time_point deadline) {
  const uint64_t cap = t.identity.quotas.max_outstanding_slots;
  bool counted = false;
  detail::HostWaiter waiter;
  for (;;) {
    const uint64_t d = t.slots.drained.load(std::memory_order_acquire);  // before published
    uint64_t p = t.slots.published.load(std::memory_order_acquire);
    bool reserved = false;
    // p >= d: drained never passes what was published (tenant_state.hpp).
    while (detail::fits_quota(p - std::min(p, d), count, cap)) {
      // seq_cst: the Dekker pair with unregister (tenant_state.hpp).
      if (t.slots.published.compare_exchange_weak(p, p + count, std::memory_order_seq_cst)) {
        reserved = true;
        break;
      }
    }
    if (reserved) break;
    if (!counted) {
      t.slots.backpressure_events.fetch_add(1, std::memory_order_relaxed);
      MR_NVTX_MARKER("megaring::tenant_backpressure");
      counted = true;
    }
    const uint64_t outstanding = p - std::min(p, d);
    if (timeout == Nanoseconds::zero() || Clock::now() > deadline)
      return Status(Result::kBackpressure,
                    std::to_string(outstanding) + " slots outstanding, quota " +
                        std::to_string(cap) + ", " + std::to_string(count) + " more asked",
                    outstanding, cap);
    if (t.revoked.load(std::memory_order_acquire)) return detail::revoked_status(t.identity.id);
    if (t.core->manual() && t.core->pump_once() != 0) continue;
    waiter.pause();
  }
  // The reading half of the publisher's side of the Dekker pair.
  if (t.revoked.load(std::memory_order_seq_cst)) {
    t.slots.published.fetch_sub(count, std::memory_order_acq_rel);
    t.core->retry_retire();  // this reservation may be all that kept it draining
    return detail::revoked_status(t.identity.id);
  }
  return Status();
}

// Step 3: publishes the reserved batch to the ring, tagged with the tenant.
Status publish_to_ring(TenantState& t, const SlotRequest* global, uint32_t count,
                       const TenantPublishOptions& options, Clock::time_point deadline,
                       Ticket* ticket) {
  PublishOptions ring;
  ring.keep_result = false;  // the pump delivers kept results (origin tag)
  const auto now = Clock::now();
  ring.on_full = options.timeout == Nanoseconds::zero() ? OnFull::kFail : OnFull::kWait;
  ring.timeout = deadline > now ? Nanoseconds(deadline - now) : Nanoseconds(0);
  const detail::Origin origin{t.identity.id, options.keep_result};
  // Results travel only in completion records: ask for them when wait()
  // or the on_completion callback will read them.
  const bool want_record = options.keep_result || static_cast<bool>(t.identity.on_completion);
  detail::RegistryCore& core = *t.core;
  if (core.closed()) return Status(Result::kShutdown, "tenant registry closed");
  if (!core.manual() || ring.on_full != OnFull::kWait)
    return detail::RuntimeInternals::publish_tagged(core.runtime(), global, count, origin,
                                                    want_record, ticket, ring);
  // Manual pump: nobody else frees positions while we wait, so pump
  // between short attempts instead of blocking in the ring.
  PublishOptions attempt = ring;
  attempt.on_full = OnFull::kFail;
  for (;;) {
    Status st = detail::RuntimeInternals::publish_tagged(core.runtime(), global, count, origin,
                                                         want_record, ticket, attempt);
    if (st || st.code() != Result::kRingFull || Clock::now() > deadline) return st;
    if (core.pump_once() == 0) std::this_thread::yield();
  }
}

// The ring refused the batch: its reservation goes back.
void roll_back_refused(TenantState& t, uint32_t count) {
  t.slots.published.fetch_sub(count, std::memory_order_acq_rel);
  t.slots.pipeline_errors.fetch_add(1, std::memory_order_relaxed);
  if (t.revoked.load()) t.core->retry_retire();
}

}  // namespace

Status TenantHandle::global_opcode(uint32_t local, uint32_t* global) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    if (global == nullptr) return Status(Result::kInvalidArgument, "global is null");
    return to_global_opcode(*state_, local, global);
  });
}

Status TenantHandle::publish_slot(const SlotRequest& local_request, Ticket* ticket,
                                  const TenantPublishOptions& options) const {
  return publish_batch(&local_request, 1, ticket, options);
}

Status TenantHandle::publish_slot(uint32_t local_opcode, std::initializer_list<uint64_t> args,
                                  Ticket* ticket, const TenantPublishOptions& options) const {
  return detail::guarded([&]() -> Status {
    if (args.size() > MR_SLOT_ARGS)
      return Status(Result::kInvalidArgument,
                    std::to_string(args.size()) + " arguments; a slot holds " +
                        std::to_string(MR_SLOT_ARGS));
    SlotRequest r;
    r.opcode = local_opcode;
    std::copy(args.begin(), args.end(), r.args);
    return publish_batch(&r, 1, ticket, options);
  });
}

Status TenantHandle::publish_batch(const SlotRequest* local_requests, uint32_t count,
                                   Ticket* first, const TenantPublishOptions& options) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    Status st = check_publish_arguments(t, local_requests, count, first, options);
    if (!st) return st;
    GlobalBatch global;
    st = global.translate(t, local_requests, count);
    if (!st) return st;
    const auto deadline = detail::deadline_after(options.timeout);
    st = reserve_outstanding(t, count, options.timeout, deadline);
    if (!st) return st;
    Ticket ticket;
    st = publish_to_ring(t, global.data(), count, options, deadline, &ticket);
    if (!st) {
      roll_back_refused(t, count);
      return st;
    }
    // Step 4: the kept tickets become pending, unless the pump was quicker.
    if (options.keep_result) t.kept.expect(ticket.value, count);
    *first = Ticket{ticket.value, options.keep_result};
    return Status();
  });
}

}  // namespace megaring
