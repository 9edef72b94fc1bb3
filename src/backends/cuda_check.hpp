// SPDX-License-Identifier: Apache-2.0
// Internal: turn CUDA errors into Status values.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "megaring/status.hpp"

namespace megaring::detail {

inline Status cuda_status(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return Status::ok();
  // Clear a non-sticky error so the next call starts clean; a sticky one
  // (illegal address, launch failure) stays and every later call reports it.
  (void)cudaGetLastError();
  return Status(err == cudaErrorMemoryAllocation ? Result::kOutOfMemory : Result::kCudaError,
                std::string(what) + " failed: " + cudaGetErrorName(err) + " (" +
                    cudaGetErrorString(err) + ") at " + file + ":" + std::to_string(line));
}

}  // namespace megaring::detail

// Evaluates a CUDA call; returns its Status from the enclosing function on error.
#define MR_CUDA_TRY(call)                                                                      \
  do {                                                                                         \
    ::megaring::Status mr_cuda_status_ = ::megaring::detail::cuda_status((call), #call,        \
                                                                         __FILE__, __LINE__);  \
    if (!mr_cuda_status_.is_ok()) return mr_cuda_status_;                                      \
  } while (0)
