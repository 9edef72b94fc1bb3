// SPDX-License-Identifier: Apache-2.0
// Back-pressure: a full ring fails fast or waits as asked, and unread kept
// results are parked rather than holding ring positions.

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

class RingBackPressureTest : public RingTest {};

TEST_P(RingBackPressureTest, FullRingFailsTimesOutAndRecovers) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(4), &rt));
  const uint64_t delay = 200'000'000;  // 200 ms: in flight through the checks below
  std::vector<Ticket> kept(4);
  for (auto& t : kept) MR_ASSERT_OK(rt->publish(ops::delay_ns(delay), &t, kept_options()));

  PublishOptions fail;
  fail.on_full = OnFull::kFail;
  Ticket x;
  const uint64_t full_before = rt->stats().ring_full_events;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, fail), Result::kRingFull);
  // A batch does not fit either.
  SlotRequest two[2] = {ops::nop(), ops::nop()};
  MR_EXPECT_RESULT(rt->publish_batch(two, 2, &x, fail), Result::kRingFull);

  PublishOptions brief;
  brief.on_full = OnFull::kWait;
  brief.timeout = milliseconds(20);
  auto t0 = Clock::now();
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, brief), Result::kTimeout);
  EXPECT_GE(ms_since(t0), 19u) << "kWait must wait for its timeout";

  // All four complete. Their unread kept results do not hold the ring: a
  // producer that needs the positions parks them in host memory.
  for (const Ticket& t : kept) MR_ASSERT_OK(rt->wait_done(t, scaled(seconds(10))));
  EXPECT_EQ(rt->done_count(), kept[3].value + 1);
  EXPECT_GE(rt->stats().ring_full_events, full_before + 3);
  EXPECT_EQ(rt->stats().parked_results, 0u) << "nothing is parked without ring pressure";
  Ticket n[4];
  for (uint32_t i = 0; i < 4; ++i) MR_ASSERT_OK(rt->publish(ops::nop(10 + i), &n[i], fail));
  EXPECT_EQ(n[0].value, kept[3].value + 1);
  EXPECT_EQ(rt->stats().parked_results, 4u);

  // Parked results read back once, with their values.
  Completion c;
  MR_ASSERT_OK(rt->wait(kept[0], &c, scaled(seconds(5))));
  EXPECT_EQ(c.ticket, kept[0].value);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, delay);
  MR_EXPECT_RESULT(rt->wait(kept[0], &c, milliseconds(1)), Result::kInvalidArgument)
      << "a parked result is read once";

  // release() drops a kept result, parked or not.
  MR_ASSERT_OK(rt->release(kept[1]));
  MR_EXPECT_RESULT(rt->release(kept[1]), Result::kInvalidArgument) << "double release";
  MR_EXPECT_RESULT(rt->wait(kept[1], &c, milliseconds(1)), Result::kInvalidArgument)
      << "a released ticket cannot be read";
  MR_ASSERT_OK(rt->wait(kept[2], &c, scaled(seconds(5))));
  MR_ASSERT_OK(rt->wait(kept[3], &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, delay);
  EXPECT_EQ(rt->stats().parked_results, 0u);
  for (const Ticket& t : n) MR_ASSERT_OK(rt->wait_done(t, scaled(seconds(10))));

  // Now a full-ring batch fits (the two NOPs complete on their own).
  SlotRequest four[4] = {ops::nop(1), ops::nop(2), ops::nop(3), ops::nop(4)};
  Ticket b;
  MR_ASSERT_OK(rt->publish_batch(four, 4, &b, kept_options(scaled(seconds(10)))));
  for (uint32_t i = 0; i < 4; ++i) {
    MR_ASSERT_OK(rt->wait(Ticket{b.value + i, true}, &c, scaled(seconds(10))));
    EXPECT_EQ(c.result, i + 1u);
  }
  // Batches larger than the ring are refused outright.
  SlotRequest five[5] = {ops::nop(), ops::nop(), ops::nop(), ops::nop(), ops::nop()};
  MR_EXPECT_RESULT(rt->publish_batch(five, 5, &b, fail), Result::kInvalidArgument);
  ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(*rt));
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// A thread that keeps a ticket and then publishes more than a ring's worth
// must not wait on itself: the unread result is parked, not a ring hostage.
TEST_P(RingBackPressureTest, UnreadKeptTicketDoesNotBlockItsOwnProducer) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(8), &rt));
  Ticket kept;
  MR_ASSERT_OK(rt->publish(ops::nop(4242), &kept, kept_options()));
  Ticket last;
  for (int i = 0; i < 64; ++i)
    MR_ASSERT_OK(rt->publish(ops::nop(i), &last, plain_options(scaled(seconds(5)))))
        << "publish " << i << " stalled behind the unread kept ticket";
  MR_ASSERT_OK(rt->wait_done(last, scaled(seconds(10))));
  Completion c;
  MR_ASSERT_OK(rt->wait(kept, &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, 4242u);
  EXPECT_EQ(c.ticket, kept.value);
  ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(*rt));
  EXPECT_EQ(rt->stats().parked_results, 0u);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingBackPressureTest, RingOfOneWorks) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(1), &rt));
  for (uint64_t i = 0; i < 200; ++i) {
    Completion c;
    ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(i * 3), &c));
    ASSERT_EQ(c.result, i * 3);
  }
  Ticket k, x;
  // The one position is busy while its slot runs (a completed but unread kept
  // result would be parked instead, so use a slot that takes a while).
  const uint64_t delay = 50'000'000;  // 50 ms
  MR_ASSERT_OK(rt->publish(ops::delay_ns(delay), &k, kept_options()));
  PublishOptions fail;
  fail.on_full = OnFull::kFail;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, fail), Result::kRingFull);
  Completion c;
  MR_ASSERT_OK(rt->wait(k, &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, delay);
  for (int i = 0; i < 100; ++i) MR_ASSERT_OK(rt->publish(ops::nop(), &x, plain_options()));
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  expect_every_slot_ok(rt->stats(), 301);
}

// OnFull::kFail reports a full ring only when it is full: publishers that
// all find every position completed but not yet reaped race to reap, and the
// ones that lose the race must see what the winner freed. (They used to
// return kRingFull after a blocking reap found nothing left to reap, and a
// stale tail_ read before reaped_ made a free ring look full.)
TEST_P(RingBackPressureTest, FailFastPublishersRacingToReapNeverSeeAFullRing) {
  const Config cfg = ring_config(16, /*workers=*/1);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  constexpr int kThreads = 3;  // fewer than the positions a reap frees
  const uint64_t rounds = env_u64("MEGARING_TEST_FAILFAST_ROUNDS", 300);
  uint64_t false_full = 0;
  for (uint64_t round = 0; round < rounds && false_full == 0; ++round) {
    // Every position completed, none reaped.
    (void)rt->stats();  // reaps what an earlier round left
    ASSERT_NO_FATAL_FAILURE(publish_nops_and_wait_done(*rt, cfg.ring_capacity));
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<uint64_t> full{0};
    std::vector<Ticket> got(kThreads);
    std::vector<Status> status(kThreads);
    std::vector<std::thread> threads;
    for (int p = 0; p < kThreads; ++p) {
      threads.emplace_back([&, p] {
        ready.fetch_add(1);
        while (!go.load()) {
        }
        PublishOptions fail;
        fail.on_full = OnFull::kFail;
        status[p] = rt->publish(ops::nop(), &got[p], fail);
        if (status[p].code() == Result::kRingFull) full.fetch_add(1);
      });
    }
    while (ready.load() < kThreads) std::this_thread::yield();
    go.store(true);
    for (auto& t : threads) t.join();
    false_full += full.load();
    for (int p = 0; p < kThreads; ++p) {
      if (status[p].code() == Result::kRingFull) continue;
      MR_ASSERT_OK(status[p]);
      MR_ASSERT_OK(rt->wait_done(got[p], scaled(seconds(10))));
    }
  }
  EXPECT_EQ(false_full, 0u) << "kRingFull with every position reapable";
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  expect_conserved(rt->stats());
}

MEGARING_INSTANTIATE_BACKENDS(RingBackPressureTest);

}  // namespace
}  // namespace megaring_test
