// The consumer side of the ring protocol, written once for both consumers:
// compiled for the device it runs one lane of each persistent-kernel block;
// compiled for the host it runs each CPU worker thread. Step names (C1..C6)
// refer to the protocol in megaring/slot_abi.h.
//
// Only the unit leader (thread 0 of a block; the worker itself on the CPU)
// calls the functions here; handlers run block-wide (builtin_ops.cuh).
#pragma once

#include <cuda/atomic>

#include <cstdint>

#include "megaring/consumer.hpp"
#include "megaring/detail/cost_count.hpp"
#include "megaring/slot_abi.h"

#if !defined(__CUDA_ARCH__)
#include <chrono>
#include <thread>
#endif

#define MR_HD __host__ __device__
#define MR_HDI __host__ __device__ __forceinline__
#if defined(__CUDA_ARCH__)
#define MR_UNROLL _Pragma("unroll")
#else
#define MR_UNROLL
#endif

namespace megaring {

// What a handler reports for one slot.
struct Outcome {
  uint64_t result = 0;
  uint16_t status = MR_STATUS_OK;
  uint16_t fault = MR_FAULT_NONE;

  MR_HDI void set_fault(uint16_t code) {
    status = MR_STATUS_FAULT;
    fault = code;
    result = 0;
  }
  // Not executed: the slot's tenant was unregistered.
  MR_HDI void set_revoked() {
    status = MR_STATUS_REVOKED;
    fault = MR_FAULT_NONE;
    result = 0;
  }
  // The handler stopped because of an abort: the unit leaves the slot
  // uncompleted and exits; the host reports it ABORTED after the stop.
  MR_HDI void abandon() { status = MR_STATUS_ABORTED; }
  MR_HDI bool abandoned() const { return status == MR_STATUS_ABORTED; }
  MR_HDI bool ok() const { return status == MR_STATUS_OK; }
};

namespace detail {

// Words shared with the other side of PCIe: system scope.
template <class T>
using SysRef = cuda::atomic_ref<T, cuda::thread_scope_system>;
// Consumer-private words shared among units: device scope.
template <class T>
using DevRef = cuda::atomic_ref<T, cuda::thread_scope_device>;

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

MR_HDI bool abort_requested(const ConsumerParams& p) {
  MR_COST(host_reads, 1);
  // Relaxed: the flag carries no data; the consumer only stops early.
  return SysRef<uint32_t>(p.submission->abort_flag).load(cuda::std::memory_order_relaxed) != 0;
}

// Per-unit state of the leader between slots.
struct LeaderState {
  uint64_t ticket = 0;       // claimed ticket (valid when has_claim)
  bool has_claim = false;
  bool stopping = false;     // a handler abandoned its slot on abort
  uint32_t unit = 0;
  uint64_t last_heartbeat_ns = 0;
};

enum class Next : uint32_t { kRun = 1, kExit = 2 };

MR_HDI void maybe_heartbeat(const ConsumerParams& p, LeaderState& st) {
  if (st.unit != 0) return;  // one writer: unit 0's leader
  const uint64_t now = now_ns();
  if (now - st.last_heartbeat_ns < p.heartbeat_interval_ns) return;
  st.last_heartbeat_ns = now;
  MR_COST(host_writes, 1);  // its own line, one writer
  MR_COST(partial_line_writes, 1);
  // Relaxed: a liveness stamp, it orders nothing.
  SysRef<uint64_t>(p.completion_control->heartbeat_ns).store(now, cuda::std::memory_order_relaxed);
}

// C3: copies a published slot's body (plain loads, ordered after the header
// acquire by the caller) into `body`, with `header` as its header.
MR_HDI void copy_slot_body(const mr_slot* slot, uint64_t header, mr_slot* body) {
  // As the GPU reads it: four 16-byte loads in flight together, one round
  // trip that the unit waits for (after the header's).
  MR_COST(host_reads, 4);
  MR_COST(awaited_round_trips, 1);
#if defined(__CUDA_ARCH__)
  // Over PCIe each load instruction is its own read request: the 64-byte slot
  // (64-byte aligned, slot_abi.h) as four 16-byte loads, all in flight at
  // once, instead of one request per field. Written as asm so that the
  // compiler neither splits nor repeats them (from C++ it issued five,
  // differently in each caller). Weak loads: the caller's header acquire
  // orders them after it, and the "memory" clobber keeps them below it.
  // Little-endian halves of the 8-byte words, at the offsets slot_abi.h
  // asserts.
  static_assert(sizeof(mr_slot) == 64 && MR_SLOT_ARGS == 5, "slot layout");
  ulonglong2 w[4];
  for (int k = 0; k < 4; ++k) {
    asm volatile("ld.global.v2.u64 {%0, %1}, [%2];"
                 : "=l"(w[k].x), "=l"(w[k].y)
                 : "l"(__cvta_generic_to_global(reinterpret_cast<const ulonglong2*>(slot) + k))
                 : "memory");
  }
  const ulonglong2 w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
  body->header = header;                                  // bytes 0..7 (already acquired)
  body->opcode = static_cast<uint32_t>(w0.y);             // 8..11
  body->tenant = static_cast<uint32_t>(w0.y >> 32);       // 12..15
  body->flags = static_cast<uint32_t>(w1.x);              // 16..19
  body->reserved = static_cast<uint32_t>(w1.x >> 32);     // 20..23
  body->args[0] = w1.y;                                   // 24..31
  body->args[1] = w2.x;
  body->args[2] = w2.y;
  body->args[3] = w3.x;
  body->args[4] = w3.y;
#else
  body->header = header;
  body->opcode = slot->opcode;
  body->tenant = slot->tenant;
  body->flags = slot->flags;
  body->reserved = slot->reserved;
  for (uint32_t i = 0; i < MR_SLOT_ARGS; ++i) body->args[i] = slot->args[i];
#endif
}

// How many tickets past its own the scout looks at once its slot is
// published: a burst of up to this many wakes the units behind it after one
// PCIe round trip, overlapped with the scout's own body read.
inline constexpr uint32_t kScanAhead = 16;

// Issues relaxed loads of the headers of tickets first .. first + kScanAhead
// - 1 into `headers`, all in flight together. Hints only (see scan_cursor).
MR_HDI void load_headers_ahead(const ConsumerParams& p, uint64_t first, uint64_t* headers) {
  MR_COST(host_reads, kScanAhead);  // in flight with the body's: not awaited on their own
MR_UNROLL
  for (uint32_t k = 0; k < kScanAhead; ++k) {
#if defined(__CUDA_ARCH__)
    // asm so that each is its own request, issued before any is used.
    asm volatile("ld.relaxed.sys.global.u64 %0, [%1];"
                 : "=l"(headers[k])
                 : "l"(__cvta_generic_to_global(&p.slots[(first + k) & p.mask].header)));
#else
    headers[k] = SysRef<uint64_t>(p.slots[(first + k) & p.mask].header)
                     .load(cuda::std::memory_order_relaxed);
#endif
  }
}

// Mirrors an abort that a unit reading the submission region saw, for the
// units that do not read it.
MR_HDI void mirror_abort(const ConsumerParams& p) {
  // Relaxed: a stop request; it carries no data.
  DevRef<uint32_t>(p.priv->abort_seen).store(1, cuda::std::memory_order_relaxed);
}

// C1..C3: claim a ticket (once), wait until it is published, copy its body.
// Returns kExit on abort (before running another slot), or when a graceful
// shutdown's stop_at says the claimed ticket will never be published.
//
// A unit waiting for its ticket plays one of two roles:
//  - the scout, if its ticket is scan_cursor (the oldest ticket not yet seen
//    published): it polls its own slot header, the abort flag and, every 8th
//    poll, stop_at over PCIe, at the minimum backoff. When its slot is
//    published it looks kScanAhead tickets further and moves scan_cursor
//    past every published one, which hands the role on;
//  - otherwise it waits behind the scout on device memory alone (scan_cursor
//    and the mirrors): at the minimum backoff within kScanAhead + 1 tickets
//    of scan_cursor, where the scout's next scan can reach it; further back,
//    backing off up to the maximum.
// A unit whose ticket is below scan_cursor reads its slot at once.
MR_HDI Next acquire_next_slot(const ConsumerParams& p, LeaderState& st, mr_slot* body,
                              uint64_t* ticket_out) {
  if (st.stopping) return Next::kExit;
  // Here as well as while polling: a unit that never finds its next slot
  // empty (a backlog) still beats, once per slot at most.
  maybe_heartbeat(p, st);
  if (!st.has_claim) {
    // C1. Relaxed: the cursor only hands out distinct tickets; the slot's
    // contents are ordered by the header acquire below.
    MR_COST(device_rmws, 1);
    st.ticket = DevRef<uint64_t>(p.priv->claim_cursor).fetch_add(1, cuda::std::memory_order_relaxed);
    st.has_claim = true;
  }
  mr_slot* slot = &p.slots[st.ticket & p.mask];
  const uint64_t ready = mr_make_header(st.ticket, MR_SLOT_READY);
  DevRef<uint64_t> scan_cursor(p.priv->scan_cursor);
  Backoff backoff(p.poll_backoff_min_ns, p.poll_backoff_max_ns);
  for (uint32_t spins = 0;; ++spins) {
    // Relaxed: a hint that says whom to poll; the header acquire below orders
    // the slot's contents.
    const uint64_t scanned = scan_cursor.load(cuda::std::memory_order_relaxed);
    if (st.ticket > scanned) {
      // Behind the scout: device memory only. Relaxed mirrors: stop requests.
      if (DevRef<uint32_t>(p.priv->abort_seen).load(cuda::std::memory_order_relaxed) != 0)
        return Next::kExit;
      if (st.ticket >= DevRef<uint64_t>(p.priv->stop_at_seen).load(cuda::std::memory_order_relaxed))
        return Next::kExit;
      maybe_heartbeat(p, st);
      // Within reach of the scout's next scan: next in line for a burst (or
      // for the scout role), so poll at the minimum backoff. Device memory
      // only; the H100 runs put each wake-up at up to twice the backoff.
      if (st.ticket - scanned <= kScanAhead + 1) backoff.reset();
      backoff.pause();
      continue;
    }
    const bool scout = st.ticket == scanned;
    // The abort flag is loaded before the header, and nothing that depends
    // on it comes between them, so that on the GPU both PCIe reads are in
    // flight together (a conditional store in between made them two round
    // trips: bench/NOTES.md).
    const bool aborting = abort_requested(p);
    // C2. ACQUIRE (system): pairs with the producer's release of the header
    // (P3), so the body stores (P2) are visible to the reads below.
    MR_COST(host_reads, 1);
    MR_COST(awaited_round_trips, 1);
    const uint64_t header = SysRef<uint64_t>(slot->header).load(cuda::std::memory_order_acquire);
    if (aborting) {
      mirror_abort(p);
      return Next::kExit;
    }
    if (header == ready) {
      if (scout) {
        uint64_t ahead[kScanAhead];
        load_headers_ahead(p, st.ticket + 1, ahead);  // in flight with the body reads
        // C3. Read the body once into private memory; only the copy is used.
        copy_slot_body(slot, header, body);
        uint64_t next = st.ticket + 1;
        for (uint32_t k = 0; k < kScanAhead && ahead[k] == mr_make_header(next, MR_SLOT_READY); ++k)
          ++next;
        // Relaxed: a hint (above); the scout's last write as scout.
        scan_cursor.store(next, cuda::std::memory_order_relaxed);
        // Relaxed: statistics.
        MR_COST(device_rmws, 2);
        DevRef<uint64_t>(p.priv->scout_rounds).fetch_add(1, cuda::std::memory_order_relaxed);
        DevRef<uint64_t>(p.priv->tickets_scanned)
            .fetch_add(next - st.ticket, cuda::std::memory_order_relaxed);
      } else {
        copy_slot_body(slot, header, body);  // C3
      }
      *ticket_out = st.ticket;
      st.has_claim = false;
      return Next::kRun;
    }
    // Not published. Below scan_cursor that cannot last (a scout saw it
    // published, and it stays so until this unit completes it).
    if (!scout) {
      // Relaxed: statistics.
      MR_COST(device_rmws, 1);
      DevRef<uint64_t>(p.priv->not_ready_retries).fetch_add(1, cuda::std::memory_order_relaxed);
      backoff.pause();
      continue;
    }
    maybe_heartbeat(p, st);
    if ((spins & 7u) == 7u) {
      // Relaxed: stop_at is only compared with tickets; a ticket below it is
      // guaranteed to be published, so a stale read only delays exit.
      MR_COST(host_reads, 1);
      const uint64_t stop_at =
          SysRef<uint64_t>(p.submission->stop_at).load(cuda::std::memory_order_relaxed);
      if (stop_at != ~0ull)
        DevRef<uint64_t>(p.priv->stop_at_seen).store(stop_at, cuda::std::memory_order_relaxed);
      if (st.ticket >= stop_at) return Next::kExit;
    }
    // The scout is first in line for a new slot: minimum backoff.
    backoff.reset();
    backoff.pause();
  }
}

// C4 (admission), leader only, on the private slot copy. A tenant-less slot
// (tenant 0) runs as published, unless its opcode lies in the tenant-window
// range. A tenant slot runs only if its id matches an ACTIVE entry of the
// tenant table and its opcode lies in that entry's window; the copy's opcode
// then becomes the tenant-local one, which means what the same opcode means
// in a tenant-less slot. Returns false with `out` set (FAULT or REVOKED)
// when the slot must not run. Never reads outside the table.
MR_HDI bool admit_slot(const ConsumerParams& p, mr_slot& s, Outcome& out) {
  if (s.tenant == 0) {
    if (s.opcode >= MR_OP_TENANT_BASE) {
      out.set_fault(MR_FAULT_OUT_OF_WINDOW);
      return false;
    }
    return true;
  }
  const uint32_t index = s.tenant & MR_TENANT_INDEX_MASK;
  if (index == 0 || index >= p.max_tenants) {
    out.set_fault(MR_FAULT_BAD_TENANT);
    return false;
  }
  mr_tenant_entry* entry = &p.tenants[index];
  // The tenant word works as a seqlock sequence. Revocation stores the state
  // word alone; reuse of an index (only once its previous tenant drained, and
  // always under a new generation) stores the new tenant word first and the
  // window and state after it. So: read state and window, ACQUIRE fence, then
  // the tenant word. If any of the first reads saw the new entry, the tenant
  // word read sees the new id, which a slot of the old id does not match.
  // Relaxed word loads otherwise: each word is read whole, old or new.
  const uint32_t state = DevRef<uint32_t>(entry->state).load(cuda::std::memory_order_relaxed);
  const uint32_t base = DevRef<uint32_t>(entry->base_opcode).load(cuda::std::memory_order_relaxed);
  const uint32_t cap = DevRef<uint32_t>(entry->opcode_cap).load(cuda::std::memory_order_relaxed);
  cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_device);
  if (DevRef<uint32_t>(entry->tenant).load(cuda::std::memory_order_relaxed) != s.tenant) {
    out.set_fault(MR_FAULT_BAD_TENANT);  // never registered here, or another generation
    return false;
  }
  mr_tenant_counters* counters = &p.tenant_counters[index];
  if (state != MR_TENANT_ACTIVE) {
    // Relaxed: statistics only.
    MR_COST(device_rmws, 1);
    DevRef<uint64_t>(counters->revoked).fetch_add(1, cuda::std::memory_order_relaxed);
    out.set_revoked();
    return false;
  }
  if (s.opcode < base || s.opcode - base >= cap) {
    MR_COST(device_rmws, 1);
    DevRef<uint64_t>(counters->out_of_window).fetch_add(1, cuda::std::memory_order_relaxed);
    out.set_fault(MR_FAULT_OUT_OF_WINDOW);
    return false;
  }
  MR_COST(device_rmws, 1);
  DevRef<uint64_t>(counters->admitted).fetch_add(1, cuda::std::memory_order_relaxed);
  s.opcode -= base;
  return true;
}

// Done flags that advance_done reads at once: one 128-byte line of them.
inline constexpr uint32_t kDoneFlagBatch = 16;

// C6 (second half): move the done cursor over every consecutive completed
// ticket and publish it as DONE_COUNT. Only the advance-lock holder writes
// done_cursor and DONE_COUNT, so DONE_COUNT never decreases.
//
// The flags are read kDoneFlagBatch at a time, all loads in flight together,
// so that a run of completed tickets costs one load latency per batch rather
// than one per ticket (on the H100 that alone did not move the throughput
// ceiling: bench/NOTES.md, "What bounds the consumer").
MR_HDI void advance_done(const ConsumerParams& p) {
  DevRef<uint32_t> lock(p.priv->advance_lock);
  DevRef<uint64_t> cursor(p.priv->done_cursor);
  for (;;) {
    // seq_cst exchange: either we take the lock, or its holder's recheck
    // (seq_cst load after its unlock) is ordered after our flag store.
    MR_COST(device_rmws, 1);
    if (lock.exchange(1, cuda::std::memory_order_seq_cst) != 0) return;
    MR_COST(locks, 1);
    const uint64_t start = cursor.load(cuda::std::memory_order_relaxed);
    uint64_t next = start;
    // Device: relaxed, ordered by the fence below. Host: acquire (free on
    // x86), which ThreadSanitizer follows where it ignores fences.
#if defined(__CUDA_ARCH__)
    constexpr auto kFlagOrder = cuda::std::memory_order_relaxed;
#else
    constexpr auto kFlagOrder = cuda::std::memory_order_acquire;
#endif
    for (uint32_t counted = kDoneFlagBatch; counted == kDoneFlagBatch;) {
      uint64_t flags[kDoneFlagBatch];
MR_UNROLL
      for (uint32_t k = 0; k < kDoneFlagBatch; ++k)
        flags[k] = DevRef<uint64_t>(p.done_flags[(next + k) & p.mask]).load(kFlagOrder);
      counted = 0;
      while (counted < kDoneFlagBatch && flags[counted] == next + counted + 1) ++counted;
      next += counted;
    }
    if (next != start) {
#if defined(__CUDA_ARCH__)
      // ACQUIRE fence (device): with the flag loads above, orders each
      // counted ticket's completion record before our DONE_COUNT release
      // below (cumulativity carries it to system scope).
      cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_device);
#endif
      // RELEASE (system): every record below `next` is visible to a host that
      // acquires DONE_COUNT. Its line is written by whichever unit holds the
      // lock, and read by the host.
      MR_COST(system_fences, 1);
      MR_COST(fences_under_lock, 1);
      MR_COST(host_writes, 1);
      MR_COST(shared_line_writes, 1);
      MR_COST(partial_line_writes, 1);
      SysRef<uint64_t>(p.completion_control->done_count)
          .store(next, cuda::std::memory_order_release);
      // RELEASE, after DONE_COUNT: a FENCE that acquires the cursor sees the
      // earlier tickets' effects, and any completion it then publishes is
      // ordered after DONE_COUNT >= its ticket.
      cursor.store(next, cuda::std::memory_order_release);
    }
    lock.store(0, cuda::std::memory_order_seq_cst);
    // Recheck after unlocking: a unit that set the next flag while we held
    // the lock gave up on the lock and relies on us to see it.
    if (DevRef<uint64_t>(p.done_flags[next & p.mask]).load(cuda::std::memory_order_seq_cst) !=
        next + 1)
      return;
  }
}

// C5 + C6: publish ticket's completion record, then mark it done.
MR_HDI void complete_slot(const ConsumerParams& p, uint64_t ticket, const Outcome& outcome) {
  mr_completion* record = &p.completions[ticket & p.mask];
  // Four stores into a 16-byte record; four records share a line, and
  // neighbouring tickets run on other units.
  MR_COST(host_writes, 4);
  MR_COST(shared_line_writes, 4);
  MR_COST(partial_line_writes, 4);
  MR_COST(system_fences, 1);  // the tag's release
  MR_COST(slots, 1);
  record->result = outcome.result;
  record->status = outcome.status;
  record->fault = outcome.fault;
  // RELEASE (system): orders the record fields above and the handler's
  // memory effects before the tag a host waiter acquires.
  SysRef<uint32_t>(record->tag).store(mr_completion_tag(ticket), cuda::std::memory_order_release);
  // seq_cst: pairs with advance_done's lock exchange and recheck.
  DevRef<uint64_t>(p.done_flags[ticket & p.mask]).store(ticket + 1, cuda::std::memory_order_seq_cst);
  advance_done(p);
}

// Called once by each unit's leader as it leaves the loop. The last one
// writes exited_units to the host, once: no cross-PCIe read-modify-write.
MR_HDI void unit_exit(const ConsumerParams& p) {
  const uint32_t before =
      DevRef<uint32_t>(p.priv->exited_units).fetch_add(1, cuda::std::memory_order_acq_rel);
  if (before + 1 == p.units) {
    // RELEASE (system): every completion this consumer wrote happens before
    // the host sees the consumer as exited.
    SysRef<uint32_t>(p.completion_control->exited_units)
        .store(p.units, cuda::std::memory_order_release);
  }
}

// Waits (leader only) until every ticket below `ticket` has completed, or
// abort. Used by MR_OP_FENCE.
MR_HDI bool wait_for_prefix(const ConsumerParams& p, uint64_t ticket) {
  Backoff backoff(p.poll_backoff_min_ns, p.poll_backoff_max_ns);
  for (uint32_t spins = 0;; ++spins) {
    // ACQUIRE: the earlier tickets' effects happen before the fence completes.
    if (DevRef<uint64_t>(p.priv->done_cursor).load(cuda::std::memory_order_acquire) >= ticket)
      return true;
    if ((spins & 7u) == 7u && abort_requested(p)) return false;
    backoff.pause();
  }
}

}  // namespace detail
}  // namespace megaring
