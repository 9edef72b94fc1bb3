// SPDX-License-Identifier: Apache-2.0
// Built-in opcode handlers (MR_OP_NOP ... MR_OP_AXPY_F32; the staging ones in
// staging_ops.cuh), shared by the GPU
// megakernel and the CPU backend. Argument layouts are in slot_abi.h.
// Every handler is block-collective (see exec_context.cuh) and validates its
// arguments from the private slot copy; bad arguments become FAULT outcomes.
#pragma once

#include <cstdint>

#include "megaring/consumer/exec_context.cuh"
#include "megaring/consumer/staging_ops.cuh"

namespace megaring {

// A handler table with no user opcodes (the built-in consumer's).
struct NoUserOps {
  template <class Ctx>
  MR_HDI static bool execute(Ctx&, const mr_slot&, Outcome&) {
    return false;
  }
};

namespace detail {

template <class Ctx>
MR_HDI void op_store_u32(Ctx& ctx, const mr_slot& s, Outcome& out) {
  if (s.args[2] > 0xFFFFFFFFull) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  uint8_t* p = ctx.resolve(s.args[0], s.args[1], 4, 4, 0, out);
  if (p == nullptr) return;
  if (ctx.rank() == 0) {
    // Relaxed atomic store: a plain word store on the device, and race-free
    // for the host checker when several slots name the same word.
    DevRef<uint32_t>(*reinterpret_cast<uint32_t*>(p))
        .store(static_cast<uint32_t>(s.args[2]), cuda::std::memory_order_relaxed);
  }
  out.result = s.args[2];
}

template <class Ctx>
MR_HDI void op_atomic_add(Ctx& ctx, const mr_slot& s, Outcome& out) {
  uint8_t* p = ctx.resolve(s.args[0], s.args[1], 8, 8, 0, out);
  if (p == nullptr) return;
  if (ctx.rank() == 0) {
    out.result = DevRef<uint64_t>(*reinterpret_cast<uint64_t*>(p))
                     .fetch_add(s.args[2], cuda::std::memory_order_relaxed);
  }
}

template <class Ctx>
MR_HDI void op_fill(Ctx& ctx, const mr_slot& s, Outcome& out) {
  if (s.args[3] > 0xFFull) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  const uint64_t bytes = s.args[2];
  uint8_t* p = ctx.resolve(s.args[0], s.args[1], bytes, 1, 0, out);
  if (p == nullptr) return;
  const uint8_t value = static_cast<uint8_t>(s.args[3]);
  for (uint64_t i = ctx.rank(); i < bytes; i += ctx.size()) p[i] = value;
  out.result = bytes;
}

template <class Ctx>
MR_HDI void op_copy(Ctx& ctx, const mr_slot& s, Outcome& out) {
  const uint64_t bytes = s.args[4];
  uint8_t* dst = ctx.resolve(s.args[0], s.args[1], bytes, 1, 0, out);
  if (dst == nullptr) return;
  const uint8_t* src = ctx.resolve(s.args[2], s.args[3], bytes, 1, 1, out);
  if (src == nullptr) return;
  // Threads copy disjoint bytes in parallel, so overlapping ranges would read
  // bytes another thread already wrote: refuse them.
  if (bytes != 0 && dst < src + bytes && src < dst + bytes)
    return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  for (uint64_t i = ctx.rank(); i < bytes; i += ctx.size()) dst[i] = src[i];
  out.result = bytes;
}

template <class Ctx>
MR_HDI void op_reduce_add_u32(Ctx& ctx, const mr_slot& s, Outcome& out) {
  const uint64_t count = s.args[2];
  uint64_t bytes = 0;
  if (!checked_mul(count, 4, &bytes)) return out.set_fault(MR_FAULT_OUT_OF_BOUNDS);
  const uint8_t* p = ctx.resolve(s.args[0], s.args[1], bytes, 4, 0, out);
  if (p == nullptr) return;
  const uint32_t* elems = reinterpret_cast<const uint32_t*>(p);
  uint64_t partial = 0;
  for (uint64_t i = ctx.rank(); i < count; i += ctx.size()) partial += elems[i];
  const uint64_t total = ctx.block_sum(partial);
  if (ctx.rank() == 0) out.result = total;
}

template <class Ctx>
MR_HDI void op_fence(Ctx& ctx, const mr_slot& /*s*/, Outcome& out) {
  if (ctx.rank() == 0) {
    if (ctx.wait_prefix()) {
      // Every slot the consumer took before this one (each ring's earlier
      // tickets among them) has completed; the result is its own ticket.
      out.result = ctx.ticket();
    } else {
      out.abandon();  // aborted while earlier tickets were pending
    }
  }
}

template <class Ctx>
MR_HDI void op_delay_ns(Ctx& ctx, const mr_slot& s, Outcome& out) {
  if (s.args[0] > MR_DELAY_MAX_NS) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  if (ctx.rank() == 0) {
    const uint64_t start = now_ns();
    while (now_ns() - start < s.args[0]) {
      if (abort_requested(ctx.params())) {  // abort stops long slots promptly
        out.abandon();
        return;
      }
      pause_ns(s.args[0] < 2000 ? 0 : 1000);
    }
  }
  out.result = s.args[0];
}

// Runs a built-in opcode. Returns false if `opcode` is not a built-in.
template <class Ctx>
MR_HDI bool execute_builtin(Ctx& ctx, const mr_slot& s, Outcome& out) {
  switch (s.opcode) {
    case MR_OP_NOP: out.result = s.args[0]; return true;
    case MR_OP_STORE_U32: op_store_u32(ctx, s, out); return true;
    case MR_OP_ATOMIC_ADD: op_atomic_add(ctx, s, out); return true;
    case MR_OP_FILL: op_fill(ctx, s, out); return true;
    case MR_OP_COPY: op_copy(ctx, s, out); return true;
    case MR_OP_REDUCE_ADD_U32: op_reduce_add_u32(ctx, s, out); return true;
    case MR_OP_FENCE: op_fence(ctx, s, out); return true;
    case MR_OP_DELAY_NS: op_delay_ns(ctx, s, out); return true;
    case MR_OP_READ_CLOCK: out.result = now_ns(); return true;  // rank 0's value is used
    case MR_OP_STAGE_TO_BUFFER: op_stage_to_buffer(ctx, s, out); return true;
    case MR_OP_BUFFER_TO_STAGING: op_buffer_to_staging(ctx, s, out); return true;
    case MR_OP_AXPY_F32: op_axpy_f32(ctx, s, out); return true;
    default: return false;
  }
}

// Validates the slot copy's fixed fields, then dispatches: built-ins below
// MR_OP_SYSTEM_END, the user table above. Never skips a slot silently.
template <class Handlers, class Ctx>
MR_HDI void run_slot(Ctx& ctx, const mr_slot& s, Outcome& out) {
  if ((s.flags & MR_SLOT_FLAGS_RESERVED) != 0 || s.reserved != 0)
    return out.set_fault(MR_FAULT_RESERVED_FLAGS);
  const bool handled = s.opcode < MR_OP_SYSTEM_END ? execute_builtin(ctx, s, out)
                                                   : Handlers::execute(ctx, s, out);
  if (!handled) out.set_fault(MR_FAULT_UNKNOWN_OPCODE);
}

// A built-in for which runs_alone() holds, run by one thread with the
// CPU's one-thread context (which works on the device too: every call it
// makes is MR_HD). Checks the flags as run_slot does.
MR_HDI void run_builtin_alone(const ConsumerParams& p, uint64_t seq, SlotOrigin origin,
                              const mr_slot& s, Outcome& out) {
  if ((s.flags & MR_SLOT_FLAGS_RESERVED) != 0 || s.reserved != 0)
    return out.set_fault(MR_FAULT_RESERVED_FLAGS);
  HostExec ctx{p, seq, origin, s.tenant};
  if (!execute_builtin(ctx, s, out)) out.set_fault(MR_FAULT_UNKNOWN_OPCODE);
}

}  // namespace detail
}  // namespace megaring
