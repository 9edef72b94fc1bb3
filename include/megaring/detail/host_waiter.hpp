// SPDX-License-Identifier: Apache-2.0
// How megaring's host threads wait (for a completion, DONE_COUNT or ring
// space): spin briefly (a GPU round trip is a microsecond or two), then
// yield, then sleep in growing steps up to 200 us (or the given bound).
// Host-only; also used by the tenant drain pump, and by the benchmark so that
// its comparison queue waits the same way.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <thread>

namespace megaring::detail {

class HostWaiter {
 public:
  explicit HostWaiter(uint32_t max_sleep_us = 200) : max_sleep_us_(max_sleep_us) {}
  // Back to spinning: the awaited thing just happened.
  void reset() {
    iterations_ = 0;
    sleep_us_ = 0;
  }
  void pause() {
    ++iterations_;
    if (iterations_ < kSpins) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else if (iterations_ < kFirstSleep) {
      std::this_thread::yield();
    } else {
      sleep_us_ = std::min<uint32_t>(sleep_us_ == 0 ? 1 : sleep_us_ * 2, max_sleep_us_);
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    }
  }
  // Time to check consumer health (a driver call on the GPU): never while
  // spinning or yielding, where a healthy consumer answers, so the check
  // stays off the path of ordinary waits; then on every 8th sleep (about
  // 1.6 ms apart at the 200 us cap).
  bool due_for_health_check() const {
    return iterations_ >= kFirstSleep && (iterations_ & 7u) == 0;
  }

  static constexpr uint32_t kSpins = 256;       // pause instructions
  static constexpr uint32_t kFirstSleep = 512;  // after kSpins pauses and 256 yields

 private:
  uint32_t max_sleep_us_;
  uint32_t iterations_ = 0;
  uint32_t sleep_us_ = 0;
};

}  // namespace megaring::detail
