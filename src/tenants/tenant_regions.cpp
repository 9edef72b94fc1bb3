// SPDX-License-Identifier: Apache-2.0
// TenantHandle's staging regions: created against the staging-bytes and
// resident-handle quotas, used only through handles the tenant owns, given
// back on free or revocation (tenant.hpp).
#include <mutex>
#include <string>

#include "megaring/detail/checked.hpp"
#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"
#include "runtime/arena_allocator.hpp"
#include "runtime/runtime_internal.hpp"
#include "tenants/registry_core.hpp"
#include "tenants/tenant_refusals.hpp"
#include "tenants/tenant_state.hpp"

namespace megaring {

using detail::check_quota;
using detail::TenantState;

namespace {

Status not_ours(RegionHandle handle) {
  return Status(Result::kInvalidArgument,
                "region " + std::to_string(handle) + " is not this tenant's");
}

// A live tenant that owns `handle`, or why not.
Status check_owned(const TenantState* state, RegionHandle handle) {
  if (state == nullptr) return detail::empty_handle();
  std::lock_guard<std::mutex> lock(state->usage.mutex);
  if (state->revoked.load()) return detail::revoked_status(state->identity.id);
  if (state->usage.regions.count(handle) == 0) return not_ours(handle);
  return Status();
}

// Runs `call` on the runtime if the tenant owns `handle`.
template <class Call>
Status owned_call(const std::shared_ptr<TenantState>& state, RegionHandle handle, Call&& call) {
  return detail::guarded([&]() -> Status {
    Status st = check_owned(state.get(), handle);
    if (!st) return st;
    return call(state->core->runtime());
  });
}

}  // namespace

// A region is charged one resident handle (its entry of the region table,
// which the runtime and every tenant share) and the arena range it takes
// (its size rounded up to the arena's granule), from the quota check on, so
// that concurrent creates cannot both pass a full quota; the revocation
// check after the create is under the usage mutex, as add_buffer's
// (tenant_quotas.cpp). Both charges go back together, on every path.
Status TenantHandle::create_region(RegionPolicy policy, uint64_t bytes, RegionHandle* handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
    TenantState& t = *state_;
    uint64_t charge = 0;
    // A size with no range (near 2^64) is charged everything: over any quota.
    if (!detail::ArenaAllocator::range_length(bytes, &charge)) charge = ~0ull;
    {
      std::lock_guard<std::mutex> lock(t.usage.mutex);
      if (t.revoked.load()) return detail::revoked_status(t.identity.id);
      Status q = check_quota(t.usage.staging_in_use_locked(), charge,
                             t.identity.quotas.staging_bytes, Result::kStagingBackpressure,
                             "staging bytes");
      if (q)
        q = check_quota(t.usage.resident_in_use_locked(), 1, t.identity.quotas.resident_handles,
                        Result::kResidentBackpressure, "resident handles");
      if (!q) return q;
      t.usage.region_bytes += charge;
      ++t.usage.creating_regions;
    }
    RegionHandle h = 0;
    Status st = detail::RuntimeInternals::create_owned_region(t.core->runtime(), policy, bytes,
                                                              t.identity.id, &h);
    std::unique_lock<std::mutex> lock(t.usage.mutex);
    --t.usage.creating_regions;
    if (!st || t.revoked.load()) {
      // Revocation zeroed region_bytes: only a live tenant gives the charge back.
      if (!t.revoked.load()) t.usage.region_bytes -= charge;
      lock.unlock();
      if (st) (void)detail::RuntimeInternals::free_owned_region(t.core->runtime(), h);
      return st ? detail::revoked_status(t.identity.id) : st;
    }
    try {
      t.usage.regions.emplace(h, charge);
    } catch (...) {
      t.usage.region_bytes -= charge;
      lock.unlock();
      (void)detail::RuntimeInternals::free_owned_region(t.core->runtime(), h);
      throw;
    }
    *handle = h;
    return Status();
  });
}

// The region's handle and bytes go back as it leaves the tenant's map; a
// free the runtime refuses puts both back.
Status TenantHandle::free_region(RegionHandle handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    uint64_t charge = 0;
    {
      std::lock_guard<std::mutex> lock(t.usage.mutex);
      if (t.revoked.load()) return detail::revoked_status(t.identity.id);
      auto it = t.usage.regions.find(handle);
      if (it == t.usage.regions.end()) return not_ours(handle);
      charge = it->second;
      t.usage.regions.erase(it);
      t.usage.region_bytes -= charge;
    }
    Status st = detail::RuntimeInternals::free_owned_region(t.core->runtime(), handle);
    if (!st) {  // the runtime still holds it: so does the tenant
      std::lock_guard<std::mutex> lock(t.usage.mutex);
      if (!t.revoked.load()) {
        t.usage.regions.emplace(handle, charge);
        t.usage.region_bytes += charge;
      }
    }
    return st;
  });
}

Status TenantHandle::write_region(RegionHandle handle, uint64_t offset, const void* src,
                                  uint64_t bytes) const {
  return owned_call(state_, handle,
                    [&](Runtime& rt) { return rt.write_region(handle, offset, src, bytes); });
}

Status TenantHandle::seal_region(RegionHandle handle) const {
  return owned_call(state_, handle, [&](Runtime& rt) { return rt.seal_region(handle); });
}

Status TenantHandle::append_region(RegionHandle handle, const void* src, uint64_t bytes,
                                   uint64_t* offset) const {
  return owned_call(state_, handle,
                    [&](Runtime& rt) { return rt.append_region(handle, src, bytes, offset); });
}

Status TenantHandle::read_region(RegionHandle handle, uint64_t offset, void* dst,
                                 uint64_t bytes) const {
  return owned_call(state_, handle,
                    [&](Runtime& rt) { return rt.read_region(handle, offset, dst, bytes); });
}

}  // namespace megaring
