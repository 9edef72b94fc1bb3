// SPDX-License-Identifier: Apache-2.0
// The host waiter's policy (detail/host_waiter.hpp): when a waiter asks
// after the consumer's health.

#include <cstdint>

#include <gtest/gtest.h>

#include <megaring/detail/host_waiter.hpp>

namespace megaring_test {
namespace {

// A waiter checks consumer health (a driver call on the GPU) only once it
// has stopped spinning and yielding, then on every 8th sleep.
TEST(HostWaiter, ChecksConsumerHealthOnlyOnceItSleeps) {
  megaring::detail::HostWaiter waiter(/*max_sleep_us=*/1);
  uint32_t checks = 0, first_check = 0;
  for (uint32_t i = 1; i <= 600; ++i) {
    waiter.pause();
    if (waiter.due_for_health_check()) {
      ++checks;
      if (first_check == 0) first_check = i;
    }
  }
  EXPECT_EQ(first_check, 512u);
  EXPECT_EQ(checks, 12u);  // 512, 520, ..., 600
  waiter.reset();
  waiter.pause();
  EXPECT_FALSE(waiter.due_for_health_check());
}

}  // namespace
}  // namespace megaring_test
