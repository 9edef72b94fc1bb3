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
    if (iterations_ < 256) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else if (iterations_ < 512) {
      std::this_thread::yield();
    } else {
      sleep_us_ = std::min<uint32_t>(sleep_us_ == 0 ? 1 : sleep_us_ * 2, max_sleep_us_);
      std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    }
  }
  // True about once a millisecond of waiting: time to check consumer health.
  bool due_for_health_check() const { return (iterations_ & 127u) == 127u; }

 private:
  uint32_t max_sleep_us_;
  uint32_t iterations_ = 0;
  uint32_t sleep_us_ = 0;
};

}  // namespace megaring::detail
