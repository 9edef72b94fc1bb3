// SPDX-License-Identifier: Apache-2.0
// Runtime::Impl, the lifecycle coordinator (runtime_impl.hpp): start, the
// consumer's health, shutdown and abort, and what spans the rings
// (producers' rings handed out, the drain, statistics). Buffers:
// runtime_buffers.cpp.
#include <algorithm>
#include <array>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "support/log.hpp"
#include "support/nvtx.hpp"
#include "runtime/runtime_impl.hpp"

namespace megaring {

namespace {
using Clock = std::chrono::steady_clock;
using detail::SysRef;

// How long the completer lets a finished ticket wait for more to publish
// with it (issue 14: a batch is at most 64 slots or about a microsecond).
constexpr uint32_t kCompletionFlushNs = 1000;
}  // namespace

Status Runtime::Impl::init(const Config& config, const Consumer& consumer) {
  MR_NVTX_RANGE("megaring::create");
  Status st = check_config(config);
  if (!st) return st;
  config_ = config;
  Backend kind = config.backend;
  if (kind == Backend::kCuda || kind == Backend::kAuto) {
    if (config.force_eager_module_loading) setenv("CUDA_MODULE_LOADING", "EAGER", 0);
    if (kind == Backend::kAuto) kind = cuda_device_available() ? Backend::kCuda : Backend::kCpu;
  }
  if (kind == Backend::kCuda && config.count_costs)
    return Status(Result::kInvalidArgument, "count_costs needs the CPU backend");
  if (kind == Backend::kCpu && config.workers > kMaxCpuWorkers)
    return Status(Result::kInvalidArgument, "workers must be at most " +
                                                std::to_string(kMaxCpuWorkers) +
                                                " on the CPU backend, got " +
                                                std::to_string(config.workers));
  backend_ = kind == Backend::kCuda ? detail::make_cuda_backend() : detail::make_cpu_backend();
  consumer_ = consumer;
  st = backend_->init(config);
  if (st) st = start_consumer(consumer);
  if (!st) {
    MR_LOG(LogLevel::kWarn, "create failed: " + st.to_string());
    return st;
  }
  MR_LOG(LogLevel::kInfo,
         std::string("create: backend ") + backend_name(kind) + " (" + backend_->device_name() +
             "), consumer '" + consumer.name + "', " + std::to_string(backend_->units()) +
             " executors, ring_capacity " + std::to_string(config.ring_capacity) +
             ", producer_rings " + std::to_string(config.producer_rings) + ", max_buffers " +
             std::to_string(config.max_buffers) + ", max_tenants " + std::to_string(config.max_tenants) +
             ", staging_arena_bytes " + std::to_string(config.staging_arena_bytes) +
             ", timeline_capacity " + std::to_string(config.timeline_capacity) +
             ", initial_ticket " + std::to_string(config.initial_ticket));
  return Status::ok();
}

Status Runtime::Impl::start_consumer(const Consumer& consumer) {
  const uint32_t cap = config_.ring_capacity;
  const uint64_t mask = cap - 1;
  // Initialise every shared word before the consumer starts (the host owns
  // all regions until then).
  const detail::HostRegions& h = regions();
  const uint64_t first = config_.initial_ticket;
  const uint32_t rings = detail::ring_count(config_);
  for (uint32_t r = 0; r < rings; ++r) {
    for (uint64_t t = first; t < first + cap; ++t) {
      // A position's record starts with the stamp of the lap before its
      // first ticket, so no reaper can mistake it for a ticket's record.
      h.completions[uint64_t{r} * cap + (t & mask)].stamp =
          mr_make_stamp(t - cap, MR_STATUS_OK, MR_FAULT_NONE);
    }
  }
  h.submission->stop_at = ~0ull;
  h.submission->abort_flag = 0;
  for (uint32_t r = 0; r < rings; ++r) h.ring_done[r].done_count = first;
  user_first_ticket_ = first;
  Status st = timeline_.init(config_.timeline_capacity);
  if (!st) return st;
  ring_ = std::make_unique<detail::SharedRing>(*this, timeline_.ring_timeline());
  st = ring_->init(cap, first);
  if (!st) return st;
  for (uint32_t r = 1; r < rings; ++r) {
    producer_rings_.push_back(std::make_shared<detail::ProducerRing>(r, cap, first));
    // RELEASE: the ring's words above before a Producer's acquire of `host`.
    producer_rings_.back()->host.store(this, std::memory_order_release);
  }
  buffers_ = std::make_unique<detail::BufferTable>(*backend_, *this);
  control_ = std::make_unique<detail::ControlBarrier>(*backend_, *this);
  buffers_->init(config_.max_buffers);
  regions_ = std::make_unique<detail::RegionTable>(*backend_, *this);
  regions_->init(config_.max_regions);
  tenant_owners_.init(config_.max_tenants);

  ConsumerParams& p = backend_->params();
  p.capacity = cap;
  p.mask = mask;
  p.max_buffers = config_.max_buffers;
  p.max_tenants = config_.max_tenants;
  p.poll_backoff_min_ns = config_.poll_backoff_min_ns;
  p.poll_backoff_max_ns = config_.poll_backoff_max_ns;
  p.heartbeat_interval_ns = config_.heartbeat_interval_ns;
  // The crew the I/O block can hold: its warps but the completer's (one warp
  // in a block of one or two). The device clamps again; the CPU backend's
  // fetcher loads as this crew would (the cost model).
  const uint32_t block_warps = consumer.block_threads / 32;
  const uint32_t crew_room = block_warps > 2 ? block_warps - 1 : 1;
  const uint32_t crew = config_.fetch_warps == 0 ? kDefaultFetchWarps : config_.fetch_warps;
  p.fetch_warps = crew < crew_room ? crew : crew_room;
  p.completion_flush_ns = kCompletionFlushNs;
  p.first_ticket = first;
  st = backend_->set_private_cursors(first);
  if (!st) return st;
  st = backend_->start(consumer);
  if (!st) return st;
  state_.store(State::kRunning);
  if (!timeline_.on()) return Status::ok();
  st = timeline_.calibrate(*ring_);
  if (!st) return st;
  return start_user_counts();
}

// Timeline mode's calibration slots are the runtime's own: stats() counts
// from the first ticket after them, with every counter back at zero. Each
// was waited for, but a wait may end on its record's stamp before
// DONE_COUNT passes the ticket (slot_abi.h, H1): wait for DONE_COUNT, so
// that this reap takes every one of them.
Status Runtime::Impl::start_user_counts() {
  const uint64_t end = ring_->published_end();
  const auto deadline = detail::deadline_after(std::chrono::seconds(10));
  detail::HostWaiter waiter;
  while (ring_->done_count() < end) {
    if (Clock::now() > deadline)
      return Status(Result::kTimeout, "timeline clock calibration: slots not completed in time");
    waiter.pause();
  }
  ring_->reap(true);
  user_first_ticket_ = end;
  ring_->reset_counts();
  return Status::ok();
}

Runtime::Impl::~Impl() {
  // Producers that outlive us answer kShutdown from now on (RELEASE: pairs
  // with their acquire; a call racing with this is the caller's data race).
  for (const auto& ring : producer_rings_) ring->host.store(nullptr, std::memory_order_release);
  // Nothing to stop or free if init() failed before the tables existed.
  if (!backend_ || regions().completion_control == nullptr || !buffers_) return;
  const State s = state_.load();
  if (s == State::kRunning || s == State::kDraining) (void)abort();
  if (state_.load() == State::kWedged) {
    // The consumer may still touch every region: leaking is the only safe
    // choice. abort() already reported it.
    (void)backend_.release();
    return;
  }
  buffers_->free_all();
}

Status Runtime::Impl::closed_status() const {
  return close_reason_.load() == Result::kAborted
             ? Status(Result::kAborted, "runtime was aborted or its consumer failed")
             : Status(Result::kShutdown, "runtime is shut down");
}

uint64_t Runtime::Impl::ring_done_count(uint32_t ring) const {
  return SysRef<uint64_t>(regions().ring_done[ring].done_count).load(cuda::std::memory_order_acquire);
}

uint64_t Runtime::Impl::heartbeat() const {
  return SysRef<uint64_t>(regions().completion_control->heartbeat_ns).load(cuda::std::memory_order_relaxed);
}

Status Runtime::Impl::check_tenant_index(uint32_t index) const {
  if (index == 0 || index >= config_.max_tenants)
    return Status(Result::kInvalidArgument, "tenant index " + std::to_string(index) +
                                                " outside [1, " + std::to_string(config_.max_tenants) + ")");
  return Status::ok();
}

// ---------------------------------------------------------------------------
// The consumer's health and the stop
// ---------------------------------------------------------------------------
// The backend's health check, counted (RuntimeInternals::health_checks).
Status Runtime::Impl::consumer_health() {
  health_checks_.fetch_add(1, std::memory_order_relaxed);  // statistics (tests)
  return backend_->health();
}

// Detects a dead consumer (sticky CUDA error) and turns it into a stopped,
// finalized runtime so that every waiter gets an answer.
Status Runtime::Impl::check_consumer() {
  Status st = consumer_health();
  if (st) return st;
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  if (state_.load() == State::kRunning || state_.load() == State::kDraining)
    fail_locked(st, "consumer died: ");
  return failure_.is_ok() ? st : failure_;
}

void Runtime::Impl::fail_locked(const Status& st, const std::string& what) {
  note_error(Status(st.code(), what + st.message()));
  failure_ = st;
  request_consumer_abort();
  close_ring(State::kFailed, Result::kAborted);
  // The kernel is gone: nothing on the device writes the regions any more.
  finalize_locked();
}

// Also before the host takes over the records of a consumer it believes
// dead: were it still running after all, it stops at its next poll.
void Runtime::Impl::request_consumer_abort() {
  // Relaxed: a stop request, ordering nothing; units check it between slots.
  SysRef<uint32_t>(regions().submission->abort_flag).store(1, cuda::std::memory_order_relaxed);
}

void Runtime::Impl::close_ring(State state, Result reason) {
  // An abort() that raced a shutdown() stays the reason publishers are told.
  close_reason_.store(abort_requested_.load() ? Result::kAborted : reason);
  ring_->close();
  state_.store(state);
}

// The consumer has stopped: the host now owns the completion region.
void Runtime::Impl::finalize_locked() {
  if (finalized_.load()) return;
  ring_->write_aborted_records();
  // RELEASE: records above are final before anyone sees finalized_.
  finalized_.store(true, std::memory_order_release);
}

Status Runtime::Impl::stop_consumer_locked(Nanoseconds join_timeout) {
  Status st = backend_->join(join_timeout);
  if (!st) {
    if (st.code() == Result::kTimeout) {
      state_.store(State::kWedged);
      Status wedged(Result::kTimeout, st.message() +
                                          "; the consumer still owns the ring, whose memory is "
                                          "left allocated. Stop the process.");
      note_error(wedged);
      return wedged;
    }
    note_error(Status(st.code(), "consumer died while stopping: " + st.message()));
    failure_ = st;  // died while stopping: still nothing runs on the device
  }
  finalize_locked();
  ring_->reap(true);
  buffers_->collect(true);
  regions_->collect(true);
  state_.store(failure_.is_ok() ? State::kStopped : State::kFailed);
  return st;
}

Status Runtime::Impl::shutdown(Nanoseconds timeout) {
  MR_NVTX_RANGE("megaring::shutdown");
  if (!detail::valid_timeout(timeout))
    return Status(Result::kInvalidArgument, "shutdown timeout is negative");
  const auto deadline = detail::deadline_after(timeout);
  // A suspended consumer starts again to drain, holding the topology token
  // as resume() does (taken before the lock: runtime_impl.hpp). Only
  // suspend() moves the phase away from kLive, under this lock.
  std::optional<detail::ControlBarrier::TopologyToken> token;
  std::unique_lock<std::mutex> lock(lifecycle_mutex_);
  if (state_.load() == State::kRunning && phase_.load() != Phase::kLive) {
    lock.unlock();
    token.emplace(control());
    (void)token->take(deadline);
    lock.lock();
  }
  const State s = state_.load();
  if (s == State::kStopped) return Status::ok();
  if (s != State::kRunning) return failure_.is_ok() ? closed_status() : failure_;
  close_ring(State::kDraining, Result::kShutdown);
  if (phase_.load() != Phase::kLive) {
    Status resumed = resume_to_drain_locked(deadline, token && token->held());
    if (!resumed) return resumed;
  }
  token.reset();  // control operations now find the ring closed
  const uint64_t end = ring_->published_end();
  // The producers' rings drain first: the consumer stops at ring 0's stop_at,
  // so what they published must be done by then. Their tails include every
  // publish that returned before the close (it happened before this call);
  // one racing with it may land after this look, and then runs or completes
  // ABORTED (producer.hpp). Relaxed: only the values matter.
  std::array<uint64_t, MR_MAX_RINGS> ring_end{};
  for (const auto& ring : producer_rings_) ring_end[ring->ring] = ring->tail.load(std::memory_order_relaxed);
  const auto producers_drained = [&] {
    for (const auto& ring : producer_rings_)
      if (ring_done_count(ring->ring) < ring_end[ring->ring]) return false;
    return true;
  };
  bool stop_at_set = false;
  detail::HostWaiter waiter;
  for (;;) {
    if (!stop_at_set && producers_drained()) {
      // Relaxed: stop_at carries no data; every ticket below it is (or
      // will be) published by the producer that reserved it.
      SysRef<uint64_t>(regions().submission->stop_at).store(end, cuda::std::memory_order_relaxed);
      stop_at_set = true;
    }
    if (stop_at_set && producers_drained() && ring_->done_count() >= end) break;
    ring_->reap(false);
    if (abort_requested_.load()) break;  // abort() interrupts a drain
    if (Clock::now() > deadline) {
      const uint64_t done = ring_->done_count();
      close_reason_.store(Result::kAborted);
      request_consumer_abort();
      Status st = stop_consumer_locked(config_.abort_timeout);
      if (!st && st.code() == Result::kTimeout) return st;
      Status timed_out(Result::kTimeout, "shutdown drained " + std::to_string(done - config_.initial_ticket) +
                                             " of " + std::to_string(end - config_.initial_ticket) +
                                             " ring-0 slots (and the producers' rings " +
                                             (producers_drained() ? "" : "not ") +
                                             "wholly) before its timeout; the rest were aborted");
      note_error(timed_out);
      return timed_out;
    }
    if (waiter.due_for_health_check()) {
      Status st = consumer_health();
      if (!st) {
        note_error(Status(st.code(), "consumer died during shutdown: " + st.message()));
        failure_ = st;
        request_consumer_abort();
        state_.store(State::kFailed);
        finalize_locked();
        return st;
      }
    }
    waiter.pause();
  }
  // Drained: the units exit within a few polls of seeing stop_at. Give them
  // at least abort_timeout, whatever is left of the caller's timeout, so a
  // drain that finished just in time is not mistaken for a wedged consumer.
  const auto now = Clock::now();
  const Nanoseconds left = deadline > now ? Nanoseconds(deadline - now) : Nanoseconds(0);
  Status stopped = stop_consumer_locked(std::max(left, config_.abort_timeout));
  if (stopped)
    MR_LOG(LogLevel::kInfo, "shutdown: drained; " + std::to_string(end - user_first_ticket_) +
                                " ring-0 slots published in all; consumer stopped");
  return stopped;
}

Status Runtime::Impl::abort() {
  MR_NVTX_RANGE("megaring::abort");
  // Before the lock: a shutdown() in progress holds it and must see this.
  if (state_.load() == State::kRunning || state_.load() == State::kDraining) {
    abort_requested_.store(true);
    close_reason_.store(Result::kAborted);
    request_consumer_abort();
  }
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  const State s = state_.load();
  if (s == State::kStopped || s == State::kFailed) return Status::ok();
  if (s == State::kWedged) return Status(Result::kTimeout, "consumer did not stop");
  close_ring(State::kDraining, Result::kAborted);
  const uint64_t done = ring_->done_count();
  const uint64_t end = ring_->published_end();
  Status st = stop_consumer_locked(config_.abort_timeout);
  note_error(Status(Result::kAborted, "abort(): " + std::to_string(end - std::min(done, end)) +
                                          " ring-0 slots were not completed when it was called"));
  return st;
}

// ---------------------------------------------------------------------------
// What spans the rings
// ---------------------------------------------------------------------------
// The one entry that writes a ring's class word (open_producer, a
// Producer's release; control operations to come): a class that is not
// MR_RING_CLASS_* is refused, and so is a ring the runtime does not have.
// Once the consumer has stopped there is nobody to order: kShutdown or
// kAborted, and nothing is written.
Status Runtime::Impl::set_ring_class(uint32_t ring, uint32_t ring_class) {
  if (ring_class != MR_RING_CLASS_NORMAL && ring_class != MR_RING_CLASS_CRITICAL &&
      ring_class != MR_RING_CLASS_BULK)
    return Status(Result::kInvalidArgument,
                  "priority " + std::to_string(ring_class) + " is not a Priority");
  if (ring >= detail::ring_count(config_))
    return Status(Result::kInvalidArgument, "no ring " + std::to_string(ring));
  const State s = state_.load();
  if (s != State::kRunning && s != State::kDraining) return closed_status();
  return backend_->set_ring_class(ring, ring_class);
}

Status Runtime::Impl::open_producer(std::unique_ptr<Producer>* out, Priority priority) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  const uint32_t ring_class = static_cast<uint32_t>(priority);
  if (ring_class != MR_RING_CLASS_NORMAL && ring_class != MR_RING_CLASS_CRITICAL &&
      ring_class != MR_RING_CLASS_BULK)
    return Status(Result::kInvalidArgument,
                  "priority " + std::to_string(ring_class) + " is not a Priority");
  if (producer_rings_.empty())
    return Status(Result::kInvalidArgument, "no producer rings: set Config::producer_rings");
  Status st = publish_allowed();
  if (!st) return st;
  for (const auto& ring : producer_rings_) {
    bool expected = false;
    // ACQUIRE: the previous owner's last use of the ring happens before ours.
    if (!ring->owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) continue;
    try {
      // The class before the Producer exists, so before its first slot
      // (the write has landed when it returns: table_writes.hpp).
      st = set_ring_class(ring->ring, ring_class);
      if (!st) {
        ring->owned.store(false, std::memory_order_release);  // nobody took it
        return st;
      }
      ring->ring_class = ring_class;
      *out = detail::make_producer(ring);
    } catch (...) {
      ring->owned.store(false, std::memory_order_release);  // nobody took it
      throw;
    }
    return Status::ok();
  }
  return Status(Result::kRingFull, "every producer ring is taken (Config::producer_rings = " +
                                       std::to_string(producer_rings_.size()) + ")");
}

size_t Runtime::Impl::drain(std::vector<detail::DrainRecord>* records) {
  if (!ring_->drain_claimed()) return ring_->reap(true);
  // Park kept results: the pump is the only reaper, so it must never let an
  // unread kept ticket hold positions that producers wait for.
  return ring_->drain(records);
}

RuntimeStats Runtime::Impl::stats() {
  ring_->reap(true);
  RuntimeStats s;
  s.published = ring_->published_end() - user_first_ticket_;
  s.done_count = ring_->done_count();
  s.reaped = ring_->reaped() - user_first_ticket_;
  const detail::StatusCounts c = ring_->completions();
  s.completed_ok = c.ok;
  s.faulted = c.faulted;
  s.aborted = c.aborted;
  s.revoked = c.revoked;
  for (uint32_t i = 0; i < MR_FAULT_CODE_COUNT; ++i) s.faults_by_code[i] = c.faults_by_code[i];
  s.ring_full_events = ring_->ring_full_events();
  s.protocol_errors = ring_->protocol_errors();
  s.parked_results = ring_->parked_results();
  return s;
}

}  // namespace megaring
