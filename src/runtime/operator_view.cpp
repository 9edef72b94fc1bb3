// SPDX-License-Identifier: Apache-2.0
// The operator's view of a runtime (megaring/health.hpp): health(),
// dump_state() and the errors and timeouts they report. Nothing here
// publishes a slot or touches the consumer's per-slot path: it reads the
// shared words, the consumer's private cursors and the executors' notes
// (UnitNote), and remembers what earlier looks saw (operator_watch.hpp).
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

#include "runtime/runtime_impl.hpp"
#include "support/log.hpp"

namespace megaring {

const char* runtime_state_name(RuntimeState state) noexcept {
  switch (state) {
    case RuntimeState::kRunning: return "running";
    case RuntimeState::kDraining: return "draining";
    case RuntimeState::kStopped: return "stopped";
    case RuntimeState::kAborted: return "aborted";
    case RuntimeState::kFailed: return "failed";
    case RuntimeState::kWedged: return "wedged";
  }
  return "?";
}

const char* age_source_name(AgeSource source) noexcept {
  switch (source) {
    case AgeSource::kNone: return "none";
    case AgeSource::kSameClock: return "same clock";
    case AgeSource::kCalibrated: return "calibrated";
    case AgeSource::kRecorded: return "recorded";
    case AgeSource::kObserved: return "observed";
  }
  return "?";
}

void Runtime::Impl::note_error(const Status& error) {
  if (error.is_ok()) return;
  watch_.note_error(error, detail::host_now_ns());
  MR_LOG(LogLevel::kWarn, "error: " + error.to_string());
}

void Runtime::Impl::on_wait_timeout(const char* call, uint64_t ticket, const Status& st) {
  watch_.note_error(st, detail::host_now_ns());
  MR_LOG(LogLevel::kWarn, std::string(call) + "(ticket " + std::to_string(ticket) +
                              ") timed out: " + st.message());
  if (!config_.dump_on_wait_timeout || !detail::log_enabled(LogLevel::kWarn)) return;
  StateDump dump;
  if (!dump_state(&dump)) return;
  std::istringstream lines(format_state_dump(dump));
  for (std::string line; std::getline(lines, line);) MR_LOG(LogLevel::kWarn, "dump: " + line);
}

Status Runtime::Impl::health(Health* out) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  Health h;
  // A dead consumer is found here as a waiter would find it (and turns
  // the runtime kFailed); check_consumer is cheap enough for any look.
  const bool was_live = state_.load() == State::kRunning || state_.load() == State::kDraining;
  const Status consumer = was_live ? check_consumer() : Status::ok();
  switch (state_.load()) {
    case State::kRunning: h.state = RuntimeState::kRunning; break;
    case State::kDraining: h.state = RuntimeState::kDraining; break;
    case State::kStopped:
      h.state = close_reason_.load() == Result::kAborted ? RuntimeState::kAborted : RuntimeState::kStopped;
      break;
    case State::kFailed: h.state = RuntimeState::kFailed; break;
    case State::kWedged: h.state = RuntimeState::kWedged; break;
  }
  h.consumer_phase = consumer_phase();  // suspended: not alive, and no failure
  h.consumer_alive = consumer.is_ok() &&
                     (h.state == RuntimeState::kRunning || h.state == RuntimeState::kDraining) &&
                     !backend_->consumer_exited();
  h.heartbeat_ns = heartbeat();
  const int64_t now = detail::host_now_ns();
  // Every look feeds the observation, so that it is ready whichever is used.
  const int64_t observed = watch_.observe_heartbeat(h.heartbeat_ns, now);
  if (h.heartbeat_ns == 0) {
    h.heartbeat_age_source = AgeSource::kNone;  // never stamped
  } else if (backend_->kind() == Backend::kCpu) {
    // The CPU consumer's clock is the host's steady clock (now_ns()).
    h.heartbeat_age_ns = now - static_cast<int64_t>(h.heartbeat_ns);
    h.heartbeat_age_source = AgeSource::kSameClock;
  } else if (timeline_.on()) {
    h.heartbeat_age_ns = now - (static_cast<int64_t>(h.heartbeat_ns) - timeline_.clock_offset_ns());
    h.heartbeat_age_source = AgeSource::kCalibrated;
  } else {
    h.heartbeat_age_ns = observed;
    h.heartbeat_age_source = AgeSource::kObserved;
  }
  h.last_error = watch_.last_error(now, &h.last_error_age_ns);
  *out = std::move(h);
  return Status::ok();
}

Status Runtime::Impl::dump_state(StateDump* out) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  StateDump d;
  Status st = health(&d.health);
  if (!st) return st;
  d.backend = backend_name(backend_->kind());
  // The consumer's words first, then the rings': a unit's ticket read
  // before its ring's DONE_COUNT is busy only if DONE_COUNT had not passed
  // it by then.
  uint64_t cursors[3] = {0, 0, 0};
  std::vector<detail::UnitNote> notes;
  st = backend_->read_consumer_state(cursors, &notes);
  if (!st) return st;
  d.fetched = cursors[0];
  d.claimed = cursors[1];
  d.completed = cursors[2];
  d.rings.push_back(RingView{0, ring_->published_end(), ring_->done_count()});
  for (const auto& ring : producer_rings_)  // relaxed: a diagnostic look at the tail
    d.rings.push_back(RingView{ring->ring, ring->tail.load(std::memory_order_relaxed),
                               ring_done_count(ring->ring)});
  const auto done_of = [&d](uint32_t ring) -> uint64_t {
    for (const RingView& r : d.rings)
      if (r.ring == ring) return r.done_count;
    return ~0ull;  // a ring we do not have: never busy
  };
  for (uint32_t u = 0; u < notes.size(); ++u) {
    const detail::UnitNote& n = notes[u];
    UnitView v;
    v.unit = u;
    v.started = (n.what & 1u) != 0;
    if (v.started) {
      v.ring = static_cast<uint32_t>(n.what >> 8) & 0xFFu;
      v.chunk_slots = static_cast<uint32_t>(n.what >> 16) & 0xFFu;
      v.ticket = n.ticket;
      v.tenant = static_cast<uint32_t>(n.tenant_opcode >> 32);
      v.opcode = static_cast<uint32_t>(n.tenant_opcode);
      v.busy = v.ticket >= done_of(v.ring);
    }
    d.units.push_back(v);
  }
  const int64_t now = detail::host_now_ns();
  for (const RingView& r : d.rings) {
    const bool outstanding = r.done_count < r.published_end;
    const int64_t observed = watch_.observe_done(r.ring, r.done_count, outstanding, now);
    if (!outstanding) continue;
    OldestOutstanding o;
    o.any = true;
    o.ring = r.ring;
    o.ticket = r.done_count;
    const int64_t published = r.ring == 0 ? timeline_.publish_ns(r.done_count) : 0;
    if (published != 0) {
      o.age_ns = now - published;
      o.age_source = AgeSource::kRecorded;
    } else {
      o.age_ns = observed;
      o.age_source = AgeSource::kObserved;
    }
    if (!d.oldest.any || o.age_ns > d.oldest.age_ns) d.oldest = o;
  }
  *out = std::move(d);
  return Status::ok();
}

namespace {
std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}
std::string age_text(int64_t ns, AgeSource source) {
  if (source == AgeSource::kNone || ns < 0) return "unknown";
  return (source == AgeSource::kObserved ? ">= " : "") + std::to_string(ns) + " ns (" +
         age_source_name(source) + ")";
}
}  // namespace

std::string format_state_dump(const StateDump& d) {
  std::ostringstream o;
  const Health& h = d.health;
  o << "megaring state: " << runtime_state_name(h.state) << ", backend " << d.backend
    << ", consumer "
    << (h.consumer_phase != ConsumerPhase::kLive ? consumer_phase_name(h.consumer_phase)
                                                  : h.consumer_alive ? "alive" : "not alive")
    << "\n";
  o << "  heartbeat: stamp " << h.heartbeat_ns << ", age "
    << age_text(h.heartbeat_age_ns, h.heartbeat_age_source) << "\n";
  o << "  last error: ";
  if (h.last_error.is_ok())
    o << "none\n";
  else
    o << h.last_error.to_string() << " (" << h.last_error_age_ns << " ns ago)\n";
  for (const RingView& r : d.rings)
    o << "  ring " << r.ring << ": published_end " << r.published_end << ", done_count "
      << r.done_count << ", outstanding "
      << (r.published_end > r.done_count ? r.published_end - r.done_count : 0) << "\n";
  o << "  consumer cursors: fetched " << d.fetched << ", claimed " << d.claimed << ", completed "
    << d.completed << "\n";
  for (const UnitView& u : d.units) {
    o << "  unit " << u.unit << ": ";
    if (!u.started) {
      o << "no slot yet\n";
      continue;
    }
    o << (u.busy ? "running" : "idle, last") << " ring " << u.ring << " ticket " << u.ticket
      << " tenant " << hex32(u.tenant) << " opcode " << hex32(u.opcode);
    if (u.chunk_slots > 1) o << " (first of a chunk of " << u.chunk_slots << ")";
    o << "\n";
  }
  if (d.oldest.any)
    o << "  oldest outstanding: ring " << d.oldest.ring << " ticket " << d.oldest.ticket
      << ", age " << age_text(d.oldest.age_ns, d.oldest.age_source) << "\n";
  else
    o << "  oldest outstanding: none\n";
  return o.str();
}

}  // namespace megaring
