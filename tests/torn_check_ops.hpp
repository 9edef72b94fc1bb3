// SPDX-License-Identifier: Apache-2.0
// A consumer for the torn-read stress test (test_torn_read.cpp): the
// built-ins plus one self-checking opcode family.
//
// torn_check_request(seed, sum_buffer) builds a slot whose body is a function
// of args[0] (the seed):
//   args[0]     the seed
//   args[1]     sum_buffer: a buffer of one uint64_t, the same in every slot
//   args[2..4]  a splitmix64 chain of the seed
//   opcode      kOpTornCheckBase + 0..kTornCheckOpcodes-1, from the chain
//   flags       bits 1..15 from the chain (bit 0 is KEEP_RESULT, which the
//               runtime sets; the high 16 are reserved and fault on their own)
//   tenant      0
// The handler recomputes every field from its private copy of the slot:
//   all match  -> adds args[2] (the seed's hash) to the sum buffer with a
//                 relaxed atomic; OK, result = seed
//   otherwise  -> FAULT / MR_FAULT_BAD_ARGUMENT, result 0, nothing added
// A body that mixes two publishes of one ring position (a torn read) thus
// faults. A body that is wholly the position's previous publish is
// self-consistent, but runs that seed twice and its own never: the sum of
// the hashes run then differs from the sum of those published (and a kept
// ticket's result is the wrong seed).
#pragma once

#include <megaring/consumer.hpp>
#include <megaring/runtime.hpp>

#include <cstdint>

namespace megaring_test {

constexpr uint32_t kOpTornCheckBase = MR_OP_USER_BASE + 16;
constexpr uint32_t kTornCheckOpcodes = 4;  // kOpTornCheckBase + 0..3, chosen by the seed

// The slot the handler accepts for `seed` (same code as the handler's check);
// the hash it adds to the sum is the request's args[2].
megaring::SlotRequest torn_check_request(uint64_t seed, megaring::BufferHandle sum_buffer);

const megaring::Consumer& torn_check_consumer();

}  // namespace megaring_test
