// SPDX-License-Identifier: Apache-2.0
// The runtime's staging regions: ranges of the staging arena named by
// handles (index + generation) in the consumer's region table, each with a
// policy (immutable, append-only, mutable) and, for the first two, the
// committed length descriptors may read. Frees wait, as the buffer table's
// do, until no published slot can still reach the range.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "backends/backend.hpp"
#include "megaring/runtime.hpp"
#include "runtime/arena_allocator.hpp"
#include "runtime/buffer_table.hpp"
#include "runtime/tenant_owners.hpp"

namespace megaring::detail {

class RegionTable {
 public:
  RegionTable(ConsumerBackend& backend, RingProgress& rings) : backend_(backend), rings_(rings) {}
  // `max_regions` entries, all free, and the backend's arena; before the
  // consumer starts.
  void init(uint32_t max_regions);

  // `owner`: the tenant id the consumer checks slots against (0: the runtime).
  Status create(RegionPolicy policy, uint64_t bytes, uint32_t owner, RegionHandle* handle);
  Status write(RegionHandle handle, uint64_t offset, const void* src, uint64_t bytes);
  Status seal(RegionHandle handle);
  Status append(RegionHandle handle, const void* src, uint64_t bytes, uint64_t* offset);
  Status read(RegionHandle handle, uint64_t offset, void* dst, uint64_t bytes);
  // Slots published from here on fault BAD_REGION; the range goes back to
  // the arena once the slots published before completed. *bytes (may be
  // null): the region's size, for the caller's quota. `refuse_live`: the
  // runtime's own call, which may not free a live tenant's region (null:
  // the owner's call).
  Status free(RegionHandle handle, uint64_t* bytes, const TenantOwners* refuse_live);
  void collect(bool consumer_stopped);

 private:
  struct Entry {
    uint64_t offset = 0;     // in the arena
    uint64_t length = 0;     // the arena range (bytes rounded up)
    uint64_t bytes = 0;      // the region's size
    uint64_t committed = 0;  // as the consumer's entry: what descriptors may read
    uint32_t handle = 0;     // 0 = unused index
    uint32_t owner = 0;      // the tenant id (0: the runtime)
    uint16_t generation = 0;
    RegionPolicy policy = RegionPolicy::kMutable;
    bool sealed = false;
    // The last committed store failed: the consumer may hold the old
    // length or the new one (seal retries it).
    bool commit_unsure = false;
  };
  struct PendingFree {
    uint32_t index;
    uint64_t offset, length;
    RingCut safe_after;
  };
  Entry* find_locked(RegionHandle handle);
  void collect_locked(bool consumer_stopped);

  ConsumerBackend& backend_;
  RingProgress& rings_;
  mutable std::mutex mutex_;
  ArenaAllocator arena_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_indices_;
  std::vector<PendingFree> pending_frees_;
};

}  // namespace megaring::detail
