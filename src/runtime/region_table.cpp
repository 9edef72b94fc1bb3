// SPDX-License-Identifier: Apache-2.0
// The runtime's staging regions (region_table.hpp).
#include "runtime/region_table.hpp"

#include <atomic>
#include <cstring>
#include <string>

#include "megaring/detail/checked.hpp"
#include "support/log.hpp"

namespace megaring::detail {

namespace {
// Each runtime starts its region generations elsewhere, as its buffers'
// (buffer_table.cpp): a handle of another runtime is refused.
uint16_t next_generation_seed() {
  static std::atomic<uint32_t> runtimes{0};
  const uint32_t n = runtimes.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uint16_t>((n * 4099u + 17u) % 0xFFFFu);
}

Status unknown_region(RegionHandle handle) {
  return Status(Result::kInvalidArgument, "unknown region handle " + std::to_string(handle));
}

Status outside(uint64_t offset, uint64_t bytes, uint64_t size) {
  return Status(Result::kInvalidArgument, "range [" + std::to_string(offset) + ", +" +
                                              std::to_string(bytes) + ") outside region of " +
                                              std::to_string(size) + " bytes");
}

bool valid_policy(RegionPolicy p) {
  return p == RegionPolicy::kImmutable || p == RegionPolicy::kAppendOnly ||
         p == RegionPolicy::kMutable;
}
}  // namespace

void RegionTable::init(uint32_t max_regions) {
  entries_.resize(max_regions);
  const uint16_t seed = next_generation_seed();
  for (Entry& e : entries_) e.generation = seed;
  for (uint32_t i = max_regions; i-- > 0;) free_indices_.push_back(i);
  arena_.init(backend_.staging().bytes);
}

RegionTable::Entry* RegionTable::find_locked(RegionHandle handle) {
  const uint32_t index = handle & MR_BUFFER_INDEX_MASK;
  if (handle == 0 || index >= entries_.size() || entries_[index].handle != handle) return nullptr;
  return &entries_[index];
}

Status RegionTable::create(RegionPolicy policy, uint64_t bytes, uint32_t owner,
                           RegionHandle* handle) {
  if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
  if (!valid_policy(policy))
    return Status(Result::kInvalidArgument,
                  "region policy " + std::to_string(static_cast<uint32_t>(policy)) + " is unknown");
  if (bytes == 0) return Status(Result::kInvalidArgument, "a region holds at least one byte");
  std::lock_guard<std::mutex> lock(mutex_);
  collect_locked(false);
  const StagingArena& arena = backend_.staging();
  if (arena.bytes == 0)
    return Status(Result::kOutOfMemory, "no staging arena (Config::staging_arena_bytes is 0)");
  if (free_indices_.empty())
    return Status(Result::kOutOfMemory,
                  "region table full (" + std::to_string(entries_.size()) + " entries)");
  uint64_t offset = 0, length = 0;
  if (!arena_.take(bytes, &offset, &length))
    return Status(Result::kOutOfMemory, "staging arena: no free range of " +
                                            std::to_string(bytes) + " bytes (" +
                                            std::to_string(arena_.free_bytes()) + " free)");
  const uint32_t index = free_indices_.back();
  Entry& e = entries_[index];
  e.generation = static_cast<uint16_t>(e.generation == 0xFFFF ? 1 : e.generation + 1);
  // A reused range starts zeroed, as a new buffer does: no earlier region's
  // bytes leak into this one (no slot can reach the range: it was collected).
  std::memset(arena.host + offset, 0, static_cast<size_t>(bytes));
  mr_region_entry entry{};
  entry.base = arena.consumer + offset;
  entry.bytes = bytes;
  entry.committed = 0;  // immutable: until sealed; append-only: nothing yet; mutable: never
  entry.retire_ticket = ~0ull;
  entry.owner = owner;
  entry.policy = static_cast<uint32_t>(policy);
  entry.handle = (static_cast<uint32_t>(e.generation) << MR_BUFFER_INDEX_BITS) | index;
  const Status st = backend_.write_region_entry(index, entry);
  if (!st) {
    arena_.give_back(offset, length);
    return st;
  }
  e.offset = offset;
  e.length = length;
  e.bytes = bytes;
  e.committed = 0;
  e.policy = policy;
  e.sealed = false;
  e.commit_unsure = false;
  e.owner = owner;
  e.handle = entry.handle;
  free_indices_.pop_back();
  *handle = e.handle;
  return Status::ok();
}

Status RegionTable::write(RegionHandle handle, uint64_t offset, const void* src, uint64_t bytes) {
  if (src == nullptr && bytes != 0) return Status(Result::kInvalidArgument, "source is null");
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* e = find_locked(handle);
  if (e == nullptr) return unknown_region(handle);
  if (e->policy == RegionPolicy::kAppendOnly)
    return Status(Result::kInvalidArgument,
                  "region " + std::to_string(handle) + " is append-only: append_region adds to it");
  if (e->policy == RegionPolicy::kImmutable && e->sealed)
    return Status(Result::kInvalidArgument,
                  "region " + std::to_string(handle) + " is sealed: its bytes never change");
  if (!range_within(offset, bytes, e->bytes)) return outside(offset, bytes, e->bytes);
  if (bytes != 0) std::memcpy(backend_.staging().host + e->offset + offset, src, bytes);
  return Status::ok();
}

Status RegionTable::seal(RegionHandle handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* e = find_locked(handle);
  if (e == nullptr) return unknown_region(handle);
  if (e->policy != RegionPolicy::kImmutable)
    return Status(Result::kInvalidArgument,
                  "region " + std::to_string(handle) + " is not immutable: only those are sealed");
  if (e->sealed && !e->commit_unsure) return Status::ok();
  // The bytes (written above, by this or an earlier call under the lock)
  // before the committed length that lets descriptors read them.
  const Status st = backend_.set_region_committed(handle & MR_BUFFER_INDEX_MASK, e->bytes);
  // Sealed even if the store failed: it may have landed, and then slots
  // already read the bytes, which no later write may change. A failed
  // store leaves the seal unsure, and the next seal stores it again.
  e->sealed = true;
  e->committed = e->bytes;
  e->commit_unsure = !st;
  return st;
}

Status RegionTable::append(RegionHandle handle, const void* src, uint64_t bytes, uint64_t* offset) {
  if (src == nullptr && bytes != 0) return Status(Result::kInvalidArgument, "source is null");
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* e = find_locked(handle);
  if (e == nullptr) return unknown_region(handle);
  if (e->policy != RegionPolicy::kAppendOnly)
    return Status(Result::kInvalidArgument,
                  "region " + std::to_string(handle) + " is not append-only");
  if (!range_within(e->committed, bytes, e->bytes)) return outside(e->committed, bytes, e->bytes);
  const uint64_t at = e->committed;
  if (bytes != 0) {
    // Past the committed end: no slot reads these bytes until the length moves.
    std::memcpy(backend_.staging().host + e->offset + at, src, bytes);
    const Status st = backend_.set_region_committed(handle & MR_BUFFER_INDEX_MASK, at + bytes);
    // Advanced even if the store failed: it may have landed, and then slots
    // already read [at, at + bytes), which no later append may rewrite. The
    // bytes stay (unannounced, if it did not land) and the next append's
    // store covers them.
    e->committed = at + bytes;
    if (!st) return st;
  }
  if (offset != nullptr) *offset = at;
  return Status::ok();
}

Status RegionTable::read(RegionHandle handle, uint64_t offset, void* dst, uint64_t bytes) {
  if (dst == nullptr && bytes != 0) return Status(Result::kInvalidArgument, "destination is null");
  std::lock_guard<std::mutex> lock(mutex_);
  const Entry* e = find_locked(handle);
  if (e == nullptr) return unknown_region(handle);
  if (!range_within(offset, bytes, e->bytes)) return outside(offset, bytes, e->bytes);
  if (bytes != 0) std::memcpy(dst, backend_.staging().host + e->offset + offset, bytes);
  return Status::ok();
}

Status RegionTable::free(RegionHandle handle, uint64_t* bytes, const TenantOwners* refuse_live) {
  std::lock_guard<std::mutex> lock(mutex_);
  Entry* e = find_locked(handle);
  if (e == nullptr) return unknown_region(handle);
  if (refuse_live != nullptr) {
    Status st = refuse_live->refuse_if_live(e->owner, "region", handle);
    if (!st) return st;
  }
  const uint32_t index = handle & MR_BUFFER_INDEX_MASK;
  // As BufferTable::free: the retire names ring 0's next ticket; the cut read
  // after it says which tickets of every ring may still read the range.
  Status st = backend_.retire_region_entry(index, rings_.retire_ticket());
  if (!st) return st;
  pending_frees_.push_back(PendingFree{index, e->offset, e->length, rings_.retire_cut()});
  if (bytes != nullptr) *bytes = e->bytes;
  e->handle = 0;
  collect_locked(false);
  return Status::ok();
}

void RegionTable::collect(bool consumer_stopped) {
  std::lock_guard<std::mutex> lock(mutex_);
  collect_locked(consumer_stopped);
}

void RegionTable::collect_locked(bool consumer_stopped) {
  auto it = pending_frees_.begin();
  while (it != pending_frees_.end()) {
    if (consumer_stopped || rings_.completed(it->safe_after)) {
      // The range goes back either way: the entry's retire (stored before
      // the free returned, and never rewritten if the clear fails) faults
      // every slot that could still name it. The index does not: rewriting
      // an entry whose old handle may still match could let that handle
      // reach the new region mid-write. It is leaked, and logged.
      const Status cleared = backend_.clear_region_handle(it->index);
      arena_.give_back(it->offset, it->length);
      if (cleared) {
        free_indices_.push_back(it->index);
      } else {
        MR_LOG(LogLevel::kWarn, "region table entry " + std::to_string(it->index) +
                                     " leaked: its handle could not be cleared (" +
                                     cleared.to_string() + ")");
      }
      it = pending_frees_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace megaring::detail
