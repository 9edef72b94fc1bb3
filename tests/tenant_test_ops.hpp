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
//   kOpReadGrants  reads grant words 1 and 2 (user opcodes 256 .. 383) of the slot's tenant index
//                (the consumer's table), pausing args[0] ns between the
//                two reads; result = (word 1 & 0xFFFFFFFF) | word 2 << 32.
//                A slot that saw a grants change half-applied returns a
//                pair that neither the old nor the new grants hold.
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
constexpr uint32_t kOpReadGrants = MR_OP_USER_BASE + 4;

const megaring::Consumer& tenant_test_consumer();

// The word a kOpGate slot waits on, one for the process: host memory for the
// CPU backend; for the GPU (`cuda`), pinned and mapped, allocated before any
// runtime runs and never freed (cudaFreeHost could wait for the persistent
// kernel). Null if it cannot be allocated.
uint32_t* gate_word(bool cuda);
// Opens (non-zero) or closes the gate: a RELEASE (system) store.
void set_gate(bool cuda, uint32_t value);
// The word a kOpSpinUntilAbort slot stores its round count to, in a line of
// its own in the same allocation (allocated with the gate word: null when
// that is).
uint64_t* spin_rounds_word(bool cuda);

}  // namespace megaring_test
