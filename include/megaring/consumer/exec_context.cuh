// SPDX-License-Identifier: Apache-2.0
// Execution contexts: what an opcode handler sees while it runs one slot.
//
// Handlers are block-collective. On the GPU every thread of the block calls
// the handler with the same slot copy; on the CPU one worker thread is a
// "block" of size 1. Handlers must branch only on the slot's contents and on
// the results of collective calls (resolve, block_sum), never on per-thread
// reads of shared state, so every thread reaches the same sync() calls.
//
// Both contexts expose the Ctx interface of megaring/handler.cuh, the
// handler author's contract, and wait_prefix() for the built-in FENCE.
#pragma once

#include <cstdint>

#include "megaring/detail/checked.hpp"
#include "megaring/consumer/consumer_core.cuh"
#include "megaring/consumer/region_access.cuh"

#if defined(__CUDACC__)
#include <cub/block/block_reduce.cuh>
#endif

namespace megaring {
namespace detail {

// Whether a buffer being freed is gone for the slot `origin`: ring 0's
// tickets from its retire ticket on (free_buffer's published end); on a
// producer's ring, whose tail free_buffer cannot move, from the moment the
// retire is seen (the memory goes back only after every ring has completed
// what was published before then: Runtime::free_buffer).
MR_HDI bool retired_for(const mr_buffer_entry& entry, SlotOrigin origin) {
  return origin.ring == 0 ? origin.ticket >= entry.retire_ticket : entry.retire_ticket != ~0ull;
}

// Check an entry against a (handle, offset, bytes, align) request from the
// slot `origin` of `tenant`: a tenant slot may only name buffers its tenant
// owns (tenant-less slots may name any).
MR_HDI uint8_t* check_range(const mr_buffer_entry& entry, SlotOrigin origin, uint32_t tenant,
                            uint64_t handle, uint64_t offset, uint64_t bytes, uint32_t align,
                            Outcome& out) {
  if (handle == 0 || handle > 0xFFFFFFFFull || entry.handle != static_cast<uint32_t>(handle) ||
      retired_for(entry, origin) || (tenant != 0 && entry.owner != tenant)) {
    out.set_fault(MR_FAULT_BAD_HANDLE);
    return nullptr;
  }
  if (!range_within(offset, bytes, entry.bytes)) {
    out.set_fault(MR_FAULT_OUT_OF_BOUNDS);
    return nullptr;
  }
  const uint64_t address = entry.base + offset;
  if (align > 1 && (address % align) != 0) {
    out.set_fault(MR_FAULT_MISALIGNED);
    return nullptr;
  }
  return reinterpret_cast<uint8_t*>(address);
}

// One buffer entry, read as a seqlock: the handle, the body, the handle
// again. A slot may name a handle the host is issuing at that moment (a
// hostile slot can guess the next generation of an index), so the body must
// be the one that handle was written with: the host clears an entry's
// handle, rewrites its body, and stores the new handle after a RELEASE
// (write_buffer_entry); an entry whose handle changed while it was read
// reads as handle 0. Only the retire ticket changes while a handle stays,
// one word, read whole.
MR_HDI mr_buffer_entry load_entry(const ConsumerParams& p, uint64_t handle) {
  mr_buffer_entry e{};
  const uint64_t index = handle & MR_BUFFER_INDEX_MASK;
  if (handle == 0 || index >= p.max_buffers) return e;  // handle 0 never matches
  mr_buffer_entry* src = &p.buffers[index];
  // ACQUIRE: the body the host wrote before this handle (write_buffer_entry's RELEASE).
  const uint32_t first = DevRef<uint32_t>(src->handle).load(cuda::std::memory_order_acquire);
  e.base = DevRef<uint64_t>(src->base).load(cuda::std::memory_order_relaxed);
  e.bytes = DevRef<uint64_t>(src->bytes).load(cuda::std::memory_order_relaxed);
  e.owner = DevRef<uint32_t>(src->owner).load(cuda::std::memory_order_relaxed);
  e.retire_ticket = DevRef<uint64_t>(src->retire_ticket).load(cuda::std::memory_order_relaxed);
  e.handle = same_handle_after(src->handle, first);
  return e;
}

// ---------------------------------------------------------------------------
// CPU worker: a block of one thread.
// ---------------------------------------------------------------------------
struct HostExec {
  const ConsumerParams& p;
  uint64_t seq_;       // where the slot was staged (FENCE waits for the ones before it)
  SlotOrigin origin_;  // its ring and ticket
  uint32_t tenant_;    // the slot's tenant (0: none)

  MR_HDI unsigned rank() const { return 0; }
  MR_HDI unsigned size() const { return 1; }
  MR_HDI void sync() const {}
  MR_HDI uint64_t ticket() const { return origin_.ticket; }
  MR_HDI uint32_t ring() const { return origin_.ring; }
  MR_HDI uint32_t tenant() const { return tenant_; }
  MR_HDI const ConsumerParams& params() const { return p; }
  MR_HDI uint8_t* resolve(uint64_t handle, uint64_t offset, uint64_t bytes, uint32_t align,
                          unsigned /*which*/, Outcome& out) const {
    return check_range(load_entry(p, handle), origin_, tenant_, handle, offset, bytes, align,
                       out);
  }
  MR_HDI uint8_t* resolve_region(uint64_t handle, uint64_t offset, uint64_t bytes,
                                 uint32_t access, Outcome& out) const {
    return check_region(load_region(p, handle), origin_, tenant_, handle, offset, bytes, access,
                        out);
  }
  MR_HDI uint64_t block_sum(uint64_t value) const { return value; }
  MR_HDI bool abort_requested() const { return detail::abort_requested(p); }
  MR_HDI bool wait_prefix() const { return wait_for_prefix(p, seq_); }
};

#if defined(__CUDACC__)
// ---------------------------------------------------------------------------
// GPU block of kThreads threads.
// ---------------------------------------------------------------------------
template <unsigned kThreads>
struct BlockShared {
  mr_slot slot;
  uint64_t seq;        // where the slot was staged
  SlotOrigin origin;   // its ring and ticket
  uint32_t next;      // detail::Next
  uint32_t admitted;  // admit_slot's verdict; when 0 the slot's outcome is:
  uint64_t refused_result;
  uint16_t refused_status;
  uint16_t refused_fault;
  mr_buffer_entry entries[2];
  mr_region_entry region;  // resolve_region's copy
  typename cub::BlockReduce<unsigned long long, kThreads>::TempStorage reduce;
};

template <unsigned kThreads>
struct DeviceExec {
  const ConsumerParams& p;
  BlockShared<kThreads>* shared;

  MR_HDI unsigned rank() const {
#if defined(__CUDA_ARCH__)
    return threadIdx.x;
#else
    return 0;
#endif
  }
  MR_HDI unsigned size() const { return kThreads; }
  MR_HDI void sync() const {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#endif
  }
  MR_HDI uint64_t ticket() const { return shared->origin.ticket; }
  MR_HDI uint32_t ring() const { return shared->origin.ring; }
  MR_HDI uint32_t tenant() const { return shared->slot.tenant; }
  MR_HDI const ConsumerParams& params() const { return p; }

  // Collective: rank 0 reads the entry once into shared memory so that every
  // thread checks the same copy and takes the same branch. The barrier before
  // the write keeps a previous resolve's readers from seeing this entry, so
  // any `which` (two scratch entries, chosen by its low bit) is safe.
  MR_HDI uint8_t* resolve(uint64_t handle, uint64_t offset, uint64_t bytes, uint32_t align,
                          unsigned which, Outcome& out) const {
    which &= 1u;
    sync();
    if (rank() == 0) shared->entries[which] = load_entry(p, handle);
    sync();
    return check_range(shared->entries[which], shared->origin, shared->slot.tenant, handle, offset,
                       bytes, align, out);
  }

  // Collective, as resolve: rank 0 reads the region's entry once (its
  // committed length with it), every thread checks that one copy.
  MR_HDI uint8_t* resolve_region(uint64_t handle, uint64_t offset, uint64_t bytes,
                                 uint32_t access, Outcome& out) const {
    sync();
    if (rank() == 0) shared->region = load_region(p, handle);
    sync();
    return check_region(shared->region, shared->origin, shared->slot.tenant, handle, offset,
                        bytes, access, out);
  }

  // Collective sum (CUB BlockReduce); the total is valid in rank 0.
  MR_HDI uint64_t block_sum(uint64_t value) const {
#if defined(__CUDA_ARCH__)
    using Reduce = cub::BlockReduce<unsigned long long, kThreads>;
    const unsigned long long total =
        Reduce(shared->reduce).Sum(static_cast<unsigned long long>(value));
    sync();  // TempStorage may be reused by the next collective
    return total;
#else
    return value;
#endif
  }

  // Collective: rank 0 reads the host's abort flag once and the barrier
  // hands its answer to every thread, so the whole block leaves a loop
  // together (threads reading the flag themselves could see it at different
  // rounds).
  MR_HDI bool abort_requested() const {
#if defined(__CUDA_ARCH__)
    return __syncthreads_or(rank() == 0 && detail::abort_requested(p)) != 0;
#else
    return detail::abort_requested(p);
#endif
  }
  MR_HDI bool wait_prefix() const { return wait_for_prefix(p, shared->seq); }
};
#endif  // __CUDACC__

}  // namespace detail
}  // namespace megaring
