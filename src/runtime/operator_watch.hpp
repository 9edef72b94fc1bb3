// SPDX-License-Identifier: Apache-2.0
// What the operator's view (Runtime::health, dump_state, metrics_text)
// remembers between looks, at no cost to the ring: the last error the
// runtime saw, and when a look first saw the current heartbeat stamp and
// each ring's DONE_COUNT. An age from such a look (AgeSource::kObserved)
// is a lower bound: the value was there before the look that first saw it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "megaring/health.hpp"
#include "megaring/slot_abi.h"
#include "megaring/status.hpp"

namespace megaring::detail {

// The host clock of every age: the steady clock, in ns since its epoch.
inline int64_t host_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class OperatorWatch {
 public:
  // Remembers `error` (not OK) as the last one, seen at `now_ns`.
  void note_error(const Status& error, int64_t now_ns) {
    if (error.is_ok()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    last_error_ = error;
    last_error_ns_ = now_ns;
  }
  // The last error and its age at `now_ns` (-1 with none).
  Status last_error(int64_t now_ns, int64_t* age_ns) const {
    std::lock_guard<std::mutex> lock(mutex_);
    *age_ns = last_error_.is_ok() ? -1 : now_ns - last_error_ns_;
    return last_error_;
  }

  // How long the heartbeat has shown `stamp`, as far as looks tell.
  int64_t observe_heartbeat(uint64_t stamp, int64_t now_ns) {
    std::lock_guard<std::mutex> lock(mutex_);
    return observe(heartbeat_, stamp, now_ns);
  }
  // How long ring `ring`'s DONE_COUNT has stood at `done` with tickets
  // outstanding, as far as looks tell; a look that finds the ring idle
  // forgets it (the age of a ticket counts from a look that saw it waiting).
  int64_t observe_done(uint32_t ring, uint64_t done, bool outstanding, int64_t now_ns) {
    if (ring >= MR_MAX_RINGS) return -1;
    std::lock_guard<std::mutex> lock(mutex_);
    Seen& seen = done_[ring];
    if (!outstanding) {
      seen.valid = false;
      return -1;
    }
    return observe(seen, done, now_ns);
  }

 private:
  struct Seen {
    bool valid = false;
    uint64_t value = 0;
    int64_t first_seen_ns = 0;
  };
  static int64_t observe(Seen& seen, uint64_t value, int64_t now_ns) {
    if (!seen.valid || seen.value != value) {
      seen.valid = true;
      seen.value = value;
      seen.first_seen_ns = now_ns;
    }
    return now_ns - seen.first_seen_ns;
  }

  mutable std::mutex mutex_;
  Status last_error_;
  int64_t last_error_ns_ = 0;
  Seen heartbeat_;
  std::array<Seen, MR_MAX_RINGS> done_{};
};

}  // namespace megaring::detail
