// SPDX-License-Identifier: Apache-2.0
// The API-sequence driver's steps on the runtime itself (see
// api_sequence_driver.hpp): Producers on their own rings, the lifecycle
// (shutdown, abort, suspend and resume, the registry or the runtime
// destroyed) and closing the registry.
#include "api_sequence_driver.hpp"

namespace megaring::fuzz::detail {

// A Producer's calls, on its own ring, against what the lifecycle allows:
// running, every call works (or finds its ring full); after shutdown
// every ticket it published completed OK; after abort each ends OK or
// ABORTED; after the runtime is gone, kShutdown.
void Driver::producer_step(ProducerModel& p) {
  const uint8_t what = in_.u8() % 8;
  if (p.producer == nullptr) {
    call_ = "Runtime::open_producer";
    if (rt_ == nullptr) return;
    const Status st = rt_->open_producer(&p.producer);
    if (life_ == Life::kRunning ? !st : st.code() != closed_result()) fail("unexpected " + st.to_string());
    p.kept.clear();
    p.published = false;
    return;
  }
  if (what == 0) {
    call_ = "~Producer";
    p.producer.reset();
    return;
  }
  if (what <= 3) {
    call_ = "Producer::publish_batch";
    const uint32_t n = 1 + in_.u8() % 4;  // the smallest ring holds 4
    const uint64_t echo = static_cast<uint64_t>(step_) << 8;
    std::vector<SlotRequest> batch;
    for (uint32_t i = 0; i < n; ++i) batch.push_back(ops::nop(echo + i));
    PublishOptions o;
    o.keep_result = (in_.u8() & 1) != 0;
    o.on_full = OnFull::kFail;
    Ticket first;
    const Status st = p.producer->publish_batch(batch.data(), n, &first, o);
    if (runtime_gone_ || life_ != Life::kRunning) {
      if (st.code() != closed_result()) fail("unexpected " + st.to_string());
      return;
    }
    if (st.code() == Result::kRingFull) return;
    if (!st) return fail("unexpected " + st.to_string());
    if (p.published && first.value != p.last.value + 1) fail("a ring's tickets skipped or repeated");
    for (uint32_t i = 0; o.keep_result && i < n; ++i)
      p.kept.push_back({Ticket{first.value + i, true}, echo + i});
    p.published = true;
    p.last = Ticket{first.value + n - 1, false};
    return;
  }
  if (what == 4 && !p.kept.empty()) return wait_oldest_kept(p, "Producer::wait");
  if (what == 5 && !p.kept.empty()) {
    const Ticket ticket = p.kept.front().first;
    p.kept.erase(p.kept.begin());
    call_ = "Producer::release";
    const Status st = p.producer->release(ticket);
    if (runtime_gone_ ? st.code() != Result::kShutdown : !st) fail("unexpected " + st.to_string());
    return;
  }
  if (p.published) {
    call_ = "Producer::wait_done";
    const Status st = p.producer->wait_done(p.last, seconds(30));
    if (runtime_gone_) {
      if (st.code() != Result::kShutdown) fail("unexpected " + st.to_string());
    } else if (!st && !(life_ == Life::kAborted && st.code() == Result::kAborted)) {
      fail("unexpected " + st.to_string());
    } else if (st && p.producer->done_count() <= p.last.value) {
      fail("wait_done returned before DONE_COUNT passed the ticket");
    }
  }
}

// Waits for p's oldest kept ticket: its own echo, or ABORTED after an
// abort; kShutdown once the runtime is gone.
void Driver::wait_oldest_kept(ProducerModel& p, const char* call) {
  const auto [ticket, echo] = p.kept.front();
  p.kept.erase(p.kept.begin());
  call_ = call;
  Completion c;
  const Status st = p.producer->wait(ticket, &c, seconds(30));
  if (runtime_gone_) {
    if (st.code() != Result::kShutdown) fail("unexpected " + st.to_string());
    return;
  }
  if (!st) return fail("unexpected " + st.to_string());
  if (c.ticket != ticket.value) fail("a completion for another ticket");
  const bool ran = c.status == MR_STATUS_OK && c.result == echo;
  if (!ran && !(life_ == Life::kAborted && c.status == MR_STATUS_ABORTED))
    fail("kept NOP ended with status " + std::to_string(c.status) + ", result " + std::to_string(c.result));
}

// Rare (1 in 16 of its draws): shutdown, abort, the registry or the
// runtime destroyed. Later calls must then fail cleanly.
void Driver::lifecycle() {
  const uint8_t which = in_.u8();
  if (which % 16 == 8 && rt_ != nullptr) return suspend_and_resume();
  if (which % 16 != 0 || rt_ == nullptr) return;
  switch ((which / 16) % 4) {
    case 0:
      call_ = "Runtime::shutdown";
      if (life_ != Life::kRunning) return;
      if (registry_) {  // the pump drains: the manual pump must run meanwhile
        close_registry();
        if (!failure_.empty()) return;
      }
      if (!rt_->shutdown(seconds(30))) return fail("shutdown failed");
      life_ = Life::kShutDown;
      return;
    case 1:
      call_ = "Runtime::abort";
      if (life_ == Life::kRunning) {
        (void)rt_->abort();
        life_ = Life::kAborted;
      }
      return;
    case 2:
      call_ = "~TenantRegistry";
      return close_registry();
    default:
      call_ = "~Runtime (before its registry)";
      rt_.reset();
      runtime_gone_ = true;
      for (TenantModel& t : tenants_)
        if (t.live) revoke_in_model(t);
      runtime_regions_.clear();
      return;
  }
}

// A suspension and a resume, back to back: slots in flight finish, the
// rest wait and then run, and nothing the model knows changes.
void Driver::suspend_and_resume() {
  call_ = "Runtime::suspend";
  const Status st = rt_->suspend(seconds(30));
  if (life_ != Life::kRunning) return expect(st, {Result::kShutdown, Result::kAborted});
  expect(st, {Result::kSuccess});
  if (!st) return;
  if (rt_->consumer_phase() != megaring::ConsumerPhase::kSuspended) return fail("suspended, but not so reported");
  call_ = "Runtime::resume";
  expect(rt_->resume(), {Result::kSuccess});
}

// Destroys the registry: every tenant revoked, queued slots drained.
void Driver::close_registry() {
  if (registry_ == nullptr) return;
  registry_.reset();
  for (TenantModel& t : tenants_)
    if (t.live) revoke_in_model(t);
  registry_closed_ = true;
}

}  // namespace megaring::fuzz::detail
