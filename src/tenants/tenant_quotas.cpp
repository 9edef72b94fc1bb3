// SPDX-License-Identifier: Apache-2.0
// TenantHandle's quotas: staging bytes, resident handles, and the buffers
// that hold resident handles. All of it under the tenant's QuotaUsage mutex.
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

using detail::check_quota;
using detail::TenantState;

namespace {

// Giving back more than was reserved: value() what is reserved, limit()
// what the caller gave back.
Status underflow(const char* what, uint64_t amount, uint64_t reserved) {
  return Status(Result::kResourceUnderflow,
                std::string(what) + ": releasing " + std::to_string(amount) + " but only " +
                    std::to_string(reserved) + " reserved",
                reserved, amount);
}

// A live tenant that owns `handle`, or why not.
Status check_owned(const TenantState* state, BufferHandle handle) {
  if (state == nullptr) return detail::empty_handle();
  std::lock_guard<std::mutex> lock(state->usage.mutex);
  if (state->revoked.load()) return detail::revoked_status(state->identity.id);
  if (state->usage.buffers.count(handle) == 0)
    return Status(Result::kInvalidArgument,
                  "buffer " + std::to_string(handle) + " is not this tenant's");
  return Status();
}

}  // namespace

Status TenantHandle::reserve_staging_bytes(uint64_t bytes) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.usage.mutex);
    if (t.revoked.load()) return detail::revoked_status(t.identity.id);
    Status st = check_quota(t.usage.staging_in_use_locked(), bytes, t.identity.quotas.staging_bytes,
                            Result::kStagingBackpressure, "staging bytes");
    if (st) t.usage.staging_reserved += bytes;
    return st;
  });
}

Status TenantHandle::release_staging_bytes(uint64_t bytes) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.usage.mutex);
    if (t.revoked.load()) return detail::revoked_status(t.identity.id);
    // Only explicit reservations: a region's bytes go back with free_region.
    if (bytes > t.usage.staging_reserved)
      return underflow("staging bytes", bytes, t.usage.staging_reserved);
    t.usage.staging_reserved -= bytes;
    return Status();
  });
}

Status TenantHandle::reserve_resident_handles(uint64_t count) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.usage.mutex);
    if (t.revoked.load()) return detail::revoked_status(t.identity.id);
    Status st = check_quota(t.usage.resident_in_use_locked(), count,
                            t.identity.quotas.resident_handles, Result::kResidentBackpressure,
                            "resident handles");
    if (st) t.usage.resident_reserved += count;
    return st;
  });
}

Status TenantHandle::release_resident_handles(uint64_t count) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.usage.mutex);
    if (t.revoked.load()) return detail::revoked_status(t.identity.id);
    // Only explicit reservations: a buffer's or a region's handle goes back
    // with free_buffer / free_region.
    if (count > t.usage.resident_reserved)
      return underflow("resident handles", count, t.usage.resident_reserved);
    t.usage.resident_reserved -= count;
    return Status();
  });
}

namespace {
// The buffer's resident handle is counted from the quota check on (as
// `allocating`), so concurrent calls cannot both pass a full quota. The
// revocation check after the allocation is under the usage mutex, which
// unregister takes after setting `revoked`: either unregister sweeps the new
// buffer, or this call sees the revocation and frees it.
template <class Make>
Status add_buffer(TenantState& t, BufferHandle* handle, Make&& make) {
  if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
  {
    std::lock_guard<std::mutex> lock(t.usage.mutex);
    if (t.revoked.load()) return detail::revoked_status(t.identity.id);
    Status q = check_quota(t.usage.resident_in_use_locked(), 1, t.identity.quotas.resident_handles,
                           Result::kResidentBackpressure, "resident handles");
    if (!q) return q;
    ++t.usage.allocating;
  }
  BufferHandle h = 0;
  Status st = make(&h);
  std::unique_lock<std::mutex> lock(t.usage.mutex);
  --t.usage.allocating;
  if (!st) return st;
  if (!t.revoked.load()) {
    try {
      t.usage.buffers.insert(h);
    } catch (...) {
      lock.unlock();
      (void)detail::RuntimeInternals::free_owned_buffer(t.core->runtime(), h);
      throw;
    }
    *handle = h;
    return Status();
  }
  lock.unlock();
  (void)detail::RuntimeInternals::free_owned_buffer(t.core->runtime(), h);
  return detail::revoked_status(t.identity.id);
}

// A buffer of the tenant goes, by `drop` (the runtime's free or
// unregister); if the runtime refuses (an unregister that times out or
// finds the buffer in use), the tenant still holds it. Meanwhile it counts
// as `dropping`: its resident handle stays in use until the answer, so a
// concurrent registration cannot take it (the quota holds at every moment).
template <class Drop>
Status drop_buffer(TenantState& t, BufferHandle handle, Drop&& drop) {
  {
    std::lock_guard<std::mutex> lock(t.usage.mutex);
    if (t.revoked.load()) return detail::revoked_status(t.identity.id);
    if (t.usage.buffers.erase(handle) == 0)
      return Status(Result::kInvalidArgument,
                    "buffer " + std::to_string(handle) + " is not this tenant's");
    ++t.usage.dropping;
  }
  Status st = drop();
  std::lock_guard<std::mutex> lock(t.usage.mutex);
  --t.usage.dropping;
  if (!st && !t.revoked.load()) t.usage.buffers.insert(handle);
  return st;
}
}  // namespace

Status TenantHandle::alloc_buffer(uint64_t bytes, BufferHandle* handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    return add_buffer(t, handle, [&](BufferHandle* h) {
      return detail::RuntimeInternals::alloc_owned_buffer(t.core->runtime(), bytes, t.identity.id, h);
    });
  });
}

Status TenantHandle::register_buffer(void* memory, uint64_t bytes, BufferHandle* handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    return add_buffer(t, handle, [&](BufferHandle* h) {
      return detail::RuntimeInternals::register_owned_buffer(t.core->runtime(), memory, bytes,
                                                             t.identity.id, h);
    });
  });
}

Status TenantHandle::free_buffer(BufferHandle handle) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    return drop_buffer(t, handle, [&] {
      return detail::RuntimeInternals::free_owned_buffer(t.core->runtime(), handle);
    });
  });
}

Status TenantHandle::unregister_buffer(BufferHandle handle, Nanoseconds timeout,
                                       WhileInUse while_in_use) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    TenantState& t = *state_;
    return drop_buffer(t, handle, [&] {
      return detail::RuntimeInternals::unregister_owned_buffer(t.core->runtime(), handle, timeout,
                                                               while_in_use);
    });
  });
}

Status TenantHandle::write_buffer(BufferHandle handle, uint64_t offset, const void* src,
                                  uint64_t bytes) const {
  return detail::guarded([&]() -> Status {
    Status st = check_owned(state_.get(), handle);
    if (!st) return st;
    return state_->core->runtime().write_buffer(handle, offset, src, bytes);
  });
}

Status TenantHandle::read_buffer(BufferHandle handle, uint64_t offset, void* dst,
                                 uint64_t bytes) const {
  return detail::guarded([&]() -> Status {
    Status st = check_owned(state_.get(), handle);
    if (!st) return st;
    return state_->core->runtime().read_buffer(handle, offset, dst, bytes);
  });
}

TenantQuotaCounters TenantHandle::quota_counters() const {
  TenantQuotaCounters c;
  if (!state_) return c;
  const TenantState& t = *state_;
  c.max_outstanding_slots = t.identity.quotas.max_outstanding_slots;
  c.outstanding_slots = t.slots.outstanding();
  c.staging_bytes_limit = t.identity.quotas.staging_bytes;
  c.resident_handles_limit = t.identity.quotas.resident_handles;
  std::lock_guard<std::mutex> lock(t.usage.mutex);  // one consistent cut of the quotas
  c.staging_bytes_in_use = t.usage.staging_in_use_locked();
  c.staging_region_bytes = t.usage.region_bytes;
  c.staging_regions = t.usage.regions.size();
  c.resident_handles_in_use = t.usage.resident_in_use_locked();
  c.resident_handles_reserved = t.usage.resident_reserved;
  c.resident_buffers = t.usage.buffers.size();
  return c;
}

}  // namespace megaring
