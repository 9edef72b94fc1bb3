// SPDX-License-Identifier: Apache-2.0
// A consumer with one user opcode, defined in my_consumer.cu (nvcc); usable
// from plain C++.
#pragma once

#include <megaring/consumer.hpp>

// result = sum of x[i]^2 over the uint32 buffer a0, elements [0, a1).
constexpr uint32_t kOpSumSquares = MR_OP_USER_BASE + 0;

const megaring::Consumer& sum_squares_consumer();
