// SPDX-License-Identifier: Apache-2.0
// The fetcher (F1, F2 of slot_abi.h): the only reader of the host's rings.
// A crew of warps of block 0 (the CPU backend's I/O thread) validates
// headers, copies bodies into the staged queue and publishes `fetched`.
#pragma once

#include <cuda/atomic>

#include <cstdint>

#include "megaring/consumer/consumer_common.cuh"
#include "megaring/consumer/ring_priority.cuh"

namespace megaring {

namespace detail {

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

}  // namespace detail
}  // namespace megaring
