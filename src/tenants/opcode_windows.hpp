// SPDX-License-Identifier: Apache-2.0
// The opcode space of a registry's tenant windows: which ranges of
// [opcode_begin, opcode_end) are free. Not thread-safe: the registry guards
// it with its mutex.
#pragma once

#include <cstdint>
#include <map>

namespace megaring::detail {

class OpcodeWindows {
 public:
  // All of [begin, end) free (end up to 2^32).
  void reset(uint32_t begin, uint64_t end);
  // Takes the first free window of `cap` opcodes: its first opcode into
  // *base, or false if none is that large (may throw bad_alloc).
  bool take(uint32_t cap, uint32_t* base);
  // Gives [base, base + cap) back, merged with its free neighbours. On
  // bad_alloc the free space is left as it was.
  void give(uint32_t base, uint32_t cap);

 private:
  std::map<uint32_t, uint64_t> free_;  // begin -> end (exclusive, up to 2^32)
};

}  // namespace megaring::detail
