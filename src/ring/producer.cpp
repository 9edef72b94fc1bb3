// SPDX-License-Identifier: Apache-2.0
// A producer's own ring, host side: publish (P1-P3 without a CAS), reap and
// wait (H1, H2) without a lock. One thread at a time owns it, so every word
// here but the tail (read by free_buffer and shutdown) is that thread's
// alone. Step names are those of megaring/slot_abi.h.
#include "megaring/producer.hpp"

#include <atomic>
#include <string>

#include "support/api_guard.hpp"
#include "ring/host_ring.hpp"
#include "megaring/detail/checked.hpp"
#include "megaring/detail/atomic_ref.hpp"
#include "megaring/consumer/cost_count.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "support/nvtx.hpp"

namespace megaring {

namespace {

using detail::aborted_completion;
using detail::completion_from;
using detail::SysRef;
using Clock = std::chrono::steady_clock;

Status not_pending(uint64_t t) {
  return Status(Result::kInvalidArgument,
                "ticket " + std::to_string(t) + " is not pending (not kept, already read or released)");
}

}  // namespace

class Producer::Impl {
 public:
  explicit Impl(std::shared_ptr<detail::ProducerRing> ring) : ring_(std::move(ring)) {}
  ~Impl() {
    // Unread kept results go; the slots still complete, and whoever holds
    // the ring next reaps them.
    const uint32_t cap = capacity_or_zero();
    for (uint32_t i = 0; i < cap; ++i) ring_->keep[i] = 0;
    ring_->parked.clear();
    reset_class();
    // RELEASE: our last use of the ring's owner-only words before the next
    // owner's acquire (Runtime::open_producer).
    ring_->owned.store(false, std::memory_order_release);
  }

  uint32_t ring() const { return ring_->ring; }
  Priority priority() const { return static_cast<Priority>(ring_->ring_class); }
  Status set_priority(Priority priority) {
    detail::RingHost* host = live_host();
    if (host == nullptr) return runtime_gone();
    const uint32_t to = static_cast<uint32_t>(priority);
    Status st = host->change_ring_class(ring_->ring, ring_->ring_class, to);
    if (st) ring_->ring_class = to;
    return st;
  }

  uint64_t done_count() const {
    detail::RingHost* host = live_host();
    return host == nullptr ? 0 : done_count(host);
  }

  Status publish(const SlotRequest* requests, uint32_t count, Ticket* first,
                 const PublishOptions& options) {
    // P1's first ticket, read before the range opens so that it carries it
    // (a refused call's range shows the tickets it would have taken).
    // Relaxed: we are the tail's only writer.
    const uint64_t t0 = ring_->tail.load(std::memory_order_relaxed);
    MR_NVTX_TICKETS_RANGE("megaring::producer_publish", t0, count, 0, ring_->ring);
    detail::RingHost* host = live_host();
    if (host == nullptr) return runtime_gone();
    if (requests == nullptr || first == nullptr || count == 0)
      return Status(Result::kInvalidArgument, "publish needs requests, a ticket and count > 0");
    if (!detail::valid_timeout(options.timeout))
      return Status(Result::kInvalidArgument, "publish timeout is negative");
    const uint32_t cap = host->ring_capacity();
    if (count > cap)
      return Status(Result::kInvalidArgument, "batch of " + std::to_string(count) +
                                                  " exceeds ring capacity " + std::to_string(cap));
    // P1, our ring alone: room once ticket t - capacity is reaped.
    Status st = wait_for_room(host, t0 + count, options);
    if (!st) return st;
    // The tail, then a SEQ_CST fence, before the slots: pairs with
    // free_buffer's fence between its retire store and its loads of the
    // tails (ProducerRing::tail). Relaxed store: the fence orders it.
    ring_->tail.store(t0 + count, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    mr_slot* slots = ring_slots(host);
    const uint64_t mask = cap - 1;
    const uint32_t keep_flag = options.keep_result ? MR_SLOT_FLAG_KEEP_RESULT : 0u;
    for (uint32_t i = 0; i < count; ++i) {
      const uint64_t t = t0 + i;
      detail::write_slot_body(&slots[t & mask], requests[i], keep_flag);
      ring_->keep[t & mask] = options.keep_result ? t + 1 : 0;
    }
    detail::release_headers(slots, mask, t0, count);  // P3
    MR_COST(slots, count);
    *first = Ticket{t0, options.keep_result};
    return Status::ok();
  }

  Status wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout) {
    MR_NVTX_TICKETS_RANGE("megaring::producer_wait", ticket.value, 1, 0, ring_->ring);
    detail::RingHost* host = live_host();
    if (host == nullptr) return runtime_gone();
    if (completion == nullptr) return Status(Result::kInvalidArgument, "completion is null");
    if (!detail::valid_timeout(timeout))
      return Status(Result::kInvalidArgument, "wait timeout is negative");
    const uint64_t t = ticket.value;
    if (!ticket.kept)
      return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) +
                                                  " was published without keep_result; use wait_done()");
    Status st = check_published(t);
    if (!st) return st;
    if (t < ring_->reaped) return take_parked(t, completion);
    const uint64_t pos = t & (host->ring_capacity() - 1);
    if (ring_->keep[pos] != t + 1) return not_pending(t);
    const mr_completion& rec = ring_record(host, t);
    detail::TicketWait wait(t, timeout);
    for (;;) {
      // Final once DONE_COUNT passed t (its acquire orders the completer's
      // record), or the consumer stopped (finalized: a record not naming t
      // means t never ran), or the completer wrote t's record early behind a
      // slow slot (ACQUIRE of the stamp: pairs with its release in
      // write_record_released).
      const bool finalized = host->consumer_finalized();
      if (done_count(host) > t || finalized ||
          mr_stamp_names(SysRef<uint64_t>(const_cast<uint64_t&>(rec.stamp))
                             .load(cuda::std::memory_order_acquire),
                         t))
        break;
      if (wait.ends(*host, &st)) return st;
    }
    const detail::RecordWords w = detail::read_record(rec);
    ring_->keep[pos] = 0;
    if (mr_stamp_names(w.stamp, t)) {
      *completion = completion_from(t, w);
    } else if (host->consumer_finalized()) {
      *completion = aborted_completion(t);
    } else {
      return Status(Result::kInternal, "ticket " + std::to_string(t) +
                                           " completed without its completion record");
    }
    reap(host);
    return Status::ok();
  }

  Status wait_done(const Ticket& ticket, Nanoseconds timeout) {
    MR_NVTX_TICKETS_RANGE("megaring::producer_wait_done", ticket.value, 1, 0, ring_->ring);
    detail::RingHost* host = live_host();
    if (host == nullptr) return runtime_gone();
    if (!detail::valid_timeout(timeout))
      return Status(Result::kInvalidArgument, "wait_done timeout is negative");
    const uint64_t t = ticket.value;
    Status st = check_published(t);
    if (!st) return st;
    detail::TicketWait wait(t, timeout);
    for (;;) {
      if (done_count(host) > t) return Status::ok();
      if (host->consumer_finalized()) {
        // Past DONE_COUNT after the stop: t ran only if the consumer's last
        // flush wrote its record. Its position holds nothing later: no
        // ticket past DONE_COUNT + capacity exists, and none is published
        // after the stop.
        const uint64_t stamp = detail::read_record(ring_record(host, t)).stamp;
        if (mr_stamp_names(stamp, t) && mr_stamp_status(stamp) != MR_STATUS_ABORTED)
          return Status::ok();
        return Status(Result::kAborted, "ticket " + std::to_string(t) + " was aborted");
      }
      if (wait.ends(*host, &st)) return st;
    }
  }

  Status release(const Ticket& ticket) {
    detail::RingHost* host = live_host();
    if (host == nullptr) return runtime_gone();
    const uint64_t t = ticket.value;
    if (!ticket.kept) return not_pending(t);
    Status st = check_published(t);
    if (!st) return st;
    if (t < ring_->reaped) return take_parked(t, nullptr);
    const uint64_t pos = t & (host->ring_capacity() - 1);
    if (ring_->keep[pos] != t + 1) return not_pending(t);
    ring_->keep[pos] = 0;
    reap(host);
    return Status::ok();
  }

 private:
  // The ring goes back as normal (slot_abi.h, "Priorities"), while we still
  // hold it, so the next owner's class is written after ours. A refused or
  // failed write (the consumer stopped) leaves nobody to order; it must not
  // escape a destructor.
  void reset_class() noexcept {
    if (ring_->ring_class == MR_RING_CLASS_NORMAL) return;
    ring_->ring_class = MR_RING_CLASS_NORMAL;
    try {
      if (detail::RingHost* host = live_host())
        (void)host->set_ring_class(ring_->ring, MR_RING_CLASS_NORMAL);
    } catch (...) {
    }
  }
  detail::RingHost* live_host() const {
    // ACQUIRE: pairs with the runtime's release as it goes (see ProducerRing::host).
    return ring_->host.load(std::memory_order_acquire);
  }
  static Status runtime_gone() {
    return Status(Result::kShutdown, "the producer's runtime was destroyed");
  }
  uint32_t capacity_or_zero() const {
    detail::RingHost* host = live_host();
    return host == nullptr ? 0 : host->ring_capacity();
  }
  mr_slot* ring_slots(detail::RingHost* host) const {
    return &host->regions().slots[uint64_t{ring_->ring} * host->ring_capacity()];
  }
  const mr_completion& ring_record(detail::RingHost* host, uint64_t t) const {
    const uint32_t cap = host->ring_capacity();
    return host->regions().completions[uint64_t{ring_->ring} * cap + (t & (cap - 1))];
  }
  uint64_t done_count(detail::RingHost* host) const {
    // ACQUIRE (H1): pairs with the completer's DONE_COUNT release; every
    // record of this ring below the value read is visible afterwards.
    return SysRef<uint64_t>(host->regions().ring_done[ring_->ring].done_count)
        .load(cuda::std::memory_order_acquire);
  }
  Status check_published(uint64_t t) const {
    if (t >= ring_->tail.load(std::memory_order_relaxed))  // our own store
      return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) +
                                                  " was never published on ring " +
                                                  std::to_string(ring_->ring));
    return Status::ok();
  }
  Status take_parked(uint64_t t, Completion* out) {
    if (ring_->parked.take(t, out) != detail::KeptResults::Look::kTaken) return not_pending(t);
    return Status::ok();
  }

  // H2: accounts for completed tickets in order, freeing their positions;
  // an unread kept result moves to `parked` (so it never holds the ring).
  // After the consumer stopped, everything published is accounted for: a
  // ticket whose record does not name it was aborted.
  void reap(detail::RingHost* host) {
    const bool finalized = host->consumer_finalized();
    const uint64_t end = finalized ? ring_->tail.load(std::memory_order_relaxed) : done_count(host);
    const uint64_t mask = host->ring_capacity() - 1;
    for (uint64_t t = ring_->reaped; t < end; ++t) {
      if (ring_->keep[t & mask] != t + 1) continue;
      const detail::RecordWords w = detail::read_record(ring_record(host, t));
      ring_->parked.put(t, mr_stamp_names(w.stamp, t) ? completion_from(t, w)
                                                      : aborted_completion(t));
      ring_->keep[t & mask] = 0;
    }
    if (end > ring_->reaped) ring_->reaped = end;
  }

  // P1's wait: until ticket `end - 1`'s position is free.
  Status wait_for_room(detail::RingHost* host, uint64_t end, const PublishOptions& options) {
    const uint32_t cap = host->ring_capacity();
    Clock::time_point deadline{};
    bool have_deadline = false;
    detail::HostWaiter waiter;
    for (;;) {
      Status st = host->publish_allowed();
      if (!st) return st;
      if (end - ring_->reaped <= cap) return Status::ok();
      reap(host);
      if (end - ring_->reaped <= cap) return Status::ok();
      if (options.on_full == OnFull::kFail)
        return Status(Result::kRingFull, "no free position on ring " + std::to_string(ring_->ring));
      if (!have_deadline) {
        deadline = detail::deadline_after(options.timeout);
        have_deadline = true;
      }
      if (Clock::now() > deadline) {
        st = host->check_consumer();
        if (!st) return st;
        return Status(Result::kTimeout, "ring " + std::to_string(ring_->ring) +
                                            " stayed full for the publish timeout");
      }
      if (waiter.due_for_health_check()) {
        st = host->check_consumer();
        if (!st) return st;
      }
      waiter.pause();
    }
  }

  std::shared_ptr<detail::ProducerRing> ring_;
};

// ---------------------------------------------------------------------------
// Public API: exceptions never cross it.
// ---------------------------------------------------------------------------
namespace detail {
std::unique_ptr<Producer> make_producer(std::shared_ptr<ProducerRing> ring) {
  return std::unique_ptr<Producer>(new Producer(std::make_unique<Producer::Impl>(std::move(ring))));
}
}  // namespace detail

Producer::Producer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Producer::~Producer() = default;
uint32_t Producer::ring() const noexcept { return impl_->ring(); }
Priority Producer::priority() const noexcept { return impl_->priority(); }
Status Producer::set_priority(Priority priority) noexcept {
  MR_API_GUARD(impl_->set_priority(priority))
}
uint64_t Producer::done_count() const noexcept { return impl_->done_count(); }
Status Producer::publish(const SlotRequest& request, Ticket* ticket,
                         const PublishOptions& options) noexcept {
  MR_API_GUARD(impl_->publish(&request, 1, ticket, options))
}
Status Producer::publish_batch(const SlotRequest* requests, uint32_t count, Ticket* first_ticket,
                               const PublishOptions& options) noexcept {
  MR_API_GUARD(impl_->publish(requests, count, first_ticket, options))
}
Status Producer::wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout) noexcept {
  MR_API_GUARD(impl_->wait(ticket, completion, timeout))
}
Status Producer::wait_done(const Ticket& ticket, Nanoseconds timeout) noexcept {
  MR_API_GUARD(impl_->wait_done(ticket, timeout))
}
Status Producer::release(const Ticket& ticket) noexcept { MR_API_GUARD(impl_->release(ticket)) }
Status Producer::call(const SlotRequest& request, Completion* completion,
                      Nanoseconds timeout) noexcept {
  MR_API_GUARD(([&]() -> Status {
    if (completion == nullptr) return Status(Result::kInvalidArgument, "completion is null");
    PublishOptions options;
    options.keep_result = true;
    options.timeout = timeout;
    Ticket t;
    Status st = impl_->publish(&request, 1, &t, options);
    if (!st) return st;
    st = impl_->wait(t, completion, timeout);
    if (!st) (void)impl_->release(t);  // never leave a kept ticket behind
    return st;
  }()))
}

}  // namespace megaring
