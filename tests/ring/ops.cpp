// SPDX-License-Identifier: Apache-2.0
// The built-in ops' results and the buffers they work on: allocation, host
// access, and freeing while slots still name a buffer.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>

#include "capped_consumer.hpp"
#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

class RingOpsTest : public RingTest {};

TEST_P(RingOpsTest, BuffersStartZeroAndRoundTrip) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  constexpr uint64_t kBytes = 4096 + 13;
  BufferHandle h = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &h));
  EXPECT_NE(h, 0u);
  std::vector<uint8_t> got(kBytes, 0xCC);
  MR_ASSERT_OK(rt->read_buffer(h, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }))
      << "a fresh buffer must read as zero";

  std::mt19937_64 rng(42);
  std::vector<uint8_t> data(kBytes);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  MR_ASSERT_OK(rt->write_buffer(h, 0, data.data(), kBytes));
  MR_ASSERT_OK(rt->read_buffer(h, 0, got.data(), kBytes));
  EXPECT_EQ(got, data);
  // Partial, unaligned ranges.
  std::vector<uint8_t> part(100, 0x5A);
  MR_ASSERT_OK(rt->write_buffer(h, 1001, part.data(), part.size()));
  std::copy(part.begin(), part.end(), data.begin() + 1001);
  std::vector<uint8_t> window(300);
  MR_ASSERT_OK(rt->read_buffer(h, 950, window.data(), window.size()));
  EXPECT_TRUE(std::equal(window.begin(), window.end(), data.begin() + 950));
  // The last byte and an empty range at the end are in range.
  uint8_t last = 0;
  MR_ASSERT_OK(rt->read_buffer(h, kBytes - 1, &last, 1));
  EXPECT_EQ(last, data[kBytes - 1]);
  MR_EXPECT_OK(rt->read_buffer(h, kBytes, &last, 0));

  // A second buffer is zero too, even after the first was written.
  BufferHandle h2 = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &h2));
  EXPECT_NE(h2, h);
  MR_ASSERT_OK(rt->read_buffer(h2, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));

  // Reused table index: new generation, memory zeroed, old handle dead.
  MR_ASSERT_OK(rt->free_buffer(h2));
  BufferHandle h3 = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &h3));
  EXPECT_NE(h3, h2) << "a reallocated handle must differ from the freed one";
  MR_ASSERT_OK(rt->read_buffer(h3, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  MR_EXPECT_RESULT(rt->read_buffer(h2, 0, got.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->free_buffer(h2), Result::kInvalidArgument) << "double free";
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingOpsTest, BufferAccessOutOfRangeIsInvalidArgument) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  BufferHandle h = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &h));
  std::vector<uint8_t> tmp(128, 0x11);
  MR_EXPECT_RESULT(rt->read_buffer(h, 0, tmp.data(), 65), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 60, tmp.data(), 5), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 65, tmp.data(), 0), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, ~0ull - 2, tmp.data(), 4), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 8, tmp.data(), ~0ull - 4), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, 0, tmp.data(), 65), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, 64, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, ~0ull, tmp.data(), 2), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, 1, tmp.data(), ~0ull), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(0, 0, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h ^ (1u << 16), 0, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(0x5A5A1234u, 0, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 0, nullptr, 8), Result::kInvalidArgument);
  // Nothing was written by the refused calls.
  std::vector<uint8_t> got(64, 0xFF);
  MR_ASSERT_OK(rt->read_buffer(h, 0, got.data(), 64));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  BufferHandle* null_handle = nullptr;
  MR_EXPECT_RESULT(rt->alloc_buffer(8, null_handle), Result::kInvalidArgument);
}

// Every built-in opcode on its edge cases, results and buffer contents
// checked; then the runtime is shut down.
void check_builtin_ops(Runtime& rt) {
  constexpr uint64_t kBytes = 8192;
  BufferHandle a = 0, b = 0;
  MR_ASSERT_OK(rt.alloc_buffer(kBytes, &a));
  MR_ASSERT_OK(rt.alloc_buffer(kBytes, &b));
  std::vector<uint8_t> ha(kBytes, 0), hb(kBytes, 0), got(kBytes);
  Completion c;

  // FILL a sub-range.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::fill(a, 100, 3000, 0xAB), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 3000u);
  std::fill(ha.begin() + 100, ha.begin() + 3100, 0xAB);
  MR_ASSERT_OK(rt.read_buffer(a, 0, got.data(), kBytes));
  EXPECT_EQ(got, ha) << "FILL wrote outside [100, 3100) or missed bytes";
  // FILL with byte 0 and FILL of zero bytes.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::fill(a, 200, 10, 0x00), &c));
  EXPECT_EQ(c.result, 10u);
  std::fill(ha.begin() + 200, ha.begin() + 210, 0x00);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::fill(a, kBytes, 0, 0xFF), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);

  // COPY random data from b into a.
  std::mt19937_64 rng(7);
  for (auto& x : hb) x = static_cast<uint8_t>(rng());
  MR_ASSERT_OK(rt.write_buffer(b, 0, hb.data(), kBytes));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::copy(a, 4000, b, 1, 4001), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 4001u);
  std::copy(hb.begin() + 1, hb.begin() + 4002, ha.begin() + 4000);
  MR_ASSERT_OK(rt.read_buffer(a, 0, got.data(), kBytes));
  EXPECT_EQ(got, ha) << "COPY result differs";
  MR_ASSERT_OK(rt.read_buffer(b, 0, got.data(), kBytes));
  EXPECT_EQ(got, hb) << "COPY modified its source";
  // Adjacent, non-overlapping ranges of one buffer are fine.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::copy(b, 0, b, 16, 16), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 16u);
  std::copy(hb.begin() + 16, hb.begin() + 32, hb.begin());
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::copy(b, 0, a, 0, 0), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);

  // REDUCE_ADD_U32 over random words: the sum exceeds 2^32.
  std::vector<uint32_t> words(kBytes / 4);
  for (auto& w : words) w = static_cast<uint32_t>(rng());
  MR_ASSERT_OK(rt.write_buffer(b, 0, words.data(), kBytes));
  const uint64_t total = std::accumulate(words.begin(), words.end(), uint64_t{0});
  ASSERT_GT(total, kTwo32);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 0, words.size()), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, total);
  const uint64_t part = std::accumulate(words.begin() + 3, words.begin() + 3 + 777, uint64_t{0});
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 12, 777), &c));
  EXPECT_EQ(c.result, part);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 4, 0), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);
  std::vector<uint32_t> maxed(1000, 0xFFFFFFFFu);
  MR_ASSERT_OK(rt.write_buffer(b, 0, maxed.data(), 4000));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 0, 1000), &c));
  EXPECT_EQ(c.result, 1000ull * 0xFFFFFFFFull) << "the sum must be 64-bit";

  // STORE_U32 returns the value and writes exactly four bytes.
  BufferHandle s = 0;
  MR_ASSERT_OK(rt.alloc_buffer(16, &s));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::store_u32(s, 4, 0xFFFFFFFFu), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0xFFFFFFFFull);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::store_u32(s, 12, 0x01020304u), &c));
  EXPECT_EQ(c.result, 0x01020304u);
  uint32_t sw[4] = {1, 1, 1, 1};
  MR_ASSERT_OK(rt.read_buffer(s, 0, sw, 16));
  EXPECT_EQ(sw[0], 0u);
  EXPECT_EQ(sw[1], 0xFFFFFFFFu);
  EXPECT_EQ(sw[2], 0u);
  EXPECT_EQ(sw[3], 0x01020304u);

  // ATOMIC_ADD returns the old value, wraps modulo 2^64.
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt.alloc_buffer(16, &ctr));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, 5), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, 7), &c));
  EXPECT_EQ(c.result, 5u);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, ~0ull), &c));  // -1
  EXPECT_EQ(c.result, 12u);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, 0), &c));
  EXPECT_EQ(c.result, 11u);
  uint64_t cw[2] = {9, 9};
  MR_ASSERT_OK(rt.read_buffer(ctr, 0, cw, 16));
  EXPECT_EQ(cw[0], 0u);
  EXPECT_EQ(cw[1], 11u);

  // NOP echoes; DELAY returns its argument.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::nop(~0ull), &c));
  EXPECT_EQ(c.result, ~0ull);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::delay_ns(1500), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 1500u);

  // call() is publish(keep) + wait.
  MR_ASSERT_OK(rt.call(ops::nop(31337), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 31337u);

  RuntimeStats st;
  ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(rt, &st));
  EXPECT_EQ(st.faulted, 0u);
  MR_EXPECT_OK(rt.shutdown(scaled(seconds(10))));
}

TEST_P(RingOpsTest, FillCopyReduceStoreAtomic) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  check_builtin_ops(*rt);
}

// make_consumer's block size and register cap: the built-ins in one-warp
// blocks of at most 32 registers (block-wide handlers with one warp; on the
// GPU, the capped kernel).
TEST_P(RingOpsTest, CappedOneWarpConsumerRunsTheBuiltins) {
  const megaring::Consumer& consumer = capped_consumer();
  EXPECT_EQ(consumer.block_threads, kCappedThreads);
  EXPECT_EQ(consumer.max_registers, kCappedRegisters);
  if (backend() == Backend::kCuda) {
    int registers = 0;
    ASSERT_EQ(capped_kernel_registers(&registers), cudaSuccess);
    EXPECT_GT(registers, 0);
    EXPECT_LE(registers, static_cast<int>(kCappedRegisters)) << "__maxnreg__ did not take";
  }
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(base_config(), consumer, &rt));
  ASSERT_EQ(rt->backend(), backend());
  check_builtin_ops(*rt);
}

TEST_P(RingOpsTest, FreedBufferStaysValidForSlotsPublishedBeforeTheFree) {
  // Slots published before free_buffer() still run on the buffer; slots
  // published after it fault BAD_HANDLE. (Regression test: free_buffer once
  // cleared the table entry at once, so earlier slots that had not started
  // yet faulted too.)
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(workers_config(2), &rt));
  BufferHandle h = 0;
  MR_ASSERT_OK(rt->alloc_buffer(1 << 16, &h));
  Ticket d1, d2, fill, after;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(20'000'000), &d1, plain_options()));
  MR_ASSERT_OK(rt->publish(ops::delay_ns(20'000'000), &d2, plain_options()));
  MR_ASSERT_OK(rt->publish(ops::fill(h, 0, 1 << 16, 0x7F), &fill, kept_options()));
  MR_ASSERT_OK(rt->free_buffer(h));
  MR_ASSERT_OK(rt->publish(ops::fill(h, 0, 16, 0x7F), &after, kept_options()));
  Completion c;
  MR_ASSERT_OK(rt->wait(fill, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_OK) << "a slot published before free_buffer must still run";
  EXPECT_EQ(c.result, 1u << 16);
  MR_ASSERT_OK(rt->wait(after, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// free_buffer racing producers that name the buffer: every slot either ran
// on live memory (OK) or faulted BAD_HANDLE; none may touch freed memory
// (the ASan run of CI catches a use-after-free here).
TEST_P(RingOpsTest, FreeRacingPublishesNeverTouchesFreedMemory) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  constexpr uint64_t kBytes = 64 * 1024;  // 16 FILLs of 4 KiB, mid-flight when the free lands
  for (int round = 0; round < 40; ++round) {
    BufferHandle b = 0;
    MR_ASSERT_OK(rt->alloc_buffer(kBytes, &b));
    std::vector<Ticket> tickets(16);
    std::atomic<int> published{0};
    std::thread producer([&] {
      // Disjoint ranges: two workers must not write the same bytes at once.
      const uint64_t part = kBytes / tickets.size();
      for (size_t i = 0; i < tickets.size(); ++i) {
        MR_ASSERT_OK(rt->publish(ops::fill(b, i * part, part, 0x5A), &tickets[i], kept_options()));
        published.fetch_add(1);
      }
    });
    while (published.load() < 1 + round % 8) std::this_thread::yield();
    MR_ASSERT_OK(rt->free_buffer(b));
    producer.join();
    for (const Ticket& t : tickets) {
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(10))));
      if (c.status == MR_STATUS_OK) {
        EXPECT_EQ(c.result, kBytes / tickets.size());
      } else {
        EXPECT_EQ(c.status, MR_STATUS_FAULT);
        EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
      }
    }
  }
  ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(*rt));
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingOpsTest, FreedTableEntryIsRecycledAfterEarlierSlotsComplete) {
  // One table entry: the freed entry must come back (once the slots published
  // before free_buffer completed) under a new handle, with fresh zeroed memory.
  Config cfg = base_config();
  cfg.max_buffers = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  constexpr uint64_t kBytes = 4096;
  BufferHandle old_handle = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &old_handle));
  Ticket slow, fill;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(30'000'000), &slow, plain_options()));
  MR_ASSERT_OK(rt->publish(ops::fill(old_handle, 0, kBytes, 0xA5), &fill, kept_options()));
  MR_ASSERT_OK(rt->free_buffer(old_handle));
  uint8_t byte = 0;
  MR_EXPECT_RESULT(rt->read_buffer(old_handle, 0, &byte, 1), Result::kInvalidArgument)
      << "host access to a freed handle fails at once";

  // The entry comes back within a bounded time.
  BufferHandle fresh = 0;
  Status st;
  const auto deadline = Clock::now() + scaled(seconds(5));
  do {
    st = rt->alloc_buffer(kBytes, &fresh);
    if (st.is_ok()) break;
    ASSERT_EQ(st.code(), Result::kOutOfMemory) << st.to_string();
    std::this_thread::sleep_for(milliseconds(1));
  } while (Clock::now() < deadline);
  MR_ASSERT_OK(st) << "the freed table entry was never recycled";
  EXPECT_NE(fresh, old_handle) << "a recycled entry needs a new generation";
  EXPECT_EQ(fresh & MR_BUFFER_INDEX_MASK, old_handle & MR_BUFFER_INDEX_MASK);

  Completion c;
  MR_ASSERT_OK(rt->wait(fill, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_OK) << "the FILL was published before free_buffer";
  EXPECT_EQ(c.result, kBytes);
  // The new buffer does not alias the old memory.
  std::vector<uint8_t> got(kBytes, 0xFF);
  MR_ASSERT_OK(rt->read_buffer(fresh, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  // Old handle faults, new handle works.
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::fill(old_handle, 0, 8, 1), &c));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::fill(fresh, 0, 8, 1), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

MEGARING_INSTANTIATE_BACKENDS(RingOpsTest);

}  // namespace
}  // namespace megaring_test
