// SPDX-License-Identifier: Apache-2.0
// The tenant ids whose objects (buffers, regions) only their TenantHandle
// frees: each tenant's quota counts what it owns, and a free by the
// runtime's own calls would leave that charge behind. An id is live from
// its tenant entry's write (RuntimeInternals::write_tenant_entry) until the
// entry leaves MR_TENANT_ACTIVE; what a revoked tenant left, its registry
// (or anyone) frees through the runtime. A leaf lock: taken under the
// buffer and region tables' locks, it takes none.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "megaring/slot_abi.h"
#include "megaring/status.hpp"

namespace megaring::detail {

class TenantOwners {
 public:
  void init(uint32_t max_tenants) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.assign(max_tenants, 0);
  }
  void set_live(uint32_t index, uint32_t id) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (index < live_.size()) live_[index] = id;
  }
  void set_gone(uint32_t index) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (index < live_.size()) live_[index] = 0;
  }
  // The refusal of a runtime call on an object `owner` holds, or ok.
  Status refuse_if_live(uint32_t owner, const char* what, uint32_t handle) const {
    if (owner == 0) return Status::ok();
    std::lock_guard<std::mutex> lock(mutex_);
    const uint32_t index = owner & MR_TENANT_INDEX_MASK;
    if (index >= live_.size() || live_[index] != owner) return Status::ok();
    return Status(Result::kInvalidArgument,
                  std::string(what) + " " + std::to_string(handle) + " belongs to tenant " +
                      std::to_string(owner) + ": free it through its TenantHandle");
  }

 private:
  mutable std::mutex mutex_;
  std::vector<uint32_t> live_;  // by tenant index: the live id there, 0 if none
};

}  // namespace megaring::detail
