// SPDX-License-Identifier: Apache-2.0
// Ring priorities, the review's findings (slot_abi.h, "Priorities"), each at
// the fetcher on hand-filled rings (priority_fetch_fixture.hpp): a due
// lower class without room that held back critical rings; an idle critical
// ring that kept throttling; credit earned while idle.
#include <algorithm>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <megaring/consumer/consumer_core.cuh>

#include "priority_fetch_fixture.hpp"

namespace megaring_test {
namespace {

namespace d = megaring::detail;

// Finding 1: a bulk ring whose credit is due but whose round would stage
// nothing (its slots already fill its part of the queue) must not keep the
// pick from a READY critical ring with room: it used to be picked at every
// poll, staging nothing and keeping its credit, until the completer drained
// the queue. The completer passes nothing here.
TEST_F(PriorityFetch, ADueLowerClassWithoutRoomDoesNotHoldBackACriticalRing) {
  p_.capacity = 1024;
  p_.mask = 1023;
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(1, 0, 1000);
  publish(2, 0, 300);
  const auto first = fetch(300, 40, /*follow=*/false);
  ASSERT_EQ(first.size(), 300u);
  EXPECT_EQ(std::count(first.begin(), first.end(), 2u), 300) << "critical first";
  // Bulk's credit is due (300 critical slots); its turn stages its part of
  // the queue, min(128, 1024 / 4) slots, and no more.
  const auto bulk = fetch(400, 20, false);
  EXPECT_EQ(bulk.size(), size_t{MR_PRIORITY_BULK_BACKLOG});
  EXPECT_EQ(std::count(bulk.begin(), bulk.end(), 1u), long{MR_PRIORITY_BULK_BACKLOG});
  // More critical slots: bulk has no room, and its credit comes due again.
  publish(2, 300, 300);
  const auto second = fetch(300, 100, false);
  ASSERT_EQ(second.size(), 300u);
  EXPECT_EQ(std::count(second.begin(), second.end(), 2u), 300);
  ASSERT_EQ(cursors_.schedule.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS) << "bulk is due";
  ASSERT_EQ(st_.seq, 728u);
  // Due, READY and without room: the critical ring still gets the picks.
  publish(2, 600, 100);
  const auto third = fetch(100, 200, false);
  EXPECT_EQ(third.size(), 100u) << "critical slots not staged while 296 places were free";
  EXPECT_EQ(std::count(third.begin(), third.end(), 2u), static_cast<long>(third.size()));
  // Once the completer passes bulk's slots, its credit (kept) gives it the
  // next turn, ahead of more critical slots.
  publish(2, 700, 200);
  const auto after = fetch(1, 20, /*follow=*/true);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0], 1u) << "the due bulk turn comes first once it has room";
}

// Finding 2: throttling ends MR_PRIORITY_CRITICAL_POLLS picks of a lower
// class with room after the last poll that found a critical ring READY: a
// bulk flood beside a critical ring that went idle gets full rounds (256
// here) again. Before, any ring of class critical,
// READY or not, throttled for as long as it had the class.
TEST_F(PriorityFetch, AnIdleCriticalRingStopsThrottlingAfterItsPolls) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(2, 0, 1);
  constexpr uint64_t kBulk = 20000;  // topped up as it is staged
  uint64_t published = 0;
  std::vector<uint64_t> rounds;  // slots staged by each round
  for (int i = 0; i < 400 && st_.seq < kBulk + 1; ++i) {
    const uint64_t room = d::fetched_end(st_, 1) + kCapacity;
    if (published < room) {
      const uint64_t n = std::min(room, kBulk) - published;
      publish(1, published, n);
      published += n;
    }
    priv_.done_cursor = st_.seq;
    const uint64_t before = st_.seq;
    ASSERT_NE(d::fetch_round(p_, st_), d::Progress::kExit);
    rounds.push_back(st_.seq - before);
  }
  EXPECT_EQ(st_.seq, kBulk + 1);
  const auto full = std::find(rounds.begin(), rounds.end(), uint64_t{256});
  ASSERT_NE(full, rounds.end()) << "bulk was throttled to the end";
  // Before it: the critical slot and throttled bulk rounds of at most 128,
  // for at least MR_PRIORITY_CRITICAL_POLLS turns of kRingTurnRounds rounds.
  const auto throttled = static_cast<uint64_t>(full - rounds.begin());
  EXPECT_GE(throttled, uint64_t{MR_PRIORITY_CRITICAL_POLLS} * d::kRingTurnRounds);
  EXPECT_LE(throttled, uint64_t{MR_PRIORITY_CRITICAL_POLLS + 2} * (d::kRingTurnRounds + 1) + 4);
  EXPECT_LE(*std::max_element(rounds.begin(), full), uint64_t{MR_PRIORITY_BULK_BACKLOG});
}

// ... and a critical ring that never was READY (open, idle) throttles
// nothing: a bulk flood fills the queue.
TEST_F(PriorityFetch, ACriticalRingThatWasNeverReadyDoesNotThrottle) {
  p_.capacity = 64;
  p_.mask = 63;
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(1, 0, 60);
  (void)fetch(60, 10, /*follow=*/false);
  EXPECT_EQ(st_.seq, 60u) << "a bulk flood beside an open, idle critical ring fills the queue";
}

// ... while a stalled queue keeps the throttle on (a lower class's pick
// without room does not count): once the completer moves, bulk still
// stages only its part of the queue, so a critical slot that comes after
// the stall is staged behind at most that.
TEST_F(PriorityFetch, AStalledQueueKeepsTheThrottle) {
  p_.capacity = 64;
  p_.mask = 63;
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(2, 0, 1);
  publish(1, 0, 60);
  (void)fetch(61, 40 * static_cast<int>(MR_PRIORITY_CRITICAL_POLLS) * (d::kRingTurnRounds + 1),
              /*follow=*/false);
  EXPECT_EQ(st_.seq, 17u) << "the critical slot, then 16 bulk slots (64 / 4)";
  priv_.done_cursor = st_.seq;  // the completer catches up once
  (void)fetch(61, 20, false);
  EXPECT_EQ(st_.seq, 33u) << "16 more, no more";
}

// ... and a critical slot waiting to run keeps it on: bulk slots ahead of
// it complete one by one, so bulk has room again and again, but those picks
// do not count until the completer passes the critical slot (a critical
// producer waiting for its call would otherwise find the throttle gone,
// and its next slot behind a full queue).
TEST_F(PriorityFetch, AQueuedCriticalSlotKeepsTheThrottle) {
  p_.capacity = 1024;
  p_.mask = 1023;
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(2, 0, 1);
  ASSERT_EQ(fetch(1, 10).size(), 1u);  // staged and passed: throttled
  publish(1, 0, 1000);
  (void)fetch(128, 20, /*follow=*/false);
  ASSERT_EQ(st_.seq, 129u) << "the first critical slot, then 128 bulk slots";
  publish(2, 1, 1);
  const auto critical = fetch(1, 20, false);
  ASSERT_EQ(critical.size(), 1u);
  ASSERT_EQ(critical[0], 2u);
  const uint64_t critical_seq = st_.seq - 1;  // 129
  // The completer passes one slot a round, up to the critical one: bulk
  // gets room a slot at a time, at many polls.
  std::vector<uint32_t> order;
  for (int i = 0; i < 400; ++i) {
    if (priv_.done_cursor < critical_seq) ++priv_.done_cursor;
    step(&order, /*follow=*/false);
  }
  EXPECT_TRUE(d::critical_recent(cursors_.schedule));
  EXPECT_LE(st_.seq, critical_seq + 1 + MR_PRIORITY_BULK_BACKLOG)
      << "bulk filled the queue behind a waiting critical slot";
}

// Finding 3: a class earns no credit while none of its rings is READY.
// After a long critical run with the other classes idle, a critical backlog
// published together with fresh normal and bulk slots goes first (before,
// both lower classes had full credit and went ahead of it).
TEST_F(PriorityFetch, AnIdleClassEarnsNoCredit) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_NORMAL;
  priv_.ring_class[3] = MR_RING_CLASS_CRITICAL;
  publish(3, 0, 2000);
  ASSERT_EQ(fetch(2000, 100).size(), 2000u);
  std::vector<uint32_t> idle;
  for (int i = 0; i < 4; ++i) step(&idle);  // idle polls
  ASSERT_TRUE(idle.empty());
  publish(3, 2000, 200);
  publish(2, 0, 100);
  publish(1, 0, 100);
  const auto order = fetch(400, 100);
  ASSERT_EQ(order.size(), 400u);
  for (size_t i = 0; i < 200; ++i) ASSERT_EQ(order[i], 3u) << "seq " << i << ": a lower class went first";
}

// ... nor while its rings turn READY in the middle of a higher class's
// turn: credit counts only slots staged after a poll found it waiting.
TEST_F(PriorityFetch, CreditCountsFromThePollThatFoundTheClassWaiting) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[3] = MR_RING_CLASS_CRITICAL;
  publish(3, 0, 8000);  // more than a turn (kRingTurnRoundsAlone rounds of 256)
  ASSERT_GE(fetch(300, 10).size(), 300u);  // a critical turn under way
  publish(1, 0, 10);
  uint64_t found_at = ~0ull;  // the sequence after the round whose poll found bulk waiting
  std::vector<uint32_t> ignored;
  for (int i = 0; i < 40 && found_at == ~0ull; ++i) {
    step(&ignored);
    if ((cursors_.schedule.waiting >> d::kRankBulk) & 1u) found_at = st_.seq;
  }
  ASSERT_EQ(std::count(ignored.begin(), ignored.end(), 1u), 0);
  ASSERT_NE(found_at, ~0ull) << "no poll found the bulk ring";
  const uint64_t before = st_.seq;
  const auto order = fetch(8010 - before, 200);
  ASSERT_EQ(order.size(), 8010u - before);
  const uint64_t first_bulk =
      before + static_cast<uint64_t>(std::find(order.begin(), order.end(), 1u) - order.begin());
  EXPECT_GE(first_bulk, found_at + MR_PRIORITY_CREDIT_SLOTS) << "credit earned before it waited";
  // ... and not much later: the credit, then the rest of a turn.
  EXPECT_LE(first_bulk, found_at + MR_PRIORITY_CREDIT_SLOTS + (d::kRingTurnRounds + 1) * 256u);
}

}  // namespace
}  // namespace megaring_test
