// SPDX-License-Identifier: Apache-2.0
// The refusals that several tenant calls share, worded once.
#pragma once

#include <cstdint>
#include <string>

#include "megaring/status.hpp"

namespace megaring::detail {

inline Status revoked_status(uint32_t id) {
  return Status(Result::kRevoked, "tenant " + std::to_string(id) + " was unregistered");
}

inline Status negative_timeout(const char* what) {
  return Status(Result::kInvalidArgument, std::string(what) + " is negative");
}

inline Status empty_handle() {
  return Status(Result::kInvalidArgument, "empty tenant handle");
}

}  // namespace megaring::detail
