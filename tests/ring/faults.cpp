// SPDX-License-Identifier: Apache-2.0
// Faults: every malformed slot completes with its own fault code, touches no
// memory, and the ring runs on past it.

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

class RingFaultTest : public RingTest {};

TEST_P(RingFaultTest, EveryFaultHasItsCodeAndTheRingKeepsGoing) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  constexpr uint64_t kBytes = 256;
  BufferHandle buf = 0, other = 0, freed = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &buf));
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &other));
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &freed));
  MR_ASSERT_OK(rt->free_buffer(freed));
  // A recognisable pattern: no faulting slot may change it.
  std::vector<uint8_t> pattern(kBytes);
  for (uint64_t i = 0; i < kBytes; ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
  MR_ASSERT_OK(rt->write_buffer(buf, 0, pattern.data(), kBytes));
  MR_ASSERT_OK(rt->write_buffer(other, 0, pattern.data(), kBytes));

  auto raw = [](uint32_t opcode, std::initializer_list<uint64_t> args, uint32_t flags = 0) {
    SlotRequest r;
    r.opcode = opcode;
    r.flags = flags;
    uint32_t i = 0;
    for (uint64_t a : args) r.args[i++] = a;
    return r;
  };
  const uint64_t wrong_generation = buf ^ (1u << MR_BUFFER_INDEX_BITS);
  struct Case {
    const char* what;
    SlotRequest request;
    uint16_t fault;
  };
  const Case cases[] = {
      {"opcode 0", raw(MR_OP_INVALID, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode BUILTIN_END", raw(MR_OP_BUILTIN_END, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode 200 (system range)", raw(200, {1}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode SYSTEM_END-1", raw(MR_OP_SYSTEM_END - 1, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode USER_BASE+5 (builtin consumer)", raw(MR_OP_USER_BASE + 5, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode below the tenant windows", raw(MR_OP_TENANT_BASE - 1, {}), MR_FAULT_UNKNOWN_OPCODE},
      // A tenant-less slot never runs a tenant-window opcode.
      {"opcode UINT32_MAX", raw(0xFFFFFFFFu, {}), MR_FAULT_OUT_OF_WINDOW},
      {"opcode MR_OP_TENANT_BASE", raw(MR_OP_TENANT_BASE, {}), MR_FAULT_OUT_OF_WINDOW},
      {"reserved flag bit 16", raw(MR_OP_NOP, {1}, 1u << 16), MR_FAULT_RESERVED_FLAGS},
      {"reserved flag bit 31", raw(MR_OP_NOP, {1}, 1u << 31), MR_FAULT_RESERVED_FLAGS},
      {"all reserved flags on a store", raw(MR_OP_STORE_U32, {buf, 0, 1}, MR_SLOT_FLAGS_RESERVED),
       MR_FAULT_RESERVED_FLAGS},
      {"handle 0", ops::store_u32(0, 0, 1), MR_FAULT_BAD_HANDLE},
      {"random handle", ops::store_u32(0x5A5A1234u, 0, 1), MR_FAULT_BAD_HANDLE},
      {"handle index beyond the table", ops::fill(0x0001FFFFu, 0, 1, 1), MR_FAULT_BAD_HANDLE},
      {"handle with the wrong generation", raw(MR_OP_STORE_U32, {wrong_generation, 0, 1}),
       MR_FAULT_BAD_HANDLE},
      {"handle with bits above 32", raw(MR_OP_STORE_U32, {(1ull << 32) | buf, 0, 1}),
       MR_FAULT_BAD_HANDLE},
      {"freed handle", ops::store_u32(freed, 0, 1), MR_FAULT_BAD_HANDLE},
      {"freed handle (copy source)", ops::copy(buf, 0, freed, 0, 8), MR_FAULT_BAD_HANDLE},
      {"store at end", ops::store_u32(buf, kBytes, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"atomic past end", ops::atomic_add(buf, kBytes, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"fill one byte too many", ops::fill(buf, 0, kBytes + 1, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"fill at offset past end", ops::fill(buf, kBytes + 1, 0, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"copy source out of range", ops::copy(buf, 0, other, kBytes - 4, 8), MR_FAULT_OUT_OF_BOUNDS},
      {"copy destination out of range", ops::copy(buf, kBytes - 4, other, 0, 8),
       MR_FAULT_OUT_OF_BOUNDS},
      {"reduce one element too many", ops::reduce_add_u32(buf, 0, kBytes / 4 + 1),
       MR_FAULT_OUT_OF_BOUNDS},
      {"fill offset near 2^64", ops::fill(buf, ~0ull - 7, 16, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"fill offset+len wraps", ops::fill(buf, 8, ~0ull - 3, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"store offset near 2^64", ops::store_u32(buf, ~0ull - 3, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"atomic offset 2^64-8", ops::atomic_add(buf, ~0ull - 7, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"copy len near 2^64", ops::copy(buf, 0, other, 0, ~0ull), MR_FAULT_OUT_OF_BOUNDS},
      {"copy src offset+len wraps", ops::copy(buf, 0, other, 16, ~0ull - 8), MR_FAULT_OUT_OF_BOUNDS},
      {"reduce count*4 wraps", ops::reduce_add_u32(buf, 0, (1ull << 62) + 1), MR_FAULT_OUT_OF_BOUNDS},
      {"reduce count 2^62", ops::reduce_add_u32(buf, 0, 1ull << 62), MR_FAULT_OUT_OF_BOUNDS},
      {"reduce count 2^62-1", ops::reduce_add_u32(buf, 0, (1ull << 62) - 1), MR_FAULT_OUT_OF_BOUNDS},
      {"misaligned store", ops::store_u32(buf, 2, 1), MR_FAULT_MISALIGNED},
      {"misaligned atomic (4)", ops::atomic_add(buf, 4, 1), MR_FAULT_MISALIGNED},
      {"misaligned atomic (1)", ops::atomic_add(buf, 1, 1), MR_FAULT_MISALIGNED},
      {"misaligned reduce", ops::reduce_add_u32(buf, 1, 1), MR_FAULT_MISALIGNED},
      {"store value 2^32", raw(MR_OP_STORE_U32, {buf, 0, kTwo32}), MR_FAULT_BAD_ARGUMENT},
      {"store value 2^64-1", raw(MR_OP_STORE_U32, {buf, 0, ~0ull}), MR_FAULT_BAD_ARGUMENT},
      {"fill byte 256", raw(MR_OP_FILL, {buf, 0, 8, 256}), MR_FAULT_BAD_ARGUMENT},
      {"copy onto itself", ops::copy(buf, 0, buf, 0, 16), MR_FAULT_BAD_ARGUMENT},
      {"copy overlapping forward", ops::copy(buf, 8, buf, 0, 16), MR_FAULT_BAD_ARGUMENT},
      {"copy overlapping backward", ops::copy(buf, 0, buf, 15, 16), MR_FAULT_BAD_ARGUMENT},
      {"delay above max", ops::delay_ns(MR_DELAY_MAX_NS + 1), MR_FAULT_BAD_ARGUMENT},
      {"delay 2^64-1", ops::delay_ns(~0ull), MR_FAULT_BAD_ARGUMENT},
  };

  uint64_t expected_by_code[MR_FAULT_CODE_COUNT] = {};
  uint64_t echo = 1000;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Ticket bad, nop;
    MR_ASSERT_OK(rt->publish(c.request, &bad, kept_options()));
    MR_ASSERT_OK(rt->publish(ops::nop(++echo), &nop, kept_options()));
    Completion cb, cn;
    MR_ASSERT_OK(rt->wait(bad, &cb, scaled(seconds(10))));
    EXPECT_EQ(cb.ticket, bad.value);
    EXPECT_EQ(cb.status, MR_STATUS_FAULT);
    EXPECT_EQ(cb.fault, c.fault);
    EXPECT_EQ(cb.result, 0u) << "a faulted slot reports result 0";
    EXPECT_FALSE(cb.ok());
    MR_ASSERT_OK(rt->wait(nop, &cn, scaled(seconds(10))));
    EXPECT_EQ(cn.status, MR_STATUS_OK) << "the NOP after the fault";
    EXPECT_EQ(cn.fault, MR_FAULT_NONE);
    EXPECT_EQ(cn.result, echo);
    ++expected_by_code[c.fault];
  }

  // Non-reserved flag bits are not faults.
  Completion c;
  SlotRequest low_flags = ops::nop(77);
  low_flags.flags = 0x0000FFFFu;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, low_flags, &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 77u);
  // The maximum delay itself is legal (checked without running it: 0 is too).
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::delay_ns(0), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);

  // No faulting slot touched memory.
  std::vector<uint8_t> got(kBytes);
  MR_ASSERT_OK(rt->read_buffer(buf, 0, got.data(), kBytes));
  EXPECT_EQ(got, pattern) << "a faulting slot wrote to its buffer";
  MR_ASSERT_OK(rt->read_buffer(other, 0, got.data(), kBytes));
  EXPECT_EQ(got, pattern);

  RuntimeStats s;
  ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(*rt, &s));
  const uint64_t n_cases = sizeof(cases) / sizeof(cases[0]);
  EXPECT_EQ(s.faulted, n_cases);
  for (uint32_t code = 0; code < MR_FAULT_CODE_COUNT; ++code)
    EXPECT_EQ(s.faults_by_code[code], expected_by_code[code]) << "fault code " << code;
  EXPECT_EQ(s.faults_by_code[MR_FAULT_NONE], 0u);
  EXPECT_EQ(s.aborted, 0u);
  EXPECT_EQ(s.completed_ok, s.published - n_cases);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingFaultTest, FaultsInABatchDoNotDisturbNeighbours) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  BufferHandle buf = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &buf));
  std::vector<SlotRequest> batch;
  for (uint32_t i = 0; i < 16; ++i)
    batch.push_back(i % 2 == 0 ? ops::store_u32(buf, 4ull * (i / 2), 100 + i)
                               : ops::store_u32(buf, 3, 1) /* misaligned */);
  Ticket first;
  MR_ASSERT_OK(rt->publish_batch(batch.data(), 16, &first, kept_options()));
  for (uint32_t i = 0; i < 16; ++i) {
    Completion c;
    MR_ASSERT_OK(rt->wait(Ticket{first.value + i, true}, &c, scaled(seconds(10))));
    if (i % 2 == 0) {
      EXPECT_EQ(c.status, MR_STATUS_OK) << i;
      EXPECT_EQ(c.result, 100u + i);
    } else {
      EXPECT_EQ(c.status, MR_STATUS_FAULT) << i;
      EXPECT_EQ(c.fault, MR_FAULT_MISALIGNED) << i;
    }
  }
  uint32_t words[8];
  MR_ASSERT_OK(rt->read_buffer(buf, 0, words, sizeof(words)));
  for (uint32_t k = 0; k < 8; ++k) EXPECT_EQ(words[k], 100u + 2 * k);
  RuntimeStats s;
  ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(*rt, &s));
  EXPECT_EQ(s.faults_by_code[MR_FAULT_MISALIGNED], 8u);
  EXPECT_EQ(s.faulted, 8u);
}

MEGARING_INSTANTIATE_BACKENDS(RingFaultTest);

}  // namespace
}  // namespace megaring_test
