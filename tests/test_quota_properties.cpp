// SPDX-License-Identifier: Apache-2.0
// Quota invariants and conservation as properties (issue 13): seeded random
// byte strings replayed as API sequences by the fuzzer's driver
// (fuzz/api_sequence.hpp), which checks after every step that each call
// returned what its contract allows, that in use <= quota and in use equals
// what the tenant's live objects hold, and at the end that every published
// ticket completed exactly once. The libFuzzer target explores the same
// driver further (scripts/fuzz.sh); this runs a fixed set on every build.
//
// MEGARING_PROPERTY_SEQUENCES sets how many sequences (default 2000, about a second).
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../fuzz/api_sequence.hpp"
#include "backend_fixture.hpp"

namespace megaring_test {
namespace {

TEST(QuotaProperties, RandomApiSequencesKeepEveryInvariant) {
  Watchdog watchdog(current_test_name(), Watchdog::default_limit());
  const uint64_t sequences = env_u64("MEGARING_PROPERTY_SEQUENCES", 2000);
  std::mt19937_64 rng(20261204);
  for (uint64_t i = 0; i < sequences; ++i) {
    std::vector<uint8_t> bytes(64 + rng() % 1500);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    const std::string failure = megaring::fuzz::run_api_sequence(bytes.data(), bytes.size());
    ASSERT_EQ(failure, "") << "sequence " << i << " (" << bytes.size() << " bytes)";
  }
}

}  // namespace
}  // namespace megaring_test
