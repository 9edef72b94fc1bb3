// SPDX-License-Identifier: Apache-2.0
// The refusals that several tenant calls share, worded once.
#pragma once

#include <cstdint>
#include <string>

#include "megaring/detail/checked.hpp"
#include "megaring/status.hpp"

namespace megaring::detail {

inline Status revoked_status(uint32_t id) {
  return Status(Result::kRevoked, "tenant " + std::to_string(id) + " was unregistered");
}

inline Status negative_timeout(const char* what) {
  return Status(Result::kInvalidArgument, std::string(what) + " is negative");
}

// A quota check and its refusal: `used + amount` within `limit`, or `over`
// with the amount in use as value() and the quota as limit().
inline Status check_quota(uint64_t used, uint64_t amount, uint64_t limit, Result over,
                          const char* what) {
  if (fits_quota(used, amount, limit)) return Status();
  return Status(over,
                std::string(what) + ": " + std::to_string(used) + " in use + " +
                    std::to_string(amount) + " asked > quota " + std::to_string(limit),
                used, limit);
}

inline Status empty_handle() {
  return Status(Result::kInvalidArgument, "empty tenant handle");
}

}  // namespace megaring::detail
