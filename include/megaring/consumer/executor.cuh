// SPDX-License-Identifier: Apache-2.0
// The executors (E1, E2 of slot_abi.h): claim chunks of staged tickets,
// admit each slot against the tenant table, record its outcome and mark it
// done; they never touch host memory. Control operations park them between
// chunks.
#pragma once

#include <cuda/atomic>

#include <cstdint>

#include "megaring/consumer/consumer_common.cuh"

namespace megaring {

namespace detail {

// Tickets an executor claims at once, at most: a chunk amortises the claim's
// device RMW, and a share of the backlog (backlog / units) keeps the other
// executors busy.
inline constexpr uint32_t kMaxChunk = 16;

// Control operations (src/runtime/control_barrier.hpp): an executor that
// finds a request newer than the last one it answered parks, between
// chunks, so that no slot of its runs while the host changes the tables. It
// acknowledges the epoch in its note (RELEASE: every table load of the
// slots it ran happens before the host's writes that follow the
// acknowledgement), then waits until the host releases that epoch, or an
// abort. Returns kExit on abort.
MR_HDI Next park_for_control(const ConsumerParams& p, uint32_t unit, uint64_t epoch) {
  if (p.unit_notes != nullptr)
    DevRef<uint64_t>(p.unit_notes[unit].control_parked).store(epoch, cuda::std::memory_order_release);
  Backoff backoff(p.poll_backoff_min_ns, p.poll_backoff_max_ns);
  for (;;) {
    // ACQUIRE (device): the host stores the release epoch after every table
    // word of the change has landed (the table store's finish); the slots
    // this executor runs next read them.
    if (DevRef<uint64_t>(p.priv->control_release).load(cuda::std::memory_order_acquire) >= epoch)
      return Next::kRun;
    if (abort_requested(p)) return Next::kExit;
    backoff.pause();
  }
}

// An executor that leaves its loop answers every later control request: it
// runs no slot any more. RELEASE: its table loads before.
MR_HDI void leave_control(const ConsumerParams& p, uint32_t unit) {
  if (p.unit_notes != nullptr)
    DevRef<uint64_t>(p.unit_notes[unit].control_parked).store(~0ull, cuda::std::memory_order_release);
}

// E1: claims a chunk [*first, *first + *count) of staged tickets. Returns
// kExit on abort, or once every ticket below stop_at has been claimed.
// Between chunks it answers control requests newer than *control_seen (the
// executor's own, from 0).
MR_HDI Next claim_chunk(const ConsumerParams& p, uint32_t unit, uint64_t* control_seen,
                        uint64_t* first, uint32_t* count) {
  DevRef<uint64_t> claim(p.priv->claim_cursor);
  Backoff backoff(p.poll_backoff_min_ns, p.poll_backoff_max_ns);
  for (;;) {
    // Four loads in flight together (device memory: one L2 round trip, not
    // four): the relaxed ones first, as a GPU thread's acquire load holds
    // back every load after it. The cursor read before `fetched` is only a
    // guess; the CAS below checks it.
    const bool abort = abort_requested(p);
    // Relaxed: a request; park_for_control's acquire orders what follows it.
    const uint64_t control = DevRef<uint64_t>(p.priv->control_request).load(cuda::std::memory_order_relaxed);
    uint64_t c = claim.load(cuda::std::memory_order_relaxed);
    // ACQUIRE (device): pairs with the fetcher's release of `fetched`; the
    // staged copies below it are visible to the reads after the claim.
    const uint64_t fetched = DevRef<uint64_t>(p.priv->fetched).load(cuda::std::memory_order_acquire);
    if (abort) return Next::kExit;
    if (control > *control_seen) {
      *control_seen = control;
      if (park_for_control(p, unit, control) == Next::kExit) return Next::kExit;
      backoff.reset();
      continue;  // the cursors again: they moved while it was parked
    }
    if (c < fetched) {
      const uint64_t backlog = fetched - c;
      uint64_t k = backlog / p.units;
      k = k < 1 ? 1 : (k > kMaxChunk ? kMaxChunk : k);
      MR_COST(device_rmws, 1);
      // Relaxed: the cursor only hands out distinct tickets; the acquire
      // above ordered their staged copies (c + k <= fetched, which only grows).
      if (claim.compare_exchange_weak(c, c + k, cuda::std::memory_order_relaxed)) {
        *first = c;
        *count = static_cast<uint32_t>(k);
        return Next::kRun;
      }
      continue;
    }
    // Relaxed mirror: see fetch_round.
    if (c >= DevRef<uint64_t>(p.priv->stop_seq).load(cuda::std::memory_order_relaxed))
      return Next::kExit;
#if defined(__CUDA_ARCH__)
    // Device memory only, and a unit that waits here is the next to run a
    // slot: the minimum backoff keeps a call's latency low.
    backoff.reset();
#endif
    backoff.pause();
  }
}

// E1, the operator's view: the executor's leader notes the slot it takes
// (its staged copy, before unstage) in its own line of consumer memory:
// three relaxed stores, read by Runtime::dump_state only; a chunk that one
// thread runs alone is noted once, by its first slot.
MR_HDI void note_unit(const ConsumerParams& p, uint32_t unit, const mr_slot& staged,
                      uint32_t chunk_slots) {
  if (p.unit_notes == nullptr) return;
  UnitNote& n = p.unit_notes[unit];
  DevRef<uint64_t>(n.ticket).store(staged.header, cuda::std::memory_order_relaxed);
  DevRef<uint64_t>(n.tenant_opcode)
      .store((static_cast<uint64_t>(staged.tenant) << 32) | staged.opcode,
             cuda::std::memory_order_relaxed);
  DevRef<uint64_t>(n.what).store(unit_note_what(staged.reserved & (MR_MAX_RINGS - 1), chunk_slots),
                                 cuda::std::memory_order_relaxed);
}

// E1 (admission), leader only, on the private slot copy. A tenant-less slot
// (tenant 0) runs as published, unless its opcode lies in the tenant-window
// range. A tenant slot runs only if its id matches an ACTIVE entry of the
// tenant table, its opcode lies in that entry's window and the index's
// grants hold the tenant-local opcode; the copy's opcode then becomes the
// tenant-local one, which means what the same opcode means in a tenant-less
// slot. Returns false with `out` set (FAULT or REVOKED) when the slot must
// not run. Never reads outside the tables.
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
  // window and state (and grants) after it. So: read state, window and the
  // slot's grant word, ACQUIRE fence, then the tenant word. If any of the
  // first reads saw the new entry, the tenant word read sees the new id,
  // which a slot of the old id does not match. Relaxed word loads otherwise:
  // each word is read whole, old or new, and the grant word once, so the
  // slot is admitted under the old grants or the new, never a mix.
  const uint32_t state = DevRef<uint32_t>(entry->state).load(cuda::std::memory_order_relaxed);
  const uint32_t base = DevRef<uint32_t>(entry->base_opcode).load(cuda::std::memory_order_relaxed);
  const uint32_t cap = DevRef<uint32_t>(entry->opcode_cap).load(cuda::std::memory_order_relaxed);
  // Outside the window the bit is never looked at (any in-range word serves).
  const uint32_t grant_bit = mr_grant_bit(s.opcode - base);
  const uint64_t grants = DevRef<uint64_t>(p.tenant_grants[index].words[grant_bit >> 6])
                              .load(cuda::std::memory_order_relaxed);
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
  if (((grants >> (grant_bit & 63u)) & 1u) == 0) {
    MR_COST(device_rmws, 1);
    DevRef<uint64_t>(counters->not_granted).fetch_add(1, cuda::std::memory_order_relaxed);
    out.set_fault(MR_FAULT_NOT_GRANTED);
    return false;
  }
  MR_COST(device_rmws, 1);
  DevRef<uint64_t>(counters->admitted).fetch_add(1, cuda::std::memory_order_relaxed);
  s.opcode -= base;
  return true;
}

// E2, first half: stores the outcome of the slot staged at `seq`, which
// came from `origin` (relaxed word stores: the done flag's release publishes
// them) and returns the done flag to publish. `published_flags` are the
// slot's flags as published (KEEP_RESULT asks for a record).
MR_HDI uint64_t record_outcome(const ConsumerParams& p, uint64_t seq, SlotOrigin origin,
                               uint32_t published_flags, Outcome out) {
  const uint64_t pos = seq & p.mask;
  // A record holds a 2-bit status: a handler's invalid one is a fault of its
  // own making, never read as another status.
  if (out.status > MR_STATUS_REVOKED) out.set_fault(MR_FAULT_BAD_ARGUMENT);
  const bool needs_record =
      (published_flags & MR_SLOT_FLAG_KEEP_RESULT) != 0 || out.status != MR_STATUS_OK;
  MR_COST(slots, 1);
  DevRef<uint64_t>(p.outcomes[pos].result).store(out.result, cuda::std::memory_order_relaxed);
  DevRef<uint64_t>(p.outcomes[pos].stamp)
      .store(mr_make_stamp(origin.ticket, out.status, out.fault), cuda::std::memory_order_relaxed);
  return done_flag(seq, origin.ring, needs_record);
}

// E2: records the outcome of the slot staged at `seq` and marks it done.
MR_HDI void finish_ticket(const ConsumerParams& p, uint64_t seq, SlotOrigin origin,
                          uint32_t published_flags, const Outcome& out) {
  const uint64_t flag = record_outcome(p, seq, origin, published_flags, out);
  // RELEASE (device): the outcome, and the handler's memory effects (the
  // block's, ordered before thread 0 by its barrier), before the completer
  // acquires the flag.
  DevRef<uint64_t>(p.done_flags[seq & p.mask]).store(flag, cuda::std::memory_order_release);
}

// Built-ins that one thread runs alone and that wait for nothing (no FENCE,
// no DELAY_NS), of a tenant-less slot; `opcode_tenant` is the slot's second
// 8-byte word (opcode, then tenant). A GPU executor runs a chunk made only
// of these in thread 0, without a block barrier a slot.
MR_HDI bool runs_alone(uint64_t opcode_tenant) {
  const uint32_t opcode = static_cast<uint32_t>(opcode_tenant);
  return (opcode_tenant >> 32) == 0 &&
         (opcode == MR_OP_NOP || opcode == MR_OP_READ_CLOCK || opcode == MR_OP_STORE_U32 ||
          opcode == MR_OP_ATOMIC_ADD);
}

// Waits (leader only) until every slot staged before `seq` has completed,
// or abort. Used by MR_OP_FENCE.
MR_HDI bool wait_for_prefix(const ConsumerParams& p, uint64_t seq) {
  Backoff backoff(p.poll_backoff_min_ns, p.poll_backoff_max_ns);
  for (;;) {
    // ACQUIRE: the earlier tickets' effects happen before the fence completes.
    if (DevRef<uint64_t>(p.priv->done_cursor).load(cuda::std::memory_order_acquire) >= seq)
      return true;
    if (abort_requested(p)) return false;
    backoff.pause();
  }
}

}  // namespace detail
}  // namespace megaring
