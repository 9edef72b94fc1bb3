// SPDX-License-Identifier: Apache-2.0
// Control operations: the host side of the park-apply-release protocol
// (control_barrier.hpp).
#include "runtime/control_barrier.hpp"

#include <algorithm>
#include <string>
#include <thread>

#include "ring/host_ring.hpp"
#include "support/log.hpp"

namespace megaring::detail {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t elapsed_ns(Clock::time_point since) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - since).count());
}

// "unit 3 (ticket 812 of ring 1, tenant 7, opcode 256)" for the executors
// that did not park, from the operator's notes.
std::string describe_unparked(ConsumerBackend& backend, const std::vector<uint64_t>& parked,
                              uint64_t epoch) {
  uint64_t cursors[3] = {0, 0, 0};
  std::vector<UnitNote> notes;
  const bool have_notes = backend.read_consumer_state(cursors, &notes).is_ok();
  std::string out;
  uint32_t listed = 0;
  for (uint32_t u = 0; u < parked.size(); ++u) {
    if (parked[u] >= epoch) continue;
    if (listed++ == 4) {
      out += ", ...";
      break;
    }
    if (!out.empty()) out += ", ";
    out += "unit " + std::to_string(u);
    if (have_notes && u < notes.size() && notes[u].what != 0) {
      const UnitNote& n = notes[u];
      out += " (last took ticket " + std::to_string(n.ticket) + " of ring " +
             std::to_string((n.what >> 8) & 0xFFu) + ", tenant " +
             std::to_string(n.tenant_opcode >> 32) + ", opcode " +
             std::to_string(n.tenant_opcode & 0xFFFFFFFFu) + ")";
    }
  }
  return out;
}

// Step 5 of an attempt: the release of its epoch, stored once, on every way
// out (an exception from a step or an allocation included), so that no
// executor stays parked for an operation that has ended.
class ReleaseOnExit {
 public:
  ReleaseOnExit(ConsumerBackend& backend, uint64_t epoch) : backend_(backend), epoch_(epoch) {}
  ReleaseOnExit(const ReleaseOnExit&) = delete;
  ReleaseOnExit& operator=(const ReleaseOnExit&) = delete;
  ~ReleaseOnExit() {
    try {
      (void)now();
    } catch (...) {  // a Status message that could not be allocated: the store was tried
    }
  }
  Status now() {
    if (released_) return Status::ok();
    released_ = true;
    return backend_.write_control_word(ConsumerBackend::ControlWord::kRelease, epoch_);
  }

 private:
  ConsumerBackend& backend_;
  uint64_t epoch_;
  bool released_ = false;
};

// "200 ms", or "1500 us" below a whole millisecond count.
std::string format_bound(Nanoseconds bound) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(bound).count();
  return us % 1000 == 0 ? std::to_string(us / 1000) + " ms" : std::to_string(us) + " us";
}

}  // namespace

ControlBarrier::TopologyToken::~TopologyToken() {
  if (!held_) return;
  {
    std::lock_guard<std::mutex> lock(b_.token_mutex_);
    b_.token_held_ = false;
  }
  b_.token_free_.notify_one();
}

bool ControlBarrier::TopologyToken::take(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(b_.token_mutex_);
  while (b_.token_held_) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return false;
    b_.token_free_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
  b_.token_held_ = true;
  held_ = true;
  return true;
}

Status ControlBarrier::run(const char* what, const std::vector<ControlStep>& steps,
                           Nanoseconds bound) {
  const Clock::time_point began = Clock::now();
  const Clock::time_point deadline =
      bound >= std::chrono::hours(24 * 365) ? Clock::time_point::max() : began + bound;
  TopologyToken token(*this);
  if (!token.take(deadline)) {
    record(Result::kTimeout, false, began);
    return Status(Result::kTimeout, std::string(what) +
                                        ": another control operation held the topology token "
                                        "past this one's bound");
  }
  Status st = host_.publish_allowed();
  if (!st) {
    record(st.code(), false, began);
    return Status(st.code(), std::string(what) + ": " + st.message());
  }
  bool rolled_back = false;
  const bool attempts = deadline - began > kParkGrace * (1 + kPauseGraces);
  Nanoseconds grace = kParkGrace;
  for (;;) {
    const uint64_t epoch = ++epoch_;
    ReleaseOnExit release(backend_, epoch);
    st = backend_.write_control_word(ConsumerBackend::ControlWord::kRequest, epoch);
    if (!st) break;
    // An attempt waits its grace at most: the executors that parked do not
    // sit idle behind one that runs a long slot for the whole bound. Past
    // it they go on, and after kPauseGraces graces a new epoch asks again,
    // with twice the grace (control_barrier.hpp, Attempts).
    const Clock::time_point attempt_end =
        attempts ? std::min(deadline, Clock::now() + grace) : deadline;
    st = await_parked(what, epoch, attempt_end, bound);
    if (st.code() == Result::kTimeout && attempt_end < deadline) {
      st = release.now();
      if (!st) break;
      const Clock::time_point resume = std::min(deadline, Clock::now() + grace * kPauseGraces);
      std::this_thread::sleep_until(resume);
      grace = std::min(grace * 2, kMaxParkGrace);
      continue;
    }
    if (st) st = apply_steps(what, steps, &rolled_back);
    const Status released = release.now();
    if (st && !released) st = released;
    break;
  }
  record(st.code(), rolled_back, began);
  if (!st) MR_LOG(LogLevel::kWarn, "control operation failed: " + st.to_string());
  return st;
}

Status ControlBarrier::await_parked(const char* what, uint64_t epoch, Clock::time_point deadline,
                                    Nanoseconds bound) {
  std::vector<uint64_t> parked;
  // An executor between slots answers within its poll backoff: yield (the
  // thread stays runnable; a sleep on a loaded machine costs a scheduler
  // slice) for up to kSpinFor, then sleep in growing steps, for executors
  // that finish a long chunk first. Each look is one copy on the GPU.
  constexpr auto kSpinFor = std::chrono::microseconds(200);
  const Clock::time_point spin_until = Clock::now() + kSpinFor;
  std::chrono::microseconds sleep(10);
  for (;;) {
    Status st = backend_.read_control_parked(&parked);
    if (!st) return st;
    // The runtime's state after the acknowledgements: an executor that left
    // because of an abort answers as parked, and the abort was requested
    // (publish_allowed refuses) before any executor could see it.
    const bool all_parked =
        std::all_of(parked.begin(), parked.end(), [&](uint64_t e) { return e >= epoch; });
    st = host_.publish_allowed();
    if (st) st = host_.check_consumer();
    if (!st) return Status(st.code(), std::string(what) + ": cancelled: " + st.message());
    if (all_parked) return Status::ok();
    if (Clock::now() >= deadline) {
      return Status(Result::kTimeout,
                    std::string(what) + ": cancelled, tables unchanged: executors did not reach a "
                                        "point between slots within " +
                        format_bound(bound) + ": " + describe_unparked(backend_, parked, epoch));
    }
    if (Clock::now() < spin_until) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(sleep);
      sleep = std::min(sleep * 2, std::chrono::microseconds(1000));
    }
  }
}

Status ControlBarrier::apply_steps(const char* what, const std::vector<ControlStep>& steps,
                                   bool* rolled_back) {
  const uint32_t inject = inject_at_.exchange(kNoInjection);
  for (size_t i = 0; i < steps.size(); ++i) {
    Status st = steps[i].apply();
    if (st && i == inject)
      st = Status(Result::kInternal, "injected failure (RuntimeInternals::inject_control_failure)");
    if (st) continue;
    // Undo the failed step (it may have written part of its words) and
    // every one before it, newest first.
    *rolled_back = true;
    for (size_t j = i + 1; j-- > 0;) {
      const Status undone = steps[j].undo();
      if (!undone)
        return Status(Result::kInternal, std::string(what) + ": step " + std::to_string(i) +
                                             " failed (" + st.to_string() + ") and undoing step " +
                                             std::to_string(j) + " failed too (" +
                                             undone.to_string() + "): the tables are not known");
    }
    return Status(st.code(), std::string(what) + ": rolled back, tables unchanged: step " +
                                 std::to_string(i) + " failed: " + st.message());
  }
  return Status::ok();
}

void ControlBarrier::record(Result outcome, bool rolled_back, Clock::time_point began) {
  const uint64_t ns = elapsed_ns(began);
  std::lock_guard<std::mutex> lock(stats_mutex_);
  if (outcome == Result::kSuccess)
    ++stats_.operations;
  else if (rolled_back)
    ++stats_.rolled_back;
  else
    ++stats_.cancelled;
  stats_.last_ns = ns;
  stats_.max_ns = std::max(stats_.max_ns, ns);
  stats_.total_ns += ns;
}

ControlStats ControlBarrier::stats() const {
  std::lock_guard<std::mutex> lock(stats_mutex_);
  return stats_;
}

void ControlBarrier::inject_failure_at(uint32_t step) { inject_at_.store(step); }

}  // namespace megaring::detail
