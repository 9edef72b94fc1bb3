// SPDX-License-Identifier: Apache-2.0
// FENCE: it completes only after every earlier ticket, with their results
// and memory effects visible.

#include <cstdint>
#include <string>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

class RingFenceTest : public RingTest {};

TEST_P(RingFenceTest, FenceCompletesAfterEveryEarlierTicket) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(ring_config(1024), &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &ctr));
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    uint64_t before = 0;
    MR_ASSERT_OK(rt->read_buffer(ctr, 0, &before, 8));
    std::vector<Ticket> earlier;
    std::vector<Ticket> kept;
    uint64_t added = 0;
    Rng rng(round + 100);
    for (int i = 0; i < 300; ++i) {
      Ticket t;
      const bool keep = i % 5 == 0;
      SlotRequest r;
      if (i % 3 == 0) {
        r = ops::delay_ns(20'000 + rng.below(200'000));  // 20..220 us
      } else {
        const uint64_t d = 1 + rng.below(1000);
        added += d;
        r = ops::atomic_add(ctr, 0, d);
      }
      MR_ASSERT_OK(rt->publish(r, &t, keep ? kept_options() : plain_options()));
      earlier.push_back(t);
      if (keep) kept.push_back(t);
    }
    // The last slot before the fence is a long one, so the fence really waits.
    Ticket slow;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(5'000'000), &slow, kept_options()));
    earlier.push_back(slow);
    kept.push_back(slow);
    Ticket fence;
    MR_ASSERT_OK(rt->publish(ops::fence(), &fence, kept_options()));
    Completion fc;
    MR_ASSERT_OK(rt->wait(fence, &fc, scaled(seconds(20))));
    const uint64_t done_after_fence = rt->done_count();
    EXPECT_EQ(fc.status, MR_STATUS_OK);
    EXPECT_EQ(fc.result, fence.value) << "FENCE result is the DONE prefix it saw: its own ticket";
    // Every earlier kept ticket already has its final record: a zero-timeout
    // wait must succeed at once.
    for (const Ticket& t : kept) {
      Completion c;
      MR_EXPECT_OK(rt->wait(t, &c, Nanoseconds(0)));
      EXPECT_EQ(c.status, MR_STATUS_OK) << "ticket " << t.value;
    }
    // Every earlier ticket is below DONE_COUNT.
    EXPECT_GE(done_after_fence, fence.value)
        << "DONE_COUNT lags behind tickets the fence waited for";
    for (const Ticket& t : earlier) MR_EXPECT_OK(rt->wait_done(t, scaled(seconds(1))));
    // Every earlier ATOMIC_ADD is visible.
    uint64_t after = 0;
    MR_ASSERT_OK(rt->read_buffer(ctr, 0, &after, 8));
    EXPECT_EQ(after - before, added);
  }
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingFenceTest, FenceAtTheStartCompletesAtOnce) {
  Config cfg = base_config();
  cfg.initial_ticket = 777;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::fence(), &c));
  EXPECT_EQ(c.ticket, 777u);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 777u);
}

MEGARING_INSTANTIATE_BACKENDS(RingFenceTest);

}  // namespace
}  // namespace megaring_test
