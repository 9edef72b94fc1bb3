// SPDX-License-Identifier: Apache-2.0
// Ring priorities (slot_abi.h, "Priorities"): which class of ring the
// fetcher's poll of all rings serves, and how far a turn of a lower class
// may fill the staged queue. Pure arithmetic over the poll's READY masks and
// the fetcher's own counts, so that tests check it without a consumer
// (tests/test_priority_fetch.cpp) and both consumers share it.
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

// The lower classes' slots in the staged queue, counted in two groups: the
// normal and bulk slots together, and the bulk slots alone.
inline constexpr uint32_t kGroupLower = 0;
inline constexpr uint32_t kGroupBulk = 1;
inline constexpr uint32_t kLowerGroups = 2;

// The fetcher's priority state (in FetchRingCursors: local memory, read at
// the polls and once a round).
struct RingSchedule {
  // Slots of higher ranks staged, while this rank waited, since its last
  // staged slot (saturating at MR_PRIORITY_CREDIT_SLOTS); [kRankCritical]
  // stays 0. Zero after a poll that finds none of the rank's rings READY.
  uint32_t credit[kPriorityRanks];
  // The ring each rank's last pick took: round robin within a rank.
  uint32_t last[kPriorityRanks];
  uint32_t turn_rank;  // the rank of the ring whose turn it is
  uint32_t waiting;    // a bit a rank: the last poll found one of its rings READY
  // Polls left that throttle the lower classes (critical_recent; slot_abi.h,
  // "Priorities"): MR_PRIORITY_CRITICAL_POLLS after a poll that found a
  // critical ring READY, one less after each poll that picked a lower class
  // with room once the completer had passed critical_end.
  uint32_t critical_polls;
  uint64_t critical_end;  // the sequence number after the last staged critical slot
  // Each group's slots in the staged queue, at most: the sequence number
  // after its last staged slot, and how many it staged since the queue last
  // held none of them (the completer had passed lower_end).
  uint32_t lower_count[kLowerGroups];
  uint64_t lower_end[kLowerGroups];
};

MR_HDI void init_ring_schedule(RingSchedule& s, uint64_t first_seq) {
  for (uint32_t r = 0; r < kPriorityRanks; ++r) {
    s.credit[r] = 0;
    s.last[r] = 0;
  }
  s.turn_rank = kRankNormal;  // ring 0's
  s.waiting = 0;
  s.critical_polls = 0;
  s.critical_end = first_seq;
  for (uint32_t g = 0; g < kLowerGroups; ++g) {
    s.lower_count[g] = 0;
    s.lower_end[g] = first_seq;
  }
}

// Whether the lower classes are throttled (shorter turns, part of the
// staged queue): a critical ring was READY at a poll, and since the
// completer passed the last critical slot, fewer than
// MR_PRIORITY_CRITICAL_POLLS polls picked a lower class with room.
MR_HDI bool critical_recent(const RingSchedule& s) { return s.critical_polls != 0; }

// What a poll of all rings found, before its pick: which ranks wait (a
// rank with no READY ring loses its credit: credit is earned only while
// waiting), and whether a critical ring was READY.
MR_HDI void note_poll(RingSchedule& s, const uint32_t ready_by_rank[kPriorityRanks]) {
  if (ready_by_rank[kRankCritical] != 0) s.critical_polls = MR_PRIORITY_CRITICAL_POLLS;
  s.waiting = 0;
  for (uint32_t r = 0; r < kPriorityRanks; ++r) {
    if (ready_by_rank[r] != 0)
      s.waiting |= 1u << r;
    else
      s.credit[r] = 0;
  }
}

// After the pick: a lower class picked with room, no critical ring READY,
// once the completer (done_seen) has passed every staged critical slot, is
// a throttled turn that counts towards the throttle's end. (An idle poll,
// one whose lower classes have no room, and one while a critical slot
// waits to run cost them nothing: they do not count, so neither a stalled
// consumer nor a critical producer waiting for its call loses the throttle.)
MR_HDI void note_pick(RingSchedule& s, const uint32_t ready_by_rank[kPriorityRanks], uint32_t rank,
                      uint32_t room, uint64_t done_seen) {
  if (ready_by_rank[kRankCritical] == 0 && rank != kRankCritical && rank < kPriorityRanks &&
      ((room >> rank) & 1u) != 0 && s.critical_polls != 0 &&
      static_cast<int64_t>(s.critical_end - done_seen) <= 0)
    --s.critical_polls;
}

// A lower rank's limit while throttled: the lower classes' slots in the
// staged queue stay below capacity / 2, the bulk slots below
// min(MR_PRIORITY_BULK_BACKLOG, capacity / 4); each at least 1.
MR_HDI uint64_t group_limit(uint32_t group, uint32_t capacity) {
  uint32_t limit = group == kGroupLower ? capacity / 2 : capacity / 4;
  if (group == kGroupBulk && limit > MR_PRIORITY_BULK_BACKLOG) limit = MR_PRIORITY_BULK_BACKLOG;
  return limit == 0 ? 1 : limit;
}

// The group's slots in the staged queue, at most (done_seen: the
// completer's cursor as last read).
MR_HDI uint64_t group_queued(const RingSchedule& s, uint32_t group, uint64_t done_seen) {
  const uint64_t span = s.lower_end[group] - done_seen;
  if (static_cast<int64_t>(span) <= 0) return 0;  // the completer passed them all
  return span < s.lower_count[group] ? span : s.lower_count[group];
}

// The slots a round of rank `rank` may stage: the queue's room (seq:
// staged so far), and, while throttled, a lower rank's room under its
// groups' limits.
MR_HDI uint64_t rank_room(const RingSchedule& s, uint32_t rank, uint64_t seq, uint64_t done_seen,
                          uint32_t capacity) {
  // The queue ends capacity past the completer's cursor (a cursor read
  // ahead of seq only makes more room, as before classes).
  const uint64_t end = done_seen + capacity;
  uint64_t room = end > seq ? end - seq : 0;
  if (rank == kRankCritical || !critical_recent(s)) return room;
  for (uint32_t g = kGroupLower; g <= (rank == kRankBulk ? kGroupBulk : kGroupLower); ++g) {
    const uint64_t limit = group_limit(g, capacity);
    const uint64_t queued = group_queued(s, g, done_seen);
    const uint64_t left = queued < limit ? limit - queued : 0;
    if (left < room) room = left;
  }
  return room;
}

// The ranks with room (rank_room > 0), a bit a rank.
MR_HDI uint32_t ranks_with_room(const RingSchedule& s, uint64_t seq, uint64_t done_seen,
                                uint32_t capacity) {
  uint32_t room = 0;
  for (uint32_t r = 0; r < kPriorityRanks; ++r)
    if (rank_room(s, r, seq, done_seen, capacity) != 0) room |= 1u << r;
  return room;
}

// The rank a poll serves, from the READY rings of each rank (a bit a ring)
// and the ranks with room (ranks_with_room): among the ranks with a READY
// ring and room, a bulk class whose credit is full, then a normal one, then
// the highest. A rank without room is left out while another READY one has
// room (its turn would stage nothing, and keep its credit, at every poll);
// if none has, the highest READY rank (its turn waits for the completer).
// kNoRank if no ring is READY.
MR_HDI uint32_t pick_rank(const uint32_t ready_by_rank[kPriorityRanks], const RingSchedule& s,
                          uint32_t room) {
  uint32_t able = 0;  // a bit a rank: READY and with room
  for (uint32_t r = 0; r < kPriorityRanks; ++r)
    if (ready_by_rank[r] != 0 && ((room >> r) & 1u) != 0) able |= 1u << r;
  if (((able >> kRankBulk) & 1u) != 0 && s.credit[kRankBulk] >= MR_PRIORITY_CREDIT_SLOTS)
    return kRankBulk;
  if (((able >> kRankNormal) & 1u) != 0 && s.credit[kRankNormal] >= MR_PRIORITY_CREDIT_SLOTS)
    return kRankNormal;
  for (uint32_t r = 0; r < kPriorityRanks; ++r)
    if (((able >> r) & 1u) != 0) return r;
  for (uint32_t r = 0; r < kPriorityRanks; ++r)
    if (ready_by_rank[r] != 0) return r;
  return kNoRank;
}

// After a round staged `n` slots of rank `rank`, the last of them at
// sequence number seq_end - 1 (done_seen: the completer's cursor as the
// round read it): that rank's wait is over, every lower rank that the last
// poll found waiting gains n credit, and a lower rank's slots are counted
// in the staged queue.
MR_HDI void charge_staged(RingSchedule& s, uint32_t rank, uint32_t n, uint64_t seq_end,
                          uint64_t done_seen) {
  if (n == 0 || rank >= kPriorityRanks) return;
  s.credit[rank] = 0;
  for (uint32_t r = rank + 1; r < kPriorityRanks; ++r) {
    if (((s.waiting >> r) & 1u) == 0) continue;
    const uint32_t c = s.credit[r];  // <= MR_PRIORITY_CREDIT_SLOTS
    s.credit[r] = n >= MR_PRIORITY_CREDIT_SLOTS - c ? MR_PRIORITY_CREDIT_SLOTS : c + n;
  }
  if (rank == kRankCritical) {
    s.critical_end = seq_end;
    return;
  }
  for (uint32_t g = kGroupLower; g <= (rank == kRankBulk ? kGroupBulk : kGroupLower); ++g) {
    // Its slots still queued (at most 2^31), then these after them.
    const uint32_t before = static_cast<uint32_t>(group_queued(s, g, done_seen));
    s.lower_count[g] = n >= 0x80000000u - before ? 0x80000000u : before + n;
    s.lower_end[g] = seq_end;
  }
}

}  // namespace megaring::detail
