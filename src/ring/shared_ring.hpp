// SPDX-License-Identifier: Apache-2.0
// Ring 0, host side: the ring every thread may publish on (Runtime::publish).
// Ticket reservation and publish (P1-P3), reaping (H2), waits on tickets
// (H1), kept results with parking, and drain mode. Step names refer to the
// protocol in megaring/slot_abi.h. It knows nothing of the lifecycle,
// buffers or tenants: what it needs from the runtime is a RingHost.
//
// Host-only words and their roles:
//   tail_      next ticket to reserve; bit 63 set once the ring is closed
//              (shutdown/abort), so no reservation can slip past the close.
//   reaped_    every ticket below it is accounted for and its position may be
//              reused: P1 admits ticket t only when t < reaped_ + capacity.
//   keep_[pos] ticket + 1 while a kept ticket's completion waits to be read
//              in place; the reaper does not pass it, so the record stays
//              valid. When the ring needs the position (a producer found it
//              full), the reaper parks the completion in parked_ instead:
//              kept results never hold the ring hostage, so a thread that
//              keeps a ticket and publishes a ring's worth more cannot
//              deadlock on itself.
//   origin_[pos] who published it (Origin), handed back with its drain
//              record. Plain words: written before P3's header release,
//              read by the reaper after DONE_COUNT's acquire (the chain
//              header -> fetcher -> completer -> DONE_COUNT), or after the
//              header's own acquire once finalized (slot_written); a reuse
//              of the position waits for reaped_'s release.
//   drain_claimed_ set while a drain pump (the tenant layer) is the only
//              reaper: see reap().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "ring/drain_record.hpp"
#include "ring/host_ring.hpp"
#include "ring/kept_results.hpp"
#include "ring/ring_timeline.hpp"
#include "ring/status_tally.hpp"

namespace megaring::detail {

class SharedRing {
 public:
  // `timeline`: timeline mode's publish times and reap passes, or null.
  SharedRing(RingHost& host, RingTimeline* timeline) : host_(host), timeline_(timeline) {}
  // Every position starts free at `first_ticket`; before the consumer starts.
  Status init(uint32_t capacity, uint64_t first_ticket);

  Status publish(const SlotRequest* requests, uint32_t count, Ticket* first,
                 const PublishOptions& options, Origin origin = {}, bool record = false);
  Status wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout);
  Status wait_done(const Ticket& ticket, Nanoseconds timeout);
  Status release(const Ticket& ticket);

  // H2: accounts for completed tickets in order and frees their positions.
  // Stops at an unread kept result, unless `park` (a producer needs space),
  // which moves it to the parked results. `drained`, when given, receives a
  // record per reaped ticket. While a drain is claimed only drain() (which
  // passes `drained`) reaps: every other call returns 0, so a stalled pump
  // is back-pressure, never a lost record. Returns how many were reaped.
  size_t reap(bool block, bool park = false, std::vector<DrainRecord>* drained = nullptr);
  // Drain mode (src/runtime/runtime_internal.hpp): claimed under the reap lock, so that
  // the switch is ordered against a reap in progress.
  Status claim_drain(bool claim);
  bool drain_claimed() const { return drain_claimed_.load(std::memory_order_acquire); }
  size_t drain(std::vector<DrainRecord>* records) { return reap(true, /*park=*/true, records); }

  // DONE_COUNT. ACQUIRE (H1): pairs with the consumer's release; every
  // record below the value read is visible afterwards.
  uint64_t done_count() const {
    return SysRef<uint64_t>(host_.regions().ring_done[0].done_count).load(cuda::std::memory_order_acquire);
  }
  // Every ticket below it is reserved (published or being written).
  uint64_t published_end() const { return tail_.load(std::memory_order_acquire) & ~kClosedBit; }
  uint64_t reaped() const { return reaped_.load(std::memory_order_acquire); }
  // The published end, by a read-modify-write of the tail: every later
  // reservation reads from it, so its slots are ordered after whatever the
  // caller stored before (free_buffer's retire).
  uint64_t published_end_rmw() { return tail_.fetch_add(0, std::memory_order_acq_rel) & ~kClosedBit; }
  // No reservation succeeds from here on.
  void close() { tail_.fetch_or(kClosedBit, std::memory_order_acq_rel); }
  // The consumer has stopped: every ticket in [DONE_COUNT, end) without its
  // own record gets an ABORTED one. The caller then publishes finalize.
  void write_aborted_records();

  Status peek_slot(uint64_t ticket, mr_slot* out);
  StatusCounts completions() const { return tally_.read(); }
  uint64_t ring_full_events() const { return events_.ring_full.load(std::memory_order_relaxed); }
  uint64_t protocol_errors() const { return events_.protocol_errors.load(std::memory_order_relaxed); }
  size_t parked_results() const { return parked_.stored(); }
  // Counts start again from zero (timeline calibration's own slots).
  void reset_counts() {
    tally_.reset();
    events_.ring_full.store(0);
  }

  // Tests only (RuntimeInternals::set_reserve_hook, set_park_hook): set
  // while no publish or reap runs.
  void set_reserve_hook(ReserveHook hook, void* arg) {
    hooks_.reserve_arg.store(arg, std::memory_order_relaxed);
    hooks_.reserve.store(hook, std::memory_order_relaxed);
  }
  void set_park_hook(ParkHook hook, void* arg) {
    hooks_.park_arg.store(arg, std::memory_order_relaxed);
    hooks_.park.store(hook, std::memory_order_relaxed);
  }
  uint64_t parking_waits() const { return events_.parking_waits.load(std::memory_order_relaxed); }

 private:
  static constexpr uint64_t kClosedBit = 1ull << 63;
  // keep_ values besides 0 and ticket + 1, held briefly by one thread:
  static constexpr uint64_t kParking = ~0ull;      // the reaper is moving the result to parked_
  static constexpr uint64_t kReading = ~0ull - 1;  // a waiter is reading the result in place
  // Statistics (relaxed): counted, never ordering anything.
  struct Events {
    std::atomic<uint64_t> ring_full{0};        // a publish found no free position
    std::atomic<uint64_t> protocol_errors{0};  // a kept ticket without its record
    std::atomic<uint64_t> parking_waits{0};    // a waiter met a result being parked
  };
  struct TestHooks {
    std::atomic<ReserveHook> reserve{nullptr};
    std::atomic<void*> reserve_arg{nullptr};
    std::atomic<ParkHook> park{nullptr};
    std::atomic<void*> park_arg{nullptr};
  };

  Status reserve(uint32_t count, const PublishOptions& options, uint64_t* first);
  // Whether ticket's producer has written its slot (ACQUIRE: pairs with P3's
  // release, so its body, keep_ and origin_ stores are visible after it).
  bool slot_written(uint64_t ticket) const {
    return SysRef<uint64_t>(host_.regions().slots[ticket & mask_].header)
               .load(cuda::std::memory_order_acquire) == mr_make_header(ticket, MR_SLOT_READY);
  }
  // Moves ticket r's unread kept result out of the ring; false if a waiter
  // claimed it first (the position stays until it has read it).
  bool park(uint64_t r, uint64_t pos, const RecordWords& words);
  // Looks for ticket t's kept result after keep_ moved away from t + 1.
  // Returns true with *result set: taken from the parked results, or not
  // pending. Returns false if it is back in place (a reaper's move to
  // parked_ threw and put it back): the caller looks again.
  bool take_parked(uint64_t t, uint64_t pos, Completion* out, Status* result);

  RingHost& host_;
  RingTimeline* const timeline_;
  uint32_t capacity_ = 0;
  uint64_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) std::atomic<uint64_t> reaped_{0};
  alignas(64) std::mutex reap_mutex_;
  std::unique_ptr<std::atomic<uint64_t>[]> keep_;
  std::unique_ptr<Origin[]> origin_;
  KeptResults parked_;
  std::atomic<bool> drain_claimed_{false};
  StatusTally tally_;
  Events events_;
  TestHooks hooks_;
};

}  // namespace megaring::detail
