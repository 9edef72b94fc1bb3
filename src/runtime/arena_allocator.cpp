// SPDX-License-Identifier: Apache-2.0
// The staging arena's ranges (arena_allocator.hpp).
#include "runtime/arena_allocator.hpp"

#include <iterator>

#include "megaring/detail/checked.hpp"

namespace megaring::detail {

void ArenaAllocator::init(uint64_t bytes) {
  free_.clear();
  const uint64_t usable = bytes & ~(kAlign - 1);
  free_bytes_ = usable;
  if (usable != 0) free_.emplace(0, usable);
}

bool ArenaAllocator::take(uint64_t bytes, uint64_t* offset, uint64_t* length) {
  uint64_t want = 0;
  if (bytes == 0 || !range_length(bytes, &want)) return false;
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < want) continue;
    *offset = it->first;
    *length = want;
    const uint64_t rest = it->second - want;
    const uint64_t rest_at = it->first + want;
    free_.erase(it);
    if (rest != 0) free_.emplace(rest_at, rest);
    free_bytes_ -= want;
    return true;
  }
  return false;
}

void ArenaAllocator::give_back(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  free_bytes_ += length;
  auto next = free_.lower_bound(offset);
  // Merge with the range after, then the one before.
  if (next != free_.end() && next->first == offset + length) {
    length += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += length;
      return;
    }
  }
  free_.emplace(offset, length);
}

}  // namespace megaring::detail
