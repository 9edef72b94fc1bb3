// SPDX-License-Identifier: Apache-2.0
// fetch_round on hand-filled rings, with each ring's class in the private
// words: the fixture of the priority fetcher tests (test_priority_fetch.cpp,
// test_priority_findings.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include <megaring/consumer/consumer_core.cuh>

namespace megaring_test {

namespace pfd = megaring::detail;

// As FetchRings in test_producer.cpp.
class PriorityFetch : public ::testing::Test {
 protected:
  void SetUp() override {
    slots_.assign(uint64_t{kRings} * kCapacity, mr_slot{});
    staged_.assign(kCapacity, mr_slot{});
    submission_ = mr_submission_control{};
    submission_.stop_at = ~0ull;
    control_ = mr_completion_control{};
    priv_ = pfd::initial_private(0);
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
    pfd::init_fetch_state(p_, st_, cursors_);
    st_.crew_warps = 4;  // rounds of up to 256 bodies
  }
  void publish(uint32_t ring, uint64_t first, uint64_t n) {
    for (uint64_t t = first; t < first + n; ++t) {
      mr_slot& s = *pfd::ring_slot(p_, ring, t);
      s.opcode = MR_OP_NOP;
      s.args[0] = (uint64_t{ring} << 32) | t;
      s.header = mr_make_header(t, MR_SLOT_READY);
    }
  }
  // One round, the completer passing everything staged before it
  // (`follow`) or not at all; appends the rings of the slots it staged to
  // *order, checking each ring's are in ticket order.
  void step(std::vector<uint32_t>* order, bool follow = true) {
    if (follow) priv_.done_cursor = st_.seq;
    const uint64_t before = st_.seq;
    EXPECT_NE(pfd::fetch_round(p_, st_), pfd::Progress::kExit);
    for (uint64_t q = before; q < st_.seq; ++q) {
      mr_slot copy = staged_[q & p_.mask];
      const pfd::SlotOrigin origin = pfd::unstage(copy);
      EXPECT_EQ(copy.args[0], (uint64_t{origin.ring} << 32) | origin.ticket) << "seq " << q;
      EXPECT_EQ(origin.ticket, next_[origin.ring]++) << "ring " << origin.ring << " out of order";
      order->push_back(origin.ring);
    }
  }
  // Rounds (step) until `total` slots are staged, or `max_rounds`; returns
  // the staged rings in sequence order.
  std::vector<uint32_t> fetch(uint64_t total, int max_rounds, bool follow = true) {
    std::vector<uint32_t> order;
    for (int i = 0; i < max_rounds && order.size() < total; ++i) step(&order, follow);
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
  static constexpr uint64_t kTurnSlots = (pfd::kRingTurnRounds + 1) * 256;
  std::vector<mr_slot> slots_, staged_;
  mr_submission_control submission_{};
  mr_completion_control control_{};
  pfd::ConsumerPrivate priv_{};
  megaring::ConsumerParams p_{};
  pfd::FetchRingCursors cursors_{};
  pfd::FetchState st_;
  uint64_t next_[kRings] = {};  // each ring's next ticket to be staged
};

}  // namespace megaring_test
