// SPDX-License-Identifier: Apache-2.0
// Ring 0's host side (shared_ring.hpp). Step names refer to slot_abi.h.
#include "ring/shared_ring.hpp"

#include <new>
#include <string>
#include <thread>

#include "megaring/consumer/cost_count.hpp"
#include "megaring/detail/checked.hpp"
#include "support/nvtx.hpp"

namespace megaring::detail {

namespace {
using Clock = std::chrono::steady_clock;

Status negative_timeout(const char* what) {
  return Status(Result::kInvalidArgument, std::string(what) + " is negative");
}
}  // namespace

Status SharedRing::init(uint32_t capacity, uint64_t first_ticket) {
  capacity_ = capacity;
  mask_ = capacity - 1;
  tail_.store(first_ticket);
  reaped_.store(first_ticket);
  keep_.reset(new (std::nothrow) std::atomic<uint64_t>[capacity]);
  if (!keep_) return Status(Result::kOutOfMemory, "keep table");
  origin_.reset(new (std::nothrow) Origin[capacity]);
  if (!origin_) return Status(Result::kOutOfMemory, "origin table");
  for (uint32_t i = 0; i < capacity; ++i) keep_[i].store(0, std::memory_order_relaxed);
  return Status::ok();
}

// P1: reserve `count` consecutive tickets, waiting for reaped positions.
Status SharedRing::reserve(uint32_t count, const PublishOptions& options, uint64_t* first) {
  Clock::time_point deadline{};
  bool have_deadline = false;
  HostWaiter waiter;
  bool counted_full = false;
  for (;;) {
    // reaped_ before tail_: reaped_ <= tail_ at every instant and both only
    // grow, so t >= reaped and t + count - reaped cannot wrap.
    const uint64_t reaped = reaped_.load(std::memory_order_acquire);
    uint64_t t = tail_.load(std::memory_order_acquire);
    if ((t & kClosedBit) != 0) return host_.closed_status();
    if (t + count - reaped <= capacity_) {
      // acq_rel: the reservation is ordered after the reaped_ read that
      // admitted it (so our slot writes cannot precede the reuse decision).
      MR_COST(host_shared_rmws, 1);
      if (tail_.compare_exchange_weak(t, t + count, std::memory_order_acq_rel)) {
        *first = t;
        return Status::ok();
      }
      continue;
    }
    if (reap(false, /*park=*/true) > 0) continue;
    if (options.on_full == OnFull::kFail) {
      // Another thread may have held the reap lock: wait for its pass, or
      // make one. Full only if nothing was reaped since our look, by us or
      // by that thread.
      (void)reap(true, /*park=*/true);
      if (reaped_.load(std::memory_order_acquire) != reaped) continue;
      events_.ring_full.fetch_add(1, std::memory_order_relaxed);
      MR_NVTX_MARKER("megaring::ring_full");
      return Status(Result::kRingFull, "no free ring position for " + std::to_string(count) +
                                           " slot(s)");
    }
    if (!counted_full) {
      events_.ring_full.fetch_add(1, std::memory_order_relaxed);
      MR_NVTX_MARKER("megaring::ring_full");
      counted_full = true;
    }
    if (!have_deadline) {
      deadline = deadline_after(options.timeout);
      have_deadline = true;
    }
    if (Clock::now() > deadline) {
      // A dead consumer first: callers that retry short timeouts would
      // otherwise never hear of it (waiters check health only once they sleep).
      Status st = host_.check_consumer();
      if (!st) return st;
      return Status(Result::kTimeout, "ring stayed full for the publish timeout");
    }
    if (waiter.due_for_health_check()) {
      Status st = host_.check_consumer();
      if (!st) return st;
    }
    waiter.pause();
  }
}

Status SharedRing::publish(const SlotRequest* requests, uint32_t count, Ticket* first,
                           const PublishOptions& options, Origin origin, bool record) {
  MR_NVTX_RANGE("megaring::publish");
  if (requests == nullptr || first == nullptr || count == 0)
    return Status(Result::kInvalidArgument, "publish needs requests, a ticket and count > 0");
  if (!valid_timeout(options.timeout)) return negative_timeout("publish timeout");
  if (count > capacity_)
    return Status(Result::kInvalidArgument, "batch of " + std::to_string(count) +
                                                " exceeds ring capacity " +
                                                std::to_string(capacity_));
  uint64_t t0 = 0;
  Status st = reserve(count, options, &t0);
  if (!st) return st;
  // Relaxed: set by a test before any publish runs.
  if (const auto hook = hooks_.reserve.load(std::memory_order_relaxed))
    hook(hooks_.reserve_arg.load(std::memory_order_relaxed), t0, count);
  // Nested in megaring::publish, which opened before the tickets were known
  // (and covers any wait for room): the slot writes and their release.
  MR_NVTX_TICKETS_RANGE("megaring::publish_slots", t0, count, origin.tenant, 0);
  const HostRegions& h = host_.regions();
  const int64_t publish_ns = timeline_ != nullptr ? RingTimeline::now_ns() : 0;  // one read a batch
  // KEEP_RESULT is ours to set: the completer writes a record for this
  // ticket only if it is set (or the slot did not complete OK).
  const uint32_t keep_flag = options.keep_result || record ? MR_SLOT_FLAG_KEEP_RESULT : 0u;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t t = t0 + i;
    const uint64_t pos = t & mask_;
    write_slot_body(&h.slots[pos], requests[i], keep_flag);  // P2
    // Relaxed: published to the reaper by the header release below (the
    // reaper reads keep_ only for tickets the consumer has completed).
    keep_[pos].store(options.keep_result ? t + 1 : 0, std::memory_order_relaxed);
    origin_[pos] = origin;  // published with keep_ (below), read only by the reaper
    if (timeline_ != nullptr) timeline_->record_publish(t, publish_ns);
  }
  // P3, which also orders the keep_ and origin_ stores above.
  release_headers(h.slots, mask_, t0, count);
  MR_COST(slots, count);
  *first = Ticket{t0, options.keep_result};
  return Status::ok();
}

size_t SharedRing::reap(bool block, bool park_kept, std::vector<DrainRecord>* drained) {
  // Nothing completed past the reaped cursor: no pass, and no lock taken
  // (a producer waiting for space calls this in a loop).
  if (!host_.consumer_finalized() && done_count() <= reaped_.load(std::memory_order_acquire))
    return 0;
  std::unique_lock<std::mutex> lock(reap_mutex_, std::defer_lock);
  MR_COST(host_shared_rmws, 1);  // the lock word
  if (block)
    lock.lock();
  else if (!lock.try_lock())
    return 0;  // another thread is reaping
  // Under the reap lock, which claim_drain() also takes: a claim is ordered
  // against this pass.
  if (drained == nullptr && drain_claimed_.load(std::memory_order_acquire)) return 0;
  // After finalize the host owns every record up to the published end.
  const bool finalized = host_.consumer_finalized();
  const uint64_t end = finalized ? published_end() : done_count();
  const uint64_t start = reaped_.load(std::memory_order_relaxed);
  if (start >= end) return 0;
  // The tickets completed when the pass began (it may stop early, at a kept
  // result not yet read).
  MR_NVTX_TICKETS_RANGE("megaring::reap", start, end - start, 0, 0);
  // Reserve up front, so that only parking can throw below. A pass that
  // throws commits nothing: its counts and reaped_ are stored after the loop,
  // and the next pass goes over the same tickets (results it parked stay
  // parked, and are counted then).
  if (drained != nullptr) drained->reserve(drained->size() + (end - start));
  const int64_t start_ns = timeline_ != nullptr ? RingTimeline::now_ns() : 0;
  StatusCounts counts;
  uint64_t r = start;
  const HostRegions& h = host_.regions();
  while (r < end) {
    const uint64_t pos = r & mask_;
    // After finalize, [DONE_COUNT, end) may hold reservations whose producer
    // is still writing the slot, keep_ and origin_: stop at the first not yet
    // written; a later pass takes it from there.
    if (finalized && !slot_written(r)) break;
    // ACQUIRE: pairs with wait()'s release of the keep entry, so its reads of
    // the record finish before the position can be reused.
    const uint64_t keep = keep_[pos].load(std::memory_order_acquire);
    if (keep == kReading) break;  // a waiter is reading it in place; it will be done soon
    // Ordered by the DONE_COUNT acquire (done_count()) or the finalize; the
    // completer writes no record below DONE_COUNT. No record naming r: r
    // completed OK and was not kept (slot_abi.h, H1).
    const RecordWords words = read_record(h.completions[pos]);
    const bool has_record = mr_stamp_names(words.stamp, r) != 0;
    if (!has_record && keep == r + 1) {
      // A kept ticket always gets a record: a protocol bug. Count it, don't guess.
      events_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    if (keep == r + 1 && (!park_kept || !park(r, pos, words))) break;  // unread kept result
    const uint32_t status = has_record ? mr_stamp_status(words.stamp) : MR_STATUS_OK;
    const uint32_t fault = has_record ? mr_stamp_fault(words.stamp) : MR_FAULT_NONE;
    counts.count(status, fault);
    if (drained != nullptr) {
      // The slot's tenant field and origin_ are host-written and stay put
      // until this position is recycled (reaped_ below). A ticket without a
      // record was not kept: its result is not reported (0).
      drained->push_back(DrainRecord{r, origin_[pos],
                                     has_record ? words.result : 0, h.slots[pos].tenant,
                                     static_cast<uint16_t>(status), static_cast<uint16_t>(fault)});
    }
    ++r;
  }
  if (r == start) return 0;
  // The tally's only writer is the reap-lock holder.
  tally_.add_single_writer(counts);
  // RELEASE: our reads of records below r happen before producers reuse
  // those positions (they acquire reaped_ in reserve()).
  reaped_.store(r, std::memory_order_release);
  if (timeline_ != nullptr) timeline_->record_reap(start_ns, start, r - start);
  return r - start;
}

bool SharedRing::park(uint64_t r, uint64_t pos, const RecordWords& words) {
  uint64_t expected = r + 1;
  // Claim it against a concurrent wait(); if a waiter claimed it first,
  // leave the position until it has finished reading.
  if (!keep_[pos].compare_exchange_strong(expected, kParking, std::memory_order_acq_rel)) return false;
  try {
    // Relaxed: set by a test before any reap runs.
    if (const auto hook = hooks_.park.load(std::memory_order_relaxed))
      hook(hooks_.park_arg.load(std::memory_order_relaxed), r);
    parked_.put(r, completion_from(r, words));
  } catch (...) {
    keep_[pos].store(r + 1, std::memory_order_release);  // still unread, in place
    throw;
  }
  // RELEASE: the parked entry exists before anyone sees keep_ move on.
  keep_[pos].store(0, std::memory_order_release);
  return true;
}

Status SharedRing::wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout) {
  MR_NVTX_TICKETS_RANGE("megaring::wait", ticket.value, 1, 0, 0);
  if (completion == nullptr) return Status(Result::kInvalidArgument, "completion is null");
  if (!valid_timeout(timeout)) return negative_timeout("wait timeout");
  if (!ticket.kept)
    return Status(Result::kInvalidArgument,
                  "ticket " + std::to_string(ticket.value) +
                      " was published without keep_result; use wait_done()");
  const uint64_t t = ticket.value;
  const uint64_t pos = t & mask_;
  if (t >= published_end())
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) + " was never published");
  const mr_completion& rec = host_.regions().completions[pos];
  TicketWait wait(t, timeout);
  for (;;) {
    // Parked, being parked, or already read: not (or no longer) in place.
    if (keep_[pos].load(std::memory_order_acquire) != t + 1) {
      Status st;
      if (take_parked(t, pos, completion, &st)) return st;
      continue;  // back in place
    }
    // Final once DONE_COUNT passed t (its acquire orders the completer's
    // record), or the host finalized the ring (finalized's acquire orders
    // the host's records), or the completer wrote t's record early because
    // an earlier slot holds DONE_COUNT back (ACQUIRE of the stamp: pairs
    // with its release in write_record_released).
    if (done_count() > t || host_.consumer_finalized() ||
        mr_stamp_names(SysRef<uint64_t>(const_cast<uint64_t&>(rec.stamp))
                           .load(cuda::std::memory_order_acquire),
                       t)) {
      // Claim the in-place result: the reaper neither parks nor passes a
      // position in kReading, so no consumer can be rewriting the record
      // while we read it. Losing the CAS means a reaper (or another wait)
      // got there first: look again.
      uint64_t expected = t + 1;
      if (keep_[pos].compare_exchange_strong(expected, kReading, std::memory_order_acq_rel)) break;
      continue;
    }
    Status st;
    if (wait.ends(host_, &st)) return st;
  }
  const RecordWords words = read_record(rec);  // ordered by the acquire above
  // RELEASE: the reads above happen before the reaper may pass this ticket.
  keep_[pos].store(0, std::memory_order_release);
  reap(false);
  if (!mr_stamp_names(words.stamp, t)) {
    // A kept ticket always gets its record: a protocol bug. Count it.
    events_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    return Status(Result::kInternal, "ticket " + std::to_string(t) +
                                         " completed without its completion record");
  }
  *completion = completion_from(t, words);
  return Status::ok();
}

bool SharedRing::take_parked(uint64_t t, uint64_t pos, Completion* out, Status* result) {
  // A reaper between its claim and its release of keep_: the entry is coming,
  // or, if storing it threw, the result goes back in place.
  uint64_t keep = keep_[pos].load(std::memory_order_acquire);
  if (keep == kParking) {
    events_.parking_waits.fetch_add(1, std::memory_order_relaxed);  // statistics (tests)
    while ((keep = keep_[pos].load(std::memory_order_acquire)) == kParking) std::this_thread::yield();
  }
  if (keep == t + 1) return false;
  if (parked_.take(t, out) != KeptResults::Look::kTaken) {
    *result = Status(Result::kInvalidArgument,
                     "ticket " + std::to_string(t) +
                         " is not pending (not kept, already read or released)");
    return true;
  }
  *result = Status::ok();
  return true;
}

Status SharedRing::wait_done(const Ticket& ticket, Nanoseconds timeout) {
  MR_NVTX_TICKETS_RANGE("megaring::wait_done", ticket.value, 1, 0, 0);
  if (!valid_timeout(timeout)) return negative_timeout("wait_done timeout");
  const uint64_t t = ticket.value;
  if (t >= published_end())
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) + " was never published");
  TicketWait wait(t, timeout);
  for (;;) {
    if (done_count() > t) return Status::ok();
    if (host_.consumer_finalized()) {
      // The host owns the records now. t >= DONE_COUNT, and t is at most one
      // lap past it, so its position still holds its own final record.
      // finalized's acquire above orders the host's records.
      const uint64_t stamp = read_record(host_.regions().completions[t & mask_]).stamp;
      if (mr_stamp_names(stamp, t) && mr_stamp_status(stamp) != MR_STATUS_ABORTED)
        return Status::ok();
      return Status(Result::kAborted, "ticket " + std::to_string(t) + " was aborted");
    }
    Status st;
    if (wait.ends(host_, &st)) return st;
  }
}

Status SharedRing::release(const Ticket& ticket) {
  const uint64_t t = ticket.value;
  if (!ticket.kept || t >= published_end())
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) + " is not pending");
  const uint64_t pos = t & mask_;
  for (;;) {
    uint64_t expected = t + 1;
    if (keep_[pos].compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) break;
    Status st;
    if (take_parked(t, pos, nullptr, &st)) return st;  // else back in place: again
  }
  reap(false);
  return Status::ok();
}

void SharedRing::write_aborted_records() {
  const uint64_t end = published_end();
  const HostRegions& h = host_.regions();
  for (uint64_t t = done_count(); t < end; ++t) {
    // The consumer has stopped, so the host owns every record now. Atomic
    // words all the same: a waiter may be polling a stamp (wait()).
    mr_completion& rec = h.completions[t & mask_];
    if (mr_stamp_names(SysRef<uint64_t>(rec.stamp).load(cuda::std::memory_order_relaxed), t))
      continue;  // written, then the consumer stopped
    SysRef<uint64_t>(rec.result).store(0, cuda::std::memory_order_relaxed);
    // RELEASE: pairs with a waiter's acquire of the stamp.
    SysRef<uint64_t>(rec.stamp).store(mr_make_stamp(t, MR_STATUS_ABORTED, MR_FAULT_NONE),
                                      cuda::std::memory_order_release);
  }
}

Status SharedRing::claim_drain(bool claim) {
  // The reap lock orders the switch against a reap in progress: tickets it
  // reaped before a claim are not handed to the new drain.
  std::lock_guard<std::mutex> reap_lock(reap_mutex_);
  if (claim && drain_claimed_.load())
    return Status(Result::kInvalidArgument, "a drain pump (TenantRegistry) is already attached");
  drain_claimed_.store(claim, std::memory_order_release);
  return Status::ok();
}

Status SharedRing::peek_slot(uint64_t ticket, mr_slot* out) {
  std::lock_guard<std::mutex> lock(reap_mutex_);  // the position cannot be recycled meanwhile
  if (ticket < reaped_.load() || ticket >= published_end())
    return Status(Result::kInvalidArgument,
                  "ticket " + std::to_string(ticket) + " is not in the ring (reaped or unpublished)");
  if (!slot_written(ticket))
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(ticket) + " is still being written");
  *out = host_.regions().slots[ticket & mask_];
  return Status::ok();
}

}  // namespace megaring::detail
