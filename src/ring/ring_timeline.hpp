// SPDX-License-Identifier: Apache-2.0
// Timeline mode, the host ring's half: when each ticket was published (by
// ticket position) and a ring of the most recent reap passes. The runtime's
// TimelineRecorder pairs it with the consumer's records.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "megaring/runtime.hpp"

namespace megaring::detail {

class RingTimeline {
 public:
  // The host clock of timeline mode: the steady clock, which is also the CPU
  // backend's consumer clock (now_ns() on the host).
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // `capacity`: a power of two (Config::timeline_capacity).
  Status init(uint32_t capacity) {
    mask_ = capacity - 1;
    publish_ns_.reset(new (std::nothrow) std::atomic<int64_t>[capacity]);
    if (!publish_ns_) return Status(Result::kOutOfMemory, "timeline publish times");
    for (uint32_t i = 0; i < capacity; ++i) publish_ns_[i].store(0, std::memory_order_relaxed);
    reaps_.resize(kReapRing);
    return Status::ok();
  }
  uint64_t size() const { return mask_ + 1; }
  uint64_t mask() const { return mask_; }

  // Relaxed: read by timeline(), which keeps only tickets whose record and
  // publish time were stable over its snapshot (TimelineRecorder::snapshot).
  void record_publish(uint64_t ticket, int64_t ns) {
    publish_ns_[ticket & mask_].store(ns, std::memory_order_relaxed);
  }
  int64_t publish_ns(uint64_t index) const { return publish_ns_[index].load(std::memory_order_relaxed); }

  void record_reap(int64_t start_ns, uint64_t first_ticket, uint64_t count) {
    const TimelineReap event{start_ns, now_ns(), first_ticket, count};
    std::lock_guard<std::mutex> lock(reap_mutex_);
    reaps_[reap_count_++ % kReapRing] = event;
  }
  // The most recent reap passes, oldest first.
  std::vector<TimelineReap> recent_reaps() const {
    std::lock_guard<std::mutex> lock(reap_mutex_);
    const uint64_t n = std::min<uint64_t>(reap_count_, kReapRing);
    std::vector<TimelineReap> out;
    out.reserve(n);
    for (uint64_t k = reap_count_ - n; k < reap_count_; ++k) out.push_back(reaps_[k % kReapRing]);
    return out;
  }

 private:
  static constexpr size_t kReapRing = 4096;
  uint64_t mask_ = 0;
  std::unique_ptr<std::atomic<int64_t>[]> publish_ns_;
  mutable std::mutex reap_mutex_;
  std::vector<TimelineReap> reaps_;
  uint64_t reap_count_ = 0;
};

}  // namespace megaring::detail
