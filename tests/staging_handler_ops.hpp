// SPDX-License-Identifier: Apache-2.0
// A consumer with user opcodes that reach staging regions through the
// handler contract's ctx.resolve_region (staging_handler_ops.cu), for
// test_staging_handlers.cpp.
#pragma once

#include <megaring/consumer.hpp>

namespace megaring_test {

// region=a0 offset=a1 bytes=a2: result = the sum of the bytes (a read).
inline constexpr uint32_t kOpRegionByteSum = MR_OP_USER_BASE;
// region=a0 offset=a1 bytes=a2 value=a3: the bytes set to value (a write).
inline constexpr uint32_t kOpRegionFill = MR_OP_USER_BASE + 1;

const megaring::Consumer& staging_handler_consumer();

}  // namespace megaring_test
