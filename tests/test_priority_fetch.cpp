// SPDX-License-Identifier: Apache-2.0
// Ring priorities at the fetcher (slot_abi.h, "Priorities";
// consumer/ring_priority.cuh): the pick arithmetic alone, then fetch_round as
// the CPU backend's I/O thread runs it, on rings filled by hand, checking
// the staged order against the documented bounds by counting.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <megaring/consumer/consumer_core.cuh>

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
  d::init_ring_schedule(s);
  const uint32_t all[3] = {1, 2, 4};
  EXPECT_EQ(d::pick_rank(all, s), d::kRankCritical);
  const uint32_t lower[3] = {0, 2, 4};
  EXPECT_EQ(d::pick_rank(lower, s), d::kRankNormal);
  const uint32_t none[3] = {0, 0, 0};
  EXPECT_EQ(d::pick_rank(none, s), d::kNoRank);
  d::charge_staged(s, d::kRankCritical, MR_PRIORITY_CREDIT_SLOTS - 1);
  EXPECT_EQ(d::pick_rank(all, s), d::kRankCritical) << "one slot short of the credit";
  d::charge_staged(s, d::kRankCritical, 1);
  EXPECT_EQ(d::pick_rank(all, s), d::kRankBulk) << "bulk's credit is full, and bulk goes first";
  d::charge_staged(s, d::kRankBulk, 1);
  EXPECT_EQ(s.credit[d::kRankBulk], 0u);
  EXPECT_EQ(s.credit[d::kRankNormal], MR_PRIORITY_CREDIT_SLOTS) << "bulk slots do not pay normal";
  EXPECT_EQ(d::pick_rank(all, s), d::kRankNormal);
  const uint32_t no_normal[3] = {1, 0, 4};
  EXPECT_EQ(d::pick_rank(no_normal, s), d::kRankCritical) << "a full credit of an idle class";
  d::charge_staged(s, d::kRankNormal, 0);
  EXPECT_EQ(s.credit[d::kRankNormal], MR_PRIORITY_CREDIT_SLOTS) << "nothing staged, nothing paid";
  d::charge_staged(s, d::kRankCritical, 0xFFFFFFFFu);
  EXPECT_EQ(s.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS) << "saturates, never wraps";
  d::charge_staged(s, d::kNoRank, 5);  // not a rank: ignored
  EXPECT_EQ(s.credit[d::kRankBulk], MR_PRIORITY_CREDIT_SLOTS);
}

TEST(PriorityArithmetic, ALowerClassFillsTheQueuePartWayOnlyBesideACriticalRing) {
  for (uint32_t cap : {1u, 2u, 4u, 64u, 1024u, 1u << 20}) {
    for (uint32_t rank = 0; rank < d::kPriorityRanks; ++rank)
      EXPECT_EQ(d::staged_limit(rank, cap, false), cap) << "no critical ring: the whole queue";
    EXPECT_EQ(d::staged_limit(d::kRankCritical, cap, true), cap);
    EXPECT_EQ(d::staged_limit(d::kRankNormal, cap, true), std::max(cap / 2, 1u));
    EXPECT_EQ(d::staged_limit(d::kRankBulk, cap, true),
              std::max(std::min(cap / 4, MR_PRIORITY_BULK_BACKLOG), 1u));
  }
}

// fetch_round on hand-filled rings (as FetchRings in test_producer.cpp),
// with each ring's class in the private words.
class PriorityFetch : public ::testing::Test {
 protected:
  void SetUp() override {
    slots_.assign(uint64_t{kRings} * kCapacity, mr_slot{});
    staged_.assign(kCapacity, mr_slot{});
    submission_ = mr_submission_control{};
    submission_.stop_at = ~0ull;
    control_ = mr_completion_control{};
    priv_ = d::initial_private(0);
    p_.slots = slots_.data();
    p_.submission = &submission_;
    p_.completion_control = &control_;
    p_.priv = &priv_;
    p_.staged = staged_.data();
    p_.capacity = kCapacity;
    p_.mask = kCapacity - 1;
    p_.rings = kRings;
    p_.heartbeat_interval_ns = 1'000'000'000;
    p_.fetch_warps = 4;
    d::init_fetch_state(p_, st_, cursors_);
    st_.crew_warps = 4;  // rounds of up to 256 bodies
  }
  void publish(uint32_t ring, uint64_t first, uint64_t n) {
    for (uint64_t t = first; t < first + n; ++t) {
      mr_slot& s = *d::ring_slot(p_, ring, t);
      s.opcode = MR_OP_NOP;
      s.args[0] = (uint64_t{ring} << 32) | t;
      s.header = mr_make_header(t, MR_SLOT_READY);
    }
  }
  // Rounds until `total` slots are staged (or `max_rounds`), the completer
  // passing everything staged before each round (`follow`) or not at all;
  // returns the staged rings in sequence order, each ring's in ticket order.
  std::vector<uint32_t> fetch(uint64_t total, int max_rounds, bool follow = true) {
    std::vector<uint32_t> order;
    uint64_t* next = next_;  // across calls
    for (int i = 0; i < max_rounds && order.size() < total; ++i) {
      if (follow) priv_.done_cursor = st_.seq;
      const uint64_t before = st_.seq;
      EXPECT_NE(d::fetch_round(p_, st_), d::Progress::kExit);
      for (uint64_t q = before; q < st_.seq; ++q) {
        mr_slot copy = staged_[q & p_.mask];
        const d::SlotOrigin origin = d::unstage(copy);
        EXPECT_EQ(copy.args[0], (uint64_t{origin.ring} << 32) | origin.ticket) << "seq " << q;
        EXPECT_EQ(origin.ticket, next[origin.ring]++) << "ring " << origin.ring << " out of order";
        order.push_back(origin.ring);
      }
    }
    return order;
  }
  // The most slots of other rings staged between two of `ring`'s (or
  // before its first), up to its last.
  static uint64_t widest_gap(const std::vector<uint32_t>& order, uint32_t ring) {
    uint64_t gap = 0, widest = 0;
    for (uint32_t r : order) {
      if (r == ring) {
        widest = std::max(widest, gap);
        gap = 0;
      } else {
        ++gap;
      }
    }
    return widest;
  }

  static constexpr uint32_t kRings = 4;
  static constexpr uint32_t kCapacity = 8192;
  // One turn: kRingTurnRounds rounds and the poll round that ends it, each
  // of at most a round's bodies (256, a crew of four warps).
  static constexpr uint64_t kTurnSlots = (d::kRingTurnRounds + 1) * 256;
  std::vector<mr_slot> slots_, staged_;
  mr_submission_control submission_{};
  mr_completion_control control_{};
  d::ConsumerPrivate priv_{};
  megaring::ConsumerParams p_{};
  d::FetchRingCursors cursors_{};
  d::FetchState st_;
  uint64_t next_[kRings] = {};  // each ring's next ticket to be staged
};

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

// While a ring is critical (ring 2, idle), a bulk ring's rounds stage only
// until the staged queue holds min(128, capacity / 4) slots, a normal ring's
// capacity / 2; once no ring is critical, either fills the queue.
TEST_F(PriorityFetch, ALowerClassFillsTheStagedQueuePartWayWhileARingIsCritical) {
  p_.capacity = 64;
  p_.mask = 63;
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(1, 0, 60);
  (void)fetch(64, 40, /*follow=*/false);
  EXPECT_EQ(st_.seq, 16u) << "bulk: a quarter of the queue";
  priv_.ring_class[1] = MR_RING_CLASS_NORMAL;
  (void)fetch(64, 40, false);
  EXPECT_EQ(st_.seq, 32u) << "normal: half of it";
  priv_.ring_class[2] = MR_RING_CLASS_NORMAL;  // no ring is critical now
  (void)fetch(64, 40, false);
  EXPECT_EQ(st_.seq, 60u) << "the rest";
}

// A critical ring that becomes READY while a bulk ring's backlog is being
// staged waits for the rest of that ring's turn, not for its backlog.
TEST_F(PriorityFetch, ACriticalSlotWaitsAtMostATurnForABulkBacklog) {
  priv_.ring_class[1] = MR_RING_CLASS_BULK;
  priv_.ring_class[2] = MR_RING_CLASS_CRITICAL;
  publish(1, 0, 6000);
  (void)fetch(10, 3);  // bulk's turn under way
  const uint64_t staged_before = st_.seq;
  publish(2, 0, 1);
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
