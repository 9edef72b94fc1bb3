// SPDX-License-Identifier: Apache-2.0
// Lifecycle, part one: shutdown() drains (or, past its timeout, aborts the
// rest) and destruction stops work in flight. RingLifecycleTest is
// instantiated here for all of its files (ring_fixture.hpp lists them).

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

// A drain that finishes within (or exactly at) a tiny timeout is a clean
// shutdown, not a wedged consumer: the units still get time to exit.
TEST_P(RingLifecycleTest, ShutdownWithTinyTimeoutOnIdleRingIsClean) {
  for (Nanoseconds timeout : {Nanoseconds(0), Nanoseconds(100'000)}) {
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
    Completion c;
    call_ok(*rt, ops::nop(1), &c);
    // Idle for real: DONE_COUNT has passed the last slot (it may trail the
    // completion that wait() saw by a moment).
    MR_ASSERT_OK(rt->wait_done(Ticket{c.ticket, false}, scaled(seconds(5))));
    MR_EXPECT_OK(rt->shutdown(timeout)) << "timeout " << timeout.count() << " ns";
    MR_EXPECT_OK(rt->abort()) << "abort after a clean shutdown is a no-op";
    rt.reset();
    // The device (or backend) is free again for a new runtime.
    ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

TEST_P(RingLifecycleTest, ShutdownDrainsBacklog) {
  const Config cfg = ring_config(4096);  // the whole backlog fits (kept results stay unread)
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
  struct Entry {
    Ticket t;
    uint64_t expected;  // result, for kept tickets
  };
  std::vector<Entry> entries;
  uint64_t adds = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    Ticket t;
    switch (i % 4) {
      case 0:
        MR_ASSERT_OK(rt->publish(ops::nop(i), &t, kept_options()));
        entries.push_back({t, i});
        break;
      case 1:
        MR_ASSERT_OK(rt->publish(ops::delay_ns(100'000), &t, plain_options()));
        entries.push_back({t, 0});
        break;
      case 2:
        MR_ASSERT_OK(rt->publish(ops::atomic_add(ctr, 0, 1), &t, plain_options()));
        ++adds;
        entries.push_back({t, 0});
        break;
      default:
        MR_ASSERT_OK(rt->publish(ops::delay_ns(1'000 + i), &t, kept_options()));
        entries.push_back({t, 1'000 + i});
        break;
    }
  }
  MR_ASSERT_OK(rt->shutdown(scaled(seconds(60))));
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket + 2000) << "shutdown returned before draining";

  Ticket x;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, plain_options()), Result::kShutdown);
  SlotRequest r = ops::nop();
  MR_EXPECT_RESULT(rt->publish_batch(&r, 1, &x, plain_options()), Result::kShutdown);
  BufferHandle h;
  MR_EXPECT_RESULT(rt->alloc_buffer(8, &h), Result::kShutdown);
  Completion c;
  MR_EXPECT_RESULT(rt->call(ops::nop(), &c, milliseconds(100)), Result::kShutdown);

  for (const Entry& e : entries) {
    if (e.t.kept) {
      MR_ASSERT_OK(rt->wait(e.t, &c, scaled(seconds(1))));
      EXPECT_EQ(c.status, MR_STATUS_OK) << "ticket " << e.t.value;
      EXPECT_EQ(c.result, e.expected) << "ticket " << e.t.value;
    } else {
      MR_EXPECT_OK(rt->wait_done(e.t, scaled(seconds(1))));
    }
  }
  uint64_t v = 0;
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v, 8));
  EXPECT_EQ(v, adds);
  const RuntimeStats s = rt->stats();
  expect_every_slot_ok(s, 2000);
  EXPECT_EQ(s.faulted, 0u);
  EXPECT_EQ(s.aborted, 0u);
  // Idempotent.
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(1))));
  MR_EXPECT_OK(rt->abort());
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, plain_options()), Result::kShutdown);
}

TEST_P(RingLifecycleTest, ShutdownTimeoutAbortsTheRest) {
  // 100 x 50 ms cannot drain in 50 ms on two units.
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(128, /*workers=*/2), &rt));
  std::vector<Ticket> tickets;
  for (int i = 0; i < 100; ++i) {
    Ticket t;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(50'000'000), &t,
                             i % 2 == 0 ? kept_options() : plain_options()));
    tickets.push_back(t);
  }
  const auto t0 = Clock::now();
  MR_EXPECT_RESULT(rt->shutdown(milliseconds(50)), Result::kTimeout);
  EXPECT_LT(ms_since(t0), static_cast<uint64_t>(
                              std::chrono::duration_cast<milliseconds>(scaled(seconds(5))).count()))
      << "a timed-out shutdown must stop promptly";

  uint64_t ok = 0, aborted = 0;
  for (const Ticket& t : tickets) {
    if (t.kept) {
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
      EXPECT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED)
          << "ticket " << t.value << " status " << c.status;
      if (c.status == MR_STATUS_OK) {
        EXPECT_EQ(c.result, 50'000'000u);
        ++ok;
      } else {
        EXPECT_EQ(c.result, 0u);
        ++aborted;
      }
    } else {
      const Status st = rt->wait_done(t, scaled(seconds(5)));
      EXPECT_TRUE(st.code() == Result::kSuccess || st.code() == Result::kAborted)
          << "ticket " << t.value << ": " << st.to_string();
    }
  }
  EXPECT_GT(aborted, 0u);
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 100u);
  EXPECT_EQ(s.faulted, 0u);
  EXPECT_GT(s.aborted, 40u) << "most of the 5 s backlog must have been aborted";
  expect_conserved(s);
  Ticket x;
  const Status st = rt->publish(ops::nop(), &x, plain_options());
  EXPECT_TRUE(st.code() == Result::kAborted || st.code() == Result::kShutdown) << st.to_string();
}

TEST_P(RingLifecycleTest, ShutdownRacingWithProducers) {
  // Publishers racing with shutdown() get kShutdown; every ticket they did
  // get is drained and completes OK.
  const Config cfg = ring_config(64);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8 * 3, &ctr));
  constexpr int kThreads = 3;
  std::vector<std::vector<Ticket>> tickets(kThreads);
  std::vector<uint64_t> adds(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  std::vector<Result> final_result(kThreads, Result::kSuccess);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      Rng rng(p + 5);
      ++started;
      for (;;) {
        const uint32_t n = 1 + rng.below(8);
        SlotRequest reqs[8];
        for (uint32_t j = 0; j < n; ++j)
          reqs[j] = rng.below(2) ? ops::atomic_add(ctr, 8ull * p, 1) : ops::delay_ns(rng.below(20'000));
        Ticket first;
        const Status st = rt->publish_batch(reqs, n, &first, plain_options());
        if (!st) {
          final_result[p] = st.code();
          if (st.code() != Result::kShutdown) errors[p] = st.to_string();
          return;
        }
        for (uint32_t j = 0; j < n; ++j) {
          tickets[p].push_back(Ticket{first.value + j, false});
          if (reqs[j].opcode == MR_OP_ATOMIC_ADD) ++adds[p];
        }
      }
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(20));
  const Status st = rt->shutdown(scaled(seconds(30)));
  for (auto& t : threads) t.join();
  MR_ASSERT_OK(st);
  uint64_t total = 0;
  for (int p = 0; p < kThreads; ++p) {
    EXPECT_TRUE(errors[p].empty()) << "producer " << p << ": " << errors[p];
    EXPECT_EQ(final_result[p], Result::kShutdown) << "producer " << p;
    for (const Ticket& t : tickets[p]) MR_EXPECT_OK(rt->wait_done(t, scaled(seconds(1))));
    total += tickets[p].size();
  }
  uint64_t got[kThreads] = {};
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, got, sizeof(got)));
  for (int p = 0; p < kThreads; ++p) EXPECT_EQ(got[p], adds[p]) << "producer " << p;
  const RuntimeStats s = rt->stats();
  EXPECT_GT(total, 0u);
  EXPECT_EQ(s.published, total);
  EXPECT_EQ(s.completed_ok, total) << "shutdown must drain every published slot";
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket + total);
  expect_conserved(s);
}

TEST_P(RingLifecycleTest, DestroyWithWorkInFlight) {
  for (int round = 0; round < 3; ++round) {
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(512, /*workers=*/2), &rt));
    BufferHandle h = 0, ctr = 0;
    MR_ASSERT_OK(rt->alloc_buffer(300 * 64, &h));
    MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
    for (int i = 0; i < 300; ++i) {
      Ticket t;
      // Slots run in parallel: FILLs use disjoint ranges (no racing plain stores).
      const SlotRequest r = i % 3 == 0   ? ops::delay_ns(1'000'000)
                            : i % 3 == 1 ? ops::fill(h, 64ull * i, 64, static_cast<uint8_t>(i))
                                         : ops::atomic_add(ctr, 0, 1);
      MR_ASSERT_OK(rt->publish(r, &t, i % 7 == 0 ? kept_options() : plain_options()));
    }
    if (round == 1) std::this_thread::sleep_for(milliseconds(5));
    const auto t0 = Clock::now();
    rt.reset();  // aborts, joins and frees, with kept results unread
    EXPECT_LT(ms_since(t0), static_cast<uint64_t>(
                                std::chrono::duration_cast<milliseconds>(scaled(seconds(5))).count()))
        << "round " << round;
  }
  // A runtime can still be created afterwards.
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(8), &c));
  EXPECT_EQ(c.result, 8u);
}

MEGARING_INSTANTIATE_BACKENDS(RingLifecycleTest);

}  // namespace
}  // namespace megaring_test
