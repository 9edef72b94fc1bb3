// SPDX-License-Identifier: Apache-2.0
// Ring priorities (slot_abi.h, "Priorities"): which class of ring the
// fetcher's poll of all rings serves, and how far a turn of a lower class
// may fill the staged queue. Pure arithmetic over the poll's READY masks and
// the fetcher's own counts, so that tests check it without a consumer
// (tests/ring/priority_arithmetic.cpp) and both consumers share it.
#pragma once

#include <cstdint>

#include "megaring/handler.cuh"
#include "megaring/slot_abi.h"

namespace megaring::detail {

// Classes by rank, highest first: the order the poll serves them in.
inline constexpr uint32_t kRankCritical = 0;
inline constexpr uint32_t kRankNormal = 1;
inline constexpr uint32_t kRankBulk = 2;
inline constexpr uint32_t kPriorityRanks = 3;
inline constexpr uint32_t kNoRank = kPriorityRanks;

// A ring's class word as a rank; anything but critical or bulk is normal.
MR_HDI uint32_t ring_class_rank(uint32_t ring_class) {
  return ring_class == MR_RING_CLASS_CRITICAL ? kRankCritical
         : ring_class == MR_RING_CLASS_BULK   ? kRankBulk
                                              : kRankNormal;
}

// The fetcher's priority state (in FetchRingCursors: local memory, read at
// the polls and once a round).
struct RingSchedule {
  // Slots of higher ranks staged since this rank's last staged slot
  // (saturating at MR_PRIORITY_CREDIT_SLOTS); [kRankCritical] stays 0.
  uint32_t credit[kPriorityRanks];
  // The ring each rank's last pick took: round robin within a rank.
  uint32_t last[kPriorityRanks];
  uint32_t turn_rank;         // the rank of the ring whose turn it is
  uint32_t critical_present;  // the last poll saw a ring of class critical
};

MR_HDI void init_ring_schedule(RingSchedule& s) {
  for (uint32_t r = 0; r < kPriorityRanks; ++r) {
    s.credit[r] = 0;
    s.last[r] = 0;
  }
  s.turn_rank = kRankNormal;  // ring 0's
  s.critical_present = 0;
}

// The rank a poll serves, from the READY rings of each rank (a bit a ring):
// a waiting bulk class whose credit is full, then a waiting normal one, then
// the highest rank with a READY ring; kNoRank if none is READY.
MR_HDI uint32_t pick_rank(const uint32_t ready_by_rank[kPriorityRanks], const RingSchedule& s) {
  if (ready_by_rank[kRankBulk] != 0 && s.credit[kRankBulk] >= MR_PRIORITY_CREDIT_SLOTS)
    return kRankBulk;
  if (ready_by_rank[kRankNormal] != 0 && s.credit[kRankNormal] >= MR_PRIORITY_CREDIT_SLOTS)
    return kRankNormal;
  for (uint32_t r = 0; r < kPriorityRanks; ++r)
    if (ready_by_rank[r] != 0) return r;
  return kNoRank;
}

// After a round staged `n` slots of rank `rank`: that rank's wait is over,
// and every lower rank's credit grows by n.
MR_HDI void charge_staged(RingSchedule& s, uint32_t rank, uint32_t n) {
  if (n == 0 || rank >= kPriorityRanks) return;
  s.credit[rank] = 0;
  for (uint32_t r = rank + 1; r < kPriorityRanks; ++r) {
    const uint32_t grown = s.credit[r] + n;  // both <= 2^31: no wrap
    s.credit[r] = grown > MR_PRIORITY_CREDIT_SLOTS ? MR_PRIORITY_CREDIT_SLOTS : grown;
  }
}

// The staged backlog (seq - done_cursor) a round of rank `rank` may fill
// the queue to: all of it, unless a ring is critical and the rank is lower.
MR_HDI uint64_t staged_limit(uint32_t rank, uint32_t capacity, bool critical_present) {
  if (!critical_present || rank == kRankCritical) return capacity;
  uint32_t limit = rank == kRankNormal ? capacity / 2 : capacity / 4;
  if (rank != kRankNormal && limit > MR_PRIORITY_BULK_BACKLOG) limit = MR_PRIORITY_BULK_BACKLOG;
  return limit == 0 ? 1 : limit;
}

}  // namespace megaring::detail
