// SPDX-License-Identifier: Apache-2.0
// The C API, continued: buffers (FILL read back, caller memory, ranges out
// of bounds), finalize / abort / destroy, producers, the timeline trace, and
// conservation: slots published from several threads through the C API all
// complete exactly once with the right result.
#include "capi_test_util.hpp"

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace megaring_test {
namespace {

TEST(CApiBuffers, FillThenReadBack) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  uint32_t buf = 0;
  ASSERT_MR(mr_buffer_alloc(r, 256, &buf), MR_RESULT_SUCCESS);
  EXPECT_NE(buf, 0u);
  mr_completion_t c{};
  const mr_slot_request_t fill = slot(MR_OP_FILL, buf, 16, 100, 0xAB);
  ASSERT_MR(mr_runtime_call(r, &fill, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 100u);
  std::vector<unsigned char> host(256, 0x11);
  ASSERT_MR(mr_buffer_read(r, buf, 0, host.data(), 256), MR_RESULT_SUCCESS);
  for (size_t i = 0; i < 256; ++i)
    ASSERT_EQ(host[i], i >= 16 && i < 116 ? 0xAB : 0) << "byte " << i;
  // Write, then read back through a slot (REDUCE_ADD_U32) and the host.
  const uint32_t words[4] = {1, 2, 3, 40};
  ASSERT_MR(mr_buffer_write(r, buf, 128, words, sizeof words), MR_RESULT_SUCCESS);
  const mr_slot_request_t sum = slot(MR_OP_REDUCE_ADD_U32, buf, 128, 4);
  ASSERT_MR(mr_runtime_call(r, &sum, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.result, 46u);
  uint32_t back[4] = {};
  ASSERT_MR(mr_buffer_read(r, buf, 128, back, sizeof back), MR_RESULT_SUCCESS);
  EXPECT_EQ(std::memcmp(back, words, sizeof words), 0);
  // Ranges out of bounds, near 2^64 too; nothing is read or written.
  unsigned char byte = 0x5A;
  EXPECT_MR(mr_buffer_read(r, buf, 250, host.data(), 16), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_buffer_write(r, buf, 257, &byte, 0), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_buffer_write(r, buf, UINT64_MAX, &byte, 2), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_buffer_read(r, buf, 8, &byte, UINT64_MAX - 4), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(byte, 0x5A);
  // A slot out of bounds faults; the buffer is untouched.
  const mr_slot_request_t over = slot(MR_OP_FILL, buf, 200, 100, 0xCD);
  ASSERT_MR(mr_runtime_call(r, &over, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_BOUNDS);
  ASSERT_MR(mr_buffer_read(r, buf, 200, host.data(), 56), MR_RESULT_SUCCESS);
  for (size_t i = 0; i < 56; ++i) ASSERT_EQ(host[i], 0) << "byte " << 200 + i;
  // Freed: host calls fail at once, slots fault BAD_HANDLE, a second free fails.
  ASSERT_MR(mr_buffer_free(r, buf), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_buffer_read(r, buf, 0, host.data(), 1), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_buffer_free(r, buf), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_runtime_call(r, &fill, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  EXPECT_MR(mr_buffer_free(r, 0), MR_RESULT_INVALID_ARGUMENT);
  uint32_t never = 0;
  EXPECT_MR(mr_buffer_alloc(r, (1ull << 48) + 1, &never), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(never, 0u);
}

TEST(CApiBuffers, RegisteredCallerMemory) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  std::vector<uint32_t> mine(16, 0);
  uint32_t h = 0;
  ASSERT_MR(mr_buffer_register(r, mine.data(), 64, &h), MR_RESULT_SUCCESS);
  mr_completion_t c{};
  const mr_slot_request_t store = slot(MR_OP_STORE_U32, h, 8, 0xC0FFEE);
  ASSERT_MR(mr_runtime_call(r, &store, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  uint32_t seen = 0;
  ASSERT_MR(mr_buffer_read(r, h, 8, &seen, 4), MR_RESULT_SUCCESS);
  EXPECT_EQ(seen, 0xC0FFEEu);
  ASSERT_MR(mr_buffer_unregister(r, h, kLong), MR_RESULT_SUCCESS);
  EXPECT_EQ(mine[2], 0xC0FFEEu);  // the caller's own memory, written in place
  EXPECT_MR(mr_buffer_unregister(r, h, kLong), MR_RESULT_INVALID_ARGUMENT);  // stale
  EXPECT_MR(mr_buffer_unregister(r, h, -1), MR_RESULT_INVALID_ARGUMENT);
  // [memory, memory + bytes) must not wrap.
  EXPECT_MR(mr_buffer_register(r, reinterpret_cast<void*>(~uintptr_t{0} - 8), 64, &h),
            MR_RESULT_INVALID_ARGUMENT);
}

TEST(CApiLifecycle, FinalizeDrainsThenRefuses) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  std::vector<mr_slot_request_t> batch(32, slot(MR_OP_DELAY_NS, 1000));
  mr_ticket_t first{};
  ASSERT_MR(mr_runtime_publish_batch(r, batch.data(), 32, 0, MR_FOREVER, &first),
            MR_RESULT_SUCCESS);
  EXPECT_MR(mr_runtime_finalize(r, -1), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_runtime_finalize(r, kLong), MR_RESULT_SUCCESS);
  mr_runtime_stats_t s{};
  s.struct_size = sizeof s;
  ASSERT_MR(mr_runtime_stats(r, &s), MR_RESULT_SUCCESS);  // still answers
  EXPECT_EQ(s.published, 32u);
  EXPECT_EQ(s.completed_ok, 32u);  // drained: every one ran
  EXPECT_EQ(s.aborted, 0u);
  mr_ticket_t last = first;
  last.value += 31;
  EXPECT_MR(mr_runtime_wait_done(r, &last, 0), MR_RESULT_SUCCESS);
  mr_ticket_t t{};
  const mr_slot_request_t one = nop(1);
  EXPECT_MR(mr_runtime_publish(r, &one, 0, MR_FOREVER, &t), MR_RESULT_SHUTDOWN);
  uint32_t buf = 0;
  EXPECT_MR(mr_buffer_alloc(r, 8, &buf), MR_RESULT_SHUTDOWN);
  EXPECT_MR(mr_runtime_abort(r), MR_RESULT_SUCCESS);  // after finalize: nothing left to stop
}

TEST(CApiLifecycle, AbortThenDestroy) {
  mr_runtime_t* r = nullptr;
  const mr_runtime_config_t config = cpu_config(64);
  ASSERT_MR(mr_runtime_create(&config, &r), MR_RESULT_SUCCESS);
  mr_ticket_t t{};
  const mr_slot_request_t long_delay = slot(MR_OP_DELAY_NS, MR_DELAY_MAX_NS);
  ASSERT_MR(mr_runtime_publish(r, &long_delay, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t),
            MR_RESULT_SUCCESS);
  ASSERT_MR(mr_runtime_abort(r), MR_RESULT_SUCCESS);
  mr_completion_t c{};
  ASSERT_MR(mr_runtime_wait(r, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_TRUE(c.status == MR_STATUS_ABORTED || c.status == MR_STATUS_OK) << c.status;
  const mr_slot_request_t one = nop(1);
  EXPECT_MR(mr_runtime_publish(r, &one, 0, MR_FOREVER, &t), MR_RESULT_ABORTED);
  EXPECT_MR(mr_runtime_call(r, &one, kLong, &c), MR_RESULT_ABORTED);
  EXPECT_MR(mr_runtime_destroy(r), MR_RESULT_SUCCESS);
}

TEST(CApiLifecycle, DestroyAbortsARunningRuntime) {
  mr_runtime_t* r = nullptr;
  const mr_runtime_config_t config = cpu_config(64);
  ASSERT_MR(mr_runtime_create(&config, &r), MR_RESULT_SUCCESS);
  std::vector<mr_slot_request_t> batch(8, slot(MR_OP_DELAY_NS, 1'000'000));
  mr_ticket_t first{};
  ASSERT_MR(mr_runtime_publish_batch(r, batch.data(), 8, 0, MR_FOREVER, &first),
            MR_RESULT_SUCCESS);
  EXPECT_MR(mr_runtime_destroy(r), MR_RESULT_SUCCESS);  // ASan: nothing leaks
}

TEST(CApiTimeline, WritesATrace) {
  mr_runtime_config_t config = cpu_config(64);
  config.timeline_capacity = 128;
  CRuntime rt;
  ASSERT_MR(rt.create(config), MR_RESULT_SUCCESS);
  mr_completion_t c{};
  const mr_slot_request_t one = nop(1);
  ASSERT_MR(mr_runtime_call(rt.get(), &one, kLong, &c), MR_RESULT_SUCCESS);
  const std::string path = ::testing::TempDir() + "capi_timeline.json";
  ASSERT_MR(mr_runtime_write_timeline_trace(rt.get(), path.c_str()), MR_RESULT_SUCCESS);
  FILE* f = std::fopen(path.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char head[2] = {};
  EXPECT_EQ(std::fread(head, 1, 1, f), 1u);
  EXPECT_EQ(head[0], '{');
  std::fclose(f);
  std::remove(path.c_str());
  // A path that cannot be opened: the C++ call's refusal (today
  // INVALID_ARGUMENT, though status.hpp lists IO_ERROR for it).
  EXPECT_NE(mr_runtime_write_timeline_trace(rt.get(), "/nonexistent-dir/x.json"),
            MR_RESULT_SUCCESS);
}

TEST(CApiProducer, OwnRingPublishWaitRelease) {
  CRuntime none;
  ASSERT_MR(none.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_producer_t* p = nullptr;
  EXPECT_MR(mr_producer_open(none.get(), &p), MR_RESULT_INVALID_ARGUMENT);  // no producer rings
  EXPECT_EQ(p, nullptr);

  mr_runtime_config_t config = cpu_config(64);
  config.producer_rings = 2;
  CRuntime rt;
  ASSERT_MR(rt.create(config), MR_RESULT_SUCCESS);
  mr_producer_t* a = nullptr;
  mr_producer_t* b = nullptr;
  ASSERT_MR(mr_producer_open(rt.get(), &a), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_open(rt.get(), &b), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_producer_open(rt.get(), &p), MR_RESULT_RING_FULL);  // both taken
  uint32_t ring_a = 0, ring_b = 0;
  ASSERT_MR(mr_producer_ring(a, &ring_a), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_ring(b, &ring_b), MR_RESULT_SUCCESS);
  EXPECT_NE(ring_a, ring_b);
  EXPECT_TRUE(ring_a >= 1 && ring_a <= 2 && ring_b >= 1 && ring_b <= 2);
  EXPECT_MR(mr_producer_ring(a, nullptr), MR_RESULT_INVALID_ARGUMENT);

  mr_ticket_t t{};
  mr_completion_t c{};
  const mr_slot_request_t echo = nop(77);
  ASSERT_MR(mr_producer_publish(a, &echo, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t),
            MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_wait(a, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.result, 77u);
  EXPECT_MR(mr_producer_wait(a, &t, 0, &c), MR_RESULT_INVALID_ARGUMENT);  // read once
  std::vector<mr_slot_request_t> batch;
  for (uint64_t i = 0; i < 10; ++i) batch.push_back(nop(500 + i));
  mr_ticket_t first{};
  ASSERT_MR(mr_producer_publish_batch(b, batch.data(), 10, MR_PUBLISH_KEEP_RESULT, MR_FOREVER,
                                      &first),
            MR_RESULT_SUCCESS);
  for (uint64_t i = 0; i < 9; ++i) {
    mr_ticket_t ti = first;
    ti.value += i;
    ASSERT_MR(mr_producer_wait(b, &ti, kLong, &c), MR_RESULT_SUCCESS);
    EXPECT_EQ(c.result, 500 + i);
  }
  mr_ticket_t last = first;
  last.value += 9;
  ASSERT_MR(mr_producer_wait_done(b, &last, kLong), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_release(b, &last), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_producer_wait(b, &last, 0, &c), MR_RESULT_INVALID_ARGUMENT);  // released
  // Hostile input.
  EXPECT_MR(mr_producer_publish(a, &echo, 8, MR_FOREVER, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_publish(a, nullptr, 0, MR_FOREVER, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_publish_batch(a, batch.data(), 0, 0, MR_FOREVER, &t),
            MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_publish_batch(a, batch.data(), 65, 0, MR_FOREVER, &t),
            MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_wait_done(a, nullptr, 0), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_release(a, nullptr), MR_RESULT_INVALID_ARGUMENT);
  // Closing gives the ring back: it can be opened again.
  ASSERT_MR(mr_producer_close(a), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_open(rt.get(), &a), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_producer_close(a), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_producer_close(b), MR_RESULT_SUCCESS);
}

// A producer's class (slot_abi.h, "Priorities"): chosen at open, read back,
// checked; a refused open takes no ring.
TEST(CApiProducer, OpenWithAClass) {
  mr_runtime_config_t config = cpu_config(64);
  config.producer_rings = 2;
  CRuntime rt;
  ASSERT_MR(rt.create(config), MR_RESULT_SUCCESS);
  mr_producer_t* critical = nullptr;
  mr_producer_t* plain = nullptr;
  mr_producer_t* bad = nullptr;
  EXPECT_MR(mr_producer_open_class(rt.get(), 3, &bad), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_open_class(rt.get(), 0xFFFFFFFFu, &bad), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(bad, nullptr);
  EXPECT_MR(mr_producer_open_class(nullptr, MR_RING_CLASS_BULK, &bad), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_open_class(rt.get(), MR_RING_CLASS_BULK, nullptr), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_producer_open_class(rt.get(), MR_RING_CLASS_CRITICAL, &critical), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_open(rt.get(), &plain), MR_RESULT_SUCCESS);  // both rings taken: none leaked
  uint32_t cls = 99;
  ASSERT_MR(mr_producer_class(critical, &cls), MR_RESULT_SUCCESS);
  EXPECT_EQ(cls, MR_RING_CLASS_CRITICAL);
  ASSERT_MR(mr_producer_class(plain, &cls), MR_RESULT_SUCCESS);
  EXPECT_EQ(cls, MR_RING_CLASS_NORMAL);
  EXPECT_MR(mr_producer_class(plain, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_class(nullptr, &cls), MR_RESULT_INVALID_ARGUMENT);
  mr_ticket_t t{};
  mr_completion_t c{};
  const mr_slot_request_t echo = nop(9);
  ASSERT_MR(mr_producer_publish(critical, &echo, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t),
            MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_wait(critical, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.result, 9u);
  EXPECT_MR(mr_producer_close(critical), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_open_class(rt.get(), MR_RING_CLASS_BULK, &critical), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_class(critical, &cls), MR_RESULT_SUCCESS);
  EXPECT_EQ(cls, MR_RING_CLASS_BULK);
  // A class changed while it runs (a control operation).
  ASSERT_MR(mr_producer_set_class(critical, MR_RING_CLASS_CRITICAL), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_class(critical, &cls), MR_RESULT_SUCCESS);
  EXPECT_EQ(cls, MR_RING_CLASS_CRITICAL);
  EXPECT_MR(mr_producer_set_class(critical, 7), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_producer_set_class(nullptr, MR_RING_CLASS_BULK), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_producer_class(critical, &cls), MR_RESULT_SUCCESS);
  EXPECT_EQ(cls, MR_RING_CLASS_CRITICAL);
  ASSERT_MR(mr_producer_publish(critical, &echo, MR_PUBLISH_KEEP_RESULT, MR_FOREVER, &t),
            MR_RESULT_SUCCESS);
  ASSERT_MR(mr_producer_wait(critical, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.result, 9u);
  EXPECT_MR(mr_producer_close(critical), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_producer_close(plain), MR_RESULT_SUCCESS);
}

// Conservation: kThreads threads publish kPerThread ATOMIC_ADDs each (in
// batches, through the C API) onto a counter of their own with deltas 1..n,
// and every 16th slot a kept NOP whose echo they check. Each counter must
// end at n (n + 1) / 2 (a lost or doubled slot changes it), and the runtime
// must count every slot published and completed OK exactly once.
TEST(CApiConservation, SlotsFromManyThreadsCompleteExactlyOnce) {
  constexpr uint32_t kThreads = 4;
  constexpr uint64_t kPerThread = 3000;
  constexpr uint32_t kBatch = 24;
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(256)), MR_RESULT_SUCCESS);
  mr_runtime_t* r = rt.get();
  uint32_t counters = 0;
  ASSERT_MR(mr_buffer_alloc(r, 8 * kThreads, &counters), MR_RESULT_SUCCESS);
  std::vector<int> errors(kThreads, 0);
  std::vector<uint64_t> echoes(kThreads, 0), last(kThreads, 0);
  std::vector<std::thread> threads;
  for (uint32_t th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::vector<mr_slot_request_t> batch;
      for (uint64_t i = 1; i <= kPerThread; ++i) {
        batch.push_back(slot(MR_OP_ATOMIC_ADD, counters, 8ull * th, i));
        if (batch.size() < kBatch && i != kPerThread) continue;
        mr_ticket_t first{};
        if (mr_runtime_publish_batch(r, batch.data(), static_cast<uint32_t>(batch.size()), 0,
                                     MR_FOREVER, &first) != MR_RESULT_SUCCESS) {
          ++errors[th];
          return;
        }
        last[th] = first.value + batch.size() - 1;
        batch.clear();
        if (i % 16 == 0 || i == kPerThread) {
          const uint64_t tag = (uint64_t{th} << 32) | i;
          const mr_slot_request_t echo = nop(tag);
          mr_completion_t c{};
          if (mr_runtime_call(r, &echo, kLong, &c) != MR_RESULT_SUCCESS || c.result != tag ||
              c.status != MR_STATUS_OK)
            ++errors[th];
          else
            ++echoes[th];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  uint64_t published_ops = 0, echo_count = 0, max_last = 0;
  for (uint32_t th = 0; th < kThreads; ++th) {
    EXPECT_EQ(errors[th], 0) << "thread " << th;
    echo_count += echoes[th];
    published_ops += kPerThread;
    max_last = std::max(max_last, last[th]);
  }
  mr_ticket_t end{max_last, 0, 0};
  ASSERT_MR(mr_runtime_wait_done(r, &end, kLong), MR_RESULT_SUCCESS);
  std::vector<uint64_t> sums(kThreads, 0);
  ASSERT_MR(mr_buffer_read(r, counters, 0, sums.data(), 8 * kThreads), MR_RESULT_SUCCESS);
  for (uint32_t th = 0; th < kThreads; ++th)
    EXPECT_EQ(sums[th], kPerThread * (kPerThread + 1) / 2) << "thread " << th;
  const uint64_t total = published_ops + echo_count;
  mr_consumer_counters_t cc{};
  cc.struct_size = sizeof cc;
  ASSERT_MR(mr_runtime_consumer_counters(r, &cc), MR_RESULT_SUCCESS);
  EXPECT_EQ(cc.tickets_fetched, total);  // every ticket staged once
  ASSERT_MR(mr_runtime_finalize(r, kLong), MR_RESULT_SUCCESS);
  mr_runtime_stats_t s{};
  s.struct_size = sizeof s;
  ASSERT_MR(mr_runtime_stats(r, &s), MR_RESULT_SUCCESS);
  EXPECT_EQ(s.published, total);
  EXPECT_EQ(s.reaped, total);
  EXPECT_EQ(s.completed_ok, total);
  EXPECT_EQ(s.faulted + s.aborted + s.revoked + s.protocol_errors, 0u);
}

}  // namespace
}  // namespace megaring_test
