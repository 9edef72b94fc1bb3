// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: arbitrary bytes as a sequence of runtime and tenant API
// calls (api_sequence.hpp). A broken contract, quota invariant or
// conservation law aborts with the driver's description of it.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "api_sequence.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string failure = megaring::fuzz::run_api_sequence(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "api_sequence: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
