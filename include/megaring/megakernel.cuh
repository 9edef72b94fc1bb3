// The persistent megakernel and the CPU worker loop, as one template over a
// handler table. Include this from a .cu file to build a consumer with your
// own opcodes:
//
//   struct MyOps {
//     // Return false for opcodes you do not own: the slot completes with
//     // MR_STATUS_FAULT / MR_FAULT_UNKNOWN_OPCODE. Called for every opcode
//     // >= MR_OP_USER_BASE, block-collectively (see detail/exec_context.cuh).
//     // A tenant's slot arrives already admitted, with its tenant-local
//     // opcode in slot.opcode and its tenant id in slot.tenant (ctx.tenant()).
//     // Set out.result, or out.set_fault(code) for bad arguments. A long
//     // handler calls ctx.abort_requested() (collective: from every thread)
//     // once per round and, when it is true, out.abandon() and returns: the
//     // slot is left uncompleted and reported ABORTED by the host. Never
//     // abandon without an abort.
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
#include "megaring/detail/builtin_ops.cuh"

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

// The persistent loop of one block: the body of both kernels below.
template <class Handlers, unsigned kThreads, bool kTimeline>
__device__ __forceinline__ void megakernel_body(const ConsumerParams& p) {
  __shared__ BlockShared<kThreads> shared;
  DeviceExec<kThreads> ctx{p, &shared};
  LeaderState leader;  // used by thread 0 only
  leader.unit = blockIdx.x;
  uint64_t claim_ns = 0;  // timeline mode, thread 0
  uint32_t published_opcode = 0;  // timeline mode, thread 0
  for (;;) {
    if (threadIdx.x == 0) {
      uint64_t ticket = 0;
      shared.next = static_cast<uint32_t>(acquire_next_slot(p, leader, &shared.slot, &ticket));
      shared.ticket = ticket;
      if constexpr (kTimeline) {
        claim_ns = now_ns();
        published_opcode = shared.slot.opcode;
      }
      if (shared.next == static_cast<uint32_t>(Next::kRun)) {
        Outcome refused;
        shared.admitted = admit_slot(p, shared.slot, refused) ? 1u : 0u;
        shared.refused_result = refused.result;
        shared.refused_status = refused.status;
        shared.refused_fault = refused.fault;
      }
    }
    __syncthreads();  // slot copy, verdict and command visible to the block
    if (shared.next == static_cast<uint32_t>(Next::kExit)) break;
    Outcome out;
    if (shared.admitted) {
      run_slot<Handlers>(ctx, shared.slot, out);
    } else {
      out.result = shared.refused_result;
      out.status = shared.refused_status;
      out.fault = shared.refused_fault;
    }
    // Every thread's memory effects happen before thread 0's completion
    // release; thread 0's outcome is the slot's.
    __syncthreads();
    if (threadIdx.x == 0) {
      if (out.abandoned()) {
        leader.stopping = true;  // leave it uncompleted; exit at the loop top
      } else {
        if constexpr (kTimeline)
          record_timeline(p, shared.ticket, blockIdx.x, published_opcode, claim_ns);
        complete_slot(p, shared.ticket, out);
      }
    }
  }
  if (threadIdx.x == 0) unit_exit(p);
}

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

template <class Handlers, bool kTimeline>
void cpu_worker(const ConsumerParams& p, unsigned unit) {
  CostScope costs(p.costs != nullptr ? &p.costs[unit] : nullptr);  // Config::count_costs
  LeaderState leader;
  leader.unit = unit;
  mr_slot slot;
  uint64_t ticket = 0;
  while (acquire_next_slot(p, leader, &slot, &ticket) == Next::kRun) {
    uint64_t claim_ns = 0;
    if constexpr (kTimeline) claim_ns = now_ns();
    const uint32_t published_opcode = slot.opcode;
    Outcome out;
    if (admit_slot(p, slot, out)) {
      HostExec ctx{p, ticket, slot.tenant};
      run_slot<Handlers>(ctx, slot, out);
    }
    if (out.abandoned()) break;  // aborted mid-slot: leave it uncompleted
    if constexpr (kTimeline) record_timeline(p, ticket, unit, published_opcode, claim_ns);
    complete_slot(p, ticket, out);
  }
  unit_exit(p);
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
