// SPDX-License-Identifier: Apache-2.0
// Runtime::suspend / resume: the consumer stops, with rings and tables
// intact, and starts again where each ring stopped (runtime_impl.hpp, the
// consumer's phase; README, "Beside PyTorch").
//
// The protocol (consumer_core.cuh): the host stores MR_STOP_AT_SUSPEND as
// stop_at; the fetcher reads it at a stop check (every kStopCheckRounds
// rounds), stops fetching, saves each ring's fetched_end and the staged
// sequence (ConsumerPrivate::resume_*), and stops at that sequence as a
// graceful shutdown would: the executors run every staged slot, the
// completer publishes every one, then every unit exits. The relaunch
// (ConsumerBackend::restart) resets the words a run writes and starts the
// consumer with ConsumerParams::resume = 1: it goes on from the saved
// cursors. Slots published meanwhile wait READY in their rings.
#include <string>

#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "runtime/runtime_impl.hpp"
#include "support/log.hpp"
#include "support/nvtx.hpp"

namespace megaring {

namespace {
using Clock = std::chrono::steady_clock;
using detail::SysRef;
}  // namespace

const char* consumer_phase_name(ConsumerPhase phase) noexcept {
  switch (phase) {
    case ConsumerPhase::kLive: return "live";
    case ConsumerPhase::kSuspending: return "suspending";
    case ConsumerPhase::kSuspended: return "suspended";
  }
  return "?";
}

ConsumerPhase Runtime::Impl::consumer_phase() const {
  if (state_.load() != State::kRunning) return ConsumerPhase::kLive;
  switch (phase_.load()) {
    case Phase::kSuspending: return ConsumerPhase::kSuspending;
    case Phase::kSuspended: return ConsumerPhase::kSuspended;
    case Phase::kLive: break;
  }
  return ConsumerPhase::kLive;
}

Status Runtime::Impl::suspend(Nanoseconds timeout) {
  MR_NVTX_RANGE("megaring::suspend");
  if (!detail::valid_timeout(timeout))
    return Status(Result::kInvalidArgument, "suspend timeout is negative");
  const auto deadline = detail::deadline_after(timeout);
  // The token first, then the lifecycle lock (runtime_impl.hpp): no control
  // operation runs while the consumer stops.
  detail::ControlBarrier::TopologyToken token(control());
  if (!token.take(deadline))
    return Status(Result::kTimeout, "suspend: a control operation held the topology token past the timeout");
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  if (state_.load() != State::kRunning || abort_requested_.load())
    return failure_.is_ok() ? closed_status() : failure_;
  if (phase_.load() == Phase::kSuspended) return Status::ok();  // idempotent
  if (phase_.load() == Phase::kLive) {
    // Relaxed: a stop request, it carries no data; the consumer's exit
    // release (exited_units) orders everything it did before.
    SysRef<uint64_t>(regions().submission->stop_at).store(MR_STOP_AT_SUSPEND, cuda::std::memory_order_relaxed);
    phase_.store(Phase::kSuspending);
  }
  Status st = await_suspended_locked(deadline);
  if (st) MR_LOG(LogLevel::kInfo, "suspend: the consumer stopped");
  return st;
}

Status Runtime::Impl::resume() {
  MR_NVTX_RANGE("megaring::resume");
  detail::ControlBarrier::TopologyToken token(control());
  (void)token.take(Clock::time_point::max());  // a control operation ends within its bound
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  if (state_.load() != State::kRunning || abort_requested_.load())
    return failure_.is_ok() ? closed_status() : failure_;
  if (phase_.load() == Phase::kLive)
    return Status(Result::kInvalidArgument, "resume: the consumer is not suspended");
  Status st = await_suspended_locked(Clock::time_point::max());
  if (st) st = relaunch_locked();
  if (st) MR_LOG(LogLevel::kInfo, "resume: the consumer started again");
  return st;
}

Status Runtime::Impl::await_suspended_locked(Clock::time_point deadline) {
  detail::HostWaiter waiter;
  while (phase_.load() == Phase::kSuspending) {
    if (backend_->consumer_exited()) {
      // Every unit has returned (or is returning): the join is short.
      Status st = backend_->join(config_.abort_timeout);
      if (!st) {
        if (st.code() != Result::kTimeout) fail_locked(st, "consumer died while suspending: ");
        return st;
      }
      phase_.store(Phase::kSuspended);
      break;
    }
    // abort() interrupts the wait (it needs the lifecycle lock); so does a
    // shutdown that timed out.
    if (abort_requested_.load()) return closed_status();
    if (waiter.due_for_health_check()) {
      Status st = consumer_health();
      if (!st) {
        fail_locked(st, "consumer died while suspending: ");
        return st;
      }
    }
    if (Clock::now() > deadline)
      return Status(Result::kTimeout,
                    "suspend: a slot the consumer had staged still runs; the runtime stays "
                    "suspending (suspend() again waits again, resume() waits and starts it)");
    waiter.pause();
  }
  return Status::ok();
}

// shutdown() of a suspended or suspending runtime, its ring closed: the
// consumer starts again (once it has exited) to drain. If it cannot by the
// deadline (or an abort, or without the topology token), what is not
// completed is aborted, as a shutdown that times out does.
Status Runtime::Impl::resume_to_drain_locked(Clock::time_point deadline, bool token_held) {
  Status resumed = token_held ? await_suspended_locked(deadline)
                              : Status(Result::kTimeout, "a control operation held the topology token");
  if (resumed) resumed = relaunch_locked();
  if (resumed || state_.load() == State::kFailed) return resumed;  // failed: finalized
  close_reason_.store(Result::kAborted);
  request_consumer_abort();
  Status st = stop_consumer_locked(config_.abort_timeout);
  if (!st && st.code() == Result::kTimeout) return st;
  Status timed_out(resumed.code(), "shutdown of a suspended runtime: " + resumed.message() +
                                       "; the slots not completed were aborted");
  note_error(timed_out);
  return timed_out;
}

Status Runtime::Impl::relaunch_locked() {
  // Relaxed: no request any more; the restart orders it before the consumer.
  SysRef<uint64_t>(regions().submission->stop_at).store(~0ull, cuda::std::memory_order_relaxed);
  Status st = backend_->restart(consumer_);
  if (!st) {
    // Nothing runs, and nothing will: every ticket not completed ends ABORTED.
    fail_locked(st, "the consumer could not start again after a suspension: ");
    return st;
  }
  phase_.store(Phase::kLive);
  return Status::ok();
}

}  // namespace megaring
