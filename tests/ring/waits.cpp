// SPDX-License-Identifier: Apache-2.0
// wait() / wait_done() / release(): argument checking, timeouts, one
// successful read per kept ticket, and the consumer's health on a timeout.

#include <atomic>
#include <cstdint>
#include <new>
#include <thread>
#include <vector>

#include "ring_fixture.hpp"
#include "runtime/runtime_internal.hpp"

namespace megaring_test {
namespace {

using megaring::detail::RuntimeInternals;

class RingWaitTest : public RingTest {};

TEST_P(RingWaitTest, InvalidWaits) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  c.result = 0xBAD;
  // Not kept.
  Ticket plain;
  MR_ASSERT_OK(rt->publish(ops::nop(1), &plain, plain_options()));
  EXPECT_FALSE(plain.kept);
  MR_EXPECT_RESULT(rt->wait(plain, &c, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait(Ticket{plain.value, true}, &c, milliseconds(100)),
                   Result::kInvalidArgument)
      << "claiming kept for a non-kept ticket";
  MR_EXPECT_RESULT(rt->release(plain), Result::kInvalidArgument);
  MR_EXPECT_OK(rt->wait_done(plain, scaled(seconds(5))));
  EXPECT_EQ(c.result, 0xBADu) << "a failed wait must not write the completion";

  // Kept: exactly one successful wait.
  Ticket k;
  MR_ASSERT_OK(rt->publish(ops::nop(2), &k, kept_options()));
  EXPECT_TRUE(k.kept);
  MR_EXPECT_RESULT(rt->wait(k, nullptr, milliseconds(100)), Result::kInvalidArgument);
  MR_ASSERT_OK(rt->wait(k, &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, 2u);
  c.result = 0xBAD;
  MR_EXPECT_RESULT(rt->wait(k, &c, milliseconds(100)), Result::kInvalidArgument);
  EXPECT_EQ(c.result, 0xBADu);
  MR_EXPECT_RESULT(rt->release(k), Result::kInvalidArgument) << "release after wait";
  MR_EXPECT_OK(rt->wait_done(k, scaled(seconds(5)))) << "wait_done works on any completed ticket";

  // Never published.
  const uint64_t next = k.value + 1;
  MR_EXPECT_RESULT(rt->wait(Ticket{next, true}, &c, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait(Ticket{next + 1000, true}, &c, milliseconds(100)),
                   Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait(Ticket{~0ull, true}, &c, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait_done(Ticket{next, false}, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait_done(Ticket{~0ull, true}, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->release(Ticket{next, true}), Result::kInvalidArgument);

  // Malformed publishes.
  Ticket t;
  SlotRequest r = ops::nop();
  MR_EXPECT_RESULT(rt->publish_batch(&r, 0, &t), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->publish_batch(nullptr, 1, &t), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->publish(r, nullptr), Result::kInvalidArgument);
  EXPECT_EQ(rt->stats().published, 2u) << "refused publishes must not consume tickets";
}

// A wait that reaches its deadline asks after the consumer before it reports
// the timeout: a caller that retries short waits would otherwise never hear
// that it died (a waiter checks health on its own only once it sleeps).
TEST_P(RingWaitTest, ATimedOutWaitChecksTheConsumerFirst) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Ticket slow;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(200'000'000), &slow, kept_options()));
  const uint64_t before = RuntimeInternals::health_checks(*rt);
  Completion c;
  MR_EXPECT_RESULT(rt->wait(slow, &c, Nanoseconds(0)), Result::kTimeout);
  EXPECT_EQ(RuntimeInternals::health_checks(*rt), before + 1);
  MR_EXPECT_RESULT(rt->wait_done(slow, Nanoseconds(0)), Result::kTimeout);
  EXPECT_EQ(RuntimeInternals::health_checks(*rt), before + 2);
  MR_ASSERT_OK(rt->wait(slow, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
}

TEST_P(RingWaitTest, TimeoutOnSlowSlotThenSuccess) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  const uint64_t delay = 300'000'000;  // 300 ms
  Ticket slow, after;
  const auto t0 = Clock::now();
  MR_ASSERT_OK(rt->publish(ops::delay_ns(delay), &slow, kept_options()));
  MR_ASSERT_OK(rt->publish(ops::nop(4), &after, plain_options()));
  Completion c;
  c.result = 0xBAD;
  MR_EXPECT_RESULT(rt->wait(slow, &c, milliseconds(10)), Result::kTimeout);
  EXPECT_EQ(c.result, 0xBADu);
  MR_EXPECT_RESULT(rt->wait_done(slow, milliseconds(10)), Result::kTimeout);
  // The timed-out wait did not consume the kept ticket.
  MR_ASSERT_OK(rt->wait(slow, &c, scaled(seconds(10))));
  EXPECT_GE(ms_since(t0), 295u) << "DELAY_NS returned early";
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, delay);
  // wait_done waits for DONE_COUNT, which may trail the completion wait()
  // saw by a moment (another unit advances it): not a zero timeout.
  MR_EXPECT_OK(rt->wait_done(slow, scaled(seconds(1))));
  MR_EXPECT_OK(rt->wait_done(after, scaled(seconds(5))));
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// DONE_COUNT waits for the slowest earlier slot, but wait() on a kept ticket
// must not: the completer writes a finished kept ticket's record early when
// an earlier one holds DONE_COUNT back (consumer/completer.cuh,
// publish_beyond_gap). Checked by state, not time: when each wait()
// returns, the earlier 1 s slot has still not completed (three calls of a
// few milliseconds each fit in that second).
TEST_P(RingWaitTest, AKeptResultIsNotHeldBackByASlowEarlierSlot) {
  // The slow slot holds one executor; the other runs the NOP.
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(workers_config(2), &rt));
  Ticket slow;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &slow, plain_options()));
  for (int i = 0; i < 3; ++i) {  // and after an early record, a later one
    Completion c;
    MR_ASSERT_OK(rt->call(ops::nop(40 + i), &c, milliseconds(300)));
    EXPECT_EQ(c.status, MR_STATUS_OK);
    EXPECT_EQ(c.result, 40u + i);
    EXPECT_LE(rt->done_count(), slow.value) << "the slow slot completed first: nothing was checked";
  }
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.protocol_errors, 0u);
  MR_EXPECT_OK(rt->abort());  // ends the slow slot (ABORTED) instead of waiting it out
}

TEST_P(RingWaitTest, ConcurrentWaitsOnOneTicketSucceedOnce) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  for (int round = 0; round < 20; ++round) {
    Ticket k;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(200'000), &k, kept_options()));
    std::atomic<int> ok{0}, invalid{0}, other{0};
    std::vector<std::thread> waiters;
    for (int w = 0; w < 3; ++w) {
      waiters.emplace_back([&] {
        Completion c;
        const Status st = rt->wait(k, &c, scaled(seconds(10)));
        if (st.is_ok() && c.result == 200'000u)
          ++ok;
        else if (st.code() == Result::kInvalidArgument)
          ++invalid;
        else
          ++other;
      });
    }
    for (auto& w : waiters) w.join();
    EXPECT_EQ(ok.load(), 1) << "round " << round;
    EXPECT_EQ(invalid.load(), 2) << "round " << round;
    EXPECT_EQ(other.load(), 0) << "round " << round;
  }
}

// A reaper that claims an unread kept result for the parked map and then
// fails to store it there (std::bad_alloc) puts it back in place. A wait()
// or release() that saw it being parked must find it in place again, not
// call it "not pending" and leave it behind. A test hook throws in place of
// the allocation, while the wait (or release) is watching.
TEST_P(RingWaitTest, AReaperThatCannotParkAResultLeavesItToItsWaiter) {
  for (const bool release_it : {false, true}) {
    SCOPED_TRACE(release_it ? "release()" : "wait()");
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(4), &rt));
    Ticket kept;
    MR_ASSERT_OK(rt->publish(ops::nop(4242), &kept, kept_options()));
    MR_ASSERT_OK(rt->wait_done(kept, scaled(seconds(10))));  // completed, unread

    struct Scene {
      Runtime* rt;
      Ticket kept;
      bool release_it;
      int parks = 0;  // hook calls for the kept ticket (under the reap lock)
      std::thread taker;
      Status taken;
      Completion completion;
    } scene{rt.get(), kept, release_it};
    RuntimeInternals::set_park_hook(
        *rt,
        [](void* arg, uint64_t ticket) {
          auto* s = static_cast<Scene*>(arg);
          if (ticket != s->kept.value || s->parks++ > 0) return;  // fail the first try only
          s->taker = std::thread([s] {
            s->taken = s->release_it ? s->rt->release(s->kept)
                                     : s->rt->wait(s->kept, &s->completion, scaled(seconds(10)));
          });
          // Fail only once the taker is waiting on the claimed result.
          const auto deadline = Clock::now() + scaled(seconds(10));
          while (RuntimeInternals::parking_waits(*s->rt) == 0 && Clock::now() < deadline)
            std::this_thread::yield();
          throw std::bad_alloc();
        },
        &scene);
    // Three more slots fit; the fourth needs the kept ticket's position, so
    // its producer reaps and tries to park the unread result.
    Ticket t;
    for (int i = 0; i < 3; ++i) MR_ASSERT_OK(rt->publish(ops::nop(i), &t, plain_options()));
    const Status full = rt->publish(ops::nop(3), &t, plain_options());
    if (scene.taker.joinable()) scene.taker.join();
    ASSERT_EQ(scene.parks, 1);
    ASSERT_EQ(RuntimeInternals::parking_waits(*rt), 1u) << "the taker never met the claim";
    RuntimeInternals::set_park_hook(*rt, nullptr, nullptr);
    EXPECT_EQ(full.code(), Result::kOutOfMemory) << full.to_string();
    MR_EXPECT_OK(scene.taken) << "the result was back in place";
    if (!release_it) {
      EXPECT_EQ(scene.completion.ticket, kept.value);
      EXPECT_EQ(scene.completion.result, 4242u);
    }
    // Nothing left behind: the ring runs on, no result stays parked.
    ASSERT_NO_FATAL_FAILURE(publish_nops_and_wait_done(*rt, 8));
    ASSERT_NO_FATAL_FAILURE(expect_conserved_once_quiet(*rt));
    EXPECT_EQ(rt->stats().parked_results, 0u);
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

MEGARING_INSTANTIATE_BACKENDS(RingWaitTest);

}  // namespace
}  // namespace megaring_test
