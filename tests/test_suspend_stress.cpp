// SPDX-License-Identifier: Apache-2.0
// Suspend and resume under the review's harder loads (suspend_fixture.hpp;
// the review of the change, h/rvsusp, wrote them):
//
//   CountersStayMonotonicAcrossResume: Runtime::consumer_counters goes on
//     from the last run's counts (a relaunch that started them at 0 made
//     tickets_fetched go from 201 to 1).
//   EveryRingClassFenceAndSlowSlotRunsOnceAcrossSuspensions: ring 0 and
//     three producer rings of every class, kept slots, 20 us DELAYs (the
//     completer's pass past a slow slot) and FENCEs, while suspensions, some
//     timing out (left suspending), come back to back: every word counted
//     once, every ring's DONE_COUNT at its published end.
//   ShutdownRacingSuspendAndResumeEndsEveryTicket: a shutdown while one
//     thread suspends and resumes and another changes a producer's class;
//     every kept ticket published before ends OK with its own result.
#include <atomic>
#include <vector>

#include "suspend_fixture.hpp"

namespace megaring_test {
namespace suspend_test {

TEST_P(SuspendTest, CountersStayMonotonicAcrossResume) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2));
  for (int i = 0; i < 200; ++i) {
    Ticket t;
    MR_ASSERT_OK(rt_->publish(nop(i), &t));
  }
  Completion c;
  MR_ASSERT_OK(rt_->call(nop(1), &c, scaled(seconds(30))));
  megaring::ConsumerCounters before;
  MR_ASSERT_OK(rt_->consumer_counters(&before));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  MR_ASSERT_OK(rt_->resume());
  MR_ASSERT_OK(rt_->call(nop(2), &c, scaled(seconds(30))));
  megaring::ConsumerCounters after;
  MR_ASSERT_OK(rt_->consumer_counters(&after));
  EXPECT_GE(after.tickets_fetched, before.tickets_fetched + 1)
      << "tickets_fetched went from " << before.tickets_fetched << " to " << after.tickets_fetched;
  EXPECT_GE(after.fetch_rounds, before.fetch_rounds);
  EXPECT_GE(after.flushes, before.flushes);
}

// Several rings of every class, slow kept slots (the completer's early pass),
// FENCEs, suspensions back to back, some with a timeout that leaves it
// suspending.
TEST_P(SuspendTest, EveryRingClassFenceAndSlowSlotRunsOnceAcrossSuspensions) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/3, /*producer_rings=*/3, /*capacity=*/32));
  constexpr uint64_t kPerPath = 1200;
  BufferHandle words = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(4 * kPerPath * 8, &words));
  std::unique_ptr<Producer> producers[3];
  MR_ASSERT_OK(rt_->open_producer(&producers[0], Priority::kCritical));
  MR_ASSERT_OK(rt_->open_producer(&producers[1], Priority::kBulk));
  MR_ASSERT_OK(rt_->open_producer(&producers[2]));
  std::atomic<int> left{4};
  Ticket last[4];
  auto publisher = [&](int path) {
    Rng rng(100 + path);
    for (uint64_t i = 0; i < kPerPath; ++i) {
      const uint64_t w = path * kPerPath + i;
      Ticket t;
      SlotRequest r = count_once(words, w);
      PublishOptions o = rng.below(4) == 0 ? kept() : PublishOptions{};
      o.timeout = megaring::kForever;
      Status st = path == 0 ? rt_->publish(r, &t, o) : producers[path - 1]->publish(r, &t, o);
      EXPECT_TRUE(st.is_ok()) << st.to_string();
      if (!st) break;
      if (t.kept) {
        Completion c;
        c.status = 0xFFFF;
        st = path == 0 ? rt_->wait(t, &c, scaled(seconds(60))) : producers[path - 1]->wait(t, &c, scaled(seconds(60)));
        EXPECT_TRUE(st.is_ok()) << st.to_string();
        EXPECT_EQ(c.result, 0u) << "path " << path << " i " << i;
      }
      last[path] = t;
      const uint32_t extra = rng.below(16);
      if (extra == 0 || extra == 1) {
        SlotRequest d;
        d.opcode = extra == 0 ? MR_OP_DELAY_NS : MR_OP_FENCE;
        d.args[0] = 20000;
        PublishOptions ko = kept();
        ko.timeout = megaring::kForever;
        st = path == 0 ? rt_->publish(d, &t, ko) : producers[path - 1]->publish(d, &t, ko);
        EXPECT_TRUE(st.is_ok()) << st.to_string();
        if (!st) break;
        Completion c;
        st = path == 0 ? rt_->wait(t, &c, scaled(seconds(60))) : producers[path - 1]->wait(t, &c, scaled(seconds(60)));
        EXPECT_TRUE(st.is_ok()) << st.to_string();
        EXPECT_EQ(c.status, MR_STATUS_OK);
        last[path] = t;
      }
    }
    left.fetch_sub(1);
  };
  std::vector<std::thread> threads;
  for (int p = 0; p < 4; ++p) threads.emplace_back(publisher, p);
  Rng rng(5);
  int cycles = 0;
  bool ok = true;
  while (ok && (left.load() > 0 || cycles < 50)) {
    Status s = rt_->suspend(rng.below(3) == 0 ? std::chrono::microseconds(rng.below(50)) : scaled(seconds(30)));
    ok = s.is_ok() || s.code() == Result::kTimeout;
    EXPECT_TRUE(ok) << s.to_string();
    if (rng.below(2)) std::this_thread::sleep_for(std::chrono::microseconds(rng.below(300)));
    Status r = rt_->resume();
    EXPECT_TRUE(r.is_ok()) << r.to_string();
    ok = ok && r.is_ok();
    if (rng.below(2)) std::this_thread::sleep_for(std::chrono::microseconds(rng.below(300)));
    ++cycles;
  }
  if (!ok) (void)rt_->abort();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(ok);
  for (int p = 0; p < 4; ++p) {
    Status st = p == 0 ? rt_->wait_done(last[p], scaled(seconds(30))) : producers[p - 1]->wait_done(last[p], scaled(seconds(30)));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  std::vector<uint64_t> counts(4 * kPerPath, ~0ull);
  MR_ASSERT_OK(rt_->read_buffer(words, 0, counts.data(), counts.size() * 8));
  for (uint64_t w = 0; w < counts.size(); ++w) ASSERT_EQ(counts[w], 1u) << "word " << w;
  megaring::StateDump d;
  MR_ASSERT_OK(rt_->dump_state(&d));
  for (const auto& r : d.rings) EXPECT_EQ(r.done_count, r.published_end) << "ring " << r.ring;
  EXPECT_GE(cycles, 50);
}

// Suspend/resume cycles racing a shutdown and control operations.
TEST_P(SuspendTest, ShutdownRacingSuspendAndResumeEndsEveryTicket) {
  for (int round = 0; round < 20; ++round) {
    ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/1, 64));
    std::unique_ptr<Producer> producer;
    MR_ASSERT_OK(rt_->open_producer(&producer));
    std::atomic<bool> stop{false};
    std::vector<Ticket> pub;
    std::thread cycler([&] {
      while (!stop.load()) {
        (void)rt_->suspend(scaled(seconds(10)));
        (void)rt_->resume();
      }
    });
    std::thread ctl([&] {
      Rng rng(round);
      while (!stop.load()) {
        (void)producer->set_priority(rng.below(2) ? Priority::kBulk : Priority::kCritical);
      }
    });
    std::thread publisher([&] {
      for (int i = 0; i < 2000; ++i) {
        Ticket t;
        PublishOptions o = kept();
        o.timeout = milliseconds(200);
        if (!rt_->publish(nop(i), &t, o)) break;
        pub.push_back(t);
      }
    });
    std::this_thread::sleep_for(milliseconds(5 + round));
    const Status st = rt_->shutdown(scaled(seconds(20)));
    EXPECT_TRUE(st.is_ok()) << "round " << round << ": " << st.to_string();
    stop.store(true);
    cycler.join();
    ctl.join();
    publisher.join();
    for (size_t i = 0; i < pub.size(); ++i) {
      Completion c;
      c.status = 0xFFFF;
      const Status w = rt_->wait(pub[i], &c, scaled(seconds(5)));
      ASSERT_TRUE(w.is_ok()) << "round " << round << " i " << i << ": " << w.to_string();
      ASSERT_EQ(c.status, MR_STATUS_OK) << "round " << round << " i " << i;
      ASSERT_EQ(c.result, i);
    }
    producer.reset();
    rt_.reset();
  }
}

}  // namespace suspend_test
}  // namespace megaring_test
