// SPDX-License-Identifier: Apache-2.0
// The persistent megakernel and the CPU worker loop, as one template over a
// handler table. Include this from a .cu file to build a consumer with your
// own opcodes:
//
//   struct MyOps {   // the handler contract: megaring/handler.cuh
//     template <class Ctx>
//     MR_HD static bool execute(Ctx& ctx, const mr_slot& slot, megaring::Outcome& out);
//   };
//   const megaring::Consumer& my_consumer() {
//     static const megaring::Consumer c = megaring::make_consumer<MyOps>("my-ops");
//     return c;
//   }
//
// then pass my_consumer() to megaring::Runtime::create. samples/custom_opcode
// shows a complete one.
#pragma once

#include <cuda_runtime_api.h>

#include "megaring/consumer.hpp"
#include "megaring/handler.cuh"
#include "megaring/consumer/builtin_ops.cuh"

namespace megaring {

// make_consumer's block size when none is given (the built-in consumer's).
inline constexpr unsigned kDefaultBlockThreads = 256;

namespace detail {

// Timeline mode: the unit that ran `ticket` writes its record, before the
// completion (whose releases publish it to a host that acquires DONE_COUNT).
// Relaxed word stores: a host snapshot keeps only records that no running
// ticket can be rewriting (Runtime::timeline), and reads with word loads, so
// a record being overwritten is never used and is no data race.
MR_HDI void record_timeline(const ConsumerParams& p, uint64_t ticket, uint32_t unit,
                            uint32_t opcode, uint64_t claim_ns) {
  mr_timeline_record* r = &p.timeline[ticket & p.timeline_mask];
  const uint64_t complete_ns = now_ns();
  DevRef<uint64_t>(r->ticket).store(ticket, cuda::std::memory_order_relaxed);
  DevRef<uint64_t>(r->claim_ns).store(claim_ns, cuda::std::memory_order_relaxed);
  DevRef<uint64_t>(r->complete_ns).store(complete_ns, cuda::std::memory_order_relaxed);
  DevRef<uint32_t>(r->unit).store(unit, cuda::std::memory_order_relaxed);
  DevRef<uint32_t>(r->opcode).store(opcode, cuda::std::memory_order_relaxed);
}

// The fetcher's duties once it has staged every ticket below stop_at, while
// slots still run: stamp the heartbeat (long slots: stay visibly alive) and
// mirror an abort for the handlers, since only the fetcher reads the host's
// flag. Returns whether the abort is mirrored (now or before).
MR_HDI bool fetcher_after_stop(const ConsumerParams& p, FetchState& st) {
  fetcher_heartbeat(p, st, now_ns());
  if (abort_requested(p)) return true;
  // Relaxed: a stop request; it carries no data (see fetch_round).
  if (SysRef<uint32_t>(p.submission->abort_flag).load(cuda::std::memory_order_relaxed) == 0)
    return false;
  DevRef<uint32_t>(p.priv->abort_seen).store(1, cuda::std::memory_order_relaxed);
  return true;
}

// Runs fetcher_after_stop until the completer has published everything
// below stop_at, or an abort.
MR_HDI void fetcher_linger(const ConsumerParams& p, FetchState& st) {
  for (;;) {
    // ACQUIRE: pairs with the completer's release; nothing to do past it.
    if (DevRef<uint64_t>(p.priv->done_cursor).load(cuda::std::memory_order_acquire) >=
        DevRef<uint64_t>(p.priv->stop_seq).load(cuda::std::memory_order_relaxed))
      return;
    if (fetcher_after_stop(p, st)) return;
    pause_ns(p.poll_backoff_max_ns);
  }
}

// The completer's loop until it may exit, then one last flush of whatever
// finished (after an abort: results of slots that ran are kept).
MR_HDI void completer_loop(const ConsumerParams& p, CompleteState& cs) {
  while (!completer_may_exit(p, cs)) {
    // Idle, poll at the minimum: the completer reads device memory only (one
    // word while nothing is staged), and any longer pause would be added to
    // a call's round trip (a 2 us backoff sleeps 4 us on an H200).
    if (complete_step(p, cs, false) == Progress::kIdle) pause_ns(p.poll_backoff_min_ns);
  }
  final_flush(p, cs);
}

#if defined(__CUDACC__)
// Block 0: the I/O unit. Warp 0 leads the fetch crew, warps 2 .. W of it
// share its loads (Config::fetch_warps); warp 1 completes. A one-warp block
// alternates: the whole warp fetches a round, then lane 0 takes a completer
// step. Other warps have nothing to do. Returns after both roles finished.
template <unsigned kThreads>
__device__ __forceinline__ void io_block(const ConsumerParams& p) {
  const unsigned warp = threadIdx.x / 32;
  const unsigned lane = threadIdx.x & 31u;
  if constexpr (kThreads >= 64) {
    __shared__ FetchCrewShared crew;
    const uint32_t block_warps = kThreads / 32 - 1;  // all but the completer
    const uint32_t crew_warps =
        fetch_crew_warps(p) < block_warps ? fetch_crew_warps(p) : block_warps;
    if (warp == 0 || (warp >= 2 && warp <= crew_warps)) {
      FetchState fs;
      FetchRingCursors rings;
      init_fetch_state(p, fs, rings);
      fs.crew_warps = crew_warps;
      fs.crew_rank = (warp == 0 ? 0u : warp - 1) * 32 + lane;
      fs.crew = &crew;
      for (;;) {
        // Every crew thread runs the same rounds: each round's decisions
        // come from what the crew shares at its barrier.
        const Progress r = fetch_round(p, fs);
        if (r == Progress::kExit) break;
        // One small read in flight at a time while idle: poll at the minimum.
        if (r == Progress::kIdle) pause_ns(p.poll_backoff_min_ns);
      }
      if (fs.crew_rank == 0) fetcher_linger(p, fs);
    } else if (warp == 1 && lane == 0) {
      CompleteState cs;
      init_complete_state(p, cs);
      completer_loop(p, cs);
    }
  } else {
    FetchState fs;  // a crew of one warp
    FetchRingCursors rings;
    init_fetch_state(p, fs, rings);
    fs.crew_rank = lane;
    CompleteState cs;  // lane 0's
    init_complete_state(p, cs);
    bool fetching = true;
    for (;;) {
      Progress f = Progress::kIdle;
      if (fetching) {
        f = fetch_round(p, fs);
        if (f == Progress::kExit) fetching = false;
      }
      uint32_t done = 0, worked = f == Progress::kWorked;
      if (lane == 0) {
        if (completer_may_exit(p, cs)) {
          final_flush(p, cs);
          done = 1;
        } else {
          worked |= complete_step(p, cs, false) != Progress::kIdle;
        }
        if (!fetching && !done) (void)fetcher_after_stop(p, fs);
      }
      if (__shfl_sync(0xFFFFFFFFu, done, 0) != 0) break;
      if (__shfl_sync(0xFFFFFFFFu, worked, 0) == 0) pause_ns(p.poll_backoff_min_ns);
    }
  }
  __syncthreads();  // every warp of block 0, from whichever role
  if (threadIdx.x == 0) unit_exit(p);
}

// Blocks 1 ..: an executor. Thread 0 claims a chunk; the block copies its
// staged slots to shared memory at once (one device-memory latency for the
// chunk), then runs them one by one.
template <class Handlers, unsigned kThreads, bool kTimeline>
__device__ __forceinline__ void executor_block(const ConsumerParams& p) {
  __shared__ BlockShared<kThreads> shared;
  // 16-byte aligned: the block copies it in 16-byte pieces (mr_slot alone
  // only asks for 8, and after a 32-thread BlockShared it got just that).
  __shared__ __align__(16) mr_slot chunk[kMaxChunk];
  __shared__ uint64_t chunk_first;
  __shared__ uint32_t chunk_count;
  __shared__ uint32_t stop;
  DeviceExec<kThreads> ctx{p, &shared};
  const uint32_t unit = blockIdx.x - 1;
  uint64_t control_seen = 0;  // thread 0's: the newest control epoch it answered
  for (;;) {
    // Every thread has read the last chunk's verdicts (shared.next, stop)
    // before thread 0 overwrites them with the next claim's.
    __syncthreads();
    if (threadIdx.x == 0) {
      uint64_t first = 0;
      uint32_t count = 0;
      shared.next = static_cast<uint32_t>(claim_chunk(p, unit, &control_seen, &first, &count));
      chunk_first = first;
      chunk_count = count;
    }
    __syncthreads();  // the claim visible to the block
    if (shared.next == static_cast<uint32_t>(Next::kExit)) break;
    const uint64_t first = chunk_first;
    const uint32_t count = chunk_count;
    // Plain loads: thread 0's acquire of `fetched` (claim_chunk), carried to
    // the block by the barrier above, ordered the staged copies before them.
    // The thread that copies a slot's second piece (opcode, tenant) also
    // votes on whether thread 0 can run the chunk alone.
    uint32_t alone = 1;
    for (uint32_t i = threadIdx.x; i < count * 4; i += kThreads) {
      const ulonglong2 piece =
          reinterpret_cast<const ulonglong2*>(&p.staged[(first + i / 4) & p.mask])[i & 3u];
      reinterpret_cast<ulonglong2*>(&chunk[i / 4])[i & 3u] = piece;
      if ((i & 3u) == 0 && !runs_alone(piece.y)) alone = 0;
    }
    if (threadIdx.x == 0) stop = 0;
    const bool chunk_alone = __syncthreads_and(alone) != 0;
    const uint64_t claim_ns = kTimeline ? now_ns() : 0;
    if (chunk_alone) {
      // Thread 0 runs every slot (no block barrier a slot), then publishes
      // their done flags behind one RELEASE fence (device): the outcomes and
      // its own stores (STORE_U32, ATOMIC_ADD) before the completer
      // acquires any of the flags.
      if (threadIdx.x == 0) {
        uint64_t flags[kMaxChunk];
        // One abort check for the chunk, not one a slot (each is an L2 round
        // trip, longer than the slot): these slots wait for nothing.
        const uint32_t runnable = abort_requested(p) ? 0u : count;
        note_unit(p, unit, chunk[0], count);
        uint32_t ran = 0;
        for (; ran < runnable; ++ran) {
          mr_slot slot = chunk[ran];
          const SlotOrigin origin = unstage(slot);
          Outcome out;
          if (admit_slot(p, slot, out)) run_builtin_alone(p, first + ran, origin, slot, out);
          if constexpr (kTimeline)
            record_timeline(p, origin.ticket, unit, chunk[ran].opcode, claim_ns);
          flags[ran] = record_outcome(p, first + ran, origin, chunk[ran].flags, out);
        }
        cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_device);
        for (uint32_t j = 0; j < ran; ++j)
          DevRef<uint64_t>(p.done_flags[(first + j) & p.mask])
              .store(flags[j], cuda::std::memory_order_relaxed);
        stop = ran < count ? 1u : 0u;  // an abort: the rest go back ABORTED
      }
      __syncthreads();
      if (stop) break;
      continue;
    }
    for (uint32_t j = 0; j < count; ++j) {
      if (threadIdx.x == 0) {
        shared.seq = first + j;
        note_unit(p, unit, chunk[j], 1);
        shared.slot = chunk[j];
        shared.origin = unstage(shared.slot);
        // Between slots: an abort leaves the rest of the chunk to the host.
        shared.next = static_cast<uint32_t>(abort_requested(p) ? Next::kExit : Next::kRun);
        if (shared.next == static_cast<uint32_t>(Next::kRun)) {
          Outcome refused;
          shared.admitted = admit_slot(p, shared.slot, refused) ? 1u : 0u;
          shared.refused_result = refused.result;
          shared.refused_status = refused.status;
          shared.refused_fault = refused.fault;
        }
      }
      __syncthreads();  // slot copy and verdict visible to the block
      if (shared.next == static_cast<uint32_t>(Next::kExit)) break;
      Outcome out;
      if (shared.admitted) {
        run_slot<Handlers>(ctx, shared.slot, out);
      } else {
        out.result = shared.refused_result;
        out.status = shared.refused_status;
        out.fault = shared.refused_fault;
      }
      // Every thread's memory effects happen before thread 0's done-flag
      // release; thread 0's outcome is the slot's.
      __syncthreads();
      if (threadIdx.x == 0) {
        if (out.abandoned()) {
          stop = 1;  // leave it uncompleted; the host reports it ABORTED
        } else {
          if constexpr (kTimeline)
            record_timeline(p, shared.origin.ticket, unit, chunk[j].opcode, claim_ns);
          finish_ticket(p, shared.seq, shared.origin, chunk[j].flags, out);
        }
      }
      __syncthreads();
      if (stop) break;
    }
    if (stop || shared.next == static_cast<uint32_t>(Next::kExit)) break;
  }
  if (threadIdx.x == 0) {
    leave_control(p, unit);
    unit_exit(p);
  }
}

// The persistent kernel: block 0 is the I/O unit, the others executors.
template <class Handlers, unsigned kThreads, bool kTimeline>
__device__ __forceinline__ void megakernel_body(const ConsumerParams& p) {
  if (blockIdx.x == 0)
    io_block<kThreads>(p);
  else
    executor_block<Handlers, kThreads, kTimeline>(p);
}
#endif  // __CUDACC__

template <class Handlers, unsigned kThreads, bool kTimeline>
__global__ void __launch_bounds__(kThreads) megakernel(const ConsumerParams p) {
  megakernel_body<Handlers, kThreads, kTimeline>(p);
}

// The same kernel compiled to at most kMaxRegisters registers a thread
// (ptxas spills the rest to local memory). Our blocks never leave their SMs,
// so every register they hold is one that another kernel's block cannot
// have. No __launch_bounds__: nvcc refuses it beside __maxnreg__. A cap too
// large for kThreads threads leaves the occupancy query at 0 blocks an SM,
// and Runtime::create reports that the consumer cannot fit.
template <class Handlers, unsigned kThreads, bool kTimeline, unsigned kMaxRegisters>
__global__ void __maxnreg__(kMaxRegisters) megakernel_capped(const ConsumerParams p) {
  megakernel_body<Handlers, kThreads, kTimeline>(p);
}

// The kernel that make_consumer's arguments select. No cap: the compiler's
// choice, without a __maxnreg__ attribute that would change it.
template <class Handlers, unsigned kThreads, bool kTimeline, unsigned kMaxRegisters>
const void* megakernel_entry() {
  if constexpr (kMaxRegisters == 0)
    return reinterpret_cast<const void*>(megakernel<Handlers, kThreads, kTimeline>);
  else
    return reinterpret_cast<const void*>(
        megakernel_capped<Handlers, kThreads, kTimeline, kMaxRegisters>);
}

template <class Handlers, unsigned kThreads, unsigned kMaxRegisters>
cudaError_t gpu_occupancy(int* blocks_per_sm) {
  int fits[2] = {0, 0};
  const void* kernels[2] = {megakernel_entry<Handlers, kThreads, false, kMaxRegisters>(),
                            megakernel_entry<Handlers, kThreads, true, kMaxRegisters>()};
  for (int i = 0; i < 2; ++i) {
    cudaFuncAttributes attributes;
    // Loads the module now, before any persistent kernel runs.
    cudaError_t err = cudaFuncGetAttributes(&attributes, kernels[i]);
    if (err != cudaSuccess) return err;
    // Our blocks never leave their SMs and need almost no shared memory: ask
    // for the largest shared-memory carveout so that a kernel which needs
    // most of an SM's shared memory (a large GEMM) can still be resident
    // beside them where registers and threads allow. A hint only.
    err = cudaFuncSetAttribute(kernels[i], cudaFuncAttributePreferredSharedMemoryCarveout,
                               cudaSharedmemCarveoutMaxShared);
    if (err != cudaSuccess) return err;
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&fits[i], kernels[i], kThreads, 0);
    if (err != cudaSuccess) return err;
  }
  *blocks_per_sm = fits[0] < fits[1] ? fits[0] : fits[1];
  return cudaSuccess;
}

template <class Handlers, unsigned kThreads, bool kTimeline, unsigned kMaxRegisters>
cudaError_t gpu_launch(const ConsumerParams& params, unsigned grid, cudaStream_t stream) {
  ConsumerParams copy = params;
  void* args[] = {&copy};
  // Clear this thread's stale non-sticky error first (a cudaStreamQuery that
  // returned cudaErrorNotReady leaves one behind): the cudaGetLastError below
  // must report this launch alone, or a kernel that did start would be taken
  // for one that did not, and its ring freed under it.
  (void)cudaGetLastError();
  // Cooperative launch: fails instead of starting if the grid cannot be
  // co-resident, which a persistent kernel needs.
  cudaError_t err = cudaLaunchCooperativeKernel(
      megakernel_entry<Handlers, kThreads, kTimeline, kMaxRegisters>(), dim3(grid),
      dim3(kThreads), args, 0, stream);
  if (err != cudaSuccess) return err;
  return cudaGetLastError();
}

// The CPU backend's I/O thread: fetch rounds and completer steps in turn.
inline void cpu_io_unit(const ConsumerParams& p) {
  CostScope costs(p.costs != nullptr ? &p.costs[p.units] : nullptr);  // Config::count_costs
  FetchState fs;
  FetchRingCursors rings;
  init_fetch_state(p, fs, rings);
  fs.crew_warps = fetch_crew_warps(p);  // loads as the device's crew would
  CompleteState cs;
  init_complete_state(p, cs);
  Backoff backoff(p.poll_backoff_min_ns, p.poll_backoff_max_ns);
  bool fetching = true;
  for (;;) {
    bool worked = false;
    if (fetching) {
      const Progress f = fetch_round(p, fs);
      fetching = f != Progress::kExit;
      worked = f == Progress::kWorked;
    } else {
      (void)fetcher_after_stop(p, fs);
    }
    if (completer_may_exit(p, cs)) {
      final_flush(p, cs);
      break;
    }
    worked |= complete_step(p, cs, false) != Progress::kIdle;
    if (worked)
      backoff.reset();
    else
      backoff.pause();
  }
  unit_exit(p);
}

// A CPU executor: claims chunks, runs their slots, records each outcome.
template <class Handlers, bool kTimeline>
void cpu_executor(const ConsumerParams& p, unsigned unit) {
  CostScope costs(p.costs != nullptr ? &p.costs[unit] : nullptr);  // Config::count_costs
  uint64_t first = 0;
  uint32_t count = 0;
  mr_slot chunk[kMaxChunk];
  bool stop = false;
  uint64_t control_seen = 0;  // the newest control epoch this executor answered
  while (!stop && claim_chunk(p, unit, &control_seen, &first, &count) == Next::kRun) {
    // Plain copies: claim_chunk's acquire of `fetched` ordered them.
    for (uint32_t j = 0; j < count; ++j) chunk[j] = p.staged[(first + j) & p.mask];
    const uint64_t claim_ns = kTimeline ? now_ns() : 0;
    for (uint32_t j = 0; j < count && !stop; ++j) {
      if (abort_requested(p)) {  // between slots: the rest go back ABORTED
        stop = true;
        break;
      }
      const uint64_t seq = first + j;
      note_unit(p, unit, chunk[j], 1);
      mr_slot slot = chunk[j];
      const SlotOrigin origin = unstage(slot);
      Outcome out;
      if (admit_slot(p, slot, out)) {
        HostExec ctx{p, seq, origin, slot.tenant};
        run_slot<Handlers>(ctx, slot, out);
      }
      if (out.abandoned()) {  // aborted mid-slot: leave it uncompleted
        stop = true;
        break;
      }
      if constexpr (kTimeline) record_timeline(p, origin.ticket, unit, chunk[j].opcode, claim_ns);
      finish_ticket(p, seq, origin, chunk[j].flags, out);
    }
  }
  leave_control(p, unit);
  unit_exit(p);
}

template <class Handlers, bool kTimeline>
void cpu_worker(const ConsumerParams& p, unsigned unit) {
  if (unit == p.units)
    cpu_io_unit(p);
  else
    cpu_executor<Handlers, kTimeline>(p, unit);
}

}  // namespace detail

// Builds the consumer descriptor for a handler table. Call it from a .cu file.
//   kThreads       threads a block; handlers run block-wide.
//   kMaxRegisters  0: the compiler's choice. Otherwise a cap on the kernel's
//                  registers a thread (at least 24), for a consumer that must
//                  leave room on its SMs for other kernels' blocks. A warp
//                  holds 32 * cap registers (in units of 256) from one of
//                  the SM's four register-file quarters, for as long as the
//                  consumer runs. Handlers that need more spill to local
//                  memory.
template <class Handlers, unsigned kThreads = kDefaultBlockThreads, unsigned kMaxRegisters = 0>
Consumer make_consumer(const char* name) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block size: whole warps, at most 1024");
  static_assert(detail::kMaxChunk <= kThreads * 4, "a block copies a chunk in one pass");
  static_assert(kMaxRegisters == 0 || (kMaxRegisters >= 24 && kMaxRegisters <= 255),
                "register cap: 0 (none) or 24..255");
  return Consumer{name,
                  kThreads,
                  kMaxRegisters,
                  &detail::gpu_occupancy<Handlers, kThreads, kMaxRegisters>,
                  &detail::gpu_launch<Handlers, kThreads, false, kMaxRegisters>,
                  &detail::cpu_worker<Handlers, false>,
                  &detail::gpu_launch<Handlers, kThreads, true, kMaxRegisters>,
                  &detail::cpu_worker<Handlers, true>};
}

}  // namespace megaring
