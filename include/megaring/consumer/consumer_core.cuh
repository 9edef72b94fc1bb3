// SPDX-License-Identifier: Apache-2.0
// The consumer side of the ring protocol (ABI v3), written once for both
// consumers: compiled for the device it runs in the persistent kernel's
// warps; compiled for the host in the CPU backend's threads. Step names
// (F1, E1, C1, ...) and the three roles (fetcher, executors, completer)
// are those of megaring/slot_abi.h.
//
// Who calls what:
//   fetch_round      every thread of the fetch crew (block 0: warp 0 and
//                    warps 2 ..); the CPU backend's I/O thread
//   complete_step    one lane of the completer warp (block 0, warp 1); the
//                    I/O thread, between fetch rounds
//   claim_chunk, admit_slot, finish_ticket
//                    an executor's leader (thread 0 of blocks 1..; a CPU
//                    worker); handlers run block-wide (builtin_ops.cuh)
//
// Invariants (each cursor has one writing role, and never decreases). The
// cursors count the consumer's sequence (slot_abi.h, "Rings"), which with
// one ring is ring 0's ticket:
//   done_cursor <= claim_cursor <= fetched; each ring's DONE_COUNT counts
//     that ring's slots below done_cursor;
//   slots in [done_cursor, fetched) are staged: their copy in `staged` is
//     final until the completer passes them;
//   a done flag equal to done_flag(s, ...) means s's outcome is final in
//     `outcomes`;
//   a staged position, outcome and done flag are rewritten only for
//     sequence number s + capacity: with one ring, which the host publishes
//     only after reaping s; with several, which the fetcher stages only once
//     done_cursor passed s.
#pragma once

#include <cuda/atomic>

#include <cstdint>

#include "megaring/consumer.hpp"
#include "megaring/handler.cuh"
#include "megaring/detail/atomic_ref.hpp"
#include "megaring/consumer/cost_count.hpp"
#include "megaring/consumer/ring_priority.cuh"
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

// ---------------------------------------------------------------------------
// Fetcher (F1, F2)
// ---------------------------------------------------------------------------
// The fetcher reads stop_at every this many rounds (abort: every round).
inline constexpr uint32_t kStopCheckRounds = 8;
inline constexpr uint32_t kFetchLanes = 32;  // a warp

// The fetch crew: the warps of block 0 that share a round's loads (warp 0,
// which leads, and warps 2, 3, ...; warp 1 is the completer's). A warp's
// system-scope loads leave it one after another, about 0.13 us each on the
// H200 of 2026-12-04 whatever their width (scripts/gpu_fetch_bw.cu: one
// warp, 16 loads a lane, 8 KB in 3.4 us; four warps, 4 loads a lane, the
// same 8 KB in 2.0 us), so a round's time grows with the loads of its
// busiest warp, and a crew of W warps issues 1/W of them each. Config::
// fetch_warps picks W (kMaxFetchWarps, kDefaultFetchWarps: consumer.hpp).
//
// A crew thread holds at most kFetchPiecesPerLane 16-byte body pieces and
// kFetchHeadsPerLane headers in registers (16 pieces, 64 registers, made
// the kernel spill at its 128-register cap). So a round copies at most 64
// bodies a warp of the crew, and reads a window of at most 128 headers a
// warp after the last valid ticket: twice the bodies, so that a round that
// finds a backlog validates two rounds' worth. The window adapts
// (FetchState::window): each header is a host line of its own, and a warp's
// round of them costs more than one round trip (a fixed 256-header window
// after every call took 18 us of a 28 us round trip on that H200;
// bench/NOTES.md).
inline constexpr uint32_t kFetchPiecesPerLane = 8;
inline constexpr uint32_t kFetchHeadsPerLane = 4;

// Bodies a round of a crew of `warps` copies at most (4 pieces a slot).
MR_HDI uint32_t fetch_body_cap(uint32_t warps) {
  return warps * kFetchLanes * kFetchPiecesPerLane / 4;
}
// Headers a round of a crew of `warps` reads at most.
MR_HDI uint32_t fetch_window_cap(uint32_t warps) {
  return warps * kFetchLanes * kFetchHeadsPerLane;
}
inline constexpr uint32_t kFetchHeadGroups = kMaxFetchWarps * kFetchHeadsPerLane;  // of 32 headers

// What a crew's warps hand each other every round, in block 0's shared
// memory, in two copies (by round parity): a warp that has gone on to the
// next round writes the other copy, and cannot come back to this one before
// every warp has passed the next round's barrier, i.e. read this one.
struct FetchCrewShared {
  uint32_t ready[2][kFetchHeadGroups];  // a READY bit a header, 32 a group
  uint32_t abort_flag[2];
  uint64_t stop_at[2];
  uint64_t done_seen[2];
};

// With several rings, a round reads the headers of one ring (its window),
// or one header of every ring (the poll of all rings), never both: the
// fetcher serves a ring while its headers come READY, for a turn of at most
// kRingTurnRounds rounds (reading its headers or copying its bodies;
// kRingTurnRoundsAlone when the poll that picked it found no other), then
// polls all rings and goes on with the first READY one after it (round
// robin: no ring waits for another, model/rings_v4.pml, M8). One ring at
// most has bodies validated and not yet copied (FetchState::body_ring): a
// round turns to another ring only once it copies the last of them, or
// once the turn is over, which drops the rest (fetch_round).
inline constexpr uint32_t kPollAllRings = 0xFFFFFFFFu;
inline constexpr uint32_t kRingTurnRounds = 4;
// The turn of a ring that the last poll found alone: no other ring waited
// then, so the fetcher polls again only after this many rounds (a poll
// round stages little: with one busy ring, a poll every 4 rounds cost it a
// sixth of its rate in the cost model).
inline constexpr uint32_t kRingTurnRoundsAlone = 16;

// Each ring's fetch cursors. Indexed at run time, they live in local memory,
// apart from FetchState: inside it they took its scalars there too (ptxas,
// sm_90: 80 registers, a 784-byte frame and a spill, against 120 registers
// and no spill apart).
struct FetchRingCursors {
  uint64_t next[MR_MAX_RINGS];    // FetchState::next
  uint32_t window[MR_MAX_RINGS];  // FetchState::window
  RingSchedule schedule;          // FetchState::schedule
};

struct FetchState {
  uint64_t seq = 0;        // this role's copy of priv->fetched: slots staged
  uint64_t done_seen = 0;  // priv->done_cursor as last read: the staged queue's room
  // Ring body_ring's tickets [body_next, next[body_ring]) are validated and
  // not yet copied.
  uint32_t body_ring = 0;
  uint64_t body_next = 0;
  // Each ring's first ticket not yet seen READY, and the headers the next
  // window of it reads, in [1, fetch_window_cap(crew_warps)]: 1 is the idle
  // poll; widened while every header read was READY, back to 1 when none was
  // (a lone call: eight headers after its own, then idle). In the caller's
  // FetchRingCursors (init_fetch_state).
  uint64_t* next = nullptr;
  uint32_t* window = nullptr;
  // The rings' classes as the polls saw them, and each class's wait
  // (ring_priority.cuh); in the caller's FetchRingCursors.
  RingSchedule* schedule = nullptr;
  uint32_t head_ring = 0;   // whose headers the next round reads, or kPollAllRings
  uint32_t turn = 0;        // rounds of the ring served since the poll that picked it
  uint32_t turn_rounds = kRingTurnRounds;  // its turn: kRingTurnRoundsAlone if it was alone
  uint64_t stop_at = ~0ull; // ring 0's, once read
  uint32_t rounds = 0;
  // This thread's place in the crew: rank 0 (warp 0, lane 0) leads and is
  // the one writer of the fetcher's words. The host's fetcher is one thread
  // that loads as a crew of crew_warps would (the bodies a round; the cost
  // model's counts).
  uint32_t crew_rank = 0;
  uint32_t crew_warps = 1;
  FetchCrewShared* crew = nullptr;  // device, crew_warps > 1 only
  uint64_t last_heartbeat_ns = 0;
  uint64_t fetch_rounds = 0, tickets_fetched = 0, header_rounds = 0, idle_polls = 0;  // diagnostics
};

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

// Every ring, and the sequence, from where this run starts (start_cursor);
// the rings' cursors in `cursors`, which must outlive the state.
MR_HDI void init_fetch_state(const ConsumerParams& p, FetchState& st, FetchRingCursors& cursors) {
  st.seq = st.done_seen = start_cursor(p, MR_MAX_RINGS);
  st.next = cursors.next;
  st.window = cursors.window;
  st.schedule = &cursors.schedule;
  init_ring_schedule(cursors.schedule, st.seq);
  for (uint32_t r = 0; r < MR_MAX_RINGS; ++r) {
    st.next[r] = start_cursor(p, r);
    st.window[r] = 1;
  }
  st.body_next = st.next[0];  // body_ring 0: no backlog
  // The diagnostic counts go on from the last run's, so that
  // Runtime::consumer_counters never goes back across a suspension (idle
  // polls may lose the last run's few unstored ones). Relaxed, as
  // start_cursor.
  if (p.resume != 0) {
    st.fetch_rounds = DevRef<uint64_t>(p.priv->fetch_rounds).load(cuda::std::memory_order_relaxed);
    st.tickets_fetched = DevRef<uint64_t>(p.priv->tickets_fetched).load(cuda::std::memory_order_relaxed);
    st.header_rounds = DevRef<uint64_t>(p.priv->header_rounds).load(cuda::std::memory_order_relaxed);
    st.idle_polls = DevRef<uint64_t>(p.priv->idle_polls).load(cuda::std::memory_order_relaxed);
  }
}

// The first ticket of `ring` not yet copied into `staged`.
MR_HDI uint64_t fetched_end(const FetchState& st, uint32_t ring) {
  return ring == st.body_ring ? st.body_next : st.next[ring];
}

// The fetcher's last act as it stops gracefully (a shutdown's stop_at or a
// suspension), the leader only: where each ring and the sequence stopped,
// for a relaunch (ConsumerPrivate::resume_seq). Validated bodies not yet
// copied are dropped: their headers stay READY, and the next run reads them
// again. Relaxed: read only by the next run (see start_cursor).
MR_HDI void save_resume_cursors(const ConsumerParams& p, const FetchState& st) {
  DevRef<uint64_t>(p.priv->resume_seq).store(st.seq, cuda::std::memory_order_relaxed);
  for (uint32_t r = 0; r < MR_MAX_RINGS; ++r)
    DevRef<uint64_t>(p.priv->resume_next[r]).store(fetched_end(st, r), cuda::std::memory_order_relaxed);
}

// The ring a poll of all rings takes from `ready` (a bit a ring): the first
// READY one after `last`, round robin.
MR_HDI uint32_t next_ready_ring(uint32_t ready, uint32_t last, uint32_t rings) {
  for (uint32_t k = 1; k <= rings; ++k) {
    const uint32_t r = (last + k) % rings;
    if ((ready >> r) & 1u) return r;
  }
  return kPollAllRings;
}

enum class Progress : uint32_t { kIdle = 0, kWorked = 1, kExit = 2 };

MR_HDI void fetcher_heartbeat(const ConsumerParams& p, FetchState& st, uint64_t now) {
  if (now - st.last_heartbeat_ns < p.heartbeat_interval_ns) return;
  st.last_heartbeat_ns = now;
  // Not counted (cost_count.hpp): one write a heartbeat_interval_ns, not a
  // cost per slot; its line has one writer.
  // Relaxed: a liveness stamp, it orders nothing.
  SysRef<uint64_t>(p.completion_control->heartbeat_ns).store(now, cuda::std::memory_order_relaxed);
}

// The crew's warps from Config::fetch_warps (the device takes fewer where
// the I/O block is smaller: io_block).
MR_HDI uint32_t fetch_crew_warps(const ConsumerParams& p) {
  return p.fetch_warps == 0 ? 1u : (p.fetch_warps > kMaxFetchWarps ? kMaxFetchWarps : p.fetch_warps);
}

// The loads of one warp of a crew of `warps`, for a round of n_body bodies
// (four 16-byte loads a slot) and n_head headers (one a line, 32 a group):
// warp 0, the busiest (it takes the first group of each share, and the
// control words). What the cost model charges a round beyond its round trip.
MR_HDI uint32_t fetch_warp_loads(uint32_t n_body, uint32_t n_head, uint32_t warps,
                                 bool check_stop = false) {
  const uint32_t crew_lanes = warps * kFetchLanes;
  const uint32_t body = (n_body * 4 + crew_lanes - 1) / crew_lanes;
  const uint32_t groups = (n_head + kFetchLanes - 1) / kFetchLanes;
  return body + (groups + warps - 1) / warps + 1 + (check_stop ? 1 : 0);
}

#if defined(__CUDA_ARCH__)
// Meets every warp of the crew: the round's barrier (named barrier 1, so
// the completer warp never takes part). Like every bar.sync it orders each
// thread's memory operations before it with the others' after it (CTA
// scope): the hand-over of shared words, staged copies and header acquires.
__device__ __forceinline__ void fetch_crew_sync(const FetchState& st) {
  // bar.sync is an aligned barrier: every thread of a warp must reach it
  // together, so reconverge the warp first (the leader's branches above).
  __syncwarp();
  if (st.crew_warps > 1) asm volatile("bar.sync 1, %0;" ::"r"(st.crew_warps * kFetchLanes) : "memory");
}
#endif

// How much wider the window grows after a round whose headers were all
// READY: fast enough that a batch is fetched in few rounds (1, 8, 64, 512),
// small enough that a lone call reads only a few more header lines.
inline constexpr uint32_t kFetchWindowGrowth = 8;

// The window after a round that read n_head headers and found the first
// `valid` READY: kFetchWindowGrowth times as wide if all were (at most
// `cap`), the same if some were (a stream keeps its reach: batches land
// between rounds), and 1, the idle poll, if none was.
MR_HDI uint32_t next_fetch_window(uint32_t n_head, uint32_t valid, uint32_t cap) {
  if (valid == 0) return 1;
  if (valid != n_head) return n_head;
  return n_head * kFetchWindowGrowth > cap ? cap : n_head * kFetchWindowGrowth;
}

// One fetcher round: a single PCIe round trip that (a) copies the bodies of
// slots validated by an earlier round into `staged`, (b) reads the headers
// of the next window (one header when idle: a small poll; one header of
// each ring when several are idle), (c) reads the abort flag and, every
// kStopCheckRounds rounds, stop_at. The body loads are issued first: the
// header loads are acquires, and an acquire would hold back every load
// after it, turning one round trip into two.
//
// Device: every thread of the crew calls it with the same state; the state
// stays uniform (each result is a warp vote, shared at the round's barrier
// where the crew has more than one warp). Host: one thread.
MR_HDI Progress fetch_round(const ConsumerParams& p, FetchState& st) {
  const uint32_t body_cap = fetch_body_cap(st.crew_warps);
  const uint32_t ring_b = st.body_ring;
  const uint64_t backlog = st.next[ring_b] - st.body_next;
  uint32_t n_body = backlog < body_cap ? static_cast<uint32_t>(backlog) : body_cap;
  // The staged queue's room. A lone ring needs no check: the host reuses a
  // position only after the completer is done with its ticket, the staged
  // position of the same number included. Several rings fill the queue
  // together, so it has back-pressure of its own (rings_v4.pml, M6).
  // While a critical ring was recently READY, a lower class's round stages
  // only while the queue holds few of its slots (ring_priority.cuh,
  // rank_room; with no throttle, the room is as before).
  if (p.rings > 1) {
    const uint64_t room = rank_room(*st.schedule, st.schedule->turn_rank, st.seq, st.done_seen, p.capacity);
    if (n_body > room) n_body = static_cast<uint32_t>(room);
  }
  uint64_t left = backlog - n_body;
  // The headers: a ring with bodies left after this round keeps the reads,
  // so that one ring at most has a backlog. Its window, unless the bodies
  // left after this round already fill the next one. (Not merely "unless
  // this round is full": a backlog would then take three rounds a window,
  // two of bodies and one of headers alone, where two carry it, the second
  // with the next headers.) But a ring's turn is st.turn_rounds rounds,
  // whether they read its headers or only copy its bodies (which the staged
  // queue's room may make many): once it is over, the bodies this round
  // does not copy are forgotten, and the round polls all rings. Their
  // headers stay READY until the slots are staged, run and reaped, so the
  // ring's next turn validates them again.
  uint32_t head = st.head_ring;
  if (left != 0) {
    if (p.rings > 1 && st.turn >= st.turn_rounds) {
      st.next[ring_b] = st.body_next + n_body;
      left = 0;
      head = kPollAllRings;
    } else {
      head = ring_b;
    }
  }
  const bool poll_all = head == kPollAllRings;
  uint32_t n_head = 0;
  if (poll_all) {
    n_head = p.rings;
  } else if (left < body_cap) {
    n_head = st.window[head];
    if (n_head > p.capacity) n_head = p.capacity;  // a window never laps the ring
  }
  // A window's headers are relaxed loads, all in flight, then an ACQUIRE
  // fence in each warp that saw one READY; the idle poll's single header
  // (or each ring's, one a thread) is an acquire load. (A thread's acquire
  // loads would not overlap: each holds back every load after it.)
  const bool window = !poll_all && n_head > 1;
  const bool check_stop = (++st.rounds % kStopCheckRounds) == 0;
  const bool check_room = p.rings > 1;
  const uint64_t first_head = poll_all ? 0 : st.next[head];
  uint32_t abort_flag = 0;
  uint64_t stop_at = ~0ull;
  uint64_t done_seen = st.done_seen;
  uint32_t valid = 0;        // consecutive READY headers of `head` from first_head
  uint32_t ready_rings = 0;  // the poll of all rings: a READY bit a ring
  // ... and its classes (slot_abi.h, "Priorities"): the READY critical
  // rings | the READY bulk rings << 16.
  uint32_t ranked_rings = 0;
#if defined(__CUDA_ARCH__)
  const uint32_t lane = threadIdx.x & 31u;
  const uint32_t crew_warp = st.crew_rank / kFetchLanes;  // 0 .. crew_warps - 1
  const uint32_t crew_lanes = st.crew_warps * kFetchLanes;
  const uint32_t par = st.rounds & 1u;  // which copy of the crew's shared words
  // (a) Bodies: 16 bytes a thread, four threads a slot, spread over the
  // crew. Relaxed system-scope loads: they bypass L1, which may hold a stale
  // line brought in before the header's acquire; their order after that
  // acquire (an earlier round: earlier in program order, or in another warp
  // of the crew before the round's barrier) makes them read the published body.
  constexpr uint32_t kPieces = kFetchPiecesPerLane;  // n_body * 4 <= kPieces * crew_lanes
  ulonglong2 piece[kPieces];
MR_UNROLL
  for (uint32_t k = 0; k < kPieces; ++k) {
    const uint32_t i = st.crew_rank + k * crew_lanes;
    if (i < n_body * 4) {
      const uint64_t t = st.body_next + i / 4;
      const ulonglong2* src = reinterpret_cast<const ulonglong2*>(ring_slot(p, ring_b, t)) + (i & 3u);
      asm volatile("ld.relaxed.sys.global.v2.u64 {%0, %1}, [%2];"
                   : "=l"(piece[k].x), "=l"(piece[k].y)
                   : "l"(__cvta_generic_to_global(src))
                   : "memory");
    }
  }
  // (c) Control words, the leader. Relaxed: stop requests, they carry no
  // data. With several rings, also the completer's cursor (device memory),
  // for the staged queue's room next round; the acquire fence below orders it.
  if (st.crew_rank == 0) {
    abort_flag = SysRef<uint32_t>(p.submission->abort_flag).load(cuda::std::memory_order_relaxed);
    if (check_stop)
      stop_at = SysRef<uint64_t>(p.submission->stop_at).load(cuda::std::memory_order_relaxed);
    if (check_room)
      done_seen = DevRef<uint64_t>(p.priv->done_cursor).load(cuda::std::memory_order_relaxed);
  }
  // (b) F1. The headers, after the bodies (see above). A header seen
  // READY, once this thread's acquire (the poll's load, or the fence below)
  // follows it, pairs with the producer's header release (P3): its body
  // (P2) is visible to this thread's later loads and, through the round's
  // barrier below, to every crew thread's (the next round's bodies).
  constexpr uint32_t kHeads = kFetchHeadsPerLane;  // n_head <= kHeads * crew_lanes
  bool ready[kHeads];
  if (poll_all) {
    // One header of each ring, thread r of warp 0 ring r's; ACQUIRE (system).
    // The ring's class first (device memory, host-written; relaxed: it
    // orders nothing, a stale one only orders the pick differently), so that
    // the acquire does not hold it back.
    bool r_ready = false;
    uint32_t rank = kNoRank;
    if (st.crew_rank < p.rings) {
      rank = ring_class_rank(
          DevRef<uint32_t>(p.priv->ring_class[st.crew_rank]).load(cuda::std::memory_order_relaxed));
      const uint64_t t = st.next[st.crew_rank];
      uint64_t h;
      asm volatile("ld.acquire.sys.global.u64 %0, [%1];"
                   : "=l"(h)
                   : "l"(__cvta_generic_to_global(&ring_slot(p, st.crew_rank, t)->header))
                   : "memory");
      r_ready = h == mr_make_header(t, MR_SLOT_READY);
    }
    const uint32_t mask = __ballot_sync(0xFFFFFFFFu, r_ready);
    const uint32_t ranked = __ballot_sync(0xFFFFFFFFu, r_ready && rank == kRankCritical) |
                            (__ballot_sync(0xFFFFFFFFu, r_ready && rank == kRankBulk) << 16);
    if (crew_warp == 0) {
      if (st.crew_warps > 1) {
        if (lane == 0) {
          st.crew->ready[par][0] = mask;
          st.crew->ready[par][1] = ranked;
        }
      } else {
        ready_rings = mask;
        ranked_rings = ranked;
      }
    }
  }
  // A window: group g (32 consecutive headers) falls to crew warp g % crew_warps.
MR_UNROLL
  for (uint32_t k = 0; k < kHeads; ++k) {
    const uint32_t i = st.crew_rank + k * crew_lanes;
    ready[k] = false;
    if (!poll_all && i < n_head) {
      const uint64_t t = first_head + i;
      const uint64_t* header = &ring_slot(p, head, t)->header;
      uint64_t h;
      if (window)
        asm volatile("ld.relaxed.sys.global.u64 %0, [%1];"
                     : "=l"(h)
                     : "l"(__cvta_generic_to_global(header))
                     : "memory");
      else  // ACQUIRE (system): the idle poll, one header
        asm volatile("ld.acquire.sys.global.u64 %0, [%1];"
                     : "=l"(h)
                     : "l"(__cvta_generic_to_global(header))
                     : "memory");
      ready[k] = h == mr_make_header(t, MR_SLOT_READY);
    }
  }
  // F2: stage the bodies (device memory), each at its sequence number,
  // saying where it came from (unstage).
MR_UNROLL
  for (uint32_t k = 0; k < kPieces; ++k) {
    const uint32_t i = st.crew_rank + k * crew_lanes;
    if (i < n_body * 4) {
      ulonglong2 v = piece[k];
      if ((i & 3u) == 0) {
        v.x = st.body_next + i / 4;  // the header: the ring's whole ticket
      } else if ((i & 3u) == 1) {    // flags, then the reserved word
        v.x = (v.x & 0xFFFFFFFFull) |
              (static_cast<uint64_t>(staged_reserved(ring_b, static_cast<uint32_t>(v.x >> 32))) << 32);
      }
      reinterpret_cast<ulonglong2*>(&p.staged[(st.seq + i / 4) & p.mask])[i & 3u] = v;
    }
  }
  // A vote per group of 32 headers. A crew of one takes the valid prefix
  // from its votes at once (its groups come in order); a larger crew
  // leaves its votes in shared memory and reads them all after the barrier.
  const uint32_t groups = poll_all ? 0u : (n_head + kFetchLanes - 1) / kFetchLanes;
  bool saw_ready = false;
MR_UNROLL
  for (uint32_t k = 0; k < kHeads; ++k) {
    const uint32_t g = crew_warp + k * st.crew_warps;
    if (g < groups) {  // the same in every lane of the warp
      const uint32_t mask = __ballot_sync(0xFFFFFFFFu, ready[k]);
      saw_ready |= mask != 0;
      if (st.crew_warps > 1) {
        if (lane == 0) st.crew->ready[par][g] = mask;
      } else if (valid == g * kFetchLanes) {
        valid += mask == 0xFFFFFFFFu ? 32u : static_cast<uint32_t>(__ffs(~mask)) - 1u;
      }
    }
  }
  // ACQUIRE fence (system), every thread of a warp that saw a READY header
  // with relaxed loads, after them: completes the acquire of each READY
  // header a thread saw (see above).
  if (window && saw_ready)
    cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_system);
  // ACQUIRE fence (device), the leader, after its load of done_cursor: the
  // completer released it after it (and the executors, through the done
  // flags) finished with every staged position below it, which the crew
  // rewrites next round, after the round's barrier.
  if (check_room && st.crew_rank == 0)
    cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_device);
  if (st.crew_warps > 1) {
    if (st.crew_rank == 0) {
      st.crew->abort_flag[par] = abort_flag;
      st.crew->stop_at[par] = stop_at;
      st.crew->done_seen[par] = done_seen;
    }
  } else {
    abort_flag = __shfl_sync(0xFFFFFFFFu, abort_flag, 0);
    stop_at = __shfl_sync(0xFFFFFFFFu, stop_at, 0);
    done_seen = __shfl_sync(0xFFFFFFFFu, done_seen, 0);
  }
  // The round's barrier: orders every crew thread's staged stores, header
  // acquires and shared words before the leader's cursor release below, and
  // before any crew thread's reads after it (the votes, the next round's
  // body loads).
  fetch_crew_sync(st);
  if (st.crew_warps > 1) {
    if (poll_all) {
      ready_rings = st.crew->ready[par][0];
      ranked_rings = st.crew->ready[par][1];
    }
    for (uint32_t g = 0; g < groups; ++g) {
      const uint32_t mask = st.crew->ready[par][g];
      const uint32_t run = mask == 0xFFFFFFFFu ? 32u : static_cast<uint32_t>(__ffs(~mask)) - 1u;
      valid += run;
      if (run != 32u) break;
    }
    abort_flag = st.crew->abort_flag[par];
    stop_at = st.crew->stop_at[par];
    done_seen = st.crew->done_seen[par];
  }
#else
  // The same loads in the same order, by one thread.
  for (uint32_t i = 0; i < n_body; ++i) {
    const uint64_t t = st.body_next + i;
    const mr_slot& src = *ring_slot(p, ring_b, t);
    mr_slot& dst = p.staged[(st.seq + i) & p.mask];
    dst.header = t;  // the ring's whole ticket (unstage)
    dst.opcode = src.opcode;
    dst.tenant = src.tenant;
    dst.flags = src.flags;
    dst.reserved = staged_reserved(ring_b, src.reserved);
    for (uint32_t a = 0; a < MR_SLOT_ARGS; ++a) dst.args[a] = src.args[a];
  }
  abort_flag = SysRef<uint32_t>(p.submission->abort_flag).load(cuda::std::memory_order_relaxed);
  if (check_stop)
    stop_at = SysRef<uint64_t>(p.submission->stop_at).load(cuda::std::memory_order_relaxed);
  // ACQUIRE (device): see the device's fence after this load above.
  if (check_room) done_seen = DevRef<uint64_t>(p.priv->done_cursor).load(cuda::std::memory_order_acquire);
  // F1. ACQUIRE loads here (free on x86, and what ThreadSanitizer follows,
  // where it ignores fences); the device's fence is counted below.
  if (poll_all) {
    for (uint32_t r = 0; r < p.rings; ++r) {
      // The class: relaxed, as on the device.
      const uint32_t rank =
          ring_class_rank(DevRef<uint32_t>(p.priv->ring_class[r]).load(cuda::std::memory_order_relaxed));
      const uint64_t t = st.next[r];
      if (SysRef<uint64_t>(ring_slot(p, r, t)->header).load(cuda::std::memory_order_acquire) ==
          mr_make_header(t, MR_SLOT_READY)) {
        ready_rings |= 1u << r;
        if (rank == kRankCritical) ranked_rings |= 1u << r;
        if (rank == kRankBulk) ranked_rings |= 1u << (r + 16);
      }
    }
  } else {
    for (; valid < n_head; ++valid) {
      const uint64_t t = first_head + valid;
      if (SysRef<uint64_t>(ring_slot(p, head, t)->header).load(cuda::std::memory_order_acquire) !=
          mr_make_header(t, MR_SLOT_READY))
        break;
    }
  }
#endif
  // One round trip, awaited; loads counted as the warp issues them (one load
  // instruction moves up to 32 x 16 bytes).
  const bool productive = n_body != 0 || valid != 0 || ready_rings != 0;
  [[maybe_unused]] const uint32_t body_loads = (n_body * 4 + kFetchLanes - 1) / kFetchLanes;
  [[maybe_unused]] const uint32_t header_loads = (n_head + kFetchLanes - 1) / kFetchLanes;
  MR_COST(host_reads, body_loads + header_loads + 1 + (check_stop ? 1 : 0));  // + control words
  // The device's acquire fence: one in each warp that saw a READY header,
  // in parallel; counted once, when the round found any.
  if (window && valid != 0) MR_COST(system_fences, 1);
  if (productive) {
    MR_COST(awaited_round_trips, 1);
    MR_COST(fetch_warp_loads, fetch_warp_loads(n_body, n_head, st.crew_warps, check_stop));
  } else {
    MR_COST(idle_polls, 1);
  }
  st.done_seen = done_seen;
  if (n_body != 0) {
    if (p.rings > 1) charge_staged(*st.schedule, st.schedule->turn_rank, n_body, st.seq + n_body, done_seen);
    st.body_next += n_body;
    st.seq += n_body;
    ++st.fetch_rounds;
    st.tickets_fetched += n_body;
    if (st.crew_rank == 0) {
      // RELEASE (device): the staged copies above (every crew thread's,
      // ordered by the round's barrier) before executors acquire the cursor.
      DevRef<uint64_t>(p.priv->fetched).store(st.seq, cuda::std::memory_order_release);
      // Relaxed: diagnostics, one writer.
      DevRef<uint64_t>(p.priv->fetch_rounds).store(st.fetch_rounds, cuda::std::memory_order_relaxed);
      DevRef<uint64_t>(p.priv->tickets_fetched)
          .store(st.tickets_fetched, cuda::std::memory_order_relaxed);
    }
  } else if (productive) {
    ++st.header_rounds;
    // Relaxed: diagnostics, one writer.
    if (st.crew_rank == 0)
      DevRef<uint64_t>(p.priv->header_rounds).store(st.header_rounds, cuda::std::memory_order_relaxed);
  } else {
    ++st.idle_polls;
    if (st.crew_rank == 0 && (st.idle_polls & 63u) == 0)
      DevRef<uint64_t>(p.priv->idle_polls).store(st.idle_polls, cuda::std::memory_order_relaxed);
  }
  // What the headers found, and whose the next round reads. A round reads
  // another ring than ring_b only when it copies ring_b's last bodies
  // (left == 0), so switching body_ring loses no backlog.
  const uint32_t window_cap = fetch_window_cap(st.crew_warps);
  if (poll_all) {
    // The class to serve (ring_priority.cuh), then round robin within it.
    RingSchedule& sched = *st.schedule;
    const uint32_t critical_ready = ranked_rings & 0xFFFFu;
    const uint32_t bulk_ready = ranked_rings >> 16;
    const uint32_t ready_by_rank[kPriorityRanks] = {
        critical_ready, ready_rings & ~critical_ready & ~bulk_ready, bulk_ready};
    // Which ranks wait, and whether a critical ring was READY, first: the
    // throttle and the ranks with room follow from it.
    note_poll(sched, ready_by_rank);
    const bool throttled = critical_recent(sched);
    const uint32_t room = ranks_with_room(sched, st.seq, st.done_seen, p.capacity);
    const uint32_t rank = pick_rank(ready_by_rank, sched, room);
    note_pick(sched, ready_by_rank, rank, room, st.done_seen);
    const uint32_t r = rank == kNoRank ? kPollAllRings
                                       : next_ready_ring(ready_by_rank[rank], sched.last[rank], p.rings);
    if (r != kPollAllRings) {
      if (r != st.body_ring) {
        st.body_ring = r;
        st.body_next = st.next[r];
      }
      st.next[r] += 1;
      const uint32_t grown = next_fetch_window(1, 1, window_cap);
      if (st.window[r] < grown) st.window[r] = grown;
      st.head_ring = r;
      st.turn = 0;
      // A lower class's turn is short while throttled, alone or not.
      st.turn_rounds = (ready_rings & ~(1u << r)) != 0 || (throttled && rank != kRankCritical)
                           ? kRingTurnRounds
                           : kRingTurnRoundsAlone;
      sched.last[rank] = r;
      sched.turn_rank = rank;
    }
  } else {  // a round of one ring: its headers, its bodies, or both
    if (n_head != 0) {
      if (valid != 0 && head != st.body_ring) {
        st.body_ring = head;
        st.body_next = st.next[head];
      }
      st.next[head] += valid;
      st.window[head] = next_fetch_window(n_head, valid, window_cap);
    }
    // Several rings: an idle ring, or one that had its turn, hands over to
    // the poll of all rings (whose pick starts the next turn at 0).
    ++st.turn;
    if (p.rings > 1 && ((n_head != 0 && valid == 0) || st.turn >= st.turn_rounds))
      st.head_ring = kPollAllRings;
    else
      st.head_ring = head;
  }
  if (st.crew_rank == 0) fetcher_heartbeat(p, st, now_ns());
  if (abort_flag != 0) {
    // Relaxed: a stop request, mirrored for the roles that never read host
    // memory; it carries no data.
    if (st.crew_rank == 0)
      DevRef<uint32_t>(p.priv->abort_seen).store(1, cuda::std::memory_order_relaxed);
    return Progress::kExit;
  }
  // A suspension (MR_STOP_AT_SUSPEND) stops at once: as a stop_at that
  // ring 0 has passed, which costs the rounds no other test.
  if (stop_at != ~0ull && st.stop_at == ~0ull) st.stop_at = stop_at == MR_STOP_AT_SUSPEND ? 0 : stop_at;
  // Every ticket of ring 0 that will exist is staged (the host drained the
  // other rings before it set stop_at), or the host suspends the consumer:
  // it stops at this sequence number, once everything staged completed.
  if (fetched_end(st, 0) >= st.stop_at) {
    if (st.crew_rank == 0) {
      save_resume_cursors(p, st);
      // Relaxed: compared with the claim and done cursors only, which never
      // pass it; a late mirror only delays the exit.
      DevRef<uint64_t>(p.priv->stop_seq).store(st.seq, cuda::std::memory_order_relaxed);
    }
    return Progress::kExit;
  }
  return productive ? Progress::kWorked : Progress::kIdle;
}

// ---------------------------------------------------------------------------
// Executors (E1, E2)
// ---------------------------------------------------------------------------
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

// ---------------------------------------------------------------------------
// Completer (C1)
// ---------------------------------------------------------------------------
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
