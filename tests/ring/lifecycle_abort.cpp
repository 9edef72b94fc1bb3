// SPDX-License-Identifier: Apache-2.0
// Lifecycle: abort() stops the consumer after the slot it is running; every
// slot not completed reads ABORTED, whoever asks, and runs no effect.

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

// wait_done() must agree with wait() and stats() about aborted tickets, both
// for a slot that abort() interrupted while it ran (a long DELAY_NS) and for
// one still queued: runtime.hpp documents that wait_done "Returns kAborted
// for a ticket that the runtime aborted". (Regression test: wait_done once
// answered OK for a slot the consumer had itself completed as ABORTED.)
TEST_P(RingLifecycleTest, WaitDoneAgreesWithWaitForAbortedTickets) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(workers_config(1), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(1), &c));  // the consumer is live
  Ticket running, queued;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &running, kept_options()));
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &queued, kept_options()));
  std::this_thread::sleep_for(milliseconds(100));  // the single unit is inside the first delay
  const auto t0 = Clock::now();
  MR_ASSERT_OK(rt->abort());
  EXPECT_LT(ms_since(t0), 900u) << "abort must interrupt a running DELAY_NS";
  for (const Ticket& t : {running, queued}) {
    SCOPED_TRACE(t.value == running.value ? "slot running at abort" : "slot queued at abort");
    MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
    EXPECT_EQ(c.status, MR_STATUS_ABORTED) << "a 1 s delay cannot have completed";
    const Status st = rt->wait_done(t, scaled(seconds(5)));
    EXPECT_EQ(st.code(), Result::kAborted)
        << "wait() reads MR_STATUS_ABORTED but wait_done() says " << st.to_string();
  }
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.completed_ok, 1u);
  EXPECT_EQ(s.aborted, 2u);
  expect_conserved(s);
}

// runtime.hpp: "abort() -> ... the consumer stops after the slot it is
// running; every slot not completed reads ABORTED". Slots that were ready but
// not yet started when abort() was called must therefore read ABORTED, and
// their memory effects must not happen. (Regression test: the consumer once
// checked the abort flag only every 16 slots and kept running ready slots.)
TEST_P(RingLifecycleTest, AbortStopsAfterTheRunningSlot) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(workers_config(1), &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
  Ticket running;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &running, kept_options()));
  std::vector<Ticket> queued(8);
  for (auto& t : queued) MR_ASSERT_OK(rt->publish(ops::atomic_add(ctr, 0, 1), &t, kept_options()));
  std::this_thread::sleep_for(milliseconds(100));  // the only unit is inside the delay
  MR_ASSERT_OK(rt->abort());
  Completion c;
  MR_ASSERT_OK(rt->wait(running, &c, scaled(seconds(5))));
  EXPECT_EQ(c.status, MR_STATUS_ABORTED);
  uint64_t ran = 0;
  for (const Ticket& t : queued) {
    MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
    EXPECT_EQ(c.status, MR_STATUS_ABORTED)
        << "ticket " << t.value << " was queued behind the running slot when abort() was called, "
        << "yet it ran (result " << c.result << ")";
    if (c.status == MR_STATUS_OK) ++ran;
  }
  uint64_t v = 0;
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v, 8));
  EXPECT_EQ(v, ran) << "memory effects must match the OK completions";
  EXPECT_EQ(v, 0u) << "queued ATOMIC_ADDs executed after abort()";
}

TEST_P(RingLifecycleTest, AbortStopsBacklog) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(1024, /*workers=*/2), &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::vector<Ticket>> tickets(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerThread; ++i) {
        Ticket t;
        const Status st = rt->publish(i % 2 ? ops::delay_ns(2'000'000) : ops::atomic_add(ctr, 0, 1),
                                      &t, kept_options());
        if (!st) {
          errors[p] = st.to_string();
          return;
        }
        tickets[p].push_back(t);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int p = 0; p < kThreads; ++p) ASSERT_TRUE(errors[p].empty()) << errors[p];
  std::this_thread::sleep_for(milliseconds(10));
  const auto t0 = Clock::now();
  MR_ASSERT_OK(rt->abort());
  EXPECT_LT(ms_since(t0), static_cast<uint64_t>(
                              std::chrono::duration_cast<milliseconds>(scaled(seconds(5))).count()));
  // Nothing runs once abort() has returned.
  uint64_t v1 = 0, v2 = 0;
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v1, 8));
  std::this_thread::sleep_for(milliseconds(20));
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v2, 8));
  EXPECT_EQ(v1, v2) << "an ATOMIC_ADD ran after abort() returned";

  uint64_t ok = 0, aborted = 0, adds_ok = 0;
  for (auto& v : tickets) {
    for (size_t i = 0; i < v.size(); ++i) {
      const Ticket& t = v[i];
      const bool is_delay = i % 2 == 1;
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
      ASSERT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED)
          << "ticket " << t.value << " status " << c.status;
      if (c.status == MR_STATUS_OK) {
        if (is_delay)
          EXPECT_EQ(c.result, 2'000'000u);
        else
          ++adds_ok;
        ++ok;
      } else {
        EXPECT_EQ(c.result, 0u);
        ++aborted;
      }
    }
  }
  EXPECT_GE(aborted, 1u);
  EXPECT_EQ(ok + aborted, uint64_t(kThreads) * kPerThread);
  EXPECT_EQ(v2, adds_ok) << "counter must equal the number of ATOMIC_ADDs that completed OK";
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, uint64_t(kThreads) * kPerThread);
  EXPECT_EQ(s.completed_ok, ok);
  EXPECT_EQ(s.aborted, aborted);
  EXPECT_EQ(s.faulted, 0u);
  expect_conserved(s);
  Ticket x;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, plain_options()), Result::kAborted);
  MR_EXPECT_RESULT(rt->shutdown(scaled(seconds(1))), Result::kSuccess)
      << "shutdown after abort: already stopped";
  MR_EXPECT_OK(rt->abort());
}

TEST_P(RingLifecycleTest, AbortRacingWithProducers) {
  const Config cfg = ring_config(256, /*workers=*/2);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  constexpr int kThreads = 3;
  struct Producer {
    std::vector<Ticket> tickets;
    std::deque<Ticket> unread;  // kept, not yet waited by the producer
    std::vector<std::pair<Ticket, Completion>> read;
    std::string error;
    Result final_result = Result::kSuccess;
  };
  std::vector<Producer> prod(kThreads);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      Producer& me = prod[p];
      Rng rng(p + 17);
      ++started;
      for (uint64_t i = 0;; ++i) {
        const bool keep = rng.below(4) == 0;
        const uint32_t n = 1 + rng.below(8);
        SlotRequest reqs[8];
        for (uint32_t j = 0; j < n; ++j)
          reqs[j] = rng.below(2) ? ops::nop(i) : ops::delay_ns(5'000 + rng.below(50'000));
        PublishOptions o = keep ? kept_options() : plain_options();
        if (!me.unread.empty()) o.timeout = milliseconds(1);
        Ticket first;
        const Status st = rt->publish_batch(reqs, n, &first, o);
        if (st.code() == Result::kTimeout && !me.unread.empty()) {
          // Free our kept positions, then retry.
          while (!me.unread.empty()) {
            Completion c;
            const Status ws = rt->wait(me.unread.front(), &c, scaled(seconds(10)));
            if (!ws) {
              me.error = "wait: " + ws.to_string();
              return;
            }
            me.read.emplace_back(me.unread.front(), c);
            me.unread.pop_front();
          }
          continue;
        }
        if (!st) {
          me.final_result = st.code();
          if (st.code() != Result::kAborted) me.error = "publish: " + st.to_string();
          return;
        }
        for (uint32_t j = 0; j < n; ++j) {
          me.tickets.push_back(Ticket{first.value + j, keep});
          if (keep) me.unread.push_back(Ticket{first.value + j, true});
        }
        if (me.unread.size() > 16) {
          Completion c;
          const Status ws = rt->wait(me.unread.front(), &c, scaled(seconds(10)));
          if (!ws) {
            me.error = "wait: " + ws.to_string();
            return;
          }
          me.read.emplace_back(me.unread.front(), c);
          me.unread.pop_front();
        }
      }
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(30));
  MR_EXPECT_OK(rt->abort());
  for (auto& t : threads) t.join();

  std::vector<uint64_t> all;
  for (int p = 0; p < kThreads; ++p) {
    EXPECT_TRUE(prod[p].error.empty()) << "producer " << p << ": " << prod[p].error;
    EXPECT_EQ(prod[p].final_result, Result::kAborted) << "producer " << p;
    for (const Ticket& t : prod[p].tickets) all.push_back(t.value);
  }
  ASSERT_FALSE(all.empty());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(all[i], cfg.initial_ticket + i) << "tickets handed out are not contiguous/unique";

  // Every ticket answers, finitely: kept ones through wait(), all through wait_done().
  uint64_t ok = 0, aborted = 0;
  for (int p = 0; p < kThreads; ++p) {
    for (const auto& rc : prod[p].read) {
      EXPECT_TRUE(rc.second.status == MR_STATUS_OK || rc.second.status == MR_STATUS_ABORTED);
    }
    for (const Ticket& t : prod[p].unread) {
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
      EXPECT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED)
          << "ticket " << t.value << " status " << c.status;
    }
    for (const Ticket& t : prod[p].tickets) {
      const Status st = rt->wait_done(t, scaled(seconds(5)));
      if (st.is_ok())
        ++ok;
      else if (st.code() == Result::kAborted)
        ++aborted;
      else
        ADD_FAILURE() << "ticket " << t.value << ": " << st.to_string();
    }
  }
  EXPECT_EQ(ok + aborted, all.size());
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, all.size()) << "a ticket was handed out that no producer saw (or vice versa)";
  EXPECT_EQ(s.faulted, 0u);
  expect_conserved(s);
  std::printf("[ abort    ] %zu tickets: %" PRIu64 " ok, %" PRIu64 " aborted (stats)\n", all.size(),
              s.completed_ok, s.aborted);
}

TEST_P(RingLifecycleTest, AbortInterruptsShutdown) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(128, /*workers=*/2), &rt));
  std::vector<Ticket> tickets(60);
  for (auto& t : tickets) MR_ASSERT_OK(rt->publish(ops::delay_ns(50'000'000), &t, kept_options()));
  Status shutdown_status;
  const auto t0 = Clock::now();
  std::thread closer([&] { shutdown_status = rt->shutdown(scaled(seconds(60))); });
  std::this_thread::sleep_for(milliseconds(30));
  const Status abort_status = rt->abort();
  closer.join();
  const uint64_t elapsed = ms_since(t0);
  MR_EXPECT_OK(abort_status);
  EXPECT_TRUE(shutdown_status.code() == Result::kSuccess ||
              shutdown_status.code() == Result::kAborted ||
              shutdown_status.code() == Result::kTimeout)
      << shutdown_status.to_string();
  EXPECT_LT(elapsed, 1500u * timeout_scale()) << "abort() must cut the 1.5 s drain short";
  uint64_t aborted = 0;
  for (const Ticket& t : tickets) {
    Completion c;
    MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
    ASSERT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED) << c.status;
    if (c.status == MR_STATUS_ABORTED) ++aborted;
  }
  EXPECT_GT(aborted, 30u);
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 60u);
  EXPECT_EQ(s.aborted, aborted);
  expect_conserved(s);
  Ticket x;
  const Status pub = rt->publish(ops::nop(), &x, plain_options());
  EXPECT_TRUE(pub.code() == Result::kAborted || pub.code() == Result::kShutdown) << pub.to_string();
}

}  // namespace
}  // namespace megaring_test
