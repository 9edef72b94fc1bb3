// SPDX-License-Identifier: Apache-2.0
// Completions counted by status (and faults by code): the runtime's reaper
// counts its ring's, the tenant drain pump each tenant's. Relaxed counters:
// statistics only, read while they move.
#pragma once

#include <atomic>
#include <cstdint>

#include "megaring/slot_abi.h"

namespace megaring::detail {

// A pass's counts, in plain words, added to a StatusTally at its end.
struct StatusCounts {
  uint64_t ok = 0, faulted = 0, aborted = 0, revoked = 0;
  uint64_t faults_by_code[MR_FAULT_CODE_COUNT] = {};

  void count(uint32_t status, uint32_t fault) {
    if (status == MR_STATUS_OK) {
      ++ok;
    } else if (status == MR_STATUS_FAULT) {
      ++faulted;
      ++faults_by_code[fault < MR_FAULT_CODE_COUNT ? fault : 0];
    } else if (status == MR_STATUS_REVOKED) {
      ++revoked;
    } else {
      ++aborted;
    }
  }
};

class StatusTally {
 public:
  // For a tally with a single writer (the reap-lock holder): a relaxed load
  // and store per counter, no read-modify-write.
  void add_single_writer(const StatusCounts& c) {
    add(ok_, c.ok);
    add(faulted_, c.faulted);
    add(aborted_, c.aborted);
    add(revoked_, c.revoked);
    for (uint32_t code = 0; code < MR_FAULT_CODE_COUNT; ++code) add(by_code_[code], c.faults_by_code[code]);
  }
  // For a tally that several threads count into, one completion at a time:
  // one read-modify-write per counter that moves (as StatusCounts::count).
  void count_shared(uint32_t status, uint32_t fault) {
    if (status == MR_STATUS_OK) {
      ok_.fetch_add(1, std::memory_order_relaxed);
    } else if (status == MR_STATUS_FAULT) {
      faulted_.fetch_add(1, std::memory_order_relaxed);
      by_code_[fault < MR_FAULT_CODE_COUNT ? fault : 0].fetch_add(1, std::memory_order_relaxed);
    } else if (status == MR_STATUS_REVOKED) {
      revoked_.fetch_add(1, std::memory_order_relaxed);
    } else {
      aborted_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  StatusCounts read() const {
    StatusCounts c;
    c.ok = ok_.load(std::memory_order_relaxed);
    c.faulted = faulted_.load(std::memory_order_relaxed);
    c.aborted = aborted_.load(std::memory_order_relaxed);
    c.revoked = revoked_.load(std::memory_order_relaxed);
    for (uint32_t code = 0; code < MR_FAULT_CODE_COUNT; ++code)
      c.faults_by_code[code] = by_code_[code].load(std::memory_order_relaxed);
    return c;
  }
  // Back to zero; only while no thread counts.
  void reset() {
    ok_.store(0);
    faulted_.store(0);
    aborted_.store(0);
    revoked_.store(0);
    for (auto& c : by_code_) c.store(0);
  }

 private:
  static void add(std::atomic<uint64_t>& counter, uint64_t n) {
    if (n != 0) counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::atomic<uint64_t> ok_{0}, faulted_{0}, aborted_{0}, revoked_{0};
  std::atomic<uint64_t> by_code_[MR_FAULT_CODE_COUNT] = {};
};

}  // namespace megaring::detail
