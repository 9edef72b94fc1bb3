// SPDX-License-Identifier: Apache-2.0
// What every role of the consumer (consumer_core.cuh) shares: the clock,
// pauses and backoff, the abort mirror, done flags, where a ring's slot and
// record lie, a staged copy's origin, where a run starts, and a unit's exit.
#pragma once

#include <cuda/atomic>

#include <cstdint>

#include "megaring/consumer.hpp"
#include "megaring/handler.cuh"
#include "megaring/detail/atomic_ref.hpp"
#include "megaring/consumer/cost_count.hpp"
#include "megaring/slot_abi.h"

#if !defined(__CUDA_ARCH__)
#include <chrono>
#include <thread>
#endif

namespace megaring {

namespace detail {

MR_HDI uint64_t now_ns() {
#if defined(__CUDA_ARCH__)
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
#else
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
#endif
}

// Pause for about `ns`. The device sleeps the warp; the host yields below a
// microsecond (an OS sleep cannot be shorter) and sleeps above.
MR_HDI void pause_ns(uint32_t ns) {
#if defined(__CUDA_ARCH__)
  // One __nanosleep sleeps about a millisecond at most (CUDA programming
  // guide): a longer pause is a series of them.
  constexpr uint32_t kMaxNanosleep = 1'000'000;
  for (uint32_t left = ns; left != 0;) {
    const uint32_t step = left < kMaxNanosleep ? left : kMaxNanosleep;
    __nanosleep(step);
    left -= step;
  }
#else
  if (ns < 1000)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
#endif
}

// Bounded exponential backoff: min_ns, doubling, capped at max_ns.
struct Backoff {
  uint32_t current;
  uint32_t min_ns;
  uint32_t max_ns;
  MR_HDI Backoff(uint32_t lo, uint32_t hi) : current(lo), min_ns(lo), max_ns(hi) {}
  MR_HDI void reset() { current = min_ns; }
  MR_HDI void pause() {
    pause_ns(current);
    uint32_t next = current ? current * 2 : 1;
    current = next > max_ns ? max_ns : next;
  }
};

// Executors' and handlers' view of an abort: the fetcher's mirror in
// consumer memory (only the fetcher reads the host's flag).
MR_HDI bool abort_requested(const ConsumerParams& p) {
  // Relaxed: a stop request; it carries no data.
  return DevRef<uint32_t>(p.priv->abort_seen).load(cuda::std::memory_order_relaxed) != 0;
}

enum class Next : uint32_t { kRun = 1, kExit = 2 };

// A done flag: seq + 1 (so that a zeroed flag is never a slot's), the ring
// the slot came from, and whether the completer must write its record
// (KEEP_RESULT, or a status other than OK). The flag names the ring so
// that the completer needs no other load to count each ring's tickets.
// The shift overflows at sequence number 2^59: eighteen years of slots at a
// billion a second.
inline constexpr uint32_t kDoneFlagRingShift = 1;
inline constexpr uint32_t kDoneFlagSeqShift = 5;  // 4 bits of ring: MR_MAX_RINGS
static_assert(MR_MAX_RINGS <= (1u << (kDoneFlagSeqShift - kDoneFlagRingShift)), "ring fits the flag");
MR_HDI uint64_t done_flag(uint64_t seq, uint32_t ring, bool needs_record) {
  return ((seq + 1) << kDoneFlagSeqShift) | (static_cast<uint64_t>(ring) << kDoneFlagRingShift) |
         (needs_record ? 1u : 0u);
}
MR_HDI bool done_flag_names(uint64_t flag, uint64_t seq) {
  return (flag >> kDoneFlagSeqShift) == seq + 1;
}
MR_HDI uint32_t done_flag_ring(uint64_t flag) {
  return static_cast<uint32_t>(flag >> kDoneFlagRingShift) & (MR_MAX_RINGS - 1);
}
MR_HDI bool done_flag_needs_record(uint64_t flag) { return (flag & 1u) != 0; }

// Ring `ring`'s slot and record of `ticket`.
MR_HDI mr_slot* ring_slot(const ConsumerParams& p, uint32_t ring, uint64_t ticket) {
  return &p.slots[static_cast<uint64_t>(ring) * p.capacity + (ticket & p.mask)];
}
MR_HDI mr_completion* ring_record(const ConsumerParams& p, uint32_t ring, uint64_t ticket) {
  return &p.completions[static_cast<uint64_t>(ring) * p.capacity + (ticket & p.mask)];
}

// A staged copy (ConsumerParams::staged) says where its slot came from: its
// header holds the ring's whole ticket, its reserved word the ring and
// whether the published reserved word was non-zero (run_slot faults that).
inline constexpr uint32_t kStagedReservedSet = 1u << 8;
MR_HDI uint32_t staged_reserved(uint32_t ring, uint32_t published_reserved) {
  return ring | (published_reserved != 0 ? kStagedReservedSet : 0u);
}
struct SlotOrigin {
  uint64_t ticket;
  uint32_t ring;
};
// Turns a staged copy back into the slot as published (header READY, the
// reserved word 0 or not) and returns where it came from.
MR_HDI SlotOrigin unstage(mr_slot& s) {
  const SlotOrigin origin{s.header, s.reserved & (MR_MAX_RINGS - 1)};
  s.header = mr_make_header(origin.ticket, MR_SLOT_READY);
  s.reserved = (s.reserved & kStagedReservedSet) != 0 ? 1u : 0u;
  return origin;
}

// The second read of a table entry's handle (a seqlock's): `first` if the
// handle still holds it, else 0, which no slot matches. ACQUIRE fence: the
// body loads before it are done before the handle is read again, so a body
// word from a later rewrite (which the host makes only after it cleared the
// handle: table_writes.hpp) shows here as a changed handle.
MR_HDI uint32_t same_handle_after(uint32_t& handle_word, uint32_t first) {
  cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_device);
  return DevRef<uint32_t>(handle_word).load(cuda::std::memory_order_relaxed) == first ? first : 0;
}

// Where this run starts: ring r's first ticket to stage (r < MR_MAX_RINGS),
// or with r == MR_MAX_RINGS the sequence. p.first_ticket for every one on
// the first run; after a suspension, where the last run stopped (the
// fetcher saved them, and the completer had published everything staged
// below them, so they are the rings' DONE_COUNTs too). Relaxed: the
// relaunch orders the last run's stores before this run.
MR_HDI uint64_t start_cursor(const ConsumerParams& p, uint32_t r) {
  if (p.resume == 0) return p.first_ticket;
  return r == MR_MAX_RINGS
             ? DevRef<uint64_t>(p.priv->resume_seq).load(cuda::std::memory_order_relaxed)
             : DevRef<uint64_t>(p.priv->resume_next[r]).load(cuda::std::memory_order_relaxed);
}

// What a fetch round or a completer step did.
enum class Progress : uint32_t { kIdle = 0, kWorked = 1, kExit = 2 };

// Called once by each unit's leader as it leaves the loop: the executors,
// then the I/O unit. The last one writes exited_units to the host, once: no
// cross-PCIe read-modify-write.
MR_HDI void unit_exit(const ConsumerParams& p) {
  // acq_rel: the completer's exit check acquires the count.
  const uint32_t before =
      DevRef<uint32_t>(p.priv->exited_units).fetch_add(1, cuda::std::memory_order_acq_rel);
  if (before + 1 == p.units + 1) {
    // RELEASE (system): every record and DONE_COUNT this consumer wrote
    // happens before the host sees the consumer as exited.
    SysRef<uint32_t>(p.completion_control->exited_units)
        .store(p.units + 1, cuda::std::memory_order_release);
  }
}

}  // namespace detail
}  // namespace megaring
