// SPDX-License-Identifier: Apache-2.0
// Proves the installed headers build a custom consumer with nvcc: the
// persistent megakernel and the CPU worker loop over a user handler table.
#include <megaring/megakernel.cuh>

#include "my_consumer.hpp"

namespace {

struct SumSquares {
  template <class Ctx>
  MR_HD static bool execute(Ctx& ctx, const mr_slot& s, megaring::Outcome& out) {
    if (s.opcode != kOpSumSquares) return false;  // other user opcodes fault
    const uint64_t n = s.args[1];
    if (n > (uint64_t(1) << 32)) {
      out.set_fault(MR_FAULT_OUT_OF_BOUNDS);
      return true;
    }
    const uint8_t* p = ctx.resolve(s.args[0], 0, n * 4, 4, 0, out);
    if (p == nullptr) return true;  // FAULT already set, for every thread
    const auto* x = reinterpret_cast<const uint32_t*>(p);
    uint64_t partial = 0;
    for (uint64_t i = ctx.rank(); i < n; i += ctx.size()) partial += uint64_t(x[i]) * x[i];
    const uint64_t total = ctx.block_sum(partial);  // collective; valid in rank 0
    if (ctx.rank() == 0) out.result = total;
    return true;
  }
};

}  // namespace

const megaring::Consumer& sum_squares_consumer() {
  // 128 threads per block, to exercise make_consumer's template argument.
  static const megaring::Consumer c = megaring::make_consumer<SumSquares, 128>("sum-squares");
  return c;
}
