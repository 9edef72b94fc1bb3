// SPDX-License-Identifier: Apache-2.0
// The completer (C1 of slot_abi.h): the single writer of completion
// records and DONE_COUNTs. It scans done flags in staged order and
// publishes each run with one system fence.
#pragma once

#include <cuda/atomic>

#include <cstdint>

#include "megaring/consumer/consumer_common.cuh"

namespace megaring {

namespace detail {

// A run of finished tickets is published once it holds this many, ...
inline constexpr uint32_t kFlushSlots = 64;
// ... and done flags are scanned this many at a time (loads in flight
// together, one acquire fence after them), at most kScanLimit a step. 32
// in flight took the kernel to 178 registers a thread, past the 128 that
// let two of its blocks share an SM (tests/check_kernel_registers.cmake).
inline constexpr uint32_t kDoneScanBatch = 16;
inline constexpr uint32_t kScanLimit = 256;

// Tickets past a stalled run whose kept records the completer writes early,
// and how long the run must have stalled first (see publish_beyond_gap):
// longer than slots take in a busy pipeline, so that the pass (kEarlyWindow
// flag loads) runs only behind a really slow slot.
inline constexpr uint32_t kEarlyWindow = 256;
inline constexpr uint64_t kEarlyRecordNs = 10'000;

struct CompleteState {
  // Sequence numbers (the staged queue's order).
  uint64_t published = 0;         // done_cursor as last stored
  uint64_t scanned = 0;           // every slot below it is finished
  // Each ring's tickets among them, counted (a ring's slots are staged in
  // ticket order: rings_v4.pml, M7): ring_scanned[r] is the DONE_COUNT ring
  // r gets at the next flush; `touched` marks the rings the run holds.
  uint64_t ring_scanned[MR_MAX_RINGS] = {};
  uint32_t touched = 0;
  // Each ring's DONE_COUNT as last stored: ring_scanned, or further where a
  // stall pass published a ring past another ring's slow slot
  // (publish_beyond_gap). Never stored lower.
  uint64_t ring_published[MR_MAX_RINGS] = {};
  uint64_t first_pending_ns = 0;  // when scanned first moved past published
  // The run stalled at gap_ticket (staged, not finished) since gap_since_ns;
  // early[] marks the tickets after it whose records went out early.
  uint64_t gap_ticket = ~0ull;
  uint64_t gap_since_ns = 0;
  uint64_t last_lookahead_ns = 0;
  uint64_t early[kEarlyWindow / 64] = {};
  // [record_lo, record_hi): the tickets of the unpublished run that need a
  // record lie in it (empty: none), so a flush without records reads no flag.
  uint64_t record_lo = ~0ull;
  uint64_t record_hi = 0;
  uint64_t flushes = 0, records_written = 0;  // diagnostics
};

// Every ring's count, and the sequence, from where this run starts
// (start_cursor: the DONE_COUNTs the last run published).
MR_HDI void init_complete_state(const ConsumerParams& p, CompleteState& cs) {
  cs.published = cs.scanned = start_cursor(p, MR_MAX_RINGS);
  for (uint32_t r = 0; r < MR_MAX_RINGS; ++r) cs.ring_scanned[r] = cs.ring_published[r] = start_cursor(p, r);
  // As init_fetch_state's: the diagnostics go on from the last run's.
  if (p.resume != 0) {
    cs.flushes = DevRef<uint64_t>(p.priv->flushes).load(cuda::std::memory_order_relaxed);
    cs.records_written = DevRef<uint64_t>(p.priv->records_written).load(cuda::std::memory_order_relaxed);
  }
}

// A record's two words as the executor left them in `outcomes`.
struct RecordWords {
  uint64_t result = 0;
  uint64_t stamp = 0;
};
MR_HDI RecordWords load_outcome(const ConsumerParams& p, uint64_t pos) {
  return {DevRef<uint64_t>(p.outcomes[pos].result).load(cuda::std::memory_order_relaxed),
          DevRef<uint64_t>(p.outcomes[pos].stamp).load(cuda::std::memory_order_relaxed)};
}

// The record of the slot whose done flag and outcome stamp these are: in
// its ring, at its ticket's position.
MR_HDI mr_completion* record_of(const ConsumerParams& p, uint64_t flag, uint64_t stamp) {
  return ring_record(p, done_flag_ring(flag), mr_stamp_ticket(stamp));
}

// Stores a record's result word alone (a flush's first pass, see
// flush_completions). Relaxed: the fence after the pass orders it.
MR_HDI void write_result(mr_completion* rec, uint64_t result) {
  SysRef<uint64_t>(rec->result).store(result, cuda::std::memory_order_relaxed);
}

// Stores a whole record, as one 16-byte store on the device. Weak on the
// device: the caller's fences order it (see flush_completions). On the host,
// atomic, not plain (a waiter may be reading a record written before, its
// result or early, that this rewrites with the same words), and the stamp
// a RELEASE store: the fence before it already orders it, but
// ThreadSanitizer ignores fences, and a waiter that acquires this stamp
// before DONE_COUNT moves (SharedRing::wait) would otherwise look to it as
// a race on the slot's effects. Free on x86.
MR_HDI void write_record(mr_completion* rec, RecordWords w) {
#if defined(__CUDA_ARCH__)
  asm volatile("st.global.v2.u64 [%0], {%1, %2};" ::"l"(__cvta_generic_to_global(rec)),
               "l"(w.result), "l"(w.stamp)
               : "memory");
#else
  SysRef<uint64_t>(rec->result).store(w.result, cuda::std::memory_order_relaxed);
  // RELEASE (system): the result and the slot's effects before the stamp.
  SysRef<uint64_t>(rec->stamp).store(w.stamp, cuda::std::memory_order_release);
#endif
}

// Writes the record of the slot staged at `seq` (done flag `flag`), whose
// stamp publishes it on its own: RELEASE (system) of the stamp, after the
// result. For a kept slot that finished while DONE_COUNT is held back by an
// earlier one (publish_beyond_gap), and the exit's last records.
MR_HDI void write_record_released(const ConsumerParams& p, uint64_t seq, uint64_t flag) {
  const RecordWords w = load_outcome(p, seq & p.mask);
  mr_completion* rec = record_of(p, flag, w.stamp);
  write_result(rec, w.result);
  // RELEASE (system): the result above before the stamp a waiter acquires.
  SysRef<uint64_t>(rec->stamp).store(w.stamp, cuda::std::memory_order_release);
}

// A flush writes its records in two passes around a system fence: first the
// result word of each record, then the records whole (the result again, with
// its stamp). So every stamp is released after its result, and a waiter may
// take a record as soon as it acquires a stamp naming its ticket (H1),
// before DONE_COUNT reaches it.
enum class RecordPass : uint32_t { kResults, kWhole };

// One pass over the records of the slots staged at [lo, hi) that need one.
// With one ring, a line whose four tickets are all in the run is written
// whole (kWhole) if any of them needs a record (the others get their true
// OK record), so the root complex sees full-line writes; a line the run
// covers in part gets single records, and so does every record where
// several rings interleave their slots. The loads of a line (flags, then
// outcomes) are in flight together. Returns the records written (kWhole)
// or the results written (kResults).
MR_HDI uint64_t write_records(const ConsumerParams& p, uint64_t lo, uint64_t hi, RecordPass pass) {
  constexpr uint32_t kPerLine = MR_CACHELINE_BYTES / MR_COMPLETION_BYTES;
  uint64_t written = 0;
  for (uint64_t t = lo; t < hi;) {
    const bool whole_line = p.rings == 1 && p.capacity >= kPerLine &&
                            (t & (kPerLine - 1)) == 0 && hi - t >= kPerLine;
    const uint32_t n = whole_line ? kPerLine : 1u;
    uint64_t flags[kPerLine];
MR_UNROLL
    for (uint32_t k = 0; k < kPerLine; ++k)
      // Relaxed: the scan's acquire fence already ordered these flags' outcomes.
      flags[k] = k < n ? DevRef<uint64_t>(p.done_flags[(t + k) & p.mask])
                             .load(cuda::std::memory_order_relaxed)
                       : 0;
    uint32_t needs = 0;  // bit k: slot t + k needs a record
    for (uint32_t k = 0; k < n; ++k) needs |= done_flag_needs_record(flags[k]) ? 1u << k : 0u;
    if (needs != 0) {
      // kWhole writes every record of a whole line; kResults only those needed.
      const uint32_t write = pass == RecordPass::kWhole ? (1u << n) - 1u : needs;
      RecordWords w[kPerLine];
MR_UNROLL
      for (uint32_t k = 0; k < kPerLine; ++k)
        if ((write >> k) & 1u) w[k] = load_outcome(p, (t + k) & p.mask);
      for (uint32_t k = 0; k < n; ++k) {
        if (((write >> k) & 1u) == 0) continue;
        mr_completion* rec = record_of(p, flags[k], w[k].stamp);
        if (pass == RecordPass::kWhole)
          write_record(rec, w[k]);
        else
          write_result(rec, w[k].result);
        ++written;
      }
      if (pass == RecordPass::kWhole && whole_line) {
        MR_COST(host_writes, 1);  // one whole line, one writer
      } else {
        [[maybe_unused]] const uint32_t words = static_cast<uint32_t>(__builtin_popcount(write));
        MR_COST(host_writes, words);
        MR_COST(partial_line_writes, words);  // part of a line, still one writer
      }
    }
    t += n;
  }
  return written;
}

// Stores count[r] as the DONE_COUNT of each ring r in `rings` (a bit a
// ring) that it moves forward. RELEASE (system): every record written
// before, and (cumulatively, through the done-flag acquires) every counted
// slot's effects, before a host that acquires a DONE_COUNT. One fence for
// them all (the device's fence, then relaxed stores; the host's release
// stores, which ThreadSanitizer follows); each line has one writer.
// Returns whether it stored any.
MR_HDI bool release_ring_counts(const ConsumerParams& p, CompleteState& cs, uint32_t rings,
                                const uint64_t* count) {
  uint32_t moved = 0;
  for (uint32_t r = 0; r < p.rings; ++r)
    if (((rings >> r) & 1u) != 0 && count[r] > cs.ring_published[r]) moved |= 1u << r;
  if (moved == 0) return false;
  MR_COST(system_fences, 1);
#if defined(__CUDA_ARCH__)
  // The release fence, as cuda::atomic_thread_fence(release, system) emits
  // it, marked for the PTX check (tests/check_kernel_ptx.cmake), which
  // cannot otherwise tell it from the fetcher's acquire fence.
  asm volatile("// megaring C1: DONE_COUNT release\n\tfence.acq_rel.sys;" ::: "memory");
#endif
  for (uint32_t r = 0; r < p.rings; ++r) {
    if (((moved >> r) & 1u) == 0) continue;
    MR_COST(host_writes, 1);
    MR_COST(partial_line_writes, 1);
#if defined(__CUDA_ARCH__)
    SysRef<uint64_t>(p.ring_done[r].done_count).store(count[r], cuda::std::memory_order_relaxed);
#else
    SysRef<uint64_t>(p.ring_done[r].done_count).store(count[r], cuda::std::memory_order_release);
#endif
    cs.ring_published[r] = count[r];
  }
  return true;
}

// C1: publishes [published, scanned): the records, then DONE_COUNT.
MR_HDI void flush_completions(const ConsumerParams& p, CompleteState& cs) {
  if (cs.record_lo < cs.record_hi) {
    // The lines around the records' span, inside the run: whole lines stay
    // whole (write_records), and no line outside the span is read.
    constexpr uint64_t kPerLine = MR_CACHELINE_BYTES / MR_COMPLETION_BYTES;
    uint64_t lo = cs.record_lo & ~(kPerLine - 1);
    if (lo < cs.published) lo = cs.record_lo;
    uint64_t hi = (cs.record_hi + kPerLine - 1) & ~(kPerLine - 1);
    if (hi > cs.scanned) hi = cs.scanned;
    write_records(p, lo, hi, RecordPass::kResults);
    // RELEASE fence (system): each result above, and (cumulatively, through
    // the done-flag acquires) every counted ticket's effects, before the
    // stamps below, which a waiter may acquire (H1).
    MR_COST(system_fences, 1);
    cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_system);
    cs.records_written += write_records(p, lo, hi, RecordPass::kWhole);
    cs.record_lo = ~0ull;
    cs.record_hi = 0;
  }
  (void)release_ring_counts(p, cs, cs.touched, cs.ring_scanned);
  cs.touched = 0;
  // RELEASE (device), after the DONE_COUNTs: a FENCE slot that acquires
  // the cursor sees the earlier slots' effects, and the fetcher that
  // acquires it may reuse their staged positions.
  DevRef<uint64_t>(p.priv->done_cursor).store(cs.scanned, cuda::std::memory_order_release);
  cs.published = cs.scanned;
  cs.first_pending_ns = 0;
  ++cs.flushes;
  // Relaxed: diagnostics, one writer.
  DevRef<uint64_t>(p.priv->flushes).store(cs.flushes, cuda::std::memory_order_relaxed);
  DevRef<uint64_t>(p.priv->records_written).store(cs.records_written, cuda::std::memory_order_relaxed);
}

// Loads the done flags of tickets [first, first + n), n <= kDoneScanBatch,
// into flags[0, n) (the rest 0). The device issues them as relaxed loads,
// all in flight at once, and the caller follows them with
// acquire_done_flags() once any is used: a GPU thread's ACQUIRE load holds
// back every load after it, so sixteen acquire loads would cost sixteen L2
// round trips in a row (the first H200 run: 4.0 M slots/s, all of it in
// this scan). The host takes ACQUIRE loads (free on x86, and what
// ThreadSanitizer follows, where it ignores fences).
MR_HDI void load_done_flags(const ConsumerParams& p, uint64_t first, uint32_t n,
                            uint64_t (&flags)[kDoneScanBatch]) {
MR_UNROLL
  for (uint32_t k = 0; k < kDoneScanBatch; ++k) {
#if defined(__CUDA_ARCH__)
    flags[k] = k < n ? DevRef<uint64_t>(p.done_flags[(first + k) & p.mask])
                           .load(cuda::std::memory_order_relaxed)
                     : 0;
#else
    // ACQUIRE (device): pairs with finish_ticket's release.
    flags[k] = k < n ? DevRef<uint64_t>(p.done_flags[(first + k) & p.mask])
                           .load(cuda::std::memory_order_acquire)
                     : 0;
#endif
  }
}

// ACQUIRE fence (device), after load_done_flags, before anything that relies
// on a flag found done: pairs with finish_ticket's release (or the chunk's
// release fence), so the outcome and the handler's effects are visible.
MR_HDI void acquire_done_flags() {
#if defined(__CUDA_ARCH__)
  cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_device);
#endif
}

// Moves cs.scanned over finished tickets (at most kScanLimit a call).
MR_HDI void scan_done_flags(const ConsumerParams& p, CompleteState& cs) {
  const uint64_t start = cs.scanned;
  for (uint32_t counted = kDoneScanBatch; counted == kDoneScanBatch && cs.scanned - start < kScanLimit;) {
    uint64_t flags[kDoneScanBatch];
    load_done_flags(p, cs.scanned, kDoneScanBatch, flags);
    MR_COST(device_round_trips, 1);  // the batch's loads, in flight together
    counted = 0;
    for (; counted < kDoneScanBatch && done_flag_names(flags[counted], cs.scanned + counted);
         ++counted) {
      const uint32_t ring = done_flag_ring(flags[counted]);
      ++cs.ring_scanned[ring];
      cs.touched |= 1u << ring;
      if (!done_flag_needs_record(flags[counted])) continue;
      const uint64_t t = cs.scanned + counted;
      if (t < cs.record_lo) cs.record_lo = t;
      cs.record_hi = t + 1;
    }
    if (counted != 0) acquire_done_flags();
    cs.scanned += counted;
  }
}

// A run stalled behind an unfinished slot (a long slot, a FENCE) holds
// DONE_COUNT back, and with it every kept slot after it that already
// finished: a waiter on one of those would wait for the slow slot. Once the
// stall has lasted kEarlyRecordNs, the records of finished kept slots in
// the next kEarlyWindow go out early, each released on its own (a waiter
// acquires the stamp), at most one pass a kEarlyRecordNs, each record once.
// The normal flush writes them again later, with the same words.
//
// With several rings the stall is one ring's: the same pass counts, for
// every other ring, its finished slots after the gap up to that ring's own
// first unfinished one, or first one with a record, and moves that ring's
// DONE_COUNT past the gap. So a slow slot holds back its own ring and, for
// the window's length, no other's slots without records (a kept slot's
// waiter has its early record).
// Returns whether it wrote anything.
MR_HDI bool publish_beyond_gap(const ConsumerParams& p, CompleteState& cs, uint64_t now) {
  if (cs.gap_ticket != cs.scanned) {  // a new stall: start its clock
    cs.gap_ticket = cs.scanned;
    cs.gap_since_ns = now;
    for (uint64_t& bits : cs.early) bits = 0;
    return false;
  }
  if (now - cs.gap_since_ns < kEarlyRecordNs || now - cs.last_lookahead_ns < kEarlyRecordNs)
    return false;
  cs.last_lookahead_ns = now;
  // Counts past the gap rest on the prefix before it being published.
  if (cs.scanned != cs.published) flush_completions(p, cs);
  // ACQUIRE (device): pairs with the fetcher's release; the staged copies
  // below it (read for an unfinished slot's ring) are final.
  const uint64_t fetched = DevRef<uint64_t>(p.priv->fetched).load(cuda::std::memory_order_acquire);
  const bool rings = p.rings > 1;
  // Rings with an unfinished slot at or before the one looked at: the gap's
  // first; and each other ring's finished slots after the gap before it.
  uint32_t blocked = rings ? 1u << (p.staged[cs.gap_ticket & p.mask].reserved & (MR_MAX_RINGS - 1)) : 0u;
  uint64_t ahead[MR_MAX_RINGS] = {};
  const uint64_t base = cs.gap_ticket + 1;
  const uint64_t n = fetched - base < kEarlyWindow ? fetched - base : kEarlyWindow;
  bool wrote = false;
  for (uint64_t first = 0; first < n; first += kDoneScanBatch) {
    uint64_t flags[kDoneScanBatch];
    const uint64_t left = n - first;
    load_done_flags(p, base + first, left < kDoneScanBatch ? static_cast<uint32_t>(left) : kDoneScanBatch,
                    flags);
    acquire_done_flags();
    for (uint32_t k = 0; k < kDoneScanBatch && first + k < n; ++k) {
      const uint64_t i = first + k;
      if (!done_flag_names(flags[k], base + i)) {
        if (rings) blocked |= 1u << (p.staged[(base + i) & p.mask].reserved & (MR_MAX_RINGS - 1));
        continue;
      }
      const uint32_t ring = done_flag_ring(flags[k]);
      const bool needs_record = done_flag_needs_record(flags[k]);
      // A ring is counted past the gap over slots without a record only:
      // the normal flush rewrites a record (kept, or not OK) when it passes
      // it, into a position the host may reuse once DONE_COUNT passed it.
      if (rings && ((blocked >> ring) & 1u) == 0) {
        if (needs_record)
          blocked |= 1u << ring;
        else
          ++ahead[ring];
      }
      if (!needs_record || ((cs.early[i / 64] >> (i % 64)) & 1u) != 0) continue;
      write_record_released(p, base + i, flags[k]);
      MR_COST(host_writes, 1);
      MR_COST(partial_line_writes, 1);
      MR_COST(system_fences, 1);
      cs.early[i / 64] |= 1ull << (i % 64);
      ++cs.records_written;
      wrote = true;
    }
  }
  if (rings) {
    uint32_t moved = 0;
    for (uint32_t r = 0; r < p.rings; ++r) {
      if (ahead[r] == 0) continue;
      ahead[r] += cs.ring_scanned[r];  // the ring's count past the gap
      moved |= 1u << r;
    }
    // Only what moved counts as work: a pass every kEarlyRecordNs finds the
    // same counts until the gap or a ring moves.
    if (moved != 0 && release_ring_counts(p, cs, moved, ahead)) wrote = true;
  }
  return wrote;
}

// One completer step: scan, and publish when the run is long enough, when
// nothing else is staged (the ring went idle: a caller is waiting), or when
// its oldest ticket has waited completion_flush_ns. `stopping` publishes
// whatever is finished. A run stalled behind a slow slot sends kept records
// after it out early, and the other rings' DONE_COUNTs past it
// (publish_beyond_gap).
MR_HDI Progress complete_step(const ConsumerParams& p, CompleteState& cs, bool stopping) {
  // Relaxed: a hint; a ticket staged after this read only delays the flush
  // by one step.
  const uint64_t fetched = DevRef<uint64_t>(p.priv->fetched).load(cuda::std::memory_order_relaxed);
  // Nothing staged beyond the published run: nothing can have finished.
  if (cs.scanned == cs.published && cs.scanned >= fetched) return Progress::kIdle;
  const uint64_t before = cs.scanned;
  scan_done_flags(p, cs);
  Progress progress = cs.scanned != before ? Progress::kWorked : Progress::kIdle;
  const uint64_t now = now_ns();
  if (cs.scanned != cs.published) {
    if (cs.first_pending_ns == 0) cs.first_pending_ns = now;
    if (stopping || cs.scanned - cs.published >= kFlushSlots || cs.scanned >= fetched ||
        now - cs.first_pending_ns >= p.completion_flush_ns) {
      flush_completions(p, cs);
      progress = Progress::kWorked;
    }
  }
  if (cs.scanned < fetched && !stopping && publish_beyond_gap(p, cs, now)) progress = Progress::kWorked;
  return progress;
}

// The completer's last act, once it may exit: publish every finished run,
// then write a record for every finished ticket beyond the first gap (after
// an abort, an abandoned slot leaves one: the tickets after it that ran keep
// their outcome, kept or not, rather than read ABORTED). The host finalizes
// [DONE_COUNT, end) after the consumer's exit release, which orders these;
// each is also released on its own, for a waiter that acquires its stamp
// before that (H1). The exit path: a fence a record costs nothing that
// matters.
MR_HDI void final_flush(const ConsumerParams& p, CompleteState& cs) {
  while (complete_step(p, cs, true) == Progress::kWorked) {
  }
  // Relaxed: the executors have left (or every staged ticket was published).
  const uint64_t fetched = DevRef<uint64_t>(p.priv->fetched).load(cuda::std::memory_order_relaxed);
  for (uint64_t t = cs.published; t < fetched; ++t) {
    // ACQUIRE (device): as in scan_done_flags.
    const uint64_t flag =
        DevRef<uint64_t>(p.done_flags[t & p.mask]).load(cuda::std::memory_order_acquire);
    if (done_flag_names(flag, t)) {
      write_record_released(p, t, flag);
      MR_COST(host_writes, 1);
      MR_COST(system_fences, 1);
      ++cs.records_written;
    }
  }
}

// Whether the completer is done: graceful stop (everything below stop_at
// published) or abort (the executors have left: nothing more will finish;
// the caller flushes once more first).
MR_HDI bool completer_may_exit(const ConsumerParams& p, const CompleteState& cs) {
  // Relaxed mirrors: see fetch_round.
  if (cs.published >= DevRef<uint64_t>(p.priv->stop_seq).load(cuda::std::memory_order_relaxed))
    return true;
  return abort_requested(p) &&
         DevRef<uint32_t>(p.priv->exited_units).load(cuda::std::memory_order_acquire) >= p.units;
}

}  // namespace detail
}  // namespace megaring
