// SPDX-License-Identifier: Apache-2.0
// Ring priorities at the fetcher (slot_abi.h, "Priorities";
// consumer/ring_priority.cuh): the pick arithmetic alone, then fetch_round as
// the CPU backend's I/O thread runs it, on rings filled by hand
// (priority_fetch_fixture.hpp), checking the staged order against the
// documented bounds by counting. The review's findings: test_priority_findings.cpp.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <megaring/consumer/consumer_core.cuh>

#include "priority_fetch_fixture.hpp"

namespace megaring_test {
namespace {

namespace d = megaring::detail;

TEST(PriorityArithmetic, AClassWordIsARankAndAnythingElseIsNormal) {
  EXPECT_EQ(d::ring_class_rank(MR_RING_CLASS_CRITICAL), d::kRankCritical);
  EXPECT_EQ(d::ring_class_rank(MR_RING_CLASS_NORMAL), d::kRankNormal);
  EXPECT_EQ(d::ring_class_rank(MR_RING_CLASS_BULK), d::kRankBulk);
  EXPECT_EQ(d::ring_class_rank(3), d::kRankNormal);
  EXPECT_EQ(d::ring_class_rank(0xFFFFFFFFu), d::kRankNormal);
}

TEST(PriorityArithmetic, TheHighestReadyRankGoesFirstUntilALowerOnesCreditIsFull) {
  d::RingSchedule s;
  d::init_ring_schedule(s, 0);
  const auto charge = [](d::RingSchedule& sched, uint32_t rank, uint32_t n) {
    d::charge_staged(sched, rank, n, 0, 0);
  };
  constexpr uint32_t kAllRoom = 7;
  const uint32_t all[3] = {1, 2, 4};
  d::note_poll(s, all);
  EXPECT_EQ(d::pick_rank(all, s, kAllRoom), d::kRankCritical);
  const uint32_t lower[3] = {0, 2, 4};
  EXPECT_EQ(d::pick_rank(lower, s, kAllRoom), d::kRankNormal);
  const uint32_t none[3] = {0, 0, 0};
  EXPECT_EQ(d::pick_rank(none, s, kAllRoom), d::kNoRank);
  charge(s, d::kRankCritical, MR_PRIORITY_CREDIT_SLOTS - 1);
  EXPECT_EQ(d::pick_rank(all, s, kAllRoom), d::kRankCritical) << "one slot short of the credit";
  charge(s, d::kRankCritical, 1);
  EXPECT_EQ(d::pick_rank(all, s, kAllRoom), d::kRankBulk) << "bulk's credit is full, and bulk goes first";
  charge(s, d::kRankBulk, 1);
  EXPECT_EQ(s.credit[d::kRankBulk], 0u);
  EXPECT_EQ(s.credit[d::kRankNormal], MR_PRIORITY_CREDIT_SLOTS) << "bulk slots do not pay normal";
  EXPECT_EQ(d::pick_rank(all, s, kAllRoom), d::kRankNormal);
  charge(s, d::kRankNormal, 0);
  EXPECT_EQ(s.credit[d::kRankNormal], MR_PRIORITY_CREDIT_SLOTS) << "nothing staged, nothing paid";
  charge(s, d::kRankCritical, 0xFFFFFFFFu);
  EXPECT_EQ(s.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS) << "saturates, never wraps";
  charge(s, d::kNoRank, 5);  // not a rank: ignored
  EXPECT_EQ(s.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS);
  // A due rank without room is passed over while another READY rank has
  // room, and keeps its credit; with no rank able, the highest READY one.
  const uint32_t no_bulk_room = kAllRoom & ~(1u << d::kRankBulk);
  EXPECT_EQ(d::pick_rank(all, s, no_bulk_room), d::kRankNormal);
  EXPECT_EQ(d::pick_rank(all, s, 1u << d::kRankCritical), d::kRankCritical);
  EXPECT_EQ(d::pick_rank(lower, s, 1u << d::kRankCritical), d::kRankNormal) << "nobody READY has room";
  EXPECT_EQ(d::pick_rank(all, s, 0), d::kRankCritical) << "the queue is full";
  EXPECT_EQ(s.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS);
  // A poll that finds no normal ring READY: normal's credit is gone, and it
  // earns none until a poll finds it waiting again.
  const uint32_t no_normal[3] = {1, 0, 4};
  d::note_poll(s, no_normal);
  EXPECT_EQ(s.credit[d::kRankNormal], 0u);
  EXPECT_EQ(s.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS);
  charge(s, d::kRankCritical, MR_PRIORITY_CREDIT_SLOTS);
  EXPECT_EQ(s.credit[d::kRankNormal], 0u) << "credit earned while idle";
  d::note_poll(s, all);
  charge(s, d::kRankCritical, 3);
  EXPECT_EQ(s.credit[d::kRankNormal], 3u);
}

// A poll that finds a critical ring READY throttles the lower classes for
// MR_PRIORITY_CRITICAL_POLLS picks of a lower class with room; idle polls
// and picks of a class without room do not count.
TEST(PriorityArithmetic, ThrottlingLastsMrPriorityCriticalPollsAfterACriticalRingWasReady) {
  d::RingSchedule s;
  d::init_ring_schedule(s, 0);
  EXPECT_FALSE(d::critical_recent(s)) << "no critical ring was ever READY";
  const uint32_t critical[3] = {1, 0, 4};
  const uint32_t bulk[3] = {0, 0, 4};
  const uint32_t none[3] = {0, 0, 0};
  d::note_poll(s, critical);
  d::note_pick(s, critical, d::kRankCritical, 7, 0);
  EXPECT_TRUE(d::critical_recent(s));
  for (uint32_t i = 0; i + 1 < MR_PRIORITY_CRITICAL_POLLS; ++i) {
    d::note_poll(s, bulk);
    d::note_pick(s, bulk, d::kRankBulk, 7, 0);
    EXPECT_TRUE(d::critical_recent(s)) << "poll " << i;
    d::note_poll(s, none);  // idle
    d::note_pick(s, none, d::kNoRank, 7, 0);
    d::note_poll(s, bulk);  // bulk without room
    d::note_pick(s, bulk, d::kRankBulk, 1, 0);
    EXPECT_TRUE(d::critical_recent(s)) << "poll " << i;
  }
  d::note_poll(s, bulk);
  d::note_pick(s, bulk, d::kRankBulk, 7, 0);
  EXPECT_FALSE(d::critical_recent(s));
  d::note_poll(s, bulk);
  d::note_pick(s, bulk, d::kRankBulk, 7, 0);
  EXPECT_FALSE(d::critical_recent(s));
  d::note_poll(s, critical);
  EXPECT_TRUE(d::critical_recent(s));
  // While a staged critical slot waits to run (the completer is short of
  // critical_end), lower-class picks do not count.
  d::charge_staged(s, d::kRankCritical, 1, 101, 50);
  for (uint32_t i = 0; i < 2 * MR_PRIORITY_CRITICAL_POLLS; ++i) {
    d::note_poll(s, bulk);
    d::note_pick(s, bulk, d::kRankBulk, 7, 100);
  }
  EXPECT_TRUE(d::critical_recent(s));
  for (uint32_t i = 0; i < MR_PRIORITY_CRITICAL_POLLS; ++i) {
    d::note_poll(s, bulk);
    d::note_pick(s, bulk, d::kRankBulk, 7, 101);
  }
  EXPECT_FALSE(d::critical_recent(s));
}

// While throttled, a lower rank's room is bounded by its own slots in the
// queue (normal and bulk together below capacity / 2, bulk below
// min(128, capacity / 4)), not by the critical slots there.
TEST(PriorityArithmetic, ALowerRanksRoomCountsTheLowerSlotsInTheQueue) {
  d::RingSchedule s;
  d::init_ring_schedule(s, 1000);
  constexpr uint32_t kCap = 1024;
  EXPECT_EQ(d::rank_room(s, d::kRankBulk, 1300, 1000, kCap), 724u) << "unthrottled: the queue's room";
  const uint32_t critical[3] = {1, 0, 0};
  d::note_poll(s, critical);
  ASSERT_TRUE(d::critical_recent(s));
  EXPECT_EQ(d::rank_room(s, d::kRankCritical, 1300, 1000, kCap), 724u);
  EXPECT_EQ(d::rank_room(s, d::kRankBulk, 1300, 1000, kCap), 128u) << "300 critical slots queued";
  EXPECT_EQ(d::rank_room(s, d::kRankNormal, 1300, 1000, kCap), 512u);
  EXPECT_EQ(d::rank_room(s, d::kRankBulk, 2024, 1000, kCap), 0u) << "the queue is full";
  d::charge_staged(s, d::kRankBulk, 100, 1400, 1000);  // seq 1300 .. 1399
  EXPECT_EQ(d::group_queued(s, d::kGroupBulk, 1000), 100u);
  EXPECT_EQ(d::rank_room(s, d::kRankBulk, 1400, 1000, kCap), 28u);
  EXPECT_EQ(d::rank_room(s, d::kRankNormal, 1400, 1000, kCap), 412u);
  d::charge_staged(s, d::kRankNormal, 400, 1800, 1000);
  EXPECT_EQ(d::rank_room(s, d::kRankNormal, 1800, 1000, kCap), 12u);
  EXPECT_EQ(d::rank_room(s, d::kRankBulk, 1800, 1000, kCap), 12u) << "bulk counts against normal's limit too";
  // The completer passes the bulk slots: 400 normal slots are left.
  EXPECT_EQ(d::group_queued(s, d::kGroupBulk, 1400), 0u);
  EXPECT_EQ(d::group_queued(s, d::kGroupLower, 1400), 400u);
  EXPECT_EQ(d::rank_room(s, d::kRankBulk, 1800, 1400, kCap), 112u);
  EXPECT_EQ(d::group_queued(s, d::kGroupLower, 1700), 100u) << "no more than the queue past the cursor";
  EXPECT_EQ(d::group_queued(s, d::kGroupLower, 1800), 0u);
  EXPECT_EQ(d::group_queued(s, d::kGroupLower, 5000), 0u);
  // A count restarts once the completer has passed its group's slots.
  d::charge_staged(s, d::kRankBulk, 10, 2010, 1900);
  EXPECT_EQ(d::group_queued(s, d::kGroupBulk, 1900), 10u);
  EXPECT_EQ(d::group_queued(s, d::kGroupLower, 1900), 10u);
  EXPECT_EQ(d::group_limit(d::kGroupLower, 1), 1u);
  EXPECT_EQ(d::group_limit(d::kGroupBulk, 2), 1u);
  EXPECT_EQ(d::group_limit(d::kGroupBulk, 64), 16u);
  EXPECT_EQ(d::group_limit(d::kGroupBulk, 1u << 20), MR_PRIORITY_BULK_BACKLOG);
  EXPECT_EQ(d::group_limit(d::kGroupLower, 1u << 20), 1u << 19);
  EXPECT_EQ(d::ranks_with_room(s, 2010, 1900, kCap), 7u);
  d::charge_staged(s, d::kRankBulk, 118, 2128, 1900);
  EXPECT_EQ(d::ranks_with_room(s, 2128, 1900, kCap), 3u) << "bulk at its limit";
  EXPECT_EQ(d::ranks_with_room(s, 2924, 1900, kCap), 0u) << "the queue is full";
}

// Ring 1 (bulk) and ring 2 (critical) are READY together: the poll takes the
// critical ring, and it keeps being taken until it is empty. Round robin
// (the policy before classes) took ring 1 first, for a whole turn.
TEST_F(PriorityFetch, ACriticalRingIsStagedBeforeABulkBacklog) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(1, 0, 2000);
  publish(2, 0, 300);
  const auto order = fetch(2300, 200);
  ASSERT_EQ(order.size(), 2300u);
  const auto last_critical = std::find(order.rbegin(), order.rend(), 2u);
  const auto bulk_before = std::count(last_critical, order.rend(), 1u);
  EXPECT_EQ(bulk_before, 0) << "bulk slots staged before the last critical one";
}

// Three classes READY together, each below the credit: critical, then
// normal, then bulk, each whole.
TEST_F(PriorityFetch, ClassesAreStagedHighestFirst) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_NORMAL;
  priv_.ring_class[3] = MR_RING_CLASS_CRITICAL;
  for (uint32_t r = 1; r < kRings; ++r) publish(r, 0, 200);
  const auto order = fetch(600, 200);
  ASSERT_EQ(order.size(), 600u);
  for (size_t i = 0; i < order.size(); ++i) {
    const uint32_t expected = i < 200 ? 3u : i < 400 ? 2u : 1u;
    ASSERT_EQ(order[i], expected) << "seq " << i;
  }
}

// A critical flood (ring 3) beside a normal (ring 2) and a bulk ring (ring
// 1) that stay READY: the lower classes are staged while the flood lasts,
// with at most the documented number of other slots between two of theirs:
// bulk MR_PRIORITY_CREDIT_SLOTS + one turn, normal that and a bulk turn.
TEST_F(PriorityFetch, LowerClassesGetTheirShareOfACriticalFlood) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_NORMAL;
  priv_.ring_class[3] = MR_RING_CLASS_CRITICAL;
  publish(3, 0, 8000);
  publish(2, 0, 600);
  publish(1, 0, 600);
  const auto order = fetch(9200, 2000);
  ASSERT_EQ(order.size(), 9200u);
  EXPECT_LE(widest_gap(order, 1), MR_PRIORITY_CREDIT_SLOTS + kTurnSlots);
  EXPECT_LE(widest_gap(order, 2), MR_PRIORITY_CREDIT_SLOTS + 2 * kTurnSlots);
  // Both lower classes done while the flood still had slots to stage.
  const auto last_of = [&](uint32_t ring) {
    return order.size() - 1 - static_cast<size_t>(std::find(order.rbegin(), order.rend(), ring) - order.rbegin());
  };
  EXPECT_LT(last_of(1), last_of(3));
  EXPECT_LT(last_of(2), last_of(3));
}

// While a critical ring (ring 2) was READY at a recent poll, a bulk ring's
// rounds stage only while the staged queue holds fewer than
// min(128, capacity / 4) bulk slots, a normal ring's while it holds fewer
// than capacity / 2 lower-class slots; critical slots there do not count.
// The completer passes nothing (a stall: the throttle stays on), then all.
TEST_F(PriorityFetch, ALowerClassFillsTheStagedQueuePartWayWhileARingIsCritical) {
  p_.capacity = 64;
  p_.mask = 63;
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(1, 0, 60);
  publish(2, 0, 1);
  (void)fetch(64, 12, /*follow=*/false);
  EXPECT_EQ(st_.seq, 17u) << "the critical slot, then 16 bulk slots: a quarter of the queue";
  EXPECT_EQ(next_[2], 1u);
  priv_.ring_class[1] = MR_RING_CLASS_NORMAL;
  publish(2, 1, 1);
  (void)fetch(64, 20, false);
  EXPECT_EQ(st_.seq, 34u) << "a critical slot, then normal to 32 lower-class slots: half of it";
  EXPECT_EQ(next_[2], 2u);
  priv_.ring_class[2] = MR_RING_CLASS_NORMAL;  // no ring is critical now
  (void)fetch(64, 40, false);
  EXPECT_EQ(st_.seq, 34u) << "stalled: still throttled";
  priv_.done_cursor = st_.seq;
  (void)fetch(64, 40 * static_cast<int>(MR_PRIORITY_CRITICAL_POLLS), false);
  EXPECT_EQ(st_.seq, 62u) << "the rest";
}

// A critical ring that becomes READY while a bulk ring's backlog is being
// staged waits for the rest of that ring's turn, not for its backlog (the
// critical ring was READY recently: slot_abi.h, "Priorities").
TEST_F(PriorityFetch, ACriticalSlotWaitsAtMostATurnForABulkBacklog) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(2, 0, 1);  // READY once: the lower classes are throttled
  publish(1, 0, 6000);
  (void)fetch(11, 4);  // bulk's turn under way
  ASSERT_EQ(next_[2], 1u);
  const uint64_t staged_before = st_.seq;
  publish(2, 1, 1);
  uint64_t critical_at = ~0ull;
  for (int i = 0; i < 40 && critical_at == ~0ull; ++i) {
    priv_.done_cursor = st_.seq;
    const uint64_t before = st_.seq;
    (void)d::fetch_round(p_, st_);
    for (uint64_t q = before; q < st_.seq; ++q)
      if ((staged_[q & p_.mask].reserved & (MR_MAX_RINGS - 1)) == 2) critical_at = q;
  }
  ASSERT_NE(critical_at, ~0ull) << "the critical slot was never staged";
  // The bulk ring's turn is kRingTurnRounds even though the poll found it
  // alone (a ring is critical), and its rounds fill the queue to 128 at most.
  EXPECT_LE(critical_at - staged_before, (d::kRingTurnRounds + 1) * uint64_t{MR_PRIORITY_BULK_BACKLOG});
}

}  // namespace
}  // namespace megaring_test
