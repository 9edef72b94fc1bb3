// SPDX-License-Identifier: Apache-2.0
// A consumer with make_consumer's block size and register cap set
// (capped_consumer.cu, nvcc); usable from plain C++.
#pragma once

#include <megaring/consumer.hpp>

namespace megaring_test {

inline constexpr unsigned kCappedThreads = 32;
inline constexpr unsigned kCappedRegisters = 32;

// make_consumer<NoUserOps, kCappedThreads, kCappedRegisters>.
const megaring::Consumer& capped_consumer();

// The register count of its GPU kernel (no timeline), as the CUDA runtime
// reports it. Needs a device.
cudaError_t capped_kernel_registers(int* registers);

}  // namespace megaring_test
