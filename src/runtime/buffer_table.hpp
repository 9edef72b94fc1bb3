// SPDX-License-Identifier: Apache-2.0
// The runtime's buffers: device (or CPU-backend) allocations named by
// handles (index + generation) in the consumer's buffer table, their bounds
// for host copies, and the deferred free that waits until no published slot
// can still reach the memory.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "backends/backend.hpp"
#include "megaring/runtime.hpp"
#include "runtime/tenant_owners.hpp"

namespace megaring::detail {

// Per ring, the end of the tickets that may still use a buffer being freed.
using RingCut = std::array<uint64_t, MR_MAX_RINGS>;

// What the table needs to know of the rings (the runtime answers).
class RingProgress {
 public:
  // The ticket a retire names: ring 0's published end, before the retire
  // store. Ring 0's slots from it on fault BAD_HANDLE (retired_for).
  virtual uint64_t retire_ticket() const = 0;
  // Called right after the retire store: every ring's published end, read so
  // that a ticket at or past it had its slot written after the retire was
  // visible (and faults), while those below it may still run with the
  // buffer (Runtime::Impl::retire_cut says how for each kind of ring).
  virtual RingCut retire_cut() = 0;
  // Every ring completed every ticket below its end in `cut` (or the
  // consumer has stopped: nothing runs any more).
  virtual bool completed(const RingCut& cut) const = 0;

 protected:
  ~RingProgress() = default;
};

class BufferTable {
 public:
  BufferTable(ConsumerBackend& backend, RingProgress& rings) : backend_(backend), rings_(rings) {}
  // `max_buffers` entries, all free; before the consumer starts.
  void init(uint32_t max_buffers);

  // `owner`: the tenant id the consumer checks slots against (0: the
  // runtime). The caller checked `handle` and `bytes` (Runtime::Impl).
  Status alloc(uint64_t bytes, uint32_t owner, BufferHandle* handle);
  // Caller memory (registered, never allocated or freed here) as a buffer.
  // The caller checked `address` and `bytes` (Runtime::Impl).
  Status register_external(uint64_t address, uint64_t bytes, uint32_t owner, BufferHandle* handle);
  // Slots published from here on fault BAD_HANDLE; those published before
  // still run, and the memory goes back once they all completed (registered
  // memory goes back to no one: only the handle is). `refuse_live`: the
  // runtime's own call, which may not free a live tenant's buffer (null:
  // the owner's call).
  Status free(BufferHandle handle, const TenantOwners* refuse_live);
  // A registered buffer's free that returns once no slot can reach the
  // memory, or kTimeout with the handle retired (a later call waits on).
  // fail_if_in_use: a live handle that slots published before may still use
  // (progress.completed(retire_cut()) is false) is not retired: kInUse.
  // refuse_live: as free's.
  Status unregister_external(BufferHandle handle, Nanoseconds timeout,
                             const TenantOwners* refuse_live, bool fail_if_in_use = false);
  // Copies between host memory and a buffer range, under the table lock so
  // that a concurrent free cannot release the memory mid-copy.
  Status copy(BufferHandle handle, uint64_t offset, void* host_ptr, uint64_t bytes, bool to_buffer);
  // Frees what no ring can reach any more (everything once the consumer stopped).
  void collect(bool consumer_stopped);
  // The runtime is going and its consumer has stopped: every buffer goes.
  void free_all();

 private:
  struct Entry {
    uint64_t address = 0;
    uint64_t bytes = 0;
    uint32_t handle = 0;  // 0 = unused index
    uint32_t owner = 0;   // the tenant id (0: the runtime)
    uint16_t generation = 0;
    bool external = false;  // caller memory: never freed here
  };
  struct PendingFree {
    uint32_t index;
    BufferHandle handle;
    uint64_t address;
    bool external;
    RingCut safe_after;  // free once every ring's tickets below these completed
  };
  const Entry* find_locked(BufferHandle handle) const;
  Status table_full() const;
  Status add_entry_locked(uint64_t address, uint64_t bytes, uint32_t owner, bool external,
                          BufferHandle* handle);
  Status free_locked(BufferHandle handle);
  // A registered buffer retired and not yet collected.
  bool pending_external_locked(BufferHandle handle) const;
  void collect_locked(bool consumer_stopped);

  ConsumerBackend& backend_;
  RingProgress& rings_;
  std::mutex mutex_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> free_indices_;
  std::vector<PendingFree> pending_frees_;
};

}  // namespace megaring::detail
