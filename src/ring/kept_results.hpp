// SPDX-License-Identifier: Apache-2.0
// Kept results that left the ring: completions a publisher asked to keep
// and has not read yet, held in host memory by ticket. One component for
// every holder: the shared ring's and each producer ring's parked results
// (a reaper moved them out so that they never hold ring positions), and a
// tenant's kept tickets (the drain pump delivers them here).
//
// A ticket may be announced before its result arrives (expect), and its
// publisher may give it up before then (release): the result is dropped on
// arrival. Thread-safe; waiters block on the arrival of any result.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "megaring/runtime.hpp"

namespace megaring::detail {

class KeptResults {
 public:
  enum class Look { kTaken, kPending, kNotPending };

  // `ticket`'s result will arrive through put(), unless it already has:
  // the publisher may learn its ticket after the result arrived (may throw
  // bad_alloc).
  void expect(uint64_t ticket) { expect(ticket, 1); }
  // expect() for the `count` tickets from `first`, under one lock.
  void expect(uint64_t first, uint32_t count) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (uint32_t i = 0; i < count; ++i)
      if (results_.count(first + i) == 0) pending_.insert(first + i);
  }
  // Stores `ticket`'s result, unless it was released while pending. It is
  // no longer pending either way: if storing it throws (bad_alloc), a wait
  // for it ends "not pending" rather than never (its waiters are woken
  // either way, after the lock is let go).
  void put(uint64_t ticket, const Completion& completion) {
    const WakeOnExit wake{arrived_};
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.erase(ticket);
    if (released_.erase(ticket) == 0) results_.emplace(ticket, completion);
  }
  // Takes `ticket`'s result into *out (nullptr: drops it).
  Look take(uint64_t ticket, Completion* out) {
    std::lock_guard<std::mutex> lock(mutex_);
    return take_locked(ticket, out);
  }
  // As take(), but waits while the ticket is pending, up to `until`, or
  // until give_up() says to stop (checked on every arrival and every `step`).
  template <class GiveUp>
  Look take_waiting(uint64_t ticket, Completion* out, std::chrono::steady_clock::time_point until,
                    std::chrono::nanoseconds step, GiveUp&& give_up) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      const Look look = take_locked(ticket, out);
      if (look != Look::kPending || give_up() || std::chrono::steady_clock::now() > until)
        return look;
      arrived_.wait_until(lock, std::min(until, std::chrono::steady_clock::now() + step));
    }
  }
  // The publisher gives `ticket` up: its stored result goes, or, if still
  // pending, it is dropped on arrival. False if it is neither.
  bool release(uint64_t ticket) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (results_.erase(ticket) != 0) return true;
    if (pending_.erase(ticket) == 0) return false;
    released_.insert(ticket);
    return true;
  }
  // `ticket` will never arrive (its answer was given otherwise): it is no
  // longer pending.
  void forget(uint64_t ticket) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.erase(ticket);
  }
  // Every result, stored or pending, goes (its holder is gone).
  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    results_.clear();
    pending_.clear();
    released_.clear();
  }
  // Wakes every waiter, to look at whatever ended their wait.
  void wake_all() {
    std::lock_guard<std::mutex> lock(mutex_);
    arrived_.notify_all();
  }
  size_t stored() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.size();
  }

 private:
  struct WakeOnExit {
    std::condition_variable& cv;
    ~WakeOnExit() { cv.notify_all(); }
  };

  Look take_locked(uint64_t ticket, Completion* out) {
    auto it = results_.find(ticket);
    if (it != results_.end()) {
      if (out != nullptr) *out = it->second;
      results_.erase(it);
      return Look::kTaken;
    }
    return pending_.count(ticket) != 0 ? Look::kPending : Look::kNotPending;
  }

  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::unordered_map<uint64_t, Completion> results_;
  std::unordered_set<uint64_t> pending_;
  std::unordered_set<uint64_t> released_;  // released while pending: dropped on arrival
};

}  // namespace megaring::detail
