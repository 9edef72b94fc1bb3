// SPDX-License-Identifier: Apache-2.0
// The library's own consumer instantiation: built-in opcodes only.
#include "megaring/megakernel.cuh"

namespace megaring {

const Consumer& builtin_consumer() noexcept {
  static const Consumer consumer = make_consumer<NoUserOps>("builtin");
  return consumer;
}

}  // namespace megaring
