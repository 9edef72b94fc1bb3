// SPDX-License-Identifier: Apache-2.0
// The consumer's checks of staging-region descriptors (slot_abi.h,
// "Staging"): every handle, generation, owner, policy and range is checked
// against one copy of the region's table entry before any byte of the
// region is touched. Shared by both backends and by custom handlers (the
// contexts' resolve_region, exec_context.cuh).
#pragma once

#include <cstdint>

#include "megaring/detail/checked.hpp"
#include "megaring/consumer/consumer_core.cuh"

namespace megaring {

// What a slot wants of a region: to read a descriptor's bytes (immutable or
// append-only regions, up to what is committed) or to write results into it
// (mutable regions only, anywhere within its size).
enum RegionAccess : uint32_t { kRegionRead = 0, kRegionWrite = 1 };

namespace detail {

// A region being freed is gone for the slot `origin` by the buffers' rule
// (exec_context.cuh, retired_for): Runtime::free_region retires as
// free_buffer does.
MR_HDI bool retired_for(const mr_region_entry& entry, SlotOrigin origin) {
  return origin.ring == 0 ? origin.ticket >= entry.retire_ticket : entry.retire_ticket != ~0ull;
}

// One region entry, read as a seqlock (see load_entry, exec_context.cuh):
// the handle, the body, the handle again; an entry whose handle changed
// in between reads as handle 0, which no slot matches. `committed` alone
// moves while the handle stays (a seal, an append): ACQUIRE at system scope,
// so the bytes it covers, which the host CPU wrote into pinned memory before
// its release store of the length, are visible to the reads after.
MR_HDI mr_region_entry load_region(const ConsumerParams& p, uint64_t handle) {
  mr_region_entry e{};
  const uint64_t index = handle & MR_BUFFER_INDEX_MASK;
  if (handle == 0 || index >= p.max_regions || p.regions == nullptr) return e;  // never matches
  mr_region_entry* src = &p.regions[index];
  // ACQUIRE: the body the host wrote before this handle (write_region_entry's RELEASE).
  const uint32_t first = DevRef<uint32_t>(src->handle).load(cuda::std::memory_order_acquire);
  e.base = DevRef<uint64_t>(src->base).load(cuda::std::memory_order_relaxed);
  e.bytes = DevRef<uint64_t>(src->bytes).load(cuda::std::memory_order_relaxed);
  e.owner = DevRef<uint32_t>(src->owner).load(cuda::std::memory_order_relaxed);
  e.policy = DevRef<uint32_t>(src->policy).load(cuda::std::memory_order_relaxed);
  e.retire_ticket = DevRef<uint64_t>(src->retire_ticket).load(cuda::std::memory_order_relaxed);
  e.committed = SysRef<uint64_t>(src->committed).load(cuda::std::memory_order_acquire);
  e.handle = same_handle_after(src->handle, first);
  return e;
}

// Checks (handle, offset, bytes) of the slot `origin` of `tenant` against
// `entry`, in the order of slot_abi.h: the handle (unknown, stale, retired
// or another tenant's: BAD_REGION, as buffers answer BAD_HANDLE for all
// four), the policy (REGION_POLICY), the range (OUT_OF_BOUNDS: a read within
// the committed length, a write within the size; no sum that can wrap).
MR_HDI uint8_t* check_region(const mr_region_entry& entry, SlotOrigin origin, uint32_t tenant,
                             uint64_t handle, uint64_t offset, uint64_t bytes, uint32_t access,
                             Outcome& out) {
  if (handle == 0 || handle > 0xFFFFFFFFull || entry.handle != static_cast<uint32_t>(handle) ||
      retired_for(entry, origin) || (tenant != 0 && entry.owner != tenant)) {
    out.set_fault(MR_FAULT_BAD_REGION);
    return nullptr;
  }
  const bool readable =
      entry.policy == MR_REGION_IMMUTABLE || entry.policy == MR_REGION_APPEND_ONLY;
  if (access == kRegionRead ? !readable : entry.policy != MR_REGION_MUTABLE) {
    out.set_fault(MR_FAULT_REGION_POLICY);
    return nullptr;
  }
  // A read stops at the committed length (never above the size: the host
  // keeps committed <= bytes; the min guards a torn table all the same).
  const uint64_t limit =
      access == kRegionRead ? (entry.committed < entry.bytes ? entry.committed : entry.bytes)
                            : entry.bytes;
  if (!range_within(offset, bytes, limit)) {
    out.set_fault(MR_FAULT_OUT_OF_BOUNDS);
    return nullptr;
  }
  return reinterpret_cast<uint8_t*>(entry.base + offset);
}

}  // namespace detail
}  // namespace megaring
