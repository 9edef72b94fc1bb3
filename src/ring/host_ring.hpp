// SPDX-License-Identifier: Apache-2.0
// Internal: what every host producer does to a ring, whoever owns it (the
// runtime's shared ring 0, or a Producer's own ring): write slots (P2, P3)
// and read completion records (H1). Step names are those of slot_abi.h.
// Also the state of a producer's ring that outlives the Producer handles
// that borrow it, and what every ring needs from its runtime (RingHost).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "backends/backend.hpp"
#include "megaring/detail/atomic_ref.hpp"
#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "megaring/runtime.hpp"
#include "ring/kept_results.hpp"

namespace megaring::detail {

// P2: a slot's body, plain stores (its header's release publishes them).
// KEEP_RESULT is the runtime's to set: the completer writes this slot's
// record even when it completes OK only if it is set.
inline void write_slot_body(mr_slot* slot, const SlotRequest& request, uint32_t keep_flag) {
  slot->opcode = request.opcode;
  slot->tenant = request.tenant;
  slot->flags = (request.flags & ~MR_SLOT_FLAG_KEEP_RESULT) | keep_flag;
  slot->reserved = 0;
  for (uint32_t a = 0; a < MR_SLOT_ARGS; ++a) slot->args[a] = request.args[a];
}

// P3: the headers of tickets [first, first + count) of the ring whose slots
// start at `ring_slots`. RELEASE (system), each: orders that slot's body
// (and whatever the caller stored for it before) before the header a
// fetcher acquires. The batch's first header goes last, so a fetcher that
// sees it sees the whole batch in the same round.
inline void release_headers(mr_slot* ring_slots, uint64_t mask, uint64_t first, uint32_t count) {
  for (uint32_t i = count; i-- > 0;) {
    const uint64_t t = first + i;
    SysRef<uint64_t>(ring_slots[t & mask].header)
        .store(mr_make_header(t, MR_SLOT_READY), cuda::std::memory_order_release);
  }
}

// A completion record's two words, as the host reads them: relaxed word
// loads (the caller's DONE_COUNT, finalize or stamp acquire orders them),
// atomic because the completer may rewrite an early-written record with the
// same words meanwhile (consumer/completer.cuh, publish_beyond_gap).
struct RecordWords {
  uint64_t stamp;
  uint64_t result;
};
inline RecordWords read_record(const mr_completion& rec) {
  auto& r = const_cast<mr_completion&>(rec);
  return {SysRef<uint64_t>(r.stamp).load(cuda::std::memory_order_relaxed),
          SysRef<uint64_t>(r.result).load(cuda::std::memory_order_relaxed)};
}

// Ticket t's completion from its record's words.
inline Completion completion_from(uint64_t t, const RecordWords& words) {
  Completion c;
  c.ticket = t;
  c.result = words.result;
  c.status = static_cast<uint16_t>(mr_stamp_status(words.stamp));
  c.fault = static_cast<uint16_t>(mr_stamp_fault(words.stamp));
  return c;
}
// Ticket t never ran: the consumer stopped first.
inline Completion aborted_completion(uint64_t t) {
  Completion c;
  c.ticket = t;
  c.status = MR_STATUS_ABORTED;
  return c;
}

// What every ring's host side needs from its runtime (Runtime::Impl).
class RingHost {
 public:
  virtual const HostRegions& regions() const = 0;
  virtual uint32_t ring_capacity() const = 0;
  // OK while publishes are accepted; the reason (kShutdown, kAborted, the
  // consumer's failure) once they are not.
  virtual Status publish_allowed() const = 0;
  // Why a closed ring refuses publishes (kShutdown or kAborted).
  virtual Status closed_status() const = 0;
  // The consumer has stopped and the host owns the completion region: a
  // ticket at or past a ring's DONE_COUNT whose record does not name it was
  // aborted. ACQUIRE: every record the consumer wrote is visible after it.
  virtual bool consumer_finalized() const = 0;
  // A dead consumer turns into a failed, finalized runtime (its error).
  virtual Status check_consumer() = 0;
  // Writes ring `ring`'s class word (MR_RING_CLASS_*; slot_abi.h,
  // "Priorities") through the backend's table-write path; landed when it
  // returns. The one way the host sets a ring's class.
  virtual Status set_ring_class(uint32_t ring, uint32_t ring_class) = 0;
  // A live ring's class from `from` to `to` as a control operation
  // (runtime.hpp, "Control operations"; Producer::set_priority): undone to
  // `from` if it fails.
  virtual Status change_ring_class(uint32_t ring, uint32_t from, uint32_t to) = 0;

 protected:
  ~RingHost() = default;
};

// The end of one pass of a wait for ticket t that found it not done, for
// every ring's wait() and wait_done(): before the deadline, a health check
// once the waiter sleeps, then a pause; past it, the consumer is checked
// first (a dead one is reported; one the check just finalized gets one last
// look, whose record is then final), and after that last look, kTimeout.
class TicketWait {
 public:
  TicketWait(uint64_t ticket, Nanoseconds timeout)
      : ticket_(ticket), deadline_(deadline_after(timeout)) {}
  // True with *result set when the wait ends; otherwise look again.
  bool ends(RingHost& host, Status* result) {
    const bool late = std::chrono::steady_clock::now() > deadline_;
    if (late && last_look_) {
      *result = Status(Result::kTimeout, "ticket " + std::to_string(ticket_) + " not completed in time");
      return true;
    }
    if (late || waiter_.due_for_health_check()) {
      Status st = host.check_consumer();
      if (!st && !host.consumer_finalized()) {
        *result = st;
        return true;
      }
    }
    if (late)
      last_look_ = true;
    else
      waiter_.pause();
    return false;
  }

 private:
  uint64_t ticket_;
  std::chrono::steady_clock::time_point deadline_;
  bool last_look_ = false;
  HostWaiter waiter_;
};

// The host side of one producer's ring (ring >= 1). The runtime creates it
// at start and keeps it for its life; a Producer borrows it (`owned`), and
// the next one continues its tickets.
struct ProducerRing {
  explicit ProducerRing(uint32_t ring_index, uint32_t capacity, uint64_t first_ticket)
      : ring(ring_index),
        tail(first_ticket),
        reaped(first_ticket),
        keep(new uint64_t[capacity]()) {}

  const uint32_t ring;
  // Null once the runtime is destroyed (RELEASE there, ACQUIRE in every
  // Producer call): a Producer that outlives its runtime answers kShutdown.
  std::atomic<RingHost*> host{nullptr};
  // The published end: every ticket below it is reserved by the owner.
  // Written by the owner only, then a SEQ_CST fence, then the slots. With
  // free_buffer's own fence between its retire store and its loads of the
  // tails (Dekker's pattern: of two threads that each store, fence, then
  // load the other's word, at least one sees the other's store), either
  // free_buffer sees a batch's tickets and waits for them to complete, or
  // the batch's slots come after the retire and fault (exec_context.cuh,
  // retired_for). On the GPU the retire is a copy waited for before the
  // fence. Also read by shutdown (ACQUIRE: only its value matters).
  alignas(64) std::atomic<uint64_t> tail;
  // A Producer holds the ring (CAS in open_producer: acquire; the
  // Producer's destructor: release, after its last use of the words below).
  alignas(64) std::atomic<bool> owned{false};
  // The owner's alone, handed on with `owned`:
  uint64_t reaped;                       // every ticket below it is accounted for
  uint32_t ring_class = MR_RING_CLASS_NORMAL;  // the owner's Priority (open_producer)
  std::unique_ptr<uint64_t[]> keep;      // [capacity]: t + 1 while t is kept, unread, in place
  KeptResults parked;                    // unread kept results moved out
};

}  // namespace megaring::detail
