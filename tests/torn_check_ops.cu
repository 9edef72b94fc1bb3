// SPDX-License-Identifier: Apache-2.0
#include <megaring/megakernel.cuh>

#include "torn_check_ops.hpp"

namespace megaring_test {
namespace {

constexpr uint32_t kFirstChainArg = 2;  // args[2..4]; args[1] is the sum buffer
// The flag bits the chain sets: not the reserved ones (they fault on their
// own) and not KEEP_RESULT (the runtime sets it from keep_result).
constexpr uint32_t kChainFlagBits = ~(MR_SLOT_FLAGS_RESERVED | MR_SLOT_FLAG_KEEP_RESULT);

// What a slot published with `seed` holds besides the sum buffer. One
// function for the producer (torn_check_request) and the handler, so the two
// cannot drift apart.
struct TornFields {
  uint32_t opcode;
  uint32_t flags;
  uint64_t chain[MR_SLOT_ARGS];  // [kFirstChainArg, MR_SLOT_ARGS) used
};

// splitmix64 (Steele, Lea, Flood): every output bit depends on every seed
// bit, so a word left over from another seed mismatches but for a 2^-64
// chance.
MR_HDI uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

MR_HDI TornFields torn_fields(uint64_t seed) {
  TornFields f{};
  uint64_t state = seed;
  for (uint32_t a = kFirstChainArg; a < MR_SLOT_ARGS; ++a) f.chain[a] = splitmix64_next(state);
  const uint64_t extra = splitmix64_next(state);
  f.opcode = kOpTornCheckBase + static_cast<uint32_t>(extra % kTornCheckOpcodes);
  f.flags = static_cast<uint32_t>(extra >> 32) & kChainFlagBits;
  return f;
}

struct TornCheckOps {
  // Every thread of a GPU block gets the same slot copy and branches on it
  // alone, so all reach resolve() (collective) or none; thread 0's outcome is
  // the slot's, and thread 0 alone adds to the sum.
  template <class Ctx>
  MR_HD static bool execute(Ctx& ctx, const mr_slot& s, megaring::Outcome& out) {
    if (s.opcode < kOpTornCheckBase || s.opcode >= kOpTornCheckBase + kTornCheckOpcodes)
      return false;  // not ours: UNKNOWN_OPCODE
    const TornFields want = torn_fields(s.args[0]);
    bool whole = s.opcode == want.opcode && s.tenant == 0 &&
                 (s.flags & kChainFlagBits) == want.flags;
    for (uint32_t a = kFirstChainArg; a < MR_SLOT_ARGS; ++a)
      whole = whole && s.args[a] == want.chain[a];
    if (!whole) {
      out.set_fault(MR_FAULT_BAD_ARGUMENT);  // a torn (or corrupted) body
      return true;
    }
    uint8_t* sum = ctx.resolve(s.args[1], 0, sizeof(uint64_t), sizeof(uint64_t), 0, out);
    if (sum == nullptr) return true;  // FAULT set by resolve, the same in every thread
    if (ctx.rank() == 0) {
      // Relaxed: slots run in any order and the host reads the sum once the
      // consumer has stopped.
      megaring::detail::DevRef<uint64_t>(*reinterpret_cast<uint64_t*>(sum))
          .fetch_add(s.args[kFirstChainArg], cuda::std::memory_order_relaxed);
    }
    out.result = s.args[0];
    return true;
  }
};

}  // namespace

megaring::SlotRequest torn_check_request(uint64_t seed, megaring::BufferHandle sum_buffer) {
  const TornFields f = torn_fields(seed);
  megaring::SlotRequest r;
  r.opcode = f.opcode;
  r.tenant = 0;
  r.flags = f.flags;
  r.args[0] = seed;
  r.args[1] = sum_buffer;
  for (uint32_t a = kFirstChainArg; a < MR_SLOT_ARGS; ++a) r.args[a] = f.chain[a];
  return r;
}

const megaring::Consumer& torn_check_consumer() {
  static const megaring::Consumer c = megaring::make_consumer<TornCheckOps>("torn-check");
  return c;
}

}  // namespace megaring_test
