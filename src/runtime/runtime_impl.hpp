// SPDX-License-Identifier: Apache-2.0
// Runtime::Impl: the lifecycle coordinator. It owns the backend (and with it
// the consumer and the shared regions), ring 0's host side, the producers'
// rings, the buffer table and the timeline recorder, and it alone moves the
// runtime through its states:
//
//   kRunning --shutdown--> kDraining --drained, consumer joined--> kStopped
//   kRunning/kDraining --abort, or consumer died--> kFailed (or kStopped)
//   any stop that cannot join the consumer --> kWedged (regions leaked)
//
// Within kRunning, the consumer's phase (suspend.cpp; publishing goes on in
// every phase, so paths that check state_ == kRunning need not know it):
//
//   kLive --suspend: stop_at = MR_STOP_AT_SUSPEND--> kSuspending
//   kSuspending --consumer exited, joined--> kSuspended
//     (a suspend() that times out leaves it kSuspending; the next suspend()
//     or resume() waits for the exit)
//   kSuspended --resume (or shutdown): stop_at = ~0, restart--> kLive
//   a relaunch that fails, or a consumer that dies meanwhile --> kFailed
//   abort() from any phase: the consumer (if running) stops, and every
//     ticket not completed reads ABORTED, as from kLive.
// suspend/resume hold the topology token (control_barrier.hpp), taken
// before lifecycle_mutex_, and the mutex; shutdown takes the token before a
// relaunch too.
//
// The components know nothing of each other or of the states: the rings ask
// it (RingHost) whether publishing is allowed and whether the consumer is
// alive; the buffer table asks it (RingProgress) how far the rings got.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "backends/backend.hpp"
#include "megaring/producer.hpp"
#include "megaring/runtime.hpp"
#include "ring/host_ring.hpp"
#include "ring/shared_ring.hpp"
#include "megaring/health.hpp"
#include "runtime/buffer_table.hpp"
#include "runtime/control_barrier.hpp"
#include "runtime/operator_watch.hpp"
#include "runtime/region_table.hpp"
#include "runtime/runtime_link.hpp"
#include "runtime/tenant_owners.hpp"
#include "runtime/timeline_recorder.hpp"

namespace megaring {

class Runtime::Impl final : public detail::RingHost, public detail::RingProgress {
 public:
  Status init(const Config& config, const Consumer& consumer);
  ~Impl();

  Status shutdown(Nanoseconds timeout);
  Status abort();
  // Suspension (suspend.cpp).
  Status suspend(Nanoseconds timeout);
  Status resume();
  ConsumerPhase consumer_phase() const;
  Status open_producer(std::unique_ptr<Producer>* out, Priority priority);
  Status alloc_buffer(uint64_t bytes, uint32_t owner, BufferHandle* handle);
  // by_owner: the owning tenant's call (RuntimeInternals); the runtime's
  // own calls refuse a live tenant's objects (tenant_owners.hpp).
  Status free_buffer(BufferHandle handle, bool by_owner);
  Status register_buffer(const void* memory, uint64_t bytes, uint32_t owner, BufferHandle* handle);
  Status unregister_buffer(BufferHandle handle, Nanoseconds timeout, WhileInUse while_in_use,
                           bool by_owner);
  Status copy_buffer(BufferHandle handle, uint64_t offset, void* host_ptr, uint64_t bytes,
                     bool to_buffer) {
    return buffers_->copy(handle, offset, host_ptr, bytes, to_buffer);
  }
  // Staging regions (region_table.hpp); creating one needs a running runtime.
  Status create_region(RegionPolicy policy, uint64_t bytes, uint32_t owner, RegionHandle* handle) {
    if (state_.load() != State::kRunning) return closed_status();
    return regions_->create(policy, bytes, owner, handle);
  }
  Status free_region(RegionHandle handle, bool by_owner) {
    return regions_->free(handle, nullptr, by_owner ? nullptr : &tenant_owners_);
  }
  detail::RegionTable& region_table() { return *regions_; }
  detail::TenantOwners& tenant_owners() { return tenant_owners_; }
  // Control operations (control_barrier.hpp), bounded by Config::control_timeout.
  detail::ControlBarrier& control() { return *control_; }
  Status run_control(const char* what, const std::vector<detail::ControlStep>& steps) {
    return control_->run(what, steps, config_.control_timeout);
  }
  Status timeline(Timeline* out) const {
    return timeline_.snapshot(*backend_, *ring_, config_.initial_ticket, out);
  }
  RuntimeStats stats();
  uint64_t heartbeat() const;
  // The operator's view (operator_view.cpp, runtime_metrics.cpp).
  Status health(Health* out);
  Status dump_state(StateDump* out);
  Status metrics_text(std::string* out);
  // Remembers an error for health() (and logs it at WARN).
  void note_error(const Status& error);
  // A wait*() that timed out: noted, logged, and with
  // Config::dump_on_wait_timeout the state dumped to the log.
  void on_wait_timeout(const char* call, uint64_t ticket, const Status& st);
  // Drain mode (runtime_internal.hpp).
  size_t drain(std::vector<detail::DrainRecord>* records);
  Status check_tenant_index(uint32_t index) const;

  detail::SharedRing& ring() { return *ring_; }
  detail::ConsumerBackend& backend() { return *backend_; }
  const Config& config() const { return config_; }
  uint64_t health_checks() const { return health_checks_.load(std::memory_order_relaxed); }
  const std::shared_ptr<detail::RuntimeLink>& link() const { return link_; }

  // RingHost
  const detail::HostRegions& regions() const override { return backend_->host(); }
  uint32_t ring_capacity() const override { return config_.ring_capacity; }
  // Refused from the moment abort() is called (abort_requested_ is set
  // before the consumer is told), not only once the ring is closed.
  Status publish_allowed() const override {
    return state_.load() == State::kRunning && !abort_requested_.load() ? Status::ok()
                                                                        : closed_status();
  }
  Status closed_status() const override;
  bool consumer_finalized() const override { return finalized_.load(std::memory_order_acquire); }
  Status check_consumer() override;
  Status set_ring_class(uint32_t ring, uint32_t ring_class) override;
  Status change_ring_class(uint32_t ring, uint32_t from, uint32_t to) override {
    const std::vector<detail::ControlStep> steps = {
        {[&] { return set_ring_class(ring, to); }, [&] { return set_ring_class(ring, from); }}};
    return run_control("set_priority", steps);
  }

  // RingProgress
  uint64_t retire_ticket() const override { return ring_->published_end(); }
  detail::RingCut retire_cut() override;
  bool completed(const detail::RingCut& cut) const override;

 private:
  enum class State : int { kRunning, kDraining, kStopped, kFailed, kWedged };
  enum class Phase : int { kLive, kSuspending, kSuspended };

  static Status check_config(const Config& config);
  Status start_consumer(const Consumer& consumer);
  Status start_user_counts();
  // A producer ring's DONE_COUNT (ACQUIRE, as SharedRing::done_count).
  uint64_t ring_done_count(uint32_t ring) const;
  Status consumer_health();
  void request_consumer_abort();
  void close_ring(State state, Result reason);
  void finalize_locked();
  Status stop_consumer_locked(Nanoseconds join_timeout);
  // The consumer died (or could not start again): the runtime fails, and
  // every ticket not completed reads ABORTED.
  void fail_locked(const Status& st, const std::string& what);
  // Suspension (suspend.cpp), with lifecycle_mutex_ held: waits until the
  // suspending consumer exited and joins it (kSuspended), or the deadline,
  // an abort, or its death; then starts it again (kLive).
  Status await_suspended_locked(std::chrono::steady_clock::time_point deadline);
  Status relaunch_locked();
  Status resume_to_drain_locked(std::chrono::steady_clock::time_point deadline, bool token_held);

  Config config_;
  std::unique_ptr<detail::ConsumerBackend> backend_;
  detail::TimelineRecorder timeline_;
  std::unique_ptr<detail::SharedRing> ring_;
  // Rings 1 .. Config::producer_rings (index ring - 1), for the life of the
  // runtime; Producers borrow them.
  std::vector<std::shared_ptr<detail::ProducerRing>> producer_rings_;
  std::unique_ptr<detail::BufferTable> buffers_;
  std::unique_ptr<detail::RegionTable> regions_;
  detail::TenantOwners tenant_owners_;
  std::unique_ptr<detail::ControlBarrier> control_;
  uint64_t user_first_ticket_ = 0;  // stats() counts from here (see start_user_counts)

  // Lifecycle. `finalized_` is set once the consumer stopped and the host
  // took ownership of the completion region; records for [done, end) are final.
  std::mutex lifecycle_mutex_;
  std::atomic<State> state_{State::kStopped};  // kRunning once the consumer started
  std::atomic<Result> close_reason_{Result::kShutdown};
  std::atomic<bool> abort_requested_{false};
  std::atomic<bool> finalized_{false};
  std::atomic<Phase> phase_{Phase::kLive};  // meaningful while kRunning (see the top)
  Consumer consumer_{};  // what runs, for relaunches
  Status failure_;  // why the runtime failed (guarded by lifecycle_mutex_)
  std::atomic<uint64_t> health_checks_{0};  // RuntimeInternals::health_checks
  detail::OperatorWatch watch_;  // last error, and what looks saw (operator_view.cpp)
  // Ended by ~Runtime; layers above register their end hooks (runtime_link.hpp).
  std::shared_ptr<detail::RuntimeLink> link_ = std::make_shared<detail::RuntimeLink>();
};

}  // namespace megaring
