// SPDX-License-Identifier: Apache-2.0
// Byte ranges of the staging arena: first fit over the free ranges, in
// 64-byte lines, neighbours merged when a range comes back. Not thread-safe:
// the region table calls it under its lock.
#pragma once

#include <cstdint>
#include <map>

#include "megaring/detail/checked.hpp"

namespace megaring::detail {

class ArenaAllocator {
 public:
  static constexpr uint64_t kAlign = 64;

  // The arena's granule: the length of the range a region of `bytes` takes
  // (bytes rounded up to whole kAlign lines), which is also what a tenant's
  // staging quota is charged (tenant_regions.cpp). False if it overflows.
  static bool range_length(uint64_t bytes, uint64_t* length) {
    return checked_round_up(bytes, kAlign, length);
  }

  // The whole arena free: [0, bytes rounded down to kAlign).
  void init(uint64_t bytes);
  // A range of at least `bytes` (1 .. the arena), of range_length(bytes):
  // its offset in *offset and its length in *length. False if nothing fits.
  bool take(uint64_t bytes, uint64_t* offset, uint64_t* length);
  // A range take() gave out comes back.
  void give_back(uint64_t offset, uint64_t length);
  uint64_t free_bytes() const { return free_bytes_; }

 private:
  std::map<uint64_t, uint64_t> free_;  // offset -> length, disjoint, never adjacent
  uint64_t free_bytes_ = 0;
};

}  // namespace megaring::detail
