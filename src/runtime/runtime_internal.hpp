// SPDX-License-Identifier: Apache-2.0
// Internal: what the tenant layer (src/tenants/) needs from a Runtime beyond its
// public API. Not installed; the tests include it to inspect the ring.
//
// Drain mode. While a drain is claimed (claim_drain), only
// RuntimeInternals::drain() reaps ring 0: producers that find the ring full
// wait for it (back-pressure), and wait()/release()/stats()/shutdown() no
// longer reap on their own. drain() pulls every reaped ticket exactly once,
// in ticket order within one call, with its completion record and the
// Origin its producer passed to publish_tagged. The runtime calls the layer
// above it only once, as it ends (RuntimeLink).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "megaring/runtime.hpp"
#include "ring/drain_record.hpp"
#include "runtime/control_barrier.hpp"
#include "runtime/runtime_link.hpp"

namespace megaring::detail {

struct RuntimeInternals {
  // The runtime's link, whose end hooks ~Runtime runs first (runtime_link.hpp).
  static std::shared_ptr<RuntimeLink> link(Runtime& runtime);
  // Claims (or with false gives up) drain mode; one claim at a time.
  static Status claim_drain(Runtime& runtime, bool claim);
  // Reaps every completed ticket, appending a record for each to *records
  // (which keeps its capacity between passes). Returns how many were
  // reaped. Thread-safe; without a claim it reaps and records nothing.
  static size_t drain(Runtime& runtime, std::vector<DrainRecord>* records);
  // publish_batch with an origin stored for the drain. want_record: the
  // consumer writes each slot's completion record even if it completes OK,
  // so that the drain record carries its result (without it, an OK slot's
  // DrainRecord::result is 0: slot_abi.h, KEEP_RESULT).
  static Status publish_tagged(Runtime& runtime, const SlotRequest* requests, uint32_t count,
                               Origin origin, bool want_record, Ticket* first,
                               const PublishOptions& options);
  // alloc_buffer whose table entry names an owning tenant (0: the runtime).
  static Status alloc_owned_buffer(Runtime& runtime, uint64_t bytes, uint32_t owner,
                                   BufferHandle* handle);
  // register_buffer whose table entry names an owning tenant.
  static Status register_owned_buffer(Runtime& runtime, const void* memory, uint64_t bytes,
                                      uint32_t owner, BufferHandle* handle);
  // create_region whose table entry names an owning tenant.
  static Status create_owned_region(Runtime& runtime, RegionPolicy policy, uint64_t bytes,
                                    uint32_t owner, RegionHandle* handle);
  // The owning tenant's frees: the runtime's own calls refuse a live
  // tenant's objects (tenant_owners.hpp), these do not.
  static Status free_owned_buffer(Runtime& runtime, BufferHandle handle);
  static Status unregister_owned_buffer(Runtime& runtime, BufferHandle handle, Nanoseconds timeout,
                                        WhileInUse while_in_use);
  static Status free_owned_region(Runtime& runtime, RegionHandle handle);
  // Tenant table (see mr_tenant_entry for when each may be called).
  static uint32_t max_tenants(const Runtime& runtime);
  static Status write_tenant_entry(Runtime& runtime, uint32_t index, const mr_tenant_entry& entry,
                                   const mr_tenant_grants& grants);
  static Status set_tenant_state(Runtime& runtime, uint32_t index, uint32_t state);
  // A control operation (control_barrier.hpp); `previous` is what it undoes to.
  static Status set_tenant_grants(Runtime& runtime, uint32_t index, const mr_tenant_grants& grants,
                                  const mr_tenant_grants& previous);
  // Tests: the next control operation's step `step` fails once it applied
  // (its rollback runs).
  static void inject_control_failure(Runtime& runtime, uint32_t step);
  // Any steps as one control operation (control_barrier.hpp).
  static Status run_control(Runtime& runtime, const char* what,
                            const std::vector<ControlStep>& steps);
  // The tenant word of every entry, [max_tenants]: a new registry continues
  // each index's generations, so no id of an earlier registry ever returns.
  static Status read_tenant_ids(Runtime& runtime, std::vector<uint32_t>* ids);
  static Status read_tenant_counters(Runtime& runtime, uint32_t index, mr_tenant_counters* out);
  // Every ticket below this is reserved (published or being written).
  static uint64_t published_end(const Runtime& runtime);
  // Copies the slot at `ticket`'s position, if that position still belongs
  // to it (not reaped). For tests: what a producer actually wrote.
  static Status peek_slot(Runtime& runtime, uint64_t ticket, mr_slot* out);
  // For tests that need a producer caught mid-publish: publish calls
  // hook(arg, first, count) after reserving tickets [first, first + count)
  // and before writing them. nullptr removes it. Set it while no publish runs.
  using ReserveHook = detail::ReserveHook;
  static void set_reserve_hook(Runtime& runtime, ReserveHook hook, void* arg);
  // For tests of a reaper that fails to park a kept result: a reap pass that
  // moves ticket's unread kept result to the parked map calls hook(arg,
  // ticket) after claiming it and before storing it, and may throw (as that
  // store can: std::bad_alloc). Set it while no reap runs.
  using ParkHook = detail::ParkHook;
  static void set_park_hook(Runtime& runtime, ParkHook hook, void* arg);
  // How many times a wait() or release() found its kept result being parked
  // (keep_ claimed by a reaper) and waited for the move to finish.
  static uint64_t parking_waits(const Runtime& runtime);
  // Consumer health checks made so far (each a cudaStreamQuery on the GPU).
  static uint64_t health_checks(const Runtime& runtime);
};

}  // namespace megaring::detail
