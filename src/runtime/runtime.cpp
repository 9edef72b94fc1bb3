// Host side of the ring: ticket reservation and publish (P1-P3), reaping and
// waiting (H1-H2), buffers, and the runtime lifecycle. Step names refer to
// the protocol in megaring/slot_abi.h.
//
// Host-only words and their roles:
//   tail_      next ticket to reserve; bit 63 set once the ring is closed
//              (shutdown/abort), so no reservation can slip past the close.
//   reaped_    every ticket below it is accounted for and its position may be
//              reused: P1 admits ticket t only when t < reaped_ + capacity.
//   keep_[pos] ticket + 1 while a kept ticket's completion waits to be read
//              in place; the reaper does not pass it, so the record stays
//              valid. When the ring needs the position (a producer found it
//              full), the reaper parks the completion in parked_ instead:
//              kept results never hold the ring hostage, so a thread that
//              keeps a ticket and publishes a ring's worth more cannot
//              deadlock on itself.
//   origin_[pos] the publisher's tag for the drain sink (0: plain publish).
//   sink_      the drain sink (tenant layer), or null. While one is attached
//              only drain() reaps (see runtime_internal.hpp).
#include <cuda/atomic>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "runtime/api_guard.hpp"
#include "backends/backend.hpp"
#include "ring/host_ring.hpp"
#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "megaring/producer.hpp"
#include "megaring/runtime.hpp"
#include "runtime/nvtx.hpp"
#include "runtime/runtime_internal.hpp"
#include "runtime/timeline_trace.hpp"

namespace megaring {

namespace {

using detail::deadline_after;
using detail::HostWaiter;
using detail::read_record;

template <class T>
using SysRef = cuda::atomic_ref<T, cuda::thread_scope_system>;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kClosedBit = 1ull << 63;
// How long the completer lets a finished ticket wait for more to publish
// with it (issue 14: a batch is at most 64 slots or about a microsecond).
constexpr uint32_t kCompletionFlushNs = 1000;
// keep_ values besides 0 and ticket + 1, held briefly by one thread:
constexpr uint64_t kParking = ~0ull;      // the reaper is moving the result to parked_
constexpr uint64_t kReading = ~0ull - 1;  // a waiter is reading the result in place

Status negative_timeout(const char* what) {
  return Status(Result::kInvalidArgument, std::string(what) + " is negative");
}

// The first buffer generation of each runtime's table: runtimes of one
// process start theirs apart, so that a handle carried over from another
// runtime is refused here unless it happens to match (1 in 65535).
uint16_t next_generation_seed() {
  static std::atomic<uint32_t> runtimes{0};
  const uint32_t n = runtimes.fetch_add(1, std::memory_order_relaxed);
  return static_cast<uint16_t>((n * 7919u) % 0xFFFFu);  // 0 .. 65534; +1 at first use
}

enum class State : int { kRunning, kDraining, kStopped, kFailed, kWedged };

}  // namespace

const char* backend_name(Backend backend) noexcept {
  switch (backend) {
    case Backend::kAuto: return "auto";
    case Backend::kCuda: return "cuda";
    case Backend::kCpu: return "cpu";
  }
  return "unknown";
}

bool cuda_device_available() noexcept {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();  // e.g. cudaErrorInsufficientDriver without a driver
  return err == cudaSuccess && count > 0;
}

namespace ops {
namespace {
// One slot request: an opcode and its leading arguments (the rest are 0).
static_assert(MR_SLOT_ARGS == 5, "make() takes every argument");
SlotRequest make(uint32_t opcode, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                 uint64_t a3 = 0, uint64_t a4 = 0) {
  return SlotRequest{opcode, /*tenant=*/0, MR_SLOT_FLAG_NONE, {a0, a1, a2, a3, a4}};
}
}  // namespace

SlotRequest nop(uint64_t echo) { return make(MR_OP_NOP, echo); }
SlotRequest store_u32(BufferHandle buffer, uint64_t offset, uint32_t value) {
  return make(MR_OP_STORE_U32, buffer, offset, value);
}
SlotRequest atomic_add(BufferHandle buffer, uint64_t offset, uint64_t delta) {
  return make(MR_OP_ATOMIC_ADD, buffer, offset, delta);
}
SlotRequest fill(BufferHandle buffer, uint64_t offset, uint64_t bytes, uint8_t value) {
  return make(MR_OP_FILL, buffer, offset, bytes, value);
}
SlotRequest copy(BufferHandle dst, uint64_t dst_offset, BufferHandle src, uint64_t src_offset,
                 uint64_t bytes) {
  return make(MR_OP_COPY, dst, dst_offset, src, src_offset, bytes);
}
SlotRequest reduce_add_u32(BufferHandle buffer, uint64_t offset, uint64_t count) {
  return make(MR_OP_REDUCE_ADD_U32, buffer, offset, count);
}
SlotRequest fence() { return make(MR_OP_FENCE); }
SlotRequest delay_ns(uint64_t ns) { return make(MR_OP_DELAY_NS, ns); }
}  // namespace ops

// ---------------------------------------------------------------------------
class Runtime::Impl final : public detail::ProducerHost {
 public:
  Status init(const Config& config, const Consumer& consumer);
  ~Impl();
  // Runs first in ~Runtime, while every part of the runtime is alive: an
  // attached drain sink (a TenantRegistry outliving its runtime) detaches.
  void detach_sink_before_destruction() noexcept {
    detail::DrainSink* sink = sink_.load(std::memory_order_acquire);
    if (sink != nullptr) sink->on_runtime_destroyed();
  }

  // `record`: ask for the completion record without keeping the ticket
  // (drain sinks that need results).
  Status publish(const SlotRequest* requests, uint32_t count, Ticket* first,
                 const PublishOptions& options, uint64_t origin = 0, bool record = false);
  Status wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout);
  Status wait_done(const Ticket& ticket, Nanoseconds timeout);
  Status release(const Ticket& ticket);
  RuntimeStats stats();
  Status consumer_counters(ConsumerCounters* out) {
    if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
    return backend_->read_consumer_counters(out);
  }
  Status consumer_costs(CostCounters* executors, CostCounters* io) {
    if (executors == nullptr || io == nullptr) return Status(Result::kInvalidArgument, "out is null");
    return backend_->read_consumer_costs(executors, io);
  }
  Status shutdown(Nanoseconds timeout);
  Status abort();

  Status timeline(Timeline* out);

  Status alloc_buffer(uint64_t bytes, uint32_t owner, BufferHandle* handle);
  Status free_buffer(BufferHandle handle);
  // Copies between host memory and a buffer range, under the buffer lock so
  // that a concurrent free_buffer cannot release the memory mid-copy.
  Status copy_buffer(BufferHandle handle, uint64_t offset, void* host_ptr, uint64_t bytes,
                     bool to_buffer);

  uint64_t done_count() const {
    // ACQUIRE (H1): pairs with the consumer's DONE_COUNT release; every
    // record below the value read is visible afterwards.
    return SysRef<uint64_t>(host().ring_done[0].done_count).load(cuda::std::memory_order_acquire);
  }
  // A producer ring's DONE_COUNT (ACQUIRE, as done_count()).
  uint64_t ring_done_count(uint32_t ring) const {
    return SysRef<uint64_t>(host().ring_done[ring].done_count).load(cuda::std::memory_order_acquire);
  }
  uint64_t heartbeat() const {
    return SysRef<uint64_t>(host().completion_control->heartbeat_ns)
        .load(cuda::std::memory_order_relaxed);
  }

  // Drain mode (runtime_internal.hpp).
  Status attach_sink(detail::DrainSink* sink);
  size_t drain();
  uint32_t max_tenants() const { return config_.max_tenants; }
  Status check_tenant_index(uint32_t index) const {
    if (index == 0 || index >= config_.max_tenants)
      return Status(Result::kInvalidArgument, "tenant index " + std::to_string(index) +
                                                   " outside [1, " +
                                                   std::to_string(config_.max_tenants) + ")");
    return Status::ok();
  }
  Status peek_slot(uint64_t ticket, mr_slot* out);
  // Whether ticket's producer has written its slot (ACQUIRE: pairs with P3's
  // release, so its body, keep_ and origin_ stores are visible after it).
  bool slot_written(uint64_t ticket) const {
    return SysRef<uint64_t>(host().slots[ticket & mask_].header)
               .load(cuda::std::memory_order_acquire) == mr_make_header(ticket, MR_SLOT_READY);
  }
  uint64_t published_end() const { return tail_.load(std::memory_order_acquire) & ~kClosedBit; }
  void set_reserve_hook(detail::RuntimeInternals::ReserveHook hook, void* arg) {
    reserve_hook_arg_.store(arg, std::memory_order_relaxed);
    reserve_hook_.store(hook, std::memory_order_relaxed);
  }
  uint64_t parking_waits() const { return parking_waits_.load(std::memory_order_relaxed); }
  uint64_t health_checks() const { return health_checks_.load(std::memory_order_relaxed); }
  void set_park_hook(detail::RuntimeInternals::ParkHook hook, void* arg) {
    park_hook_arg_.store(arg, std::memory_order_relaxed);
    park_hook_.store(hook, std::memory_order_relaxed);
  }

  const detail::HostRegions& host() const { return backend_->host(); }
  detail::ConsumerBackend* backend() { return backend_.get(); }
  uint32_t capacity() const { return capacity_; }

  // Producers' rings (megaring/producer.hpp).
  Status open_producer(std::unique_ptr<Producer>* out);
  const detail::HostRegions& regions() const override { return host(); }
  uint32_t ring_capacity() const override { return capacity_; }
  Status publish_allowed() const override {
    return state_.load() == State::kRunning ? Status::ok() : closed_status();
  }
  bool consumer_finalized() const override { return finalized_.load(std::memory_order_acquire); }
  Status check_consumer() override;

 private:
  struct BufferRecord {
    uint64_t address = 0;
    uint64_t bytes = 0;
    uint32_t handle = 0;  // 0 = unused index
    uint16_t generation = 0;
  };
  struct PendingFree {
    uint32_t index;
    uint64_t address;
    // Free once every ring's tickets below these completed.
    std::array<uint64_t, MR_MAX_RINGS> safe_after;
  };

  static Status check_config(const Config& config);
  Status start_consumer(const Consumer& consumer);
  Status start_user_counts();
  Status reserve(uint32_t count, const PublishOptions& options, uint64_t* first);
  // Accounts for completed tickets in order. Stops at an unread kept result,
  // unless `park` (a producer needs space), which moves it to parked_.
  // `drained`, when given, receives a record per reaped ticket. While a drain
  // sink is attached only drain() (which passes `drained`) reaps: every other
  // call returns 0, so a stalled pump is back-pressure, never a lost record.
  size_t reap(bool block, bool park = false, std::vector<detail::DrainRecord>* drained = nullptr);
  // Looks for ticket t's kept result after keep_ moved away from t + 1.
  // Returns true with *result set: taken from parked_, or not pending. Returns
  // false if it is back in place (a reaper's move to parked_ threw and put it
  // back): the caller looks again.
  bool take_parked(uint64_t t, uint64_t pos, Completion* out, Status* result);
  bool ticket_wait_ends(uint64_t t, Clock::time_point deadline, bool* last_look,
                        HostWaiter& waiter, Status* result);
  Status consumer_health();
  void request_consumer_abort();
  void close_ring(State state, Result reason);
  void finalize_locked();
  Status stop_consumer_locked(Nanoseconds join_timeout);
  void collect_frees_locked(bool consumer_stopped);
  Status closed_status() const;
  Status calibrate_clock();
  // The host clock of timeline mode: the steady clock, which is also the CPU
  // backend's consumer clock (detail::now_ns on the host).
  static int64_t host_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               Clock::now().time_since_epoch())
        .count();
  }

  std::unique_ptr<detail::ConsumerBackend> backend_;
  uint32_t capacity_ = 0;
  uint64_t mask_ = 0;
  Config config_;
  uint64_t user_first_ticket_ = 0;  // stats() counts from here (see start_user_counts)

  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) std::atomic<uint64_t> reaped_{0};
  alignas(64) std::mutex reap_mutex_;
  std::unique_ptr<std::atomic<uint64_t>[]> keep_;
  std::unique_ptr<std::atomic<uint64_t>[]> origin_;
  std::atomic<detail::DrainSink*> sink_{nullptr};
  std::mutex sink_mutex_;  // serialises attach/detach
  std::mutex parked_mutex_;
  std::unordered_map<uint64_t, Completion> parked_;  // ticket -> unread kept result

  // Counters (relaxed: statistics only).
  std::atomic<uint64_t> completed_ok_{0}, faulted_{0}, aborted_{0}, revoked_{0},
      ring_full_events_{0};
  std::atomic<uint64_t> faults_by_code_[MR_FAULT_CODE_COUNT] = {};

  // Lifecycle. `finalized_` is set once the consumer stopped and the host
  // took ownership of the completion region; records for [done, end) are final.
  std::mutex lifecycle_mutex_;
  std::atomic<State> state_{State::kStopped};  // kRunning once the consumer started
  std::atomic<Result> close_reason_{Result::kShutdown};
  std::atomic<bool> abort_requested_{false};
  // RuntimeInternals::set_reserve_hook / set_park_hook (tests only; nullptr
  // in production).
  std::atomic<detail::RuntimeInternals::ReserveHook> reserve_hook_{nullptr};
  std::atomic<void*> reserve_hook_arg_{nullptr};
  std::atomic<detail::RuntimeInternals::ParkHook> park_hook_{nullptr};
  std::atomic<void*> park_hook_arg_{nullptr};
  std::atomic<uint64_t> parking_waits_{0};  // RuntimeInternals::parking_waits
  std::atomic<uint64_t> health_checks_{0};  // RuntimeInternals::health_checks
  std::atomic<uint64_t> protocol_errors_{0};
  std::atomic<bool> finalized_{false};
  Status failure_;  // why the runtime failed (guarded by lifecycle_mutex_)

  // Timeline mode (host side): publish times by ticket position, and a ring
  // of recent reap passes (guarded by reap_mutex_).
  bool timeline_on_ = false;
  uint64_t timeline_mask_ = 0;
  std::unique_ptr<std::atomic<int64_t>[]> publish_ns_;
  std::vector<TimelineReap> reap_events_;
  uint64_t reap_event_count_ = 0;
  int64_t clock_offset_ns_ = 0;
  int64_t clock_uncertainty_ns_ = 0;
  static constexpr size_t kReapEventRing = 4096;

  // Rings 1 .. Config::producer_rings (index ring - 1), for the life of the
  // runtime; Producers borrow them.
  std::vector<std::shared_ptr<detail::ProducerRing>> producer_rings_;

  std::mutex buffer_mutex_;
  std::vector<BufferRecord> buffers_;
  std::vector<uint32_t> free_indices_;
  std::vector<PendingFree> pending_frees_;
};

Status Runtime::Impl::init(const Config& config, const Consumer& consumer) {
  MR_NVTX_RANGE("megaring::create");
  Status st = check_config(config);
  if (!st) return st;
  const uint32_t cap = config.ring_capacity;
  config_ = config;
  capacity_ = cap;
  mask_ = cap - 1;

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
  st = backend_->init(config);
  if (!st) return st;
  return start_consumer(consumer);
}

// Every Config bound (README, "Limits"), before anything is allocated.
Status Runtime::Impl::check_config(const Config& config) {
  if (config.backend != Backend::kAuto && config.backend != Backend::kCuda &&
      config.backend != Backend::kCpu)
    return Status(Result::kInvalidArgument, "backend " +
                                                std::to_string(static_cast<int>(config.backend)) +
                                                " is not kAuto, kCuda or kCpu");
  if (config.device < 0)
    return Status(Result::kInvalidArgument,
                  "device must be a CUDA ordinal >= 0, got " + std::to_string(config.device));
  const uint32_t cap = config.ring_capacity;
  if (cap == 0 || cap > kMaxRingCapacity || (cap & (cap - 1)) != 0)
    return Status(Result::kInvalidArgument,
                  "ring_capacity must be a power of two in [1, 2^24], got " + std::to_string(cap));
  if (config.max_buffers == 0 || config.max_buffers > kMaxBuffers)
    return Status(Result::kInvalidArgument, "max_buffers must be in [1, 65535]");
  if (config.max_tenants == 0 || config.max_tenants > kMaxTenants)
    return Status(Result::kInvalidArgument, "max_tenants must be in [1, 65536]");
  if (config.initial_ticket > MR_TICKET_MASK - (1ull << 40))
    return Status(Result::kInvalidArgument, "initial_ticket too close to the 2^56 ticket limit");
  if (config.poll_backoff_min_ns > config.poll_backoff_max_ns)
    return Status(Result::kInvalidArgument, "poll_backoff_min_ns > poll_backoff_max_ns");
  // The backoff doubles in 32 bits (detail::Backoff): past 2^31 it would wrap.
  if (config.poll_backoff_max_ns > kMaxPollBackoffNs)
    return Status(Result::kInvalidArgument, "poll_backoff_max_ns must be at most 1 s (" +
                                                std::to_string(kMaxPollBackoffNs) + " ns)");
  if (config.fetch_warps > kMaxFetchWarps)
    return Status(Result::kInvalidArgument, "fetch_warps must be in [0, " +
                                                std::to_string(kMaxFetchWarps) + "], got " +
                                                std::to_string(config.fetch_warps));
  if (config.producer_rings > MR_MAX_RINGS - 1)
    return Status(Result::kInvalidArgument, "producer_rings must be in [0, " +
                                                std::to_string(MR_MAX_RINGS - 1) + "], got " +
                                                std::to_string(config.producer_rings));
  const uint32_t tl = config.timeline_capacity;
  if (tl > kMaxTimelineCapacity || (tl & (tl - 1)) != 0 || (tl != 0 && tl < 2ull * cap))
    return Status(Result::kInvalidArgument,
                  "timeline_capacity must be 0, or a power of two in [2 * ring_capacity, 2^24]");
  // Timeline records are keyed by ring 0's tickets (mr_timeline_record).
  if (tl != 0 && config.producer_rings != 0)
    return Status(Result::kInvalidArgument, "timeline mode works with ring 0 alone: "
                                             "producer_rings must be 0");
  if (!detail::valid_timeout(config.abort_timeout)) return negative_timeout("abort_timeout");
  return Status::ok();
}

Status Runtime::Impl::start_consumer(const Consumer& consumer) {
  const Config& config = config_;
  const uint32_t cap = capacity_;
  const uint32_t tl = config.timeline_capacity;
  // Initialise every shared word before the consumer starts (the host owns
  // all regions until then).
  const detail::HostRegions& h = host();
  const uint64_t first = config.initial_ticket;
  const uint32_t rings = detail::ring_count(config);
  for (uint32_t r = 0; r < rings; ++r) {
    for (uint64_t t = first; t < first + cap; ++t) {
      // A position's record starts with the stamp of the lap before its
      // first ticket, so no reaper can mistake it for a ticket's record.
      h.completions[uint64_t{r} * cap + (t & mask_)].stamp =
          mr_make_stamp(t - cap, MR_STATUS_OK, MR_FAULT_NONE);
    }
  }
  h.submission->stop_at = ~0ull;
  h.submission->abort_flag = 0;
  for (uint32_t r = 0; r < rings; ++r) h.ring_done[r].done_count = first;
  tail_.store(first);
  reaped_.store(first);
  user_first_ticket_ = first;
  for (uint32_t r = 1; r < rings; ++r) {
    producer_rings_.push_back(std::make_shared<detail::ProducerRing>(r, cap, first));
    // RELEASE: the ring's words above before a Producer's acquire of `host`.
    producer_rings_.back()->host.store(this, std::memory_order_release);
  }
  keep_.reset(new (std::nothrow) std::atomic<uint64_t>[cap]);
  if (!keep_) return Status(Result::kOutOfMemory, "keep table");
  for (uint32_t i = 0; i < cap; ++i) keep_[i].store(0, std::memory_order_relaxed);
  origin_.reset(new (std::nothrow) std::atomic<uint64_t>[cap]);
  if (!origin_) return Status(Result::kOutOfMemory, "origin table");
  for (uint32_t i = 0; i < cap; ++i) origin_[i].store(0, std::memory_order_relaxed);
  if (tl != 0) {
    timeline_on_ = true;
    timeline_mask_ = tl - 1;
    publish_ns_.reset(new (std::nothrow) std::atomic<int64_t>[tl]);
    if (!publish_ns_) return Status(Result::kOutOfMemory, "timeline publish times");
    for (uint32_t i = 0; i < tl; ++i) publish_ns_[i].store(0, std::memory_order_relaxed);
    reap_events_.resize(kReapEventRing);
  }
  buffers_.resize(config.max_buffers);
  const uint16_t generation_seed = next_generation_seed();
  for (BufferRecord& b : buffers_) b.generation = generation_seed;
  for (uint32_t i = config.max_buffers; i-- > 0;) free_indices_.push_back(i);

  ConsumerParams& p = backend_->params();
  p.capacity = cap;
  p.mask = mask_;
  p.max_buffers = config.max_buffers;
  p.max_tenants = config.max_tenants;
  p.poll_backoff_min_ns = config.poll_backoff_min_ns;
  p.poll_backoff_max_ns = config.poll_backoff_max_ns;
  p.heartbeat_interval_ns = config.heartbeat_interval_ns;
  // The crew the I/O block can hold: its warps but the completer's (one warp
  // in a block of one or two). The device clamps again; the CPU backend's
  // fetcher loads as this crew would (the cost model).
  const uint32_t block_warps = consumer.block_threads / 32;
  const uint32_t crew_room = block_warps > 2 ? block_warps - 1 : 1;
  const uint32_t crew = config.fetch_warps == 0 ? kDefaultFetchWarps : config.fetch_warps;
  p.fetch_warps = crew < crew_room ? crew : crew_room;
  p.completion_flush_ns = kCompletionFlushNs;
  p.first_ticket = first;
  Status st = backend_->set_private_cursors(first);
  if (!st) return st;
  st = backend_->start(consumer);
  if (!st) return st;
  state_.store(State::kRunning);
  if (timeline_on_) return calibrate_clock();
  return Status::ok();
}

// Timeline mode's calibration slots are the runtime's own: stats() counts
// from the first ticket after them, with every counter back at zero. Each
// was waited for, but a wait may end on its record's stamp before
// DONE_COUNT passes the ticket (slot_abi.h, H1): wait for DONE_COUNT, so
// that this reap takes every one of them.
Status Runtime::Impl::start_user_counts() {
  const uint64_t end = published_end();
  const auto deadline = deadline_after(std::chrono::seconds(10));
  HostWaiter waiter;
  while (done_count() < end) {
    if (Clock::now() > deadline)
      return Status(Result::kTimeout, "timeline clock calibration: slots not completed in time");
    waiter.pause();
  }
  reap(true);
  user_first_ticket_ = end;
  completed_ok_.store(0);
  faulted_.store(0);
  aborted_.store(0);
  revoked_.store(0);
  ring_full_events_.store(0);
  for (auto& c : faults_by_code_) c.store(0);
  return Status::ok();
}

// Timeline mode: the consumer clock (GPU globaltimer) against the host's
// steady clock, NTP-style: the READ_CLOCK round trip with the smallest RTT
// bounds the offset to +-RTT/2.
Status Runtime::Impl::calibrate_clock() {
  int64_t best_rtt = INT64_MAX;
  for (int i = 0; i < 32; ++i) {
    SlotRequest request;
    request.opcode = MR_OP_READ_CLOCK;
    PublishOptions options;
    options.keep_result = true;
    Ticket ticket;
    const int64_t before = host_now_ns();
    Status st = publish(&request, 1, &ticket, options);
    Completion c;
    if (st) st = wait(ticket, &c, std::chrono::seconds(10));
    const int64_t after = host_now_ns();
    if (!st) return Status(st.code(), "timeline clock calibration: " + st.message());
    if (after - before < best_rtt) {
      best_rtt = after - before;
      clock_offset_ns_ = static_cast<int64_t>(c.result) - (before + (after - before) / 2);
      clock_uncertainty_ns_ = best_rtt / 2;
    }
  }
  return start_user_counts();
}

Runtime::Impl::~Impl() {
  // Producers that outlive us answer kShutdown from now on (RELEASE: pairs
  // with their acquire; a call racing with this is the caller's data race).
  for (const auto& ring : producer_rings_) ring->host.store(nullptr, std::memory_order_release);
  // Nothing to stop or free if init() failed before the regions existed.
  if (!backend_ || host().completion_control == nullptr || !keep_) return;
  const State s = state_.load();
  if (s == State::kRunning || s == State::kDraining) (void)abort();
  if (state_.load() == State::kWedged) {
    // The consumer may still touch every region: leaking is the only safe
    // choice. abort() already reported it.
    (void)backend_.release();
    return;
  }
  std::lock_guard<std::mutex> lock(buffer_mutex_);
  collect_frees_locked(true);
  for (const BufferRecord& b : buffers_)
    if (b.handle != 0) (void)backend_->free(b.address);
}

Status Runtime::Impl::closed_status() const {
  return close_reason_.load() == Result::kAborted
             ? Status(Result::kAborted, "runtime was aborted or its consumer failed")
             : Status(Result::kShutdown, "runtime is shut down");
}

// P1: reserve `count` consecutive tickets, waiting for reaped positions.
Status Runtime::Impl::reserve(uint32_t count, const PublishOptions& options, uint64_t* first) {
  Clock::time_point deadline{};
  bool have_deadline = false;
  HostWaiter waiter;
  bool counted_full = false;
  for (;;) {
    // reaped_ before tail_: reaped_ <= tail_ at every instant and both only
    // grow, so t >= reaped and t + count - reaped cannot wrap.
    const uint64_t reaped = reaped_.load(std::memory_order_acquire);
    uint64_t t = tail_.load(std::memory_order_acquire);
    if ((t & kClosedBit) != 0) return closed_status();
    if (t + count - reaped <= capacity_) {
      // acq_rel: the reservation is ordered after the reaped_ read that
      // admitted it (so our slot writes cannot precede the reuse decision).
      MR_COST(host_shared_rmws, 1);
      if (tail_.compare_exchange_weak(t, t + count, std::memory_order_acq_rel)) {
        *first = t;
        return Status::ok();
      }
      continue;
    }
    if (reap(false, /*park=*/true) > 0) continue;
    if (options.on_full == OnFull::kFail) {
      // Another thread may have held the reap lock: wait for its pass, or
      // make one. Full only if nothing was reaped since our look, by us or
      // by that thread.
      (void)reap(true, /*park=*/true);
      if (reaped_.load(std::memory_order_acquire) != reaped) continue;
      ring_full_events_.fetch_add(1, std::memory_order_relaxed);
      MR_NVTX_MARKER("megaring::ring_full");
      return Status(Result::kRingFull, "no free ring position for " + std::to_string(count) +
                                           " slot(s)");
    }
    if (!counted_full) {
      ring_full_events_.fetch_add(1, std::memory_order_relaxed);
      MR_NVTX_MARKER("megaring::ring_full");
      counted_full = true;
    }
    if (!have_deadline) {
      deadline = deadline_after(options.timeout);
      have_deadline = true;
    }
    if (Clock::now() > deadline) {
      // A dead consumer first: callers that retry short timeouts would
      // otherwise never hear of it (waiters check health only once they sleep).
      Status st = check_consumer();
      if (!st) return st;
      return Status(Result::kTimeout, "ring stayed full for the publish timeout");
    }
    if (waiter.due_for_health_check()) {
      Status st = check_consumer();
      if (!st) return st;
    }
    waiter.pause();
  }
}

Status Runtime::Impl::publish(const SlotRequest* requests, uint32_t count, Ticket* first,
                              const PublishOptions& options, uint64_t origin, bool record) {
  MR_NVTX_RANGE("megaring::publish");
  if (requests == nullptr || first == nullptr || count == 0)
    return Status(Result::kInvalidArgument, "publish needs requests, a ticket and count > 0");
  if (!detail::valid_timeout(options.timeout)) return negative_timeout("publish timeout");
  if (count > capacity_)
    return Status(Result::kInvalidArgument, "batch of " + std::to_string(count) +
                                                " exceeds ring capacity " +
                                                std::to_string(capacity_));
  uint64_t t0 = 0;
  Status st = reserve(count, options, &t0);
  if (!st) return st;
  // Relaxed: set by a test before any publish runs.
  if (const auto hook = reserve_hook_.load(std::memory_order_relaxed))
    hook(reserve_hook_arg_.load(std::memory_order_relaxed), t0, count);
  const detail::HostRegions& h = host();
  const int64_t publish_ns = timeline_on_ ? host_now_ns() : 0;  // one clock read per batch
  // KEEP_RESULT is ours to set: the completer writes a record for this
  // ticket only if it is set (or the slot did not complete OK).
  const uint32_t keep_flag = options.keep_result || record ? MR_SLOT_FLAG_KEEP_RESULT : 0u;
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t t = t0 + i;
    const uint64_t pos = t & mask_;
    detail::write_slot_body(&h.slots[pos], requests[i], keep_flag);  // P2
    // Relaxed: published to the reaper by the header release below (the
    // reaper reads keep_ only for tickets the consumer has completed).
    keep_[pos].store(options.keep_result ? t + 1 : 0, std::memory_order_relaxed);
    origin_[pos].store(origin, std::memory_order_relaxed);  // same ordering as keep_
    if (timeline_on_) publish_ns_[t & timeline_mask_].store(publish_ns, std::memory_order_relaxed);
  }
  // P3, which also orders the keep_ and origin_ stores above.
  detail::release_headers(h.slots, mask_, t0, count);
  MR_COST(slots, count);
  *first = Ticket{t0, options.keep_result};
  return Status::ok();
}

// H2: account for completed tickets in order and free their positions.
size_t Runtime::Impl::reap(bool block, bool park, std::vector<detail::DrainRecord>* drained) {
  // Nothing completed past the reaped cursor: no pass, and no lock taken
  // (a producer waiting for space calls this in a loop).
  if (!finalized_.load(std::memory_order_acquire) &&
      done_count() <= reaped_.load(std::memory_order_acquire))
    return 0;
  std::unique_lock<std::mutex> lock(reap_mutex_, std::defer_lock);
  MR_COST(host_shared_rmws, 1);  // the lock word
  if (block)
    lock.lock();
  else if (!lock.try_lock())
    return 0;  // another thread is reaping
  // Under the reap lock, which attach_sink() also takes: a switch of sink is
  // ordered against this pass.
  if (drained == nullptr && sink_.load(std::memory_order_acquire) != nullptr) return 0;
  // After finalize the host owns every record up to the published end.
  const bool finalized = finalized_.load(std::memory_order_acquire);
  const uint64_t end = finalized ? published_end() : done_count();
  const uint64_t start = reaped_.load(std::memory_order_relaxed);
  if (start >= end) return 0;
  MR_NVTX_RANGE("megaring::reap");
  // Reserve up front, so that only parking can throw below. A pass that
  // throws commits nothing: its counts and reaped_ are stored after the loop,
  // and the next pass goes over the same tickets (results it parked stay
  // parked, and are counted then).
  if (drained != nullptr) drained->reserve(drained->size() + (end - start));
  const int64_t start_ns = timeline_on_ ? host_now_ns() : 0;
  uint64_t ok = 0, faulted = 0, aborted = 0, revoked = 0;
  uint64_t faults_by_code[MR_FAULT_CODE_COUNT] = {};
  uint64_t r = start;
  const detail::HostRegions& h = host();
  while (r < end) {
    const uint64_t pos = r & mask_;
    const mr_completion& rec = h.completions[pos];
    // After finalize, [DONE_COUNT, end) may hold reservations whose producer
    // is still writing the slot, keep_ and origin_: stop at the first not yet
    // written; a later pass takes it from there.
    if (finalized && !slot_written(r)) break;
    // ACQUIRE: pairs with wait()'s release of the keep entry, so its reads of
    // the record finish before the position can be reused.
    const uint64_t keep = keep_[pos].load(std::memory_order_acquire);
    if (keep == kReading) break;  // a waiter is reading it in place; it will be done soon
    // Ordered by the DONE_COUNT acquire (done_count()) or the finalize; the
    // completer writes no record below DONE_COUNT. No record naming r: r
    // completed OK and was not kept (slot_abi.h, H1).
    const auto [stamp, result] = read_record(rec);
    const bool has_record = mr_stamp_names(stamp, r) != 0;
    if (!has_record && keep == r + 1) {
      // A kept ticket always gets a record: a protocol bug. Count it, don't guess.
      protocol_errors_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    if (keep == r + 1) {  // unread kept result
      if (!park) break;
      uint64_t expected = r + 1;
      // Claim it against a concurrent wait(); if a waiter claimed it first,
      // leave the position until it has finished reading.
      if (!keep_[pos].compare_exchange_strong(expected, kParking, std::memory_order_acq_rel))
        break;
      Completion c;
      c.ticket = r;
      c.result = result;
      c.status = static_cast<uint16_t>(mr_stamp_status(stamp));
      c.fault = static_cast<uint16_t>(mr_stamp_fault(stamp));
      try {
        // Relaxed: set by a test before any reap runs.
        if (const auto hook = park_hook_.load(std::memory_order_relaxed))
          hook(park_hook_arg_.load(std::memory_order_relaxed), r);
        std::lock_guard<std::mutex> parked_lock(parked_mutex_);
        parked_.emplace(r, c);
      } catch (...) {
        keep_[pos].store(r + 1, std::memory_order_release);  // still unread, in place
        throw;
      }
      // RELEASE: the parked entry exists before anyone sees keep_ move on.
      keep_[pos].store(0, std::memory_order_release);
    }
    const uint32_t status = has_record ? mr_stamp_status(stamp) : MR_STATUS_OK;
    const uint32_t fault = has_record ? mr_stamp_fault(stamp) : MR_FAULT_NONE;
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
    if (drained != nullptr) {
      // The slot's tenant field and origin_ are host-written and stay put
      // until this position is recycled (reaped_ below). A ticket without a
      // record was not kept: its result is not reported (0).
      drained->push_back(detail::DrainRecord{
          r, origin_[pos].load(std::memory_order_relaxed), has_record ? result : 0,
          h.slots[pos].tenant, static_cast<uint16_t>(status), static_cast<uint16_t>(fault)});
    }
    ++r;
  }
  if (r == start) return 0;
  // The tallies' only writer is the reap-lock holder: relaxed load + store,
  // no read-modify-write (readers take relaxed loads).
  const auto tally = [](std::atomic<uint64_t>& counter, uint64_t n) {
    if (n != 0) counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  };
  tally(completed_ok_, ok);
  tally(faulted_, faulted);
  tally(aborted_, aborted);
  tally(revoked_, revoked);
  for (uint32_t code = 0; code < MR_FAULT_CODE_COUNT; ++code)
    tally(faults_by_code_[code], faults_by_code[code]);
  // RELEASE: our reads of records below r happen before producers reuse
  // those positions (they acquire reaped_ in reserve()).
  reaped_.store(r, std::memory_order_release);
  if (timeline_on_) {
    reap_events_[reap_event_count_++ % kReapEventRing] =
        TimelineReap{start_ns, host_now_ns(), start, r - start};
  }
  return r - start;
}

Status Runtime::Impl::wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout) {
  MR_NVTX_RANGE("megaring::wait");
  if (completion == nullptr) return Status(Result::kInvalidArgument, "completion is null");
  if (!detail::valid_timeout(timeout)) return negative_timeout("wait timeout");
  if (!ticket.kept)
    return Status(Result::kInvalidArgument,
                  "ticket " + std::to_string(ticket.value) +
                      " was published without keep_result; use wait_done()");
  const uint64_t t = ticket.value;
  const uint64_t pos = t & mask_;
  if (t >= published_end())
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) + " was never published");
  const mr_completion& rec = host().completions[pos];
  const auto deadline = deadline_after(timeout);
  bool last_look = false;  // see ticket_wait_ends
  HostWaiter waiter;
  for (;;) {
    // Parked, being parked, or already read: not (or no longer) in place.
    if (keep_[pos].load(std::memory_order_acquire) != t + 1) {
      Status st;
      if (take_parked(t, pos, completion, &st)) return st;
      continue;  // back in place
    }
    // Final once DONE_COUNT passed t (its acquire orders the completer's
    // record), or the host finalized the ring (finalized_'s acquire orders
    // the host's records), or the completer wrote t's record early because
    // an earlier slot holds DONE_COUNT back (ACQUIRE of the stamp: pairs
    // with its release in write_record_released).
    if (done_count() > t || finalized_.load(std::memory_order_acquire) ||
        mr_stamp_names(SysRef<uint64_t>(const_cast<uint64_t&>(rec.stamp))
                           .load(cuda::std::memory_order_acquire),
                       t)) {
      // Claim the in-place result: the reaper neither parks nor passes a
      // position in kReading, so no consumer can be rewriting the record
      // while we read it. Losing the CAS means a reaper (or another wait)
      // got there first: look again.
      uint64_t expected = t + 1;
      if (keep_[pos].compare_exchange_strong(expected, kReading, std::memory_order_acq_rel)) break;
      continue;
    }
    Status st;
    if (ticket_wait_ends(t, deadline, &last_look, waiter, &st)) return st;
  }
  const auto [stamp, result] = read_record(rec);  // ordered by the acquire above
  // RELEASE: the reads above happen before the reaper may pass this ticket.
  keep_[pos].store(0, std::memory_order_release);
  reap(false);
  if (!mr_stamp_names(stamp, t)) {
    // A kept ticket always gets its record: a protocol bug. Count it.
    protocol_errors_.fetch_add(1, std::memory_order_relaxed);
    return Status(Result::kInternal, "ticket " + std::to_string(t) +
                                         " completed without its completion record");
  }
  completion->ticket = t;
  completion->result = result;
  completion->status = static_cast<uint16_t>(mr_stamp_status(stamp));
  completion->fault = static_cast<uint16_t>(mr_stamp_fault(stamp));
  return Status::ok();
}

bool Runtime::Impl::take_parked(uint64_t t, uint64_t pos, Completion* out, Status* result) {
  // A reaper between its claim and its release of keep_: the entry is coming,
  // or, if storing it threw, the result goes back in place.
  uint64_t keep = keep_[pos].load(std::memory_order_acquire);
  if (keep == kParking) {
    parking_waits_.fetch_add(1, std::memory_order_relaxed);  // statistics (tests)
    while ((keep = keep_[pos].load(std::memory_order_acquire)) == kParking) std::this_thread::yield();
  }
  if (keep == t + 1) return false;
  std::lock_guard<std::mutex> lock(parked_mutex_);
  auto it = parked_.find(t);
  if (it == parked_.end()) {
    *result = Status(Result::kInvalidArgument,
                     "ticket " + std::to_string(t) +
                         " is not pending (not kept, already read or released)");
    return true;
  }
  if (out != nullptr) *out = it->second;
  parked_.erase(it);
  *result = Status::ok();
  return true;
}

Status Runtime::Impl::wait_done(const Ticket& ticket, Nanoseconds timeout) {
  MR_NVTX_RANGE("megaring::wait_done");
  if (!detail::valid_timeout(timeout)) return negative_timeout("wait_done timeout");
  const uint64_t t = ticket.value;
  if (t >= published_end())
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) + " was never published");
  const auto deadline = deadline_after(timeout);
  bool last_look = false;  // see ticket_wait_ends
  HostWaiter waiter;
  for (;;) {
    if (done_count() > t) return Status::ok();
    if (finalized_.load(std::memory_order_acquire)) {
      // The host owns the records now. t >= DONE_COUNT, and t is at most one
      // lap past it, so its position still holds its own final record.
      // finalized_'s acquire above orders the host's records.
      const uint64_t stamp = read_record(host().completions[t & mask_]).stamp;
      if (mr_stamp_names(stamp, t) && mr_stamp_status(stamp) != MR_STATUS_ABORTED)
        return Status::ok();
      return Status(Result::kAborted, "ticket " + std::to_string(t) + " was aborted");
    }
    Status st;
    if (ticket_wait_ends(t, deadline, &last_look, waiter, &st)) return st;
  }
}

// The end of a pass of wait() or wait_done() that found ticket t not done.
// Returns true with *result set when the wait ends; otherwise the caller
// makes another pass. Past the deadline, the consumer is checked first (see
// reserve): a dead one is reported, and if the check just finalized the
// ring, one last pass reads t's final record; after that last pass, a
// timeout. Before the deadline: a health check once the waiter sleeps, then
// a pause. A check that finalized the ring also leads to another pass.
bool Runtime::Impl::ticket_wait_ends(uint64_t t, Clock::time_point deadline, bool* last_look,
                                     HostWaiter& waiter, Status* result) {
  const bool late = Clock::now() > deadline;
  if (late && *last_look) {
    *result = Status(Result::kTimeout, "ticket " + std::to_string(t) + " not completed in time");
    return true;
  }
  if (late || waiter.due_for_health_check()) {
    Status st = check_consumer();
    if (!st && !finalized_.load()) {
      *result = st;
      return true;
    }
  }
  if (late)
    *last_look = true;
  else
    waiter.pause();
  return false;
}

Status Runtime::Impl::release(const Ticket& ticket) {
  const uint64_t t = ticket.value;
  if (!ticket.kept || t >= published_end())
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(t) + " is not pending");
  const uint64_t pos = t & mask_;
  for (;;) {
    uint64_t expected = t + 1;
    if (keep_[pos].compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) break;
    Status st;
    if (take_parked(t, pos, nullptr, &st)) return st;  // else back in place: again
  }
  reap(false);
  return Status::ok();
}

RuntimeStats Runtime::Impl::stats() {
  reap(true);
  RuntimeStats s;
  s.published = published_end() - user_first_ticket_;
  s.done_count = done_count();
  s.reaped = reaped_.load() - user_first_ticket_;
  s.completed_ok = completed_ok_.load(std::memory_order_relaxed);
  s.faulted = faulted_.load(std::memory_order_relaxed);
  s.aborted = aborted_.load(std::memory_order_relaxed);
  s.revoked = revoked_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < MR_FAULT_CODE_COUNT; ++i)
    s.faults_by_code[i] = faults_by_code_[i].load(std::memory_order_relaxed);
  s.ring_full_events = ring_full_events_.load(std::memory_order_relaxed);
  s.protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(parked_mutex_);
    s.parked_results = parked_.size();
  }
  return s;
}

// Detects a dead consumer (sticky CUDA error) and turns it into a stopped,
// finalized runtime so that every waiter gets an answer.
// The backend's health check, counted (RuntimeInternals::health_checks).
Status Runtime::Impl::consumer_health() {
  health_checks_.fetch_add(1, std::memory_order_relaxed);  // statistics (tests)
  return backend_->health();
}

Status Runtime::Impl::check_consumer() {
  Status st = consumer_health();
  if (st) return st;
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  if (state_.load() == State::kRunning || state_.load() == State::kDraining) {
    failure_ = st;
    request_consumer_abort();
    close_ring(State::kFailed, Result::kAborted);
    // The kernel is gone: nothing on the device writes the regions any more.
    finalize_locked();
  }
  return failure_.is_ok() ? st : failure_;
}

// Also before the host takes over the records of a consumer it believes
// dead: were it still running after all, it stops at its next poll.
void Runtime::Impl::request_consumer_abort() {
  // Relaxed: a stop request, ordering nothing; units check it between slots.
  SysRef<uint32_t>(host().submission->abort_flag).store(1, cuda::std::memory_order_relaxed);
}

void Runtime::Impl::close_ring(State state, Result reason) {
  // An abort() that raced a shutdown() stays the reason publishers are told.
  close_reason_.store(abort_requested_.load() ? Result::kAborted : reason);
  tail_.fetch_or(kClosedBit, std::memory_order_acq_rel);
  state_.store(state);
}

// The consumer has stopped: the host now owns the completion region. Every
// ticket in [DONE_COUNT, end) without its own record gets an ABORTED one.
void Runtime::Impl::finalize_locked() {
  if (finalized_.load()) return;
  const uint64_t end = published_end();
  const detail::HostRegions& h = host();
  for (uint64_t t = done_count(); t < end; ++t) {
    // The consumer has stopped, so the host owns every record now. Atomic
    // words all the same: a waiter may be polling a stamp (wait()).
    mr_completion& rec = h.completions[t & mask_];
    if (mr_stamp_names(SysRef<uint64_t>(rec.stamp).load(cuda::std::memory_order_relaxed), t))
      continue;  // written, then the consumer stopped
    SysRef<uint64_t>(rec.result).store(0, cuda::std::memory_order_relaxed);
    // RELEASE: pairs with a waiter's acquire of the stamp.
    SysRef<uint64_t>(rec.stamp).store(mr_make_stamp(t, MR_STATUS_ABORTED, MR_FAULT_NONE),
                                      cuda::std::memory_order_release);
  }
  // RELEASE: records above are final before anyone sees finalized_.
  finalized_.store(true, std::memory_order_release);
}

Status Runtime::Impl::stop_consumer_locked(Nanoseconds join_timeout) {
  Status st = backend_->join(join_timeout);
  if (!st) {
    if (st.code() == Result::kTimeout) {
      state_.store(State::kWedged);
      return Status(Result::kTimeout, st.message() +
                                          "; the consumer still owns the ring, whose memory is "
                                          "left allocated. Stop the process.");
    }
    failure_ = st;  // died while stopping: still nothing runs on the device
  }
  finalize_locked();
  reap(true);
  {
    std::lock_guard<std::mutex> lock(buffer_mutex_);
    collect_frees_locked(true);
  }
  state_.store(failure_.is_ok() ? State::kStopped : State::kFailed);
  return st;
}

Status Runtime::Impl::shutdown(Nanoseconds timeout) {
  MR_NVTX_RANGE("megaring::shutdown");
  if (!detail::valid_timeout(timeout)) return negative_timeout("shutdown timeout");
  std::lock_guard<std::mutex> lock(lifecycle_mutex_);
  const State s = state_.load();
  if (s == State::kStopped) return Status::ok();
  if (s != State::kRunning) return failure_.is_ok() ? closed_status() : failure_;
  const auto deadline = deadline_after(timeout);
  close_ring(State::kDraining, Result::kShutdown);
  const uint64_t end = published_end();
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
  HostWaiter waiter;
  for (;;) {
    if (!stop_at_set && producers_drained()) {
      // Relaxed: stop_at carries no data; every ticket below it is (or
      // will be) published by the producer that reserved it.
      SysRef<uint64_t>(host().submission->stop_at).store(end, cuda::std::memory_order_relaxed);
      stop_at_set = true;
    }
    if (stop_at_set && producers_drained() && done_count() >= end) break;
    reap(false);
    if (abort_requested_.load()) break;  // abort() interrupts a drain
    if (Clock::now() > deadline) {
      const uint64_t done = done_count();
      close_reason_.store(Result::kAborted);
      request_consumer_abort();
      Status st = stop_consumer_locked(config_.abort_timeout);
      if (!st && st.code() == Result::kTimeout) return st;
      return Status(Result::kTimeout, "shutdown drained " + std::to_string(done - config_.initial_ticket) +
                                          " of " + std::to_string(end - config_.initial_ticket) +
                                          " ring-0 slots (and the producers' rings " +
                                          (producers_drained() ? "" : "not ") +
                                          "wholly) before its timeout; the rest were aborted");
    }
    if (waiter.due_for_health_check()) {
      Status st = consumer_health();
      if (!st) {
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
  return stop_consumer_locked(std::max(left, config_.abort_timeout));
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
  return stop_consumer_locked(config_.abort_timeout);
}

// ---------------------------------------------------------------------------
// Producers' rings
// ---------------------------------------------------------------------------
Status Runtime::Impl::open_producer(std::unique_ptr<Producer>* out) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  if (producer_rings_.empty())
    return Status(Result::kInvalidArgument, "no producer rings: set Config::producer_rings");
  Status st = publish_allowed();
  if (!st) return st;
  for (const auto& ring : producer_rings_) {
    bool expected = false;
    // ACQUIRE: the previous owner's last use of the ring happens before ours.
    if (!ring->owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) continue;
    try {
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

// ---------------------------------------------------------------------------
// Timeline
// ---------------------------------------------------------------------------
Status Runtime::Impl::timeline(Timeline* out) {
  MR_NVTX_RANGE("megaring::timeline");
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  if (!timeline_on_)
    return Status(Result::kInvalidArgument, "timeline mode is off (Config::timeline_capacity)");
  const uint64_t size = timeline_mask_ + 1;
  // Order matters: DONE_COUNT first (records below it are complete), then
  // the records and publish times, then the published end: a record whose
  // position no ticket up to that end has reused was stable throughout.
  const uint64_t done = done_count();
  std::vector<mr_timeline_record> records(size);
  Status st = backend_->read_timeline(records.data());
  if (!st) return st;
  std::vector<int64_t> publish_times(size);
  for (uint64_t i = 0; i < size; ++i) publish_times[i] = publish_ns_[i].load(std::memory_order_relaxed);
  const uint64_t end = published_end();

  Timeline t;
  t.clock_offset_ns = clock_offset_ns_;
  t.clock_uncertainty_ns = clock_uncertainty_ns_;
  t.units = backend_->units();
  t.backend = backend_name(backend_->kind());
  for (uint64_t i = 0; i < size; ++i) {
    const mr_timeline_record& r = records[i];
    if ((r.ticket & timeline_mask_) != i) continue;  // never written (or foreign)
    if (r.ticket < config_.initial_ticket || r.ticket >= done) continue;  // not complete at snapshot
    if (r.ticket + size < end) continue;  // its position may have been reused meanwhile
    TimelineSlot s;
    s.ticket = r.ticket;
    s.unit = r.unit;
    s.opcode = r.opcode;
    s.publish_ns = publish_times[i];
    s.claim_ns = static_cast<int64_t>(r.claim_ns) - clock_offset_ns_;
    s.complete_ns = static_cast<int64_t>(r.complete_ns) - clock_offset_ns_;
    t.slots.push_back(s);
  }
  std::sort(t.slots.begin(), t.slots.end(),
            [](const TimelineSlot& a, const TimelineSlot& b) { return a.ticket < b.ticket; });
  {
    std::lock_guard<std::mutex> lock(reap_mutex_);
    const uint64_t n = std::min<uint64_t>(reap_event_count_, kReapEventRing);
    for (uint64_t k = reap_event_count_ - n; k < reap_event_count_; ++k)
      t.reaps.push_back(reap_events_[k % kReapEventRing]);
  }
  *out = std::move(t);
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Buffers
// ---------------------------------------------------------------------------
Status Runtime::Impl::alloc_buffer(uint64_t bytes, uint32_t owner, BufferHandle* handle) {
  if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
  if (bytes > kMaxBufferBytes)
    return Status(Result::kInvalidArgument, "buffer of " + std::to_string(bytes) +
                                                " bytes exceeds kMaxBufferBytes (2^48)");
  if (state_.load() != State::kRunning) return closed_status();
  std::lock_guard<std::mutex> lock(buffer_mutex_);
  collect_frees_locked(false);
  if (free_indices_.empty())
    return Status(Result::kOutOfMemory, "buffer table full (" +
                                            std::to_string(config_.max_buffers) + " entries)");
  const uint32_t index = free_indices_.back();
  uint64_t address = 0;
  Status st = backend_->alloc(bytes, &address);
  if (!st) return st;
  BufferRecord& b = buffers_[index];
  b.generation = static_cast<uint16_t>(b.generation == 0xFFFF ? 1 : b.generation + 1);
  b.address = address;
  b.bytes = bytes;
  b.handle = (static_cast<uint32_t>(b.generation) << MR_BUFFER_INDEX_BITS) | index;
  mr_buffer_entry entry{};
  entry.base = address;
  entry.bytes = bytes;
  entry.handle = b.handle;
  entry.owner = owner;
  entry.retire_ticket = ~0ull;
  st = backend_->write_table_entry(index, entry);
  if (!st) {
    (void)backend_->free(address);
    b.handle = 0;
    return st;
  }
  free_indices_.pop_back();
  *handle = b.handle;
  return Status::ok();
}

Status Runtime::Impl::free_buffer(BufferHandle handle) {
  std::lock_guard<std::mutex> lock(buffer_mutex_);
  const uint32_t index = handle & MR_BUFFER_INDEX_MASK;
  if (handle == 0 || index >= buffers_.size() || buffers_[index].handle != handle)
    return Status(Result::kInvalidArgument, "unknown buffer handle " + std::to_string(handle));
  BufferRecord& b = buffers_[index];
  // Slots published from here on (tickets >= end) fault BAD_HANDLE; slots
  // published before still run, and the memory goes back once they all
  // completed (collect_frees_locked).
  const uint64_t end = published_end();
  Status st = backend_->retire_table_entry(index, end);
  if (!st) return st;
  // A read-modify-write of the tail after the retire store: every later
  // reservation reads from it, so its slot is ordered after the retire and
  // faults. Tickets reserved in [end, safe_after[0]) may run or fault; the
  // memory is freed only after all of them completed.
  PendingFree pending{index, b.address, {}};
  pending.safe_after[0] = tail_.fetch_add(0, std::memory_order_acq_rel) & ~kClosedBit;
  // The producers' rings, which we cannot reserve on: a SEQ_CST fence after
  // the retire store (on the GPU a copy we waited for), then their tails
  // (see ProducerRing::tail: each is stored, and fenced, before its slots). A
  // ticket at or past the tail read here had its slot written after the
  // retire was visible, and faults; the tickets below it may still run with
  // the buffer and are waited for.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (const auto& ring : producer_rings_)  // relaxed: the fence above orders them
    pending.safe_after[ring->ring] = ring->tail.load(std::memory_order_relaxed);
  b.handle = 0;
  pending_frees_.push_back(pending);
  collect_frees_locked(finalized_.load());
  return Status::ok();
}

void Runtime::Impl::collect_frees_locked(bool consumer_stopped) {
  const auto safe = [&](const PendingFree& f) {
    if (consumer_stopped) return true;
    if (done_count() < f.safe_after[0]) return false;
    for (const auto& ring : producer_rings_)
      if (ring_done_count(ring->ring) < f.safe_after[ring->ring]) return false;
    return true;
  };
  auto it = pending_frees_.begin();
  while (it != pending_frees_.end()) {
    if (safe(*it)) {
      (void)backend_->clear_table_handle(it->index);
      (void)backend_->free(it->address);
      free_indices_.push_back(it->index);
      it = pending_frees_.erase(it);
    } else {
      ++it;
    }
  }
}

Status Runtime::Impl::copy_buffer(BufferHandle handle, uint64_t offset, void* host_ptr,
                                  uint64_t bytes, bool to_buffer) {
  if (host_ptr == nullptr && bytes != 0) return Status(Result::kInvalidArgument, "host pointer is null");
  std::lock_guard<std::mutex> lock(buffer_mutex_);
  const uint32_t index = handle & MR_BUFFER_INDEX_MASK;
  if (handle == 0 || index >= buffers_.size() || buffers_[index].handle != handle)
    return Status(Result::kInvalidArgument, "unknown buffer handle " + std::to_string(handle));
  const BufferRecord& b = buffers_[index];
  if (!detail::range_within(offset, bytes, b.bytes))
    return Status(Result::kInvalidArgument, "range [" + std::to_string(offset) + ", +" +
                                                std::to_string(bytes) + ") outside buffer of " +
                                                std::to_string(b.bytes) + " bytes");
  if (bytes == 0) return Status::ok();
  return to_buffer ? backend_->copy_in(b.address + offset, host_ptr, bytes)
                   : backend_->copy_out(host_ptr, b.address + offset, bytes);
}

// ---------------------------------------------------------------------------
// Drain mode
// ---------------------------------------------------------------------------
Status Runtime::Impl::attach_sink(detail::DrainSink* sink) {
  std::lock_guard<std::mutex> lock(sink_mutex_);
  if (sink != nullptr && sink_.load() != nullptr)
    return Status(Result::kInvalidArgument, "a drain pump (TenantRegistry) is already attached");
  // The reap lock orders the switch against a reap in progress: tickets it
  // reaped before the switch are not delivered to a newly attached sink.
  std::lock_guard<std::mutex> reap_lock(reap_mutex_);
  sink_.store(sink, std::memory_order_release);
  return Status::ok();
}

size_t Runtime::Impl::drain() {
  detail::DrainSink* sink = sink_.load(std::memory_order_acquire);
  if (sink == nullptr) return reap(true);
  // One buffer per pumping thread, reused: no allocation per pass once it
  // has grown to the largest pass.
  thread_local std::vector<detail::DrainRecord> records;
  records.clear();
  // Park kept results: the pump is the only reaper, so it must never let an
  // unread kept ticket hold positions that producers wait for.
  const size_t n = reap(true, /*park=*/true, &records);
  if (!records.empty()) sink->on_drained(records.data(), records.size());
  return n;
}

Status Runtime::Impl::peek_slot(uint64_t ticket, mr_slot* out) {
  std::lock_guard<std::mutex> lock(reap_mutex_);  // the position cannot be recycled meanwhile
  if (ticket < reaped_.load() || ticket >= published_end())
    return Status(Result::kInvalidArgument,
                  "ticket " + std::to_string(ticket) + " is not in the ring (reaped or unpublished)");
  if (!slot_written(ticket))
    return Status(Result::kInvalidArgument, "ticket " + std::to_string(ticket) + " is still being written");
  *out = host().slots[ticket & mask_];
  return Status::ok();
}


// ---------------------------------------------------------------------------
// Public wrappers: no exception escapes.
// ---------------------------------------------------------------------------
#define MR_GUARD(expr) MR_API_GUARD(expr)

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runtime::~Runtime() {
  if (impl_) impl_->detach_sink_before_destruction();
}

Status Runtime::create(const Config& config, std::unique_ptr<Runtime>* out) noexcept {
  return create(config, builtin_consumer(), out);
}

Status Runtime::create(const Config& config, const Consumer& consumer,
                       std::unique_ptr<Runtime>* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(([&]() -> Status {
    auto impl = std::make_unique<Impl>();
    Status st = impl->init(config, consumer);
    if (!st) return st;
    out->reset(new Runtime(std::move(impl)));
    return Status::ok();
  })())
}

Backend Runtime::backend() const noexcept { return impl_->backend()->kind(); }
uint32_t Runtime::capacity() const noexcept { return impl_->capacity(); }
uint32_t Runtime::consumer_units() const noexcept { return impl_->backend()->units(); }
const char* Runtime::device_name() const noexcept { return impl_->backend()->device_name(); }

Status Runtime::publish(const SlotRequest& request, Ticket* ticket,
                        const PublishOptions& options) noexcept {
  MR_GUARD(impl_->publish(&request, 1, ticket, options))
}
Status Runtime::publish_batch(const SlotRequest* requests, uint32_t count, Ticket* first_ticket,
                              const PublishOptions& options) noexcept {
  MR_GUARD(impl_->publish(requests, count, first_ticket, options))
}
Status Runtime::wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout) noexcept {
  MR_GUARD(impl_->wait(ticket, completion, timeout))
}
Status Runtime::wait_done(const Ticket& ticket, Nanoseconds timeout) noexcept {
  MR_GUARD(impl_->wait_done(ticket, timeout))
}
Status Runtime::release(const Ticket& ticket) noexcept { MR_GUARD(impl_->release(ticket)) }
Status Runtime::call(const SlotRequest& request, Completion* completion,
                     Nanoseconds timeout) noexcept {
  MR_GUARD(([&]() -> Status {
    PublishOptions options;
    options.keep_result = true;
    options.timeout = timeout;
    Ticket ticket;
    Status st = impl_->publish(&request, 1, &ticket, options);
    if (!st) return st;
    st = impl_->wait(ticket, completion, timeout);
    if (!st) (void)impl_->release(ticket);  // never leave a kept ticket behind
    return st;
  })())
}
uint64_t Runtime::done_count() const noexcept { return impl_->done_count(); }
uint64_t Runtime::heartbeat_ns() const noexcept { return impl_->heartbeat(); }
RuntimeStats Runtime::stats() noexcept {
  try {
    return impl_->stats();
  } catch (...) {
    return RuntimeStats{};
  }
}

Status Runtime::consumer_counters(ConsumerCounters* out) noexcept {
  MR_GUARD(impl_->consumer_counters(out))
}
Status Runtime::consumer_costs(CostCounters* out) noexcept {
  MR_GUARD(([&]() -> Status {
    if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
    CostCounters executors, io;
    Status st = impl_->consumer_costs(&executors, &io);
    if (!st) return st;
    *out = executors;
    for (const detail::CostField& f : detail::kCostFields) out->*f.member += io.*f.member;
    return Status::ok();
  })())
}
Status Runtime::consumer_costs(CostCounters* executors, CostCounters* io) noexcept {
  MR_GUARD(impl_->consumer_costs(executors, io))
}

Status Runtime::open_producer(std::unique_ptr<Producer>* out) noexcept {
  MR_GUARD(impl_->open_producer(out))
}
Status Runtime::alloc_buffer(uint64_t bytes, BufferHandle* handle) noexcept {
  MR_GUARD(impl_->alloc_buffer(bytes, 0, handle))
}
Status Runtime::free_buffer(BufferHandle handle) noexcept { MR_GUARD(impl_->free_buffer(handle)) }
Status Runtime::write_buffer(BufferHandle handle, uint64_t offset, const void* src,
                             uint64_t bytes) noexcept {
  MR_GUARD(impl_->copy_buffer(handle, offset, const_cast<void*>(src), bytes, true))
}
Status Runtime::read_buffer(BufferHandle handle, uint64_t offset, void* dst,
                            uint64_t bytes) noexcept {
  MR_GUARD(impl_->copy_buffer(handle, offset, dst, bytes, false))
}
Status Runtime::timeline(Timeline* out) noexcept { MR_GUARD(impl_->timeline(out)) }
Status Runtime::write_timeline_trace(const std::string& path) noexcept {
  MR_GUARD(([&]() -> Status {
    Timeline t;
    Status st = impl_->timeline(&t);
    if (!st) return st;
    return detail::write_chrome_trace(t, path);
  })())
}
Status Runtime::shutdown(Nanoseconds timeout) noexcept { MR_GUARD(impl_->shutdown(timeout)) }
Status Runtime::abort() noexcept { MR_GUARD(impl_->abort()) }

// ---------------------------------------------------------------------------
// Tenant-layer access (runtime_internal.hpp)
// ---------------------------------------------------------------------------
namespace detail {
Status RuntimeInternals::attach_drain_sink(Runtime& runtime, DrainSink* sink) {
  MR_GUARD(runtime.impl_->attach_sink(sink))
}
size_t RuntimeInternals::drain(Runtime& runtime) {
  try {
    return runtime.impl_->drain();
  } catch (...) {
    return 0;  // no host memory for the records: nothing was reaped; retry later
  }
}
Status RuntimeInternals::publish_tagged(Runtime& runtime, const SlotRequest* requests,
                                        uint32_t count, uint64_t origin, bool want_record,
                                        Ticket* first, const PublishOptions& options) {
  MR_GUARD(runtime.impl_->publish(requests, count, first, options, origin, want_record))
}
Status RuntimeInternals::alloc_owned_buffer(Runtime& runtime, uint64_t bytes, uint32_t owner,
                                            BufferHandle* handle) {
  MR_GUARD(runtime.impl_->alloc_buffer(bytes, owner, handle))
}
uint32_t RuntimeInternals::max_tenants(const Runtime& runtime) {
  return runtime.impl_->max_tenants();
}
Status RuntimeInternals::write_tenant_entry(Runtime& runtime, uint32_t index,
                                            const mr_tenant_entry& entry) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  return runtime.impl_->backend()->write_tenant_entry(index, entry);
}
Status RuntimeInternals::set_tenant_state(Runtime& runtime, uint32_t index, uint32_t state) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  return runtime.impl_->backend()->set_tenant_state(index, state);
}
Status RuntimeInternals::read_tenant_ids(Runtime& runtime, std::vector<uint32_t>* ids) {
  MR_GUARD(([&]() -> Status {
    ids->assign(runtime.impl_->max_tenants(), 0);
    return runtime.impl_->backend()->read_tenant_ids(ids->data());
  })())
}
Status RuntimeInternals::read_tenant_counters(Runtime& runtime, uint32_t index,
                                              mr_tenant_counters* out) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  return runtime.impl_->backend()->read_tenant_counters(index, out);
}
uint64_t RuntimeInternals::published_end(const Runtime& runtime) {
  return runtime.impl_->published_end();
}
Status RuntimeInternals::peek_slot(Runtime& runtime, uint64_t ticket, mr_slot* out) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(runtime.impl_->peek_slot(ticket, out))
}
void RuntimeInternals::set_reserve_hook(Runtime& runtime, ReserveHook hook, void* arg) {
  runtime.impl_->set_reserve_hook(hook, arg);
}
void RuntimeInternals::set_park_hook(Runtime& runtime, ParkHook hook, void* arg) {
  runtime.impl_->set_park_hook(hook, arg);
}
uint64_t RuntimeInternals::parking_waits(const Runtime& runtime) {
  return runtime.impl_->parking_waits();
}
uint64_t RuntimeInternals::health_checks(const Runtime& runtime) {
  return runtime.impl_->health_checks();
}
}  // namespace detail

}  // namespace megaring
