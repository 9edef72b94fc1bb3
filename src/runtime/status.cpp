// SPDX-License-Identifier: Apache-2.0
// The one result enum's names (megaring/status.hpp).
#include "megaring/status.hpp"

namespace megaring {

const char* result_string(Result result) noexcept {
  switch (result) {
    case Result::kSuccess: return "success";
    case Result::kInvalidArgument: return "invalid argument";
    case Result::kRingFull: return "ring full";
    case Result::kTimeout: return "timeout";
    case Result::kNoDevice: return "no device";
    case Result::kCudaError: return "cuda error";
    case Result::kShutdown: return "shut down";
    case Result::kAborted: return "aborted";
    case Result::kOutOfMemory: return "out of memory";
    case Result::kInternal: return "internal error";
    case Result::kIoError: return "i/o error";
    case Result::kRevoked: return "revoked";
    case Result::kOpcodeOutOfRange: return "opcode out of range";
    case Result::kBackpressure: return "backpressure";
    case Result::kStagingBackpressure: return "staging backpressure";
    case Result::kResidentBackpressure: return "resident-handle backpressure";
    case Result::kResourceUnderflow: return "resource underflow";
    case Result::kQuiesceTimeout: return "quiesce timeout";
    case Result::kRegistryFull: return "registry full";
    case Result::kInUse: return "in use";
  }
  return "unknown result";
}

std::string Status::to_string() const {
  std::string s = result_string(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace megaring
