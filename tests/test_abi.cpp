// SPDX-License-Identifier: Apache-2.0
// Ring ABI (megaring/slot_abi.h): layout, header/stamp encoding and opcode
// ranges. The header static_asserts a subset of this at compile time; these
// runtime checks carry literal numbers, so editing a struct *and* its
// static_assert still fails here.
#include <gtest/gtest.h>

#include <megaring/runtime.hpp>
#include <megaring/slot_abi.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <type_traits>

namespace {

// Runtime-evaluated offsetof (through a volatile so the comparison is not
// folded away with the static_asserts' constants).
template <class T>
size_t runtime_value(T v) {
  volatile size_t x = static_cast<size_t>(v);
  return x;
}
#define RT_OFFSETOF(type, member) runtime_value(offsetof(type, member))
#define RT_SIZEOF(type) runtime_value(sizeof(type))
#define RT_ALIGNOF(type) runtime_value(alignof(type))

TEST(AbiLayout, Constants) {
  EXPECT_EQ(MR_ABI_VERSION, 4u);
  EXPECT_EQ(MR_SLOT_BYTES, 64u);
  EXPECT_EQ(MR_SLOT_ARGS, 5u);
  EXPECT_EQ(MR_COMPLETION_BYTES, 16u);
  EXPECT_EQ(MR_CACHELINE_BYTES, 64u);
  EXPECT_EQ(MR_TICKET_BITS, 56u);
  EXPECT_EQ(MR_STATE_BITS, 8u);
  EXPECT_EQ(MR_TICKET_BITS + MR_STATE_BITS, 64u) << "header must be exactly one u64";
  EXPECT_EQ(MR_TICKET_MASK, 0x00FFFFFFFFFFFFFFull);
  EXPECT_EQ(MR_STATE_MASK, 0xFFu);
  EXPECT_EQ(MR_SLOT_EMPTY, 0u);
  EXPECT_EQ(MR_SLOT_READY, 1u);
  EXPECT_EQ(MR_SLOT_FLAG_NONE, 0u);
  EXPECT_EQ(MR_SLOT_FLAG_KEEP_RESULT, 1u);
  EXPECT_EQ(MR_SLOT_FLAG_KEEP_RESULT & MR_SLOT_FLAGS_RESERVED, 0u) << "a consumer must not fault it";
  EXPECT_EQ(MR_SLOT_FLAGS_RESERVED, 0xFFFF0000u);
  EXPECT_EQ(MR_BUFFER_INDEX_BITS, 16u);
  EXPECT_EQ(MR_BUFFER_INDEX_MASK, 0xFFFFu);
  EXPECT_EQ(MR_BUFFER_INDEX_MASK, (1u << MR_BUFFER_INDEX_BITS) - 1u);
  EXPECT_EQ(MR_DELAY_MAX_NS, 1000000000ull);
}

TEST(AbiLayout, Slot) {
  EXPECT_EQ(RT_SIZEOF(mr_slot), 64u);
  EXPECT_EQ(RT_SIZEOF(mr_slot[2]), 128u) << "array stride must be one cache line";
  EXPECT_EQ(RT_ALIGNOF(mr_slot), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_slot, header), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_slot, opcode), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_slot, tenant), 12u);
  EXPECT_EQ(RT_OFFSETOF(mr_slot, flags), 16u);
  EXPECT_EQ(RT_OFFSETOF(mr_slot, reserved), 20u);
  EXPECT_EQ(RT_OFFSETOF(mr_slot, args), 24u);
  EXPECT_EQ(sizeof(mr_slot::args) / sizeof(mr_slot::args[0]), 5u);
  for (size_t i = 0; i < MR_SLOT_ARGS; ++i)
    EXPECT_EQ(runtime_value(offsetof(mr_slot, args) + i * sizeof(uint64_t)), 24u + 8u * i);
  EXPECT_EQ(runtime_value(offsetof(mr_slot, args) + sizeof(mr_slot::args)), 64u)
      << "args must end exactly at the end of the slot";
  EXPECT_EQ(RT_SIZEOF(mr_slot::header), 8u);
  EXPECT_EQ(RT_SIZEOF(mr_slot::opcode), 4u);
  EXPECT_EQ(RT_SIZEOF(mr_slot::tenant), 4u);
  EXPECT_EQ(RT_SIZEOF(mr_slot::flags), 4u);
  EXPECT_EQ(RT_SIZEOF(mr_slot::reserved), 4u);
  EXPECT_TRUE(std::is_trivially_copyable<mr_slot>::value);
  EXPECT_TRUE(std::is_standard_layout<mr_slot>::value);
}

TEST(AbiLayout, Completion) {
  EXPECT_EQ(RT_SIZEOF(mr_completion), 16u);
  EXPECT_EQ(RT_SIZEOF(mr_completion[4]), 64u) << "four records per cache line";
  EXPECT_EQ(RT_ALIGNOF(mr_completion), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_completion, result), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_completion, stamp), 8u);
  EXPECT_EQ(RT_SIZEOF(mr_completion::result), 8u);
  EXPECT_EQ(RT_SIZEOF(mr_completion::stamp), 8u);
  EXPECT_TRUE(std::is_trivially_copyable<mr_completion>::value);
  EXPECT_TRUE(std::is_standard_layout<mr_completion>::value);
}

TEST(AbiLayout, SubmissionControl) {
  EXPECT_EQ(RT_SIZEOF(mr_submission_control), 128u);
  EXPECT_EQ(RT_ALIGNOF(mr_submission_control), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_submission_control, stop_at), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_submission_control, pad0), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_submission_control, abort_flag), 64u);
  EXPECT_EQ(RT_OFFSETOF(mr_submission_control, pad1), 68u);
  EXPECT_EQ(RT_SIZEOF(mr_submission_control::stop_at), 8u);
  EXPECT_EQ(RT_SIZEOF(mr_submission_control::abort_flag), 4u);
  // stop_at and abort_flag on different cache lines.
  EXPECT_NE(RT_OFFSETOF(mr_submission_control, stop_at) / 64,
            RT_OFFSETOF(mr_submission_control, abort_flag) / 64);
}

TEST(AbiLayout, CompletionControl) {
  EXPECT_EQ(RT_SIZEOF(mr_completion_control), 128u);
  EXPECT_EQ(RT_ALIGNOF(mr_completion_control), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_completion_control, heartbeat_ns), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_completion_control, pad1), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_completion_control, exited_units), 64u);
  EXPECT_EQ(RT_OFFSETOF(mr_completion_control, pad2), 68u);
  EXPECT_EQ(RT_SIZEOF(mr_completion_control::heartbeat_ns), 8u);
  EXPECT_EQ(RT_SIZEOF(mr_completion_control::exited_units), 4u);
  // Each consumer-written word on its own line, each ring's DONE_COUNT too.
  EXPECT_NE(RT_OFFSETOF(mr_completion_control, heartbeat_ns) / 64,
            RT_OFFSETOF(mr_completion_control, exited_units) / 64);
  EXPECT_EQ(RT_SIZEOF(mr_ring_done), 64u);
  EXPECT_EQ(RT_OFFSETOF(mr_ring_done, done_count), 0u);
  EXPECT_EQ(MR_MAX_RINGS, 16u);
}

TEST(AbiLayout, BufferEntry) {
  EXPECT_EQ(RT_SIZEOF(mr_buffer_entry), 32u);
  EXPECT_EQ(RT_ALIGNOF(mr_buffer_entry), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_buffer_entry, base), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_buffer_entry, bytes), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_buffer_entry, handle), 16u);
  EXPECT_EQ(RT_OFFSETOF(mr_buffer_entry, owner), 20u);
  EXPECT_EQ(RT_OFFSETOF(mr_buffer_entry, retire_ticket), 24u);
  EXPECT_EQ(RT_SIZEOF(mr_buffer_entry::handle), 4u);
}

TEST(AbiLayout, TenantEntryAndCounters) {
  EXPECT_EQ(RT_SIZEOF(mr_tenant_entry), 16u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_entry, tenant), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_entry, state), 4u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_entry, base_opcode), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_entry, opcode_cap), 12u);
  EXPECT_EQ(RT_SIZEOF(mr_tenant_counters), 32u);
  EXPECT_EQ(RT_ALIGNOF(mr_tenant_counters), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_counters, admitted), 0u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_counters, out_of_window), 8u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_counters, revoked), 16u);
  EXPECT_EQ(RT_OFFSETOF(mr_tenant_counters, not_granted), 24u);
  EXPECT_EQ(RT_SIZEOF(mr_tenant_grants), 64u);
  EXPECT_EQ(MR_FAULT_NOT_GRANTED, 9u);
}

// Where each tenant-local opcode's grant lives (mr_tenant_grants).
TEST(AbiLayout, GrantBits) {
  EXPECT_EQ(mr_grant_bit(MR_OP_NOP), 1u);
  EXPECT_EQ(mr_grant_bit(MR_OP_READ_CLOCK), 9u);
  EXPECT_EQ(mr_grant_bit(MR_GRANT_SYSTEM_END - 1), 63u);
  EXPECT_EQ(mr_grant_bit(MR_OP_USER_BASE), 64u);
  EXPECT_EQ(mr_grant_bit(MR_OP_USER_BASE + 65), 129u);
  EXPECT_EQ(mr_grant_bit(MR_GRANT_USER_END - 1), 64u * MR_GRANT_WORDS - 1);
  EXPECT_EQ(MR_GRANT_USER_END, 704u);
  // Everything else shares bit 0 (opcode 0 is never valid).
  for (uint32_t local : {0u, MR_GRANT_SYSTEM_END, MR_OP_USER_BASE - 1, MR_GRANT_USER_END,
                         MR_OP_TENANT_BASE, 0xFFFFFFFFu})
    EXPECT_EQ(mr_grant_bit(local), 0u) << local;
  // Every bit index stays inside the bitmap, for any 32-bit value.
  for (uint64_t local = 0; local <= 0xFFFFFFFFull; local += 0x10001ull)
    EXPECT_LT(mr_grant_bit(static_cast<uint32_t>(local)), 64u * MR_GRANT_WORDS);
}

// ---------------------------------------------------------------------------
// Header encoding.
// ---------------------------------------------------------------------------
TEST(AbiHeader, RoundTripAcrossTicketRanges) {
  const uint64_t two32 = 1ull << 32;
  const uint64_t tickets[] = {0,
                              1,
                              2,
                              255,
                              256,
                              0xFFFF,
                              two32 - 2,
                              two32 - 1,
                              two32,
                              two32 + 1,
                              two32 + 0x1234,
                              (1ull << 40) + 7,
                              MR_TICKET_MASK - 1,
                              MR_TICKET_MASK};
  for (uint64_t t : tickets) {
    for (uint32_t state : {MR_SLOT_EMPTY, MR_SLOT_READY, 2u, 0x7Fu, 0xFFu}) {
      const uint64_t h = mr_make_header(t, state);
      EXPECT_EQ(mr_header_ticket(h), t) << "ticket " << t << " state " << state;
      EXPECT_EQ(mr_header_state(h), state) << "ticket " << t << " state " << state;
      EXPECT_EQ(h, (t << 8) | state) << "ticket " << t;
    }
  }
}

TEST(AbiHeader, TicketMaskedTo56Bits) {
  const uint64_t two56 = 1ull << 56;
  EXPECT_EQ(mr_header_ticket(mr_make_header(two56, MR_SLOT_READY)), 0u);
  EXPECT_EQ(mr_header_ticket(mr_make_header(two56 + 5, MR_SLOT_READY)), 5u);
  EXPECT_EQ(mr_header_ticket(mr_make_header(two56 - 1, MR_SLOT_READY)), MR_TICKET_MASK);
  EXPECT_EQ(mr_header_ticket(mr_make_header(~0ull, MR_SLOT_READY)), MR_TICKET_MASK);
  EXPECT_EQ(mr_header_state(mr_make_header(~0ull, MR_SLOT_READY)), MR_SLOT_READY)
      << "high ticket bits must not leak into the state byte";
  // Tickets 2^56 apart share a header: that is the documented aliasing.
  EXPECT_EQ(mr_make_header(12345, MR_SLOT_READY), mr_make_header(two56 + 12345, MR_SLOT_READY));
  // Neighbouring tickets never share one.
  EXPECT_NE(mr_make_header(two56 - 1, MR_SLOT_READY), mr_make_header(two56, MR_SLOT_READY));
  // The decoded ticket always fits in 56 bits.
  EXPECT_EQ(mr_header_ticket(~0ull), MR_TICKET_MASK);
}

TEST(AbiHeader, StateMaskedTo8Bits) {
  EXPECT_EQ(mr_header_state(mr_make_header(7, 0x1FFu)), 0xFFu);
  EXPECT_EQ(mr_header_ticket(mr_make_header(7, 0x1FFu)), 7u) << "state bits must not leak into the ticket";
  EXPECT_EQ(mr_header_state(mr_make_header(7, 0x100u | MR_SLOT_READY)), MR_SLOT_READY);
  EXPECT_EQ(mr_header_ticket(mr_make_header(7, 0xFFFFFF00u)), 7u);
}

TEST(AbiHeader, ReadyNeverLooksLikeZeroedMemory) {
  // A zeroed slot is (ticket 0, EMPTY); READY headers are never 0, and READY
  // for ticket t differs from EMPTY for any ticket.
  EXPECT_EQ(mr_make_header(0, MR_SLOT_EMPTY), 0u);
  for (uint64_t t : {uint64_t{0}, uint64_t{1}, uint64_t{1} << 32, uint64_t{MR_TICKET_MASK}}) {
    EXPECT_NE(mr_make_header(t, MR_SLOT_READY), 0u);
    EXPECT_NE(mr_make_header(t, MR_SLOT_READY), mr_make_header(t, MR_SLOT_EMPTY));
  }
}

TEST(AbiHeader, UsableInConstantExpressions) {
  static_assert(mr_make_header(3, MR_SLOT_READY) == 0x301u, "constexpr header");
  static_assert(mr_header_ticket(0x301u) == 3u, "constexpr ticket");
  static_assert(mr_header_state(0x301u) == MR_SLOT_READY, "constexpr state");
  static_assert(mr_stamp_ticket(mr_make_stamp((1ull << 32) + 9, MR_STATUS_FAULT, 5)) ==
                    (1ull << 32) + 9,
                "constexpr stamp");
  SUCCEED();
}

// ---------------------------------------------------------------------------
// Completion stamp: the whole 56-bit ticket, the status and the fault.
// ---------------------------------------------------------------------------
TEST(AbiStamp, Layout) {
  EXPECT_EQ(mr_make_stamp(0, MR_STATUS_OK, MR_FAULT_NONE), 0u);
  EXPECT_EQ(mr_make_stamp(1, MR_STATUS_OK, MR_FAULT_NONE), 0x100u);
  EXPECT_EQ(mr_make_stamp(0, MR_STATUS_REVOKED, MR_FAULT_NONE), 0xC0u);
  EXPECT_EQ(mr_make_stamp(0, MR_STATUS_FAULT, MR_FAULT_BAD_TENANT), 0x48u);
  EXPECT_EQ(mr_make_stamp(0, MR_STATUS_OK, MR_FAULT_MAX), 63u);
  // A code past six bits reads as BAD_ARGUMENT, never as another code.
  EXPECT_EQ(mr_stamp_fault(mr_make_stamp(7, MR_STATUS_FAULT, 64)), MR_FAULT_BAD_ARGUMENT);
  EXPECT_EQ(mr_stamp_fault(mr_make_stamp(7, MR_STATUS_FAULT, 1000)), MR_FAULT_BAD_ARGUMENT);
  for (uint64_t t : {uint64_t{0}, uint64_t{12345}, uint64_t{(1ull << 32) + 7}, uint64_t{MR_TICKET_MASK}}) {
    for (uint32_t status : {MR_STATUS_OK, MR_STATUS_FAULT, MR_STATUS_ABORTED, MR_STATUS_REVOKED}) {
      const uint64_t stamp = mr_make_stamp(t, status, MR_FAULT_OUT_OF_WINDOW);
      EXPECT_EQ(mr_stamp_ticket(stamp), t);
      EXPECT_EQ(mr_stamp_status(stamp), status);
      EXPECT_EQ(mr_stamp_fault(stamp), MR_FAULT_OUT_OF_WINDOW);
      EXPECT_TRUE(mr_stamp_names(stamp, t));
      EXPECT_TRUE(mr_stamp_names(stamp, t + (1ull << 56))) << "only 56 bits travel";
    }
  }
}

TEST(AbiStamp, NoEarlierTicketEverMatches) {
  // A position's record may be left from any earlier lap (records are written
  // only for kept or failed tickets): the stamp names the whole ticket, so
  // neither the seeded lap before the first (t - capacity) nor one 2^32
  // tickets back, where a 32-bit tag would have repeated, passes for t.
  const uint64_t two32 = 1ull << 32;
  for (uint64_t cap : {1ull, 2ull, 8ull, 1024ull, 1ull << 24}) {
    const uint64_t ts[] = {cap, cap + 1, two32 - 1, two32, two32 + 3, two32 + cap - 1, (1ull << 40) + 5};
    for (uint64_t t : ts) {
      EXPECT_FALSE(mr_stamp_names(mr_make_stamp(t - cap, MR_STATUS_OK, 0), t)) << t << " " << cap;
      if (t >= two32)
        EXPECT_FALSE(mr_stamp_names(mr_make_stamp(t - two32, MR_STATUS_OK, 0), t)) << t;
    }
  }
}

// ---------------------------------------------------------------------------
// Opcodes, statuses, faults.
// ---------------------------------------------------------------------------
TEST(AbiOpcodes, Ranges) {
  EXPECT_EQ(MR_OP_INVALID, 0u);
  EXPECT_EQ(MR_OP_USER_BASE, MR_OP_SYSTEM_END);
  EXPECT_EQ(MR_OP_SYSTEM_END, 256u);
  EXPECT_LE(MR_OP_BUILTIN_END, MR_OP_SYSTEM_END);
  const uint32_t builtins[] = {MR_OP_NOP,   MR_OP_STORE_U32,       MR_OP_ATOMIC_ADD,
                               MR_OP_FILL,  MR_OP_COPY,            MR_OP_REDUCE_ADD_U32,
                               MR_OP_FENCE, MR_OP_DELAY_NS, MR_OP_READ_CLOCK,
                               MR_OP_STAGE_TO_BUFFER, MR_OP_BUFFER_TO_STAGING, MR_OP_AXPY_F32};
  std::set<uint32_t> seen;
  for (uint32_t op : builtins) {
    EXPECT_GT(op, MR_OP_INVALID);
    EXPECT_LT(op, MR_OP_BUILTIN_END);
    EXPECT_LT(op, MR_OP_SYSTEM_END);
    EXPECT_TRUE(seen.insert(op).second) << "duplicate opcode " << op;
  }
  // Built-ins are exactly [1, MR_OP_BUILTIN_END).
  EXPECT_EQ(seen.size(), MR_OP_BUILTIN_END - 1u);
  EXPECT_EQ(MR_OP_NOP, 1u);
  EXPECT_EQ(MR_OP_STORE_U32, 2u);
  EXPECT_EQ(MR_OP_ATOMIC_ADD, 3u);
  EXPECT_EQ(MR_OP_FILL, 4u);
  EXPECT_EQ(MR_OP_COPY, 5u);
  EXPECT_EQ(MR_OP_REDUCE_ADD_U32, 6u);
  EXPECT_EQ(MR_OP_FENCE, 7u);
  EXPECT_EQ(MR_OP_DELAY_NS, 8u);
  EXPECT_EQ(MR_OP_READ_CLOCK, 9u);
  EXPECT_EQ(MR_OP_STAGE_TO_BUFFER, 10u);
  EXPECT_EQ(MR_OP_BUFFER_TO_STAGING, 11u);
  EXPECT_EQ(MR_OP_AXPY_F32, 12u);
  EXPECT_EQ(MR_OP_BUILTIN_END, 13u);
}

TEST(AbiOpcodes, TenantWindowsNeverOverlapSystemOrUserOpcodes) {
  EXPECT_GT(MR_OP_TENANT_BASE, MR_OP_USER_BASE);
  EXPECT_GE(MR_OP_TENANT_BASE, MR_OP_SYSTEM_END);
  EXPECT_GT(MR_OP_TENANT_END, MR_OP_TENANT_BASE);
  EXPECT_EQ(MR_TENANT_INDEX_MASK, (1u << MR_TENANT_INDEX_BITS) - 1u);
  EXPECT_EQ(MR_TENANT_FREE, 0u) << "a zeroed tenant table holds no tenant";
  EXPECT_NE(MR_TENANT_ACTIVE, MR_TENANT_REVOKED);
}

TEST(AbiOpcodes, StatusAndFaultCodes) {
  EXPECT_EQ(MR_STATUS_OK, 0u);
  EXPECT_EQ(MR_STATUS_FAULT, 1u);
  EXPECT_EQ(MR_STATUS_ABORTED, 2u);
  EXPECT_EQ(MR_STATUS_REVOKED, 3u);
  const uint32_t faults[] = {MR_FAULT_NONE,         MR_FAULT_UNKNOWN_OPCODE, MR_FAULT_BAD_HANDLE,
                             MR_FAULT_OUT_OF_BOUNDS, MR_FAULT_MISALIGNED,     MR_FAULT_BAD_ARGUMENT,
                             MR_FAULT_RESERVED_FLAGS, MR_FAULT_OUT_OF_WINDOW,  MR_FAULT_BAD_TENANT,
                             MR_FAULT_NOT_GRANTED,
                             MR_FAULT_BAD_REGION,     MR_FAULT_REGION_POLICY};
  std::set<uint32_t> seen;
  for (uint32_t f : faults) {
    EXPECT_LT(f, MR_FAULT_CODE_COUNT);
    EXPECT_TRUE(seen.insert(f).second) << "duplicate fault code " << f;
  }
#ifdef MR_FAULT_NOT_GRANTED
  EXPECT_EQ(seen.size(), MR_FAULT_CODE_COUNT) << "every fault code below MR_FAULT_CODE_COUNT is named";
#else
  // 9 is MR_FAULT_NOT_GRANTED, defined on another branch (the grants work).
  EXPECT_EQ(seen.size() + 1, MR_FAULT_CODE_COUNT) << "every fault code below MR_FAULT_CODE_COUNT is named";
#endif
  EXPECT_EQ(MR_FAULT_BAD_REGION, 10u);
  EXPECT_EQ(MR_FAULT_REGION_POLICY, 11u);
  EXPECT_EQ(MR_FAULT_NONE, 0u);
  // Status and fault travel in u16 fields.
  EXPECT_LE(MR_FAULT_CODE_COUNT, 0xFFFFu);
}

TEST(AbiOpcodes, HostTypesMatchTheAbi) {
  megaring::RuntimeStats stats;
  EXPECT_EQ(sizeof(stats.faults_by_code) / sizeof(stats.faults_by_code[0]), MR_FAULT_CODE_COUNT);
  megaring::SlotRequest r;
  EXPECT_EQ(sizeof(r.args) / sizeof(r.args[0]), MR_SLOT_ARGS);
  EXPECT_EQ(r.opcode, MR_OP_INVALID) << "a default request must be the always-faulting opcode";
  EXPECT_EQ(r.flags, MR_SLOT_FLAG_NONE);
  megaring::Completion c;
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.fault, MR_FAULT_NONE);
  // Buffer handles are the 32-bit ABI handles.
  EXPECT_EQ(sizeof(megaring::BufferHandle), sizeof(mr_buffer_entry::handle));
}

TEST(AbiOpcodes, RequestBuildersUseTheDocumentedArgLayout) {
  using namespace megaring;
  SlotRequest r = ops::nop(0xABCDull);
  EXPECT_EQ(r.opcode, MR_OP_NOP);
  EXPECT_EQ(r.args[0], 0xABCDull);
  r = ops::store_u32(0x10002, 64, 0xFFFFFFFFu);
  EXPECT_EQ(r.opcode, MR_OP_STORE_U32);
  EXPECT_EQ(r.args[0], 0x10002u);
  EXPECT_EQ(r.args[1], 64u);
  EXPECT_EQ(r.args[2], 0xFFFFFFFFull);
  r = ops::atomic_add(3, 8, ~0ull);
  EXPECT_EQ(r.opcode, MR_OP_ATOMIC_ADD);
  EXPECT_EQ(r.args[2], ~0ull);
  r = ops::fill(4, 5, 6, 0xAB);
  EXPECT_EQ(r.opcode, MR_OP_FILL);
  EXPECT_EQ(r.args[0], 4u);
  EXPECT_EQ(r.args[1], 5u);
  EXPECT_EQ(r.args[2], 6u);
  EXPECT_EQ(r.args[3], 0xABu);
  r = ops::copy(1, 2, 3, 4, 5);
  EXPECT_EQ(r.opcode, MR_OP_COPY);
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(r.args[i], i + 1u);
  r = ops::reduce_add_u32(7, 8, 9);
  EXPECT_EQ(r.opcode, MR_OP_REDUCE_ADD_U32);
  EXPECT_EQ(r.args[0], 7u);
  EXPECT_EQ(r.args[1], 8u);
  EXPECT_EQ(r.args[2], 9u);
  r = ops::fence();
  EXPECT_EQ(r.opcode, MR_OP_FENCE);
  r = ops::delay_ns(1234);
  EXPECT_EQ(r.opcode, MR_OP_DELAY_NS);
  EXPECT_EQ(r.args[0], 1234u);
}

}  // namespace
