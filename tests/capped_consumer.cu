// SPDX-License-Identifier: Apache-2.0
// A consumer built with make_consumer's block size and register cap: the
// built-in opcodes in one-warp blocks of at most 32 registers a thread
// (tests/ring/ops.cpp, RingOpsTest.CappedOneWarpConsumerRunsTheBuiltins).
#include <megaring/megakernel.cuh>

#include "capped_consumer.hpp"

namespace megaring_test {

const megaring::Consumer& capped_consumer() {
  static const megaring::Consumer consumer =
      megaring::make_consumer<megaring::NoUserOps, kCappedThreads, kCappedRegisters>(
          "builtin-capped");
  return consumer;
}

cudaError_t capped_kernel_registers(int* registers) {
  cudaFuncAttributes attributes{};
  const cudaError_t err = cudaFuncGetAttributes(
      &attributes, megaring::detail::megakernel_entry<megaring::NoUserOps, kCappedThreads, false,
                                                      kCappedRegisters>());
  *registers = attributes.numRegs;
  return err;
}

}  // namespace megaring_test
