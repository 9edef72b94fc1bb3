// SPDX-License-Identifier: Apache-2.0
// The handler author's contract: what a custom opcode handler is given and
// may call. Everything a handler table (megakernel.cuh, make_consumer) may
// rely on is here; the rest of include/megaring/consumer/ is the consumer
// protocol that runs it and may change.
//
// A handler table is a struct with one static member template:
//
//   struct MyOps {
//     template <class Ctx>
//     MR_HD static bool execute(Ctx& ctx, const mr_slot& slot, megaring::Outcome& out);
//   };
//
// It is called for every opcode >= MR_OP_USER_BASE and returns false for an
// opcode it does not own (the slot completes FAULT / MR_FAULT_UNKNOWN_OPCODE).
// It reports through `out`: out.result, or out.set_fault(code) for bad
// arguments. A tenant's slot arrives already admitted, with its
// tenant-local opcode in slot.opcode and its tenant id in slot.tenant.
//
// Handlers are block-collective. On the GPU every thread of the block calls
// execute with the same slot copy; on the CPU one worker thread is a block
// of size 1. Branch only on the slot's contents and on the results of the
// collective calls below, never on per-thread reads of shared state, so
// that every thread reaches the same sync() calls. Thread 0's Outcome
// becomes the completion.
//
// Ctx (consumer/exec_context.cuh implements it for the GPU and the CPU):
//   rank(), size()       this thread's index in the block, the block's size
//   sync()               a block barrier
//   ring(), ticket()     where the slot was published: ring 0 for
//                        Runtime::publish, a Producer's ring otherwise, and
//                        its ticket on that ring
//   tenant()             the publishing tenant's id (0: none)
//   params()             the consumer's parameters (ConsumerParams)
//   resolve(handle, offset, bytes, align, which, out) -> uint8_t* or null
//                        collective: the device address of a buffer range,
//                        bounds-, owner- and alignment-checked; on failure
//                        null with out's FAULT code set. `which` (0 or 1)
//                        names one of two buffers live at once.
//   resolve_region(handle, offset, bytes, access, out) -> uint8_t* or null
//                        collective: the consumer address of a staging
//                        region range (host memory the consumer reaches),
//                        checked as the built-ins check it (slot_abi.h,
//                        "Staging"): handle, generation, owner, policy and
//                        range. access megaring::kRegionRead (a descriptor:
//                        immutable or append-only, within the committed
//                        length) or kRegionWrite (mutable, within the size);
//                        on failure null with out's FAULT code set
//                        (BAD_REGION, REGION_POLICY, OUT_OF_BOUNDS).
//   block_sum(value)     collective: the sum over the block, valid in rank 0
//   abort_requested()    collective: the runtime is aborting, the same
//                        answer in every thread. A long handler calls it
//                        from every thread once per round of its loop and,
//                        on true, calls out.abandon() and returns: the slot
//                        is left uncompleted and reported ABORTED. Never
//                        abandon without an abort.
//   wait_prefix()        rank 0 only: every earlier ticket completed (FENCE)
#pragma once

#include <cstdint>

#include "megaring/slot_abi.h"

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

}  // namespace megaring
