// SPDX-License-Identifier: Apache-2.0
// The runtime's buffer table (buffer_table.hpp).
#include "runtime/buffer_table.hpp"

#include <atomic>
#include <string>

#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"

namespace megaring::detail {

namespace {
// The first buffer generation of each runtime's table: runtimes of one
// process start theirs apart, so that a handle carried over from another
// runtime is refused here unless it happens to match (1 in 65535).
uint16_t next_generation_seed() {
  static std::atomic<uint32_t> runtimes{0};
  const uint32_t n = runtimes.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uint16_t>((n * 7919u) % 0xFFFFu);  // 0 .. 65534; +1 at first use
}

Status unknown_handle(BufferHandle handle) {
  return Status(Result::kInvalidArgument, "unknown buffer handle " + std::to_string(handle));
}
}  // namespace

void BufferTable::init(uint32_t max_buffers) {
  entries_.resize(max_buffers);
  const uint16_t generation_seed = next_generation_seed();
  for (Entry& e : entries_) e.generation = generation_seed;
  for (uint32_t i = max_buffers; i-- > 0;) free_indices_.push_back(i);
}

const BufferTable::Entry* BufferTable::find_locked(BufferHandle handle) const {
  const uint32_t index = handle & MR_BUFFER_INDEX_MASK;
  if (handle == 0 || index >= entries_.size() || entries_[index].handle != handle) return nullptr;
  return &entries_[index];
}

Status BufferTable::alloc(uint64_t bytes, uint32_t owner, BufferHandle* handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  collect_locked(false);
  if (free_indices_.empty()) return table_full();
  uint64_t address = 0;
  Status st = backend_.alloc(bytes, &address);
  if (!st) return st;
  st = add_entry_locked(address, bytes, owner, /*external=*/false, handle);
  if (!st) (void)backend_.free(address);
  return st;
}

Status BufferTable::register_external(uint64_t address, uint64_t bytes, uint32_t owner,
                                      BufferHandle* handle) {
  std::lock_guard<std::mutex> lock(mutex_);
  collect_locked(false);
  if (free_indices_.empty()) return table_full();
  Status st = backend_.check_external(address, bytes);
  if (!st) return st;
  return add_entry_locked(address, bytes, owner, /*external=*/true, handle);
}

Status BufferTable::table_full() const {
  return Status(Result::kOutOfMemory,
                "buffer table full (" + std::to_string(entries_.size()) + " entries)");
}

// The next free index, under a new generation, in the consumer's table. No
// slot can name the handle before it is returned, so the entry is whole
// before any reads it (table_writes.hpp: the handle word goes last).
Status BufferTable::add_entry_locked(uint64_t address, uint64_t bytes, uint32_t owner,
                                     bool external, BufferHandle* handle) {
  const uint32_t index = free_indices_.back();
  Entry& e = entries_[index];
  e.generation = static_cast<uint16_t>(e.generation == 0xFFFF ? 1 : e.generation + 1);
  e.address = address;
  e.bytes = bytes;
  e.external = external;
  e.owner = owner;
  e.handle = (static_cast<uint32_t>(e.generation) << MR_BUFFER_INDEX_BITS) | index;
  mr_buffer_entry entry{};
  entry.base = address;
  entry.bytes = bytes;
  entry.handle = e.handle;
  entry.owner = owner;
  entry.retire_ticket = ~0ull;
  const Status st = backend_.write_table_entry(index, entry);
  if (!st) {
    e.handle = 0;
    return st;
  }
  free_indices_.pop_back();
  *handle = e.handle;
  return Status::ok();
}

Status BufferTable::free(BufferHandle handle, const TenantOwners* refuse_live) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Entry* e = find_locked(handle);
  if (e != nullptr && refuse_live != nullptr) {
    Status st = refuse_live->refuse_if_live(e->owner, "buffer", handle);
    if (!st) return st;
  }
  return free_locked(handle);
}

Status BufferTable::free_locked(BufferHandle handle) {
  if (find_locked(handle) == nullptr) return unknown_handle(handle);
  const uint32_t index = handle & MR_BUFFER_INDEX_MASK;
  Entry& e = entries_[index];
  // The retire names ring 0's next ticket; the cut read after it decides
  // which tickets of every ring may still run with the buffer.
  Status st = backend_.retire_table_entry(index, rings_.retire_ticket());
  if (!st) return st;
  PendingFree pending{index, handle, e.address, e.external, rings_.retire_cut()};
  e.handle = 0;
  pending_frees_.push_back(pending);
  collect_locked(false);
  return Status::ok();
}

void BufferTable::collect(bool consumer_stopped) {
  std::lock_guard<std::mutex> lock(mutex_);
  collect_locked(consumer_stopped);
}

void BufferTable::collect_locked(bool consumer_stopped) {
  auto it = pending_frees_.begin();
  while (it != pending_frees_.end()) {
    if (consumer_stopped || rings_.completed(it->safe_after)) {
      (void)backend_.clear_table_handle(it->index);
      if (!it->external) (void)backend_.free(it->address);  // registered memory is the caller's
      free_indices_.push_back(it->index);
      it = pending_frees_.erase(it);
    } else {
      ++it;
    }
  }
}

void BufferTable::free_all() {
  std::lock_guard<std::mutex> lock(mutex_);
  collect_locked(true);
  for (const Entry& e : entries_)
    if (e.handle != 0 && !e.external) (void)backend_.free(e.address);
}

bool BufferTable::pending_external_locked(BufferHandle handle) const {
  for (const PendingFree& f : pending_frees_)
    if (f.handle == handle && f.external) return true;
  return false;
}

Status BufferTable::unregister_external(BufferHandle handle, Nanoseconds timeout,
                                       const TenantOwners* refuse_live, bool fail_if_in_use) {
  const auto deadline = deadline_after(timeout);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const Entry* e = find_locked(handle);
    if (e != nullptr && !e->external)
      return Status(Result::kInvalidArgument, "buffer " + std::to_string(handle) +
                                                  " was allocated by alloc_buffer: free_buffer frees it");
    if (e != nullptr && refuse_live != nullptr) {
      Status st = refuse_live->refuse_if_live(e->owner, "buffer", handle);
      if (!st) return st;
    }
    // A live handle is retired now; one retired before (an unregister that
    // timed out, or free_buffer) is waited for again.
    // kInUse: the slots outstanding now (every ring's, up to its end) may
    // name it. Slots published after this look and before the retire below
    // are waited for as usual.
    if (e != nullptr && fail_if_in_use && !rings_.completed(rings_.retire_cut()))
      return Status(Result::kInUse, "buffer " + std::to_string(handle) +
                                        " stays registered: slots published before may still use "
                                        "it (WhileInUse::kFail)");
    if (e != nullptr) {
      Status st = free_locked(handle);
      if (!st) return st;
    } else if (!pending_external_locked(handle)) {
      return unknown_handle(handle);
    }
  }
  HostWaiter waiter;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      collect_locked(false);
      if (!pending_external_locked(handle)) return Status::ok();
    }
    if (SteadyClock::now() > deadline)
      return Status(Result::kTimeout,
                    "buffer " + std::to_string(handle) +
                        " is retired, but slots published before still run on it: its memory is "
                        "not yet yours (unregister_buffer again to wait on)");
    waiter.pause();
  }
}

Status BufferTable::copy(BufferHandle handle, uint64_t offset, void* host_ptr, uint64_t bytes,
                         bool to_buffer) {
  if (host_ptr == nullptr && bytes != 0) return Status(Result::kInvalidArgument, "host pointer is null");
  std::lock_guard<std::mutex> lock(mutex_);
  const Entry* e = find_locked(handle);
  if (e == nullptr) return unknown_handle(handle);
  if (!range_within(offset, bytes, e->bytes))
    return Status(Result::kInvalidArgument, "range [" + std::to_string(offset) + ", +" +
                                                std::to_string(bytes) + ") outside buffer of " +
                                                std::to_string(e->bytes) + " bytes");
  if (bytes == 0) return Status::ok();
  return to_buffer ? backend_.copy_in(e->address + offset, host_ptr, bytes)
                   : backend_.copy_out(host_ptr, e->address + offset, bytes);
}

}  // namespace megaring::detail
