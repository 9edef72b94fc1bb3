// SPDX-License-Identifier: Apache-2.0
// A consumer for the tenant tests: the built-ins plus two test opcodes.
//   kOpGate      args[0] = address of a uint32_t the host owns (host memory
//                on the CPU backend, pinned host-mapped memory on the GPU);
//                the slot runs until that word is non-zero (or abort), so a
//                test can hold every consumer unit and keep later slots queued.
//   kOpIdentify  result = (slot.tenant << 32) | slot.opcode as the handler
//                sees them: proves the consumer ran the tenant-local opcode.
//   kOpSpinUntilAbort  args[0] = address of a uint64_t the consumer owns
//                (as for kOpGate), args[1] = rounds, args[2] = a buffer of
//                two uint64_t (start: UINT64_MAX, 0): a block-wide loop that
//                syncs every round, stores its round count to that word and
//                leaves through ctx.abort_requested(), as a long user
//                handler should, each thread folding the round it left on
//                into the buffer's (min, max); after args[1] rounds it
//                completes with that count as its result.
//   kOpReport    reports exactly what the slot asks: result args[0],
//                status args[1], fault args[2] (each cut to 16 bits), for
//                the stamp's range checks (never status ABORTED: that is an
//                abandon, and would stop the unit).
#pragma once

#include <megaring/consumer.hpp>

#include <cstdint>

namespace megaring_test {

constexpr uint32_t kOpGate = MR_OP_USER_BASE + 0;
constexpr uint32_t kOpIdentify = MR_OP_USER_BASE + 1;
constexpr uint32_t kOpSpinUntilAbort = MR_OP_USER_BASE + 2;
constexpr uint32_t kOpReport = MR_OP_USER_BASE + 3;

const megaring::Consumer& tenant_test_consumer();

}  // namespace megaring_test
