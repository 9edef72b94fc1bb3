// SPDX-License-Identifier: Apache-2.0
#include "tenants/opcode_windows.hpp"

#include <iterator>

namespace megaring::detail {

void OpcodeWindows::reset(uint32_t begin, uint64_t end) {
  free_.clear();
  free_[begin] = end;
}

bool OpcodeWindows::take(uint32_t cap, uint32_t* base) {
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second - it->first >= cap) {
      const uint32_t begin = it->first;
      const uint64_t end = it->second;
      // The tail first (a new map node may throw): a failure leaves the map
      // as it was.
      if (begin + static_cast<uint64_t>(cap) < end) free_[begin + cap] = end;
      free_.erase(it);
      *base = begin;
      return true;
    }
  }
  return false;
}

void OpcodeWindows::give(uint32_t base, uint32_t cap) {
  uint64_t begin = base;
  uint64_t end = static_cast<uint64_t>(base) + cap;
  auto next = free_.lower_bound(base);
  const bool merge_next = next != free_.end() && next->first == end;
  if (merge_next) end = next->second;
  auto prev = next == free_.begin() ? free_.end() : std::prev(next);
  const bool merge_prev = prev != free_.end() && prev->second == begin;
  if (merge_prev) begin = prev->first;
  // The only step that can throw (a new map node) comes before any erase, so
  // a failure leaves the map as it was.
  free_[static_cast<uint32_t>(begin)] = end;
  if (merge_next) free_.erase(next);
}

}  // namespace megaring::detail
