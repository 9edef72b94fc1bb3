// SPDX-License-Identifier: Apache-2.0
// Internal: control operations, changes to the consumer's tables that no
// slot may see half-applied (runtime.hpp, "Control operations").
//
// Protocol, for one operation (epoch E = the previous one + 1):
//   1. Take the topology token: one operation at a time, in the order the
//      token is taken.
//   2. Store E as ConsumerPrivate::control_request.
//   3. Wait until every executor has parked for E (UnitNote::control_parked
//      >= E): each one is between chunks (claim_chunk), has no slot running
//      and starts none until released. Its acknowledgement is a RELEASE
//      after its table loads; the host reads it with an ACQUIRE.
//   4. Apply the operation's steps in order. If one fails, undo it and every
//      step before it, in reverse order (an undo rewrites the old words,
//      whatever part of them its step wrote).
//   5. Store E as ConsumerPrivate::control_release (after every word of
//      steps 4 has landed): the executors go on, and read the new tables.
// Attempts: step 3 waits an attempt's grace at most; if some executor has
// not parked by then (it runs a long slot, or it was not scheduled), E is
// released, and after a pause of four graces the operation asks again with
// a new epoch, so the executors that did park are held a fifth of the time
// at most, not for the whole bound. The grace doubles from kParkGrace up to
// kMaxParkGrace with each attempt: on an oversubscribed machine an idle
// executor may wait a scheduler slice or more to run again, and a fixed
// 2 ms window could miss it for the whole bound (a property test saw that
// at a load of 6 on 2 cores).
// Cancellation: if step 3 does not finish within the operation's bound, or
// the runtime stops accepting work, or the consumer dies, the release is
// stored at once (nothing was written) and the operation fails: kTimeout
// naming the executors that did not answer and what each was running, or
// the runtime's closed or failed status. A unit that parks for E after its
// release finds it released and goes on. An executor that has left its
// loop (abort, stop, a slot it abandoned) answers every later epoch
// (leave_control in consumer/executor.cuh): it runs no slot any more. So while
// the runtime is suspended (Runtime::suspend: every unit has left) an
// operation applies at once; the relaunch resets the acknowledgements
// (ConsumerBackend::restart) while holding the topology token, so that no
// operation takes an old one for an answer.
//
// Only the executors park: the I/O unit (fetcher and completer) reads none
// of the tables a control operation changes. The consumer keeps fetching
// and completing while an operation runs.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "backends/backend.hpp"
#include "megaring/runtime.hpp"
#include "megaring/status.hpp"

namespace megaring::detail {

class RingHost;  // ring/host_ring.hpp (not included: tests include this
                 // header beside the consumer's, which defines names it does)

// One change of a control operation: `apply` writes it, `undo` writes back
// what was there before (after `apply` failed part way too).
struct ControlStep {
  std::function<Status()> apply;
  std::function<Status()> undo;
};

class ControlBarrier {
 public:
  ControlBarrier(ConsumerBackend& backend, RingHost& host) : backend_(backend), host_(host) {}

  // Runs `steps` as one control operation (see the top), waiting at most
  // `bound` for the token and the executors together. `what` names the
  // operation in errors and the log.
  Status run(const char* what, const std::vector<ControlStep>& steps, Nanoseconds bound);

  ControlStats stats() const;

  // The topology token (a flag under a mutex and a condition variable, not
  // a std::timed_mutex: ThreadSanitizer does not follow the timed lock
  // libstdc++ uses, pthread_mutex_clocklock). Given back when this goes.
  // Runtime::suspend and resume hold it too, so that no control operation
  // straddles a suspension; take it before the runtime's lifecycle lock.
  class TopologyToken {
   public:
    explicit TopologyToken(ControlBarrier& barrier) : b_(barrier) {}
    TopologyToken(const TopologyToken&) = delete;
    TopologyToken& operator=(const TopologyToken&) = delete;
    ~TopologyToken();
    // Waits until `deadline` at most (in slices: a far deadline is no
    // overflow); true once held.
    bool take(std::chrono::steady_clock::time_point deadline);
    bool held() const { return held_; }

   private:
    ControlBarrier& b_;
    bool held_ = false;
  };

  // Tests (RuntimeInternals::inject_control_failure): the next operation's
  // step number `step` (from 0) fails after it applied, as a table write
  // that failed part way would, so that the rollback runs. Once.
  void inject_failure_at(uint32_t step);

 private:
  using Clock = std::chrono::steady_clock;
  // How long the first attempt's parked executors wait for the rest, and
  // the most any attempt waits (the grace doubles between them); the pause
  // before the next attempt is kPauseGraces graces (so a slot that runs long
  // keeps the others parked at most a fifth of the time). Bounds shorter
  // than the first grace and pause together get one attempt.
  static constexpr Nanoseconds kParkGrace = std::chrono::milliseconds(2);
  static constexpr Nanoseconds kMaxParkGrace = std::chrono::milliseconds(64);
  static constexpr int kPauseGraces = 4;
  // Step 3: OK once every executor parked for `epoch`.
  Status await_parked(const char* what, uint64_t epoch, Clock::time_point deadline,
                      Nanoseconds bound);
  Status apply_steps(const char* what, const std::vector<ControlStep>& steps, bool* rolled_back);
  void record(Result outcome, bool rolled_back, Clock::time_point began);

  ConsumerBackend& backend_;
  RingHost& host_;
  std::mutex token_mutex_;  // guards token_held_
  std::condition_variable token_free_;
  bool token_held_ = false;  // the topology token
  uint64_t epoch_ = 0;       // the newest request; only its holder touches it
  static constexpr uint32_t kNoInjection = ~0u;
  std::atomic<uint32_t> inject_at_{kNoInjection};

  mutable std::mutex stats_mutex_;
  ControlStats stats_;
};

}  // namespace megaring::detail
