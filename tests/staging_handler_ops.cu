// SPDX-License-Identifier: Apache-2.0
#include <megaring/megakernel.cuh>

#include "staging_handler_ops.hpp"

namespace megaring_test {
namespace {

struct StagingHandlerOps {
  template <class Ctx>
  MR_HD static bool execute(Ctx& ctx, const mr_slot& s, megaring::Outcome& out) {
    switch (s.opcode) {
      case kOpRegionByteSum: {
        const uint8_t* p =
            ctx.resolve_region(s.args[0], s.args[1], s.args[2], megaring::kRegionRead, out);
        if (p == nullptr) return true;  // FAULT, the same in every thread
        uint64_t partial = 0;
        for (uint64_t i = ctx.rank(); i < s.args[2]; i += ctx.size()) partial += p[i];
        const uint64_t total = ctx.block_sum(partial);
        if (ctx.rank() == 0) out.result = total;
        return true;
      }
      case kOpRegionFill: {
        uint8_t* p =
            ctx.resolve_region(s.args[0], s.args[1], s.args[2], megaring::kRegionWrite, out);
        if (p == nullptr) return true;
        for (uint64_t i = ctx.rank(); i < s.args[2]; i += ctx.size())
          p[i] = static_cast<uint8_t>(s.args[3]);
#if defined(__CUDA_ARCH__)
        __threadfence_system();  // host memory, read by the host after the completion
#endif
        out.result = s.args[2];
        return true;
      }
      default:
        return false;
    }
  }
};

}  // namespace

const megaring::Consumer& staging_handler_consumer() {
  static const megaring::Consumer c =
      megaring::make_consumer<StagingHandlerOps>("staging-handler-test");
  return c;
}

}  // namespace megaring_test
