// SPDX-License-Identifier: Apache-2.0
// One tenant's state, shared by every copy of its handle (tenant.hpp), in
// parts of one concern each.
//
// Counters of one tenant and how they relate:
//   published  slots reserved against the quota; incremented BEFORE the ring
//              publish (so a racing quiesce waits for it) and decremented if
//              the ring refuses it.
//   drained    slots whose completion the pump delivered.
//   outstanding = published - drained; never negative: every drained slot
//              was published successfully, and successful publishes only grow.
// Revocation races publishing by a Dekker pattern on (published, revoked):
// a publisher increments published then reads revoked; the registry sets
// revoked then reads published (both seq_cst). Either the publisher sees the
// revocation and rolls back, or the registry sees the slot as outstanding
// and keeps the tenant's id and window out of reuse until it has drained.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "megaring/tenant.hpp"
#include "ring/kept_results.hpp"
#include "ring/status_tally.hpp"

namespace megaring::detail {

class RegistryCore;

// What register_tenant fixed; never changes after.
struct TenantIdentity {
  uint32_t id = 0;
  uint32_t index = 0;
  uint32_t base_opcode = 0;
  std::string label;
  TenantQuotas quotas;
  TenantCompletionCallback on_completion;
};

// The slot counters (see the top of this file) and the publish refusals.
struct SlotCounters {
  alignas(64) std::atomic<uint64_t> published{0};
  alignas(64) std::atomic<uint64_t> drained{0};
  std::atomic<uint64_t> delivered{0};  // completions the pump handed over; drained <= delivered
  // Relaxed: statistics.
  std::atomic<uint64_t> backpressure_events{0}, pipeline_errors{0};

  uint64_t outstanding() const {
    // drained first: see the top of this file (no underflow). seq_cst: the
    // registry's retirement check is the reading half of the Dekker pair.
    const uint64_t d = drained.load(std::memory_order_seq_cst);
    const uint64_t p = published.load(std::memory_order_seq_cst);
    return p - d;
  }
};

// Staging bytes and resident handles, guarded by `mutex`. A resident
// handle is held by an explicit reservation, by a buffer of the tenant,
// or by an alloc_buffer between its quota check and the buffer table, or
// by a buffer on its way out (a free or unregister the runtime may refuse:
// it holds its handle until it returns), or by a region (an entry of the
// shared region table), a create in progress included:
// resident_in_use_locked() = resident_reserved + allocating + dropping +
// buffers.size() + creating_regions + regions.size(), so
// release_resident_handles() can give back only what was reserved, never
// a buffer's or a region's handle. Staging bytes likewise:
// staging_in_use_locked() = staging_reserved + region_bytes (the arena
// ranges the regions take, ArenaAllocator::range_length, a create in
// progress included). A region's handle and bytes are charged and given
// back together. Revocation zeroes all of them (the in-progress counts
// drop as their calls return).
struct QuotaUsage {
  mutable std::mutex mutex;
  uint64_t staging_reserved = 0;
  uint64_t resident_reserved = 0;
  uint64_t allocating = 0;
  uint64_t dropping = 0;
  std::unordered_set<BufferHandle> buffers;
  uint64_t creating_regions = 0;
  uint64_t region_bytes = 0;
  std::unordered_map<RegionHandle, uint64_t> regions;  // live regions and their charges

  uint64_t staging_in_use_locked() const { return staging_reserved + region_bytes; }
  uint64_t resident_in_use_locked() const {
    return resident_reserved + allocating + dropping + buffers.size() + creating_regions +
           regions.size();
  }
};

// The consumer's counters of the tenant's index. Guarded by the core's
// mutex.
struct DeviceCounters {
  mr_tenant_counters baseline{};  // the index's counters at registration
  // As last read, minus the baseline; set for good once the index retired
  // (or the registry closed): then `frozen`.
  mr_tenant_counters since_baseline{};
  bool frozen = false;
};

struct TenantState {
  TenantIdentity identity;
  std::shared_ptr<RegistryCore> core;  // keeps the core (not the runtime) alive for handles
  std::atomic<bool> revoked{false};    // the other half of the Dekker pair (top of this file)
  SlotCounters slots;
  StatusTally completions;  // the pump's attribution by status (relaxed: statistics)
  // Kept tickets: published and not yet delivered (pending), delivered and
  // not yet read. The pump may deliver before the publisher records the
  // ticket as pending; the publisher then skips it (KeptResults::expect).
  KeptResults kept;
  QuotaUsage usage;
  DeviceCounters device;
  // The grants last written to the consumer (normalized: tenant_grants.hpp).
  // Guarded by the core's mutex_, which also orders the table writes.
  OpcodeGrants grants;
};

}  // namespace megaring::detail
