// SPDX-License-Identifier: Apache-2.0
// TenantHandle's staging regions: created against the staging-bytes quota,
// used only through handles the tenant owns, given back on free or
// revocation (tenant.hpp).
#include <mutex>
#include <string>

#include "megaring/detail/checked.hpp"
#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"
#include "runtime/runtime_internal.hpp"
#include "tenants/registry_core.hpp"
#include "tenants/tenant_refusals.hpp"
#include "tenants/tenant_state.hpp"

namespace megaring {

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

// The size is charged from the quota check on, so that concurrent creates
// cannot both pass a full quota; the revocation check after the create is
// under the usage mutex, as add_buffer's (tenant_quotas.cpp).
Status TenantHandle::create_region(RegionPolicy policy, uint64_t bytes, RegionHandle* handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
    TenantState& t = *state_;
    {
      std::lock_guard<std::mutex> lock(t.usage.mutex);
      if (t.revoked.load()) return detail::revoked_status(t.identity.id);
      const uint64_t used = t.usage.staging_in_use_locked();
      if (!detail::fits_quota(used, bytes, t.identity.quotas.staging_bytes))
        return Status(Result::kStagingBackpressure,
                      "staging bytes: " + std::to_string(used) + " in use + " +
                          std::to_string(bytes) + " asked > quota " +
                          std::to_string(t.identity.quotas.staging_bytes),
                      used, t.identity.quotas.staging_bytes);
      t.usage.region_bytes += bytes;
    }
    RegionHandle h = 0;
    Status st = detail::RuntimeInternals::create_owned_region(t.core->runtime(), policy, bytes,
                                                              t.identity.id, &h);
    std::unique_lock<std::mutex> lock(t.usage.mutex);
    if (!st || t.revoked.load()) {
      // Revocation zeroed region_bytes: only a live tenant gives the charge back.
      if (!t.revoked.load()) t.usage.region_bytes -= bytes;
      lock.unlock();
      if (st) (void)t.core->runtime().free_region(h);
      return st ? detail::revoked_status(t.identity.id) : st;
    }
    try {
      t.usage.regions.emplace(h, bytes);
    } catch (...) {
      t.usage.region_bytes -= bytes;
      lock.unlock();
      (void)t.core->runtime().free_region(h);
      throw;
    }
    *handle = h;
    return Status();
  });
}

Status TenantHandle::free_region(RegionHandle handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    uint64_t bytes = 0;
    {
      std::lock_guard<std::mutex> lock(t.usage.mutex);
      if (t.revoked.load()) return detail::revoked_status(t.identity.id);
      auto it = t.usage.regions.find(handle);
      if (it == t.usage.regions.end()) return not_ours(handle);
      bytes = it->second;
      t.usage.regions.erase(it);
      t.usage.region_bytes -= bytes;
    }
    Status st = t.core->runtime().free_region(handle);
    if (!st) {  // the runtime still holds it: so does the tenant
      std::lock_guard<std::mutex> lock(t.usage.mutex);
      if (!t.revoked.load()) {
        t.usage.regions.emplace(handle, bytes);
        t.usage.region_bytes += bytes;
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
