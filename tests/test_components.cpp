// SPDX-License-Identifier: Apache-2.0
// The small shared components the host layers are built from, one behaviour
// a test: KeptResults (kept results that left the ring: the shared ring's
// and producers' parked results, tenants' kept tickets), StatusTally (the
// per-status counts of the reaper and of each tenant), RuntimeLink (how a
// layer above learns that its runtime ends), and Result/Status (the one
// result type: every code has a name).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <megaring/status.hpp>

#include "ring/kept_results.hpp"
#include "ring/status_tally.hpp"
#include "runtime/runtime_link.hpp"

namespace megaring_test {
namespace {

using megaring::Completion;
using megaring::detail::KeptResults;
using megaring::detail::RuntimeLink;
using megaring::detail::StatusCounts;
using megaring::detail::StatusTally;
using Look = KeptResults::Look;
using Clock = std::chrono::steady_clock;

Completion result_of(uint64_t ticket, uint64_t result) {
  Completion c;
  c.ticket = ticket;
  c.result = result;
  return c;
}

TEST(KeptResults, AResultIsTakenOnceThenNotPending) {
  KeptResults kept;
  kept.expect(3);
  Completion c;
  EXPECT_EQ(kept.take(3, &c), Look::kPending);
  kept.put(3, result_of(3, 33));
  EXPECT_EQ(kept.stored(), 1u);
  ASSERT_EQ(kept.take(3, &c), Look::kTaken);
  EXPECT_EQ(c.ticket, 3u);
  EXPECT_EQ(c.result, 33u);
  EXPECT_EQ(kept.take(3, &c), Look::kNotPending) << "read twice";
  EXPECT_EQ(kept.stored(), 0u);
}

// The pump may deliver before the publisher learns its ticket: announcing
// it afterwards must not make it pending again (a wait would never end).
TEST(KeptResults, AResultThatArrivedBeforeItWasExpectedStaysTakeable) {
  KeptResults kept;
  kept.put(8, result_of(8, 80));
  kept.expect(7, 3);  // tickets 7, 8, 9
  Completion c;
  EXPECT_EQ(kept.take(7, &c), Look::kPending);
  ASSERT_EQ(kept.take(8, &c), Look::kTaken);
  EXPECT_EQ(c.result, 80u);
  EXPECT_EQ(kept.take(8, &c), Look::kNotPending);
  EXPECT_EQ(kept.take(9, &c), Look::kPending);
}

TEST(KeptResults, AResultReleasedWhilePendingIsDroppedOnArrival) {
  KeptResults kept;
  kept.expect(5);
  EXPECT_TRUE(kept.release(5));
  EXPECT_FALSE(kept.release(5)) << "released twice";
  kept.put(5, result_of(5, 1));
  EXPECT_EQ(kept.stored(), 0u);
  Completion c;
  EXPECT_EQ(kept.take(5, &c), Look::kNotPending);
  // The next result of the same ticket number (another lap of a ring that
  // was never announced) is kept: the drop was for one arrival.
  kept.put(5, result_of(5, 2));
  EXPECT_EQ(kept.take(5, &c), Look::kTaken);
}

TEST(KeptResults, ReleaseTakesAStoredResultAndRefusesAnUnknownTicket) {
  KeptResults kept;
  EXPECT_FALSE(kept.release(1));
  kept.put(1, result_of(1, 1));
  EXPECT_TRUE(kept.release(1));
  EXPECT_EQ(kept.stored(), 0u);
}

TEST(KeptResults, AForgottenTicketIsNoLongerPending) {
  KeptResults kept;
  kept.expect(4);
  kept.forget(4);
  Completion c;
  EXPECT_EQ(kept.take(4, &c), Look::kNotPending);
  EXPECT_FALSE(kept.release(4));
}

TEST(KeptResults, AWaiterWakesOnArrivalAndOnGivingUp) {
  KeptResults kept;
  kept.expect(1);
  kept.expect(2);
  std::thread deliverer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    kept.put(1, result_of(1, 11));
  });
  Completion c;
  const auto far = Clock::now() + std::chrono::seconds(30);
  const auto t0 = Clock::now();
  // A step of 10 s: only the arrival can end this wait early.
  EXPECT_EQ(kept.take_waiting(1, &c, far, std::chrono::seconds(10), [] { return false; }),
            Look::kTaken);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5)) << "woken by the arrival, not the step";
  EXPECT_EQ(c.result, 11u);
  deliverer.join();
  std::atomic<bool> give_up{false};
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    give_up = true;
    kept.wake_all();
  });
  EXPECT_EQ(kept.take_waiting(2, &c, far, std::chrono::seconds(10), [&] { return give_up.load(); }),
            Look::kPending);
  closer.join();
  EXPECT_EQ(kept.take_waiting(2, &c, Clock::now() + std::chrono::milliseconds(5),
                              std::chrono::milliseconds(1), [] { return false; }),
            Look::kPending)
      << "the deadline ends it";
}

TEST(StatusTally, SharedAndSingleWriterCountsAgree) {
  const struct {
    uint32_t status, fault;
  } completions[] = {{MR_STATUS_OK, MR_FAULT_NONE},           {MR_STATUS_OK, MR_FAULT_NONE},
                     {MR_STATUS_FAULT, MR_FAULT_OUT_OF_BOUNDS}, {MR_STATUS_FAULT, MR_FAULT_BAD_HANDLE},
                     {MR_STATUS_FAULT, 60000},  // a code past the table counts as 0
                     {MR_STATUS_REVOKED, MR_FAULT_NONE},        {MR_STATUS_ABORTED, MR_FAULT_NONE}};
  StatusTally shared, single;
  StatusCounts pass;
  for (const auto& c : completions) {
    shared.count_shared(c.status, c.fault);
    pass.count(c.status, c.fault);
  }
  single.add_single_writer(pass);
  for (const StatusCounts& got : {shared.read(), single.read()}) {
    EXPECT_EQ(got.ok, 2u);
    EXPECT_EQ(got.faulted, 3u);
    EXPECT_EQ(got.revoked, 1u);
    EXPECT_EQ(got.aborted, 1u);
    EXPECT_EQ(got.faults_by_code[MR_FAULT_OUT_OF_BOUNDS], 1u);
    EXPECT_EQ(got.faults_by_code[MR_FAULT_BAD_HANDLE], 1u);
    EXPECT_EQ(got.faults_by_code[0], 1u);
  }
  shared.reset();
  EXPECT_EQ(shared.read().ok, 0u);
  EXPECT_EQ(shared.read().faults_by_code[MR_FAULT_BAD_HANDLE], 0u);
}

struct Layer {
  int ends = 0;
  void on_end() { ++ends; }
  void throws() { throw std::runtime_error("a hook that fails"); }
};

TEST(RuntimeLink, EachLivingOwnersHookRunsOnceAtTheEnd) {
  RuntimeLink link;
  auto a = std::make_shared<Layer>();
  auto b = std::make_shared<Layer>();
  auto gone = std::make_shared<Layer>();
  auto failing = std::make_shared<Layer>();
  link.on_end(a, &Layer::on_end);
  link.on_end(failing, &Layer::throws);
  link.on_end(gone, &Layer::on_end);
  link.on_end(b, &Layer::on_end);
  std::weak_ptr<Layer> watch = gone;
  gone.reset();  // its owner went first: its hook is skipped
  EXPECT_TRUE(watch.expired()) << "the link keeps no owner alive";
  link.end();
  EXPECT_EQ(a->ends, 1);
  EXPECT_EQ(b->ends, 1) << "a throwing hook stops no other";
  link.end();
  EXPECT_EQ(a->ends, 1) << "once";
}

// One result type for the whole API: every code, the tenant ones included,
// has a name of its own; a value past the last one reads as unknown.
TEST(ResultTest, EveryResultHasItsOwnName) {
  constexpr int kLast = static_cast<int>(megaring::Result::kInUse);
  std::set<std::string> names;
  for (int r = 0; r <= kLast; ++r) {
    const std::string name = megaring::result_string(static_cast<megaring::Result>(r));
    EXPECT_EQ(name.find("unknown"), std::string::npos) << "result " << r;
    EXPECT_TRUE(names.insert(name).second) << "result " << r << " repeats \"" << name << "\"";
  }
  EXPECT_STREQ(megaring::result_string(static_cast<megaring::Result>(kLast + 1)), "unknown result")
      << "a code past kInUse: name it and extend this test";
  const megaring::Status st(megaring::Result::kBackpressure, "4 slots outstanding", 4, 8);
  EXPECT_EQ(st.to_string(), "backpressure: 4 slots outstanding");
  EXPECT_EQ(st.value(), 4u);
  EXPECT_EQ(st.limit(), 8u);
  EXPECT_EQ(megaring::Status().value(), 0u);
  EXPECT_EQ(megaring::Status(megaring::Result::kTimeout, "late").limit(), 0u);
}

}  // namespace
}  // namespace megaring_test
