// SPDX-License-Identifier: Apache-2.0
// Runtime::suspend / resume and the rest of the lifecycle (the suite is
// instantiated in test_suspend_resume.cpp):
//   - control operations while suspended apply at once, and the slots after
//     resume run under them; after a resume they wait for the executors
//     again;
//   - shutdown and abort of a suspended (or suspending) runtime end every
//     ticket; destroying a suspended runtime does not hang.
#include <vector>

#include "suspend_fixture.hpp"

namespace megaring_test {
namespace suspend_test {

// A control operation while suspended applies at once (no executor runs to
// park), and the slots after resume run under it.
TEST_P(SuspendTest, ControlOperationsWhileSuspendedApplyAtOnce) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/1, 1024, /*with_tenant=*/true));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt_->open_producer(&producer));
  auto read_grants = [&](Ticket* t) {
    SlotRequest r;
    r.opcode = kOpReadGrants;
    MR_EXPECT_OK(tenant_.publish_slot(r, t, tenant_kept()));
  };
  auto result_of = [&](const Ticket& t) {
    Completion c;
    c.status = 0xFFFF;
    MR_EXPECT_OK(tenant_.wait(t, &c, scaled(seconds(30))));
    EXPECT_EQ(c.status, MR_STATUS_OK);
    return c.result;
  };
  Ticket before;
  read_grants(&before);
  EXPECT_EQ(result_of(before), kReadA);
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  Ticket queued;
  read_grants(&queued);  // published under A, runs after the change
  ControlStats s0;
  MR_ASSERT_OK(rt_->control_stats(&s0));
  MR_ASSERT_OK(tenant_.set_grants(kGrantsB));
  MR_ASSERT_OK(producer->set_priority(Priority::kBulk));
  ControlStats s1;
  MR_ASSERT_OK(rt_->control_stats(&s1));
  EXPECT_EQ(s1.operations, s0.operations + 2);
  EXPECT_EQ(s1.cancelled, s0.cancelled);
  EXPECT_EQ(producer->priority(), Priority::kBulk);
  MR_ASSERT_OK(rt_->resume());
  EXPECT_EQ(result_of(queued), kReadB);
  Ticket after;
  read_grants(&after);
  EXPECT_EQ(result_of(after), kReadB);
  // And operations after the resume still find every executor.
  MR_ASSERT_OK(tenant_.set_grants(kGrantsA));
  read_grants(&after);
  EXPECT_EQ(result_of(after), kReadA);
  Completion c;
  MR_ASSERT_OK(producer->call(nop(0xD0), &c, scaled(seconds(30))));
  EXPECT_EQ(c.result, 0xD0u);
}

// After a resume, a control operation waits for the executors again (the
// relaunch resets their acknowledgements): one held by a gate slot makes it
// time out, with the tables unchanged.
TEST_P(SuspendTest, ControlOperationsAfterResumeWaitForTheExecutors) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1, 0, 1024, /*with_tenant=*/true, milliseconds(100)));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  MR_ASSERT_OK(rt_->resume());
  Ticket held;
  MR_ASSERT_OK(rt_->publish(gate(), &held, kept()));
  ASSERT_NO_FATAL_FAILURE(wait_until_held(held));
  MR_EXPECT_RESULT(tenant_.set_grants(kGrantsB), Result::kTimeout);
  set_gate(cuda(), 1);
  EXPECT_EQ(wait_kept(held).status, MR_STATUS_OK);
  SlotRequest r;
  r.opcode = kOpReadGrants;
  Ticket t;
  MR_ASSERT_OK(tenant_.publish_slot(r, &t, tenant_kept()));
  Completion c;
  MR_ASSERT_OK(tenant_.wait(t, &c, scaled(seconds(30))));
  EXPECT_EQ(c.result, kReadA) << "the cancelled operation left the tables unchanged";
}

TEST_P(SuspendTest, ShutdownOfASuspendedRuntimeDrainsEverything) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/1));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt_->open_producer(&producer));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  std::vector<Ticket> ring0, ring1;
  for (uint64_t i = 0; i < 50; ++i) {
    Ticket t;
    MR_ASSERT_OK(rt_->publish(nop(0xE000 + i), &t, kept()));
    ring0.push_back(t);
    MR_ASSERT_OK(producer->publish(nop(0xF000 + i), &t, kept()));
    ring1.push_back(t);
  }
  MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  for (uint64_t i = 0; i < ring0.size(); ++i) {
    const Completion c = wait_kept(ring0[i]);
    EXPECT_EQ(c.status, MR_STATUS_OK);
    EXPECT_EQ(c.result, 0xE000u + i);
    Completion c1;
    MR_EXPECT_OK(producer->wait(ring1[i], &c1, scaled(seconds(30))));
    EXPECT_EQ(c1.status, MR_STATUS_OK);
    EXPECT_EQ(c1.result, 0xF000u + i);
  }
}

TEST_P(SuspendTest, ShutdownOfASuspendingRuntimeDrainsEverything) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  Ticket held, queued;
  MR_ASSERT_OK(rt_->publish(gate(), &held, kept()));
  ASSERT_NO_FATAL_FAILURE(wait_until_held(held));
  MR_EXPECT_RESULT(rt_->suspend(milliseconds(10)), Result::kTimeout);
  MR_ASSERT_OK(rt_->publish(nop(0x51), &queued, kept()));
  std::thread opener([this] {
    std::this_thread::sleep_for(milliseconds(30));
    set_gate(cuda(), 1);
  });
  MR_EXPECT_OK(rt_->shutdown(scaled(seconds(30))));
  opener.join();
  EXPECT_EQ(wait_kept(held).status, MR_STATUS_OK);
  const Completion c = wait_kept(queued);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0x51u);
}

TEST_P(SuspendTest, AbortOfASuspendedRuntimeEndsEveryTicket) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/1));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt_->open_producer(&producer));
  Completion warm;
  MR_ASSERT_OK(rt_->call(nop(7), &warm, scaled(seconds(30))));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  Ticket t0, t1;
  MR_ASSERT_OK(rt_->publish(nop(0x61), &t0, kept()));
  MR_ASSERT_OK(producer->publish(nop(0x62), &t1, kept()));
  MR_ASSERT_OK(rt_->abort());
  const Completion c0 = wait_kept(t0);
  EXPECT_EQ(c0.status, MR_STATUS_ABORTED);
  Completion c1;
  c1.status = 0xFFFF;
  const Status st = producer->wait(t1, &c1, scaled(seconds(30)));
  EXPECT_TRUE(st.is_ok() || st.code() == Result::kAborted) << st.to_string();
  if (st) EXPECT_EQ(c1.status, MR_STATUS_ABORTED);
  MR_EXPECT_RESULT(rt_->resume(), Result::kAborted);
}

TEST_P(SuspendTest, AbortOfASuspendingRuntimeEndsEveryTicket) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  Ticket held, queued;
  MR_ASSERT_OK(rt_->publish(gate(), &held, kept()));
  ASSERT_NO_FATAL_FAILURE(wait_until_held(held));
  MR_EXPECT_RESULT(rt_->suspend(milliseconds(10)), Result::kTimeout);
  MR_ASSERT_OK(rt_->publish(nop(0x71), &queued, kept()));
  MR_ASSERT_OK(rt_->abort());  // the gate slot leaves on the abort
  const Completion held_c = wait_kept(held);
  EXPECT_TRUE(held_c.status == MR_STATUS_ABORTED || held_c.status == MR_STATUS_OK) << held_c.status;
  EXPECT_EQ(wait_kept(queued).status, MR_STATUS_ABORTED);
}

TEST_P(SuspendTest, DestroyingASuspendedRuntimeDoesNotHang) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/1));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt_->open_producer(&producer));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  Ticket t;
  MR_ASSERT_OK(rt_->publish(nop(1), &t));
  MR_ASSERT_OK(producer->publish(nop(2), &t));
  producer.reset();
  rt_.reset();  // the watchdog turns a hang into a failure
}

}  // namespace suspend_test
}  // namespace megaring_test
