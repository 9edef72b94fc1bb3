// SPDX-License-Identifier: Apache-2.0
// megaring host API: create a runtime (persistent GPU megakernel, or CPU
// workers), publish slots from any number of threads, wait for tickets, and
// stop it with shutdown() (drain) or abort() (stop now).
//
// Lifecycle (NCCL's Finalize / Abort / Destroy):
//   Runtime::create  -> running
//   shutdown(t)      -> no new publishes; every published slot completes;
//                       the consumer exits; device memory is freed.
//   abort()          -> no new publishes; the consumer stops after the slot it
//                       is running; every slot not completed reads ABORTED.
//   ~Runtime         -> abort() if still running, then frees everything.
// After shutdown or abort, wait()/wait_done() still answer for every ticket,
// and every ticket ever published ends completed (OK), faulted or aborted.
//
// Thread safety: publish*, wait*, done_count, stats and the buffer calls may
// be called from any number of threads at once. shutdown/abort may race with
// them (publishers then get kShutdown/kAborted) but not with the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "megaring/consumer.hpp"
#include "megaring/consumer/cost_count.hpp"
#include "megaring/health.hpp"
#include "megaring/slot_abi.h"
#include "megaring/status.hpp"

namespace megaring {

enum class Backend {
  kAuto,  // CUDA when a usable GPU is present, else CPU
  kCuda,  // persistent megakernel; kNoDevice without a GPU
  kCpu,   // host worker threads running the same protocol and handlers
};
const char* backend_name(Backend backend) noexcept;

// Every timeout and duration the API takes: zero means "do not wait" (one
// look), kForever (or anything beyond a century) never expires, and a
// negative one is refused with kInvalidArgument.
using Nanoseconds = std::chrono::nanoseconds;
inline constexpr Nanoseconds kForever = Nanoseconds::max();

// Config::workers = 0 on a GPU. On an H100 an idle megakernel of 8 blocks
// cost a large cuBLAS GEMM 6-9 % and served 0.72 M NOP slots/s at the same
// round trip as 132 blocks (0.86 M/s), which starved the GEMM outright
// (bench/NOTES.md, "Interference").
inline constexpr uint32_t kDefaultGpuWorkers = 8;

// Bounds on what callers pass (README, "Limits"). A value outside its bound
// is refused with kInvalidArgument before anything is allocated or started.
inline constexpr uint32_t kMaxRingCapacity = 1u << 24;      // Config::ring_capacity
inline constexpr uint32_t kMaxTimelineCapacity = 1u << 24;  // Config::timeline_capacity
// Config::workers on the CPU backend: each worker is a polling thread, and
// thousands of them made create() take seconds and the machine crawl.
inline constexpr uint32_t kMaxCpuWorkers = 256;
inline constexpr uint32_t kMaxBuffers = MR_BUFFER_INDEX_MASK;     // Config::max_buffers
inline constexpr uint32_t kMaxTenants = MR_TENANT_INDEX_MASK + 1;  // Config::max_tenants
inline constexpr uint32_t kMaxPollBackoffNs = 1'000'000'000;  // Config::poll_backoff_max_ns
// alloc_buffer's size: 2^48 bytes (256 TiB) is beyond any device or host
// memory, and keeps every size and offset sum in a slot far from 2^64.
inline constexpr uint64_t kMaxBufferBytes = 1ull << 48;
inline constexpr uint32_t kMaxRegions = MR_BUFFER_INDEX_MASK;  // Config::max_regions
// Config::staging_arena_bytes: 2^40 bytes (1 TiB) of pinned host memory is
// past any machine's, and keeps every region offset sum far from 2^64.
inline constexpr uint64_t kMaxStagingArenaBytes = 1ull << 40;

struct Config {
  Backend backend = Backend::kAuto;  // one of the three values above
  int device = 0;                    // CUDA device ordinal, >= 0
  uint32_t ring_capacity = 1024;     // slots; power of two in [1, kMaxRingCapacity]
  // Executors: GPU blocks or CPU worker threads that run slots. The consumer
  // has one more, its I/O unit (block 0, or the "megaring-io" thread: the
  // fetcher and the completer). 0 = the backend's default:
  // kDefaultGpuWorkers blocks (at most one per SM, and as many as fit
  // beside the I/O block), or 2 threads. The blocks never leave their SMs:
  // more of them serve more slots at once but keep other kernels off those
  // SMs (README, "Running next to a persistent kernel"). On a GPU at most the
  // co-resident block count - 1, on the CPU backend at most kMaxCpuWorkers,
  // or create() fails.
  uint32_t workers = 0;
  uint32_t max_buffers = 1024;       // buffer-table entries, in [1, kMaxBuffers]
  // Tenant-table entries in consumer memory, in [1, kMaxTenants]; index 0 is
  // never a tenant, so a TenantRegistry can hold max_tenants - 1 tenants.
  uint32_t max_tenants = 1024;
  // Staging (Runtime::create_region): the arena's size in bytes, pinned
  // host memory the consumer reaches (mapped into the GPU), allocated at
  // create() and held until the runtime goes; 0 (the default) = no staging.
  // At most kMaxStagingArenaBytes. Regions are cut from it in 64-byte lines.
  uint64_t staging_arena_bytes = 0;
  // Region-table entries in consumer memory, in [1, kMaxRegions].
  uint32_t max_regions = 256;
  // First ticket, at most 2^56 - 2^40 (tests use values near 2^32 to cross
  // the 32-bit boundary).
  uint64_t initial_ticket = 0;
  // Consumer poll backoff while the ring is empty: min_ns doubling to max_ns
  // (at most kMaxPollBackoffNs, 1 s; min <= max). GPU: __nanosleep per
  // poll; a wake-up costs up to max_ns.
  // CPU: sleeps under a microsecond become yields.
  uint32_t poll_backoff_min_ns = 64;
  uint32_t poll_backoff_max_ns = 2048;
  // Warps of the I/O block that share the fetcher's reads of the ring, in
  // [0, 7]; 0 = the default, 4. A warp's reads of host memory leave it one
  // after another, so a round of many slots takes less time spread over
  // more warps (README, "The ring, in brief"). The I/O block has no other
  // use for them: its warps beyond the fetcher and the completer are idle.
  // A block smaller than 256 threads takes what it has. The CPU backend's
  // fetcher is one thread; there the value only shapes the cost model.
  uint32_t fetch_warps = 0;
  // Rings of their own for Producer handles (Runtime::open_producer), in
  // [0, MR_MAX_RINGS - 1]; each has ring_capacity slots. Ring 0, which
  // Runtime::publish uses, always exists. 0 = none. Not with timeline mode.
  uint32_t producer_rings = 0;
  // Unit 0 stamps heartbeat_ns() at most this often, between slots and
  // while it polls: a slot of unit 0 that runs longer pauses it.
  uint32_t heartbeat_interval_ns = 100'000;
  // Set CUDA_MODULE_LOADING=EAGER if the variable is unset, before the first
  // CUDA call: lazy loading of another kernel next to a running persistent
  // kernel can deadlock. Only takes effect if CUDA is not yet initialised.
  bool force_eager_module_loading = true;
  // How long abort() waits for the consumer to stop; not negative.
  Nanoseconds abort_timeout = std::chrono::seconds(10);
  // Timeline mode: record, per slot, the unit that ran it and its claim and
  // completion times, for the last `timeline_capacity` tickets (0 = off, else
  // a power of two in [2 * ring_capacity, kMaxTimelineCapacity]: a snapshot
  // under load can only use records that no published ticket may be
  // overwriting). Off, the consumer runs an instantiation without any
  // recording code. See Runtime::timeline() and write_timeline_trace().
  uint32_t timeline_capacity = 0;
  // The cost model (CPU backend only; kInvalidArgument on a GPU): each
  // consumer unit counts what the protocol costs a GPU per slot (host reads,
  // round trips waited for, system fences, shared-line writes, device RMWs,
  // locks), read with Runtime::consumer_costs(). bench --cost-model turns
  // the counts into modelled GPU throughput.
  bool count_costs = false;
  // The operator's view: when wait(), wait_done() or call() times out, also
  // write dump_state() to the log at WARN (megaring/log.hpp; the timeout
  // itself is logged either way).
  bool dump_on_wait_timeout = false;
  // Control operations (TenantHandle::set_grants, ...; "Control
  // operations" below): the longest one waits for the topology token and
  // for every executor to reach a point between slots. Past it the
  // operation is cancelled with kTimeout, the tables unchanged. Positive, at
  // most kMaxControlTimeout. An executor reaches such a point when it
  // finishes its chunk (at most 16 slots): a slot that runs longer than this
  // makes control operations time out while it runs.
  Nanoseconds control_timeout = std::chrono::seconds(1);
};
inline constexpr Nanoseconds kMaxControlTimeout = std::chrono::hours(1);

// What unregister_buffer does while slots published before it may still use
// the buffer: wait for them (up to its timeout), or fail with kInUse and
// leave the buffer registered.
enum class WhileInUse : uint32_t { kWait, kFail };

// Control operations: changes to the consumer's tables that slots already
// queued or running could see (TenantHandle::set_grants,
// Producer::set_priority). One runs at a time (the topology token). Every
// executor parks at a point between slots and acknowledges; the change is
// written while none runs a slot; then all go on. So no slot ever runs
// under a half-applied change. If a step fails, the steps before it are
// undone and the call returns that error with the tables as before. The
// executors are asked in attempts (a grace of 2 ms, doubling to 64 ms, then
// a pause of four graces): behind an executor that runs a long slot the
// others are held at most a fifth of the time.
// If they do not all park within Config::control_timeout, or the runtime
// stops or fails meanwhile, the operation is cancelled: nothing was
// written, and the call fails (kTimeout naming the executors that did not
// answer, or the runtime's status). The consumer's I/O unit keeps fetching
// and completing throughout; the executors stop for the length of the
// change (a few table writes) once all have parked. Counted here since the
// runtime started:
struct ControlStats {
  uint64_t operations = 0;   // applied
  uint64_t rolled_back = 0;  // a step failed; undone
  uint64_t cancelled = 0;    // the token or the executors not in time, or the runtime closed
  uint64_t last_ns = 0;      // the last operation's duration (any outcome), token to release
  uint64_t max_ns = 0;
  uint64_t total_ns = 0;
};

// One slot to publish. Argument meanings per opcode are in slot_abi.h; the
// helpers in namespace ops build the built-in ones.
struct SlotRequest {
  uint32_t opcode = MR_OP_INVALID;
  uint32_t tenant = 0;
  uint32_t flags = MR_SLOT_FLAG_NONE;
  uint64_t args[MR_SLOT_ARGS] = {};
};

using BufferHandle = uint32_t;
// A staging region: [15:0] table index, [31:16] generation, never 0.
using RegionHandle = uint32_t;
// What may change a region's bytes once created (slot_abi.h, "Staging").
enum class RegionPolicy : uint32_t {
  kImmutable = MR_REGION_IMMUTABLE,    // write_region until seal_region, then never
  kAppendOnly = MR_REGION_APPEND_ONLY, // append_region at the committed end only
  kMutable = MR_REGION_MUTABLE,        // anyone, anytime; never a descriptor
};
// A zero-copy reference to staged bytes: slots name it, the consumer checks
// it (handle, generation, owner, policy, range within what is committed)
// before it reads a byte.
struct StagingDescriptor {
  RegionHandle region = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

namespace ops {
SlotRequest nop(uint64_t echo = 0);
SlotRequest store_u32(BufferHandle buffer, uint64_t offset, uint32_t value);
SlotRequest atomic_add(BufferHandle buffer, uint64_t offset, uint64_t delta);
SlotRequest fill(BufferHandle buffer, uint64_t offset, uint64_t bytes, uint8_t value);
SlotRequest copy(BufferHandle dst, uint64_t dst_offset, BufferHandle src, uint64_t src_offset,
                 uint64_t bytes);
SlotRequest reduce_add_u32(BufferHandle buffer, uint64_t offset, uint64_t count);
SlotRequest fence();
SlotRequest delay_ns(uint64_t ns);
// Staging: a descriptor's bytes into a buffer; a buffer range into a mutable
// region (results for the host); y[i] = fmaf(alpha, x[i], y[i]) over f32.
SlotRequest stage_to_buffer(const StagingDescriptor& source, BufferHandle dst, uint64_t dst_offset);
SlotRequest buffer_to_staging(BufferHandle src, uint64_t src_offset, RegionHandle region,
                              uint64_t region_offset, uint64_t bytes);
SlotRequest axpy_f32(BufferHandle y, uint64_t y_offset, BufferHandle x, uint64_t x_offset,
                     uint32_t count, float alpha);
}  // namespace ops

// A published slot. A `kept` ticket's completion is held until wait() reads
// it or release() drops it: in its ring position while nobody needs that, or
// parked in host memory when a producer needs the position (so unread kept
// results never block the ring). Every kept ticket must be waited on or
// released, or its parked completion stays in memory until the runtime goes.
struct Ticket {
  uint64_t value = 0;
  bool kept = false;
};

struct Completion {
  uint64_t ticket = 0;
  uint64_t result = 0;
  uint16_t status = MR_STATUS_OK;  // MR_STATUS_*
  uint16_t fault = MR_FAULT_NONE;  // MR_FAULT_* when status is FAULT
  bool ok() const noexcept { return status == MR_STATUS_OK; }
};

// A producer ring's class (slot_abi.h, "Priorities"; README, "Priorities"):
// the consumer fetches from critical rings first, then normal, then bulk,
// and a waiting lower class is served at least once per
// MR_PRIORITY_CREDIT_SLOTS higher-class slots (plus the turn in progress;
// while critical rings keep the staged queue full, at most a queue of them).
// Ring 0 is normal.
enum class Priority : uint32_t {
  kNormal = MR_RING_CLASS_NORMAL,
  kCritical = MR_RING_CLASS_CRITICAL,
  kBulk = MR_RING_CLASS_BULK,
};

enum class OnFull {
  kWait,  // wait (up to PublishOptions::timeout) for positions to free up
  kFail,  // return kRingFull at once
};

struct PublishOptions {
  bool keep_result = false;  // see Ticket::kept
  OnFull on_full = OnFull::kWait;
  Nanoseconds timeout = kForever;
};

// Counts of the caller's slots: timeline mode's clock-calibration slots at
// create() are left out.
struct RuntimeStats {
  uint64_t published = 0;     // tickets handed out
  uint64_t done_count = 0;    // DONE_COUNT (absolute ticket value)
  uint64_t reaped = 0;        // completions the host has accounted for
  uint64_t completed_ok = 0;  // reaped with MR_STATUS_OK
  uint64_t faulted = 0;       // reaped with MR_STATUS_FAULT
  uint64_t aborted = 0;       // reaped with MR_STATUS_ABORTED
  uint64_t revoked = 0;       // reaped with MR_STATUS_REVOKED (tenant unregistered)
  uint64_t faults_by_code[MR_FAULT_CODE_COUNT] = {};
  uint64_t ring_full_events = 0;  // publishes that found the ring full
  uint64_t protocol_errors = 0;   // completion records that broke the protocol: a bug if non-zero
  uint64_t parked_results = 0;    // unread kept completions moved off the ring (see Ticket)
};

// What the consumer counts about its own protocol (diagnostics; the roles
// are described in megaring/slot_abi.h). Totals since create(), each
// written by one role; take differences around a measurement.
struct ConsumerCounters {
  uint64_t fetch_rounds = 0;     // fetcher rounds that staged slots
  uint64_t tickets_fetched = 0;  // tickets those rounds staged: every published one, once
  uint64_t header_rounds = 0;    // fetcher rounds that found headers READY and staged nothing
                                 // (fetch_rounds + header_rounds: its round trips that found work)
  uint64_t idle_polls = 0;       // fetcher polls that found nothing (updated every 64th)
  uint64_t flushes = 0;          // DONE_COUNT stores (one system fence each)
  uint64_t records_written = 0;  // completion records written to host memory
};

// One slot in timeline mode. Times are on the host's steady clock (ns since
// its epoch); consumer times are converted with a measured clock offset.
struct TimelineSlot {
  uint64_t ticket = 0;
  uint32_t unit = 0;    // GPU block or CPU worker that ran it
  uint32_t opcode = 0;
  int64_t publish_ns = 0;   // host: header released
  int64_t claim_ns = 0;     // consumer: slot seen READY, body copied
  int64_t complete_ns = 0;  // consumer: handler done, completion next
};
// One host reap pass (the host's side of completion).
struct TimelineReap {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint64_t first_ticket = 0;
  uint64_t count = 0;
};
struct Timeline {
  std::vector<TimelineSlot> slots;  // completed tickets still in the record ring, in order
  std::vector<TimelineReap> reaps;  // most recent reap passes
  int64_t clock_offset_ns = 0;      // consumer clock - host clock
  int64_t clock_uncertainty_ns = 0; // half the round trip of the best calibration sample
  uint32_t units = 0;
  const char* backend = "";
};

namespace detail {
struct RuntimeInternals;  // the tenant layer's access (src/runtime/runtime_internal.hpp)
}
class Producer;  // megaring/producer.hpp

class Runtime {
 public:
  // Creates and starts a runtime with the built-in consumer, or with a user
  // consumer built by make_consumer<> (megaring/megakernel.cuh).
  static Status create(const Config& config, std::unique_ptr<Runtime>* out) noexcept;
  static Status create(const Config& config, const Consumer& consumer,
                       std::unique_ptr<Runtime>* out) noexcept;
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  Backend backend() const noexcept;  // kCuda or kCpu, never kAuto
  uint32_t capacity() const noexcept;
  uint32_t consumer_units() const noexcept;  // executors (blocks or threads), without the I/O unit
  const char* device_name() const noexcept;  // GPU name, or "cpu"

  // Publishes one slot / a batch of `count` slots with consecutive tickets.
  Status publish(const SlotRequest& request, Ticket* ticket,
                 const PublishOptions& options = {}) noexcept;
  Status publish_batch(const SlotRequest* requests, uint32_t count, Ticket* first_ticket,
                       const PublishOptions& options = {}) noexcept;

  // Waits for a kept ticket and reads its completion (then releases it).
  // It returns once the ticket has completed, even while an earlier ticket
  // still runs (the consumer writes a kept ticket's record early when
  // DONE_COUNT has been held back by an earlier slot for 10 us).
  // A FAULT or ABORTED completion is a successful wait: look at
  // completion->status. Fails with kInvalidArgument for a ticket that was not
  // kept or was already read, kTimeout, or kCudaError if the consumer died.
  Status wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout = kForever) noexcept;
  // Waits until DONE_COUNT > ticket: the ticket (kept or not) and every one
  // before it completed. DONE_COUNT may trail a completion that wait() has
  // already returned by a moment. Returns kAborted for an aborted ticket.
  Status wait_done(const Ticket& ticket, Nanoseconds timeout = kForever) noexcept;
  // Drops a kept ticket's completion without waiting for it.
  Status release(const Ticket& ticket) noexcept;
  // publish(keep_result) + wait.
  Status call(const SlotRequest& request, Completion* completion,
              Nanoseconds timeout = kForever) noexcept;

  // A Producer with a ring of its own (megaring/producer.hpp): kRingFull
  // when all Config::producer_rings are taken, kInvalidArgument when there
  // are none, kShutdown/kAborted once the runtime stops.
  Status open_producer(std::unique_ptr<Producer>* out) noexcept;
  // The same, with the ring's class (kInvalidArgument for a value that is
  // not a Priority). It holds while the Producer lives; destroying the
  // Producer makes the ring normal again, and the next owner sets its own.
  Status open_producer(std::unique_ptr<Producer>* out, Priority priority) noexcept;

  uint64_t done_count() const noexcept;     // ring 0's DONE_COUNT, absolute ticket value
  uint64_t heartbeat_ns() const noexcept;   // last consumer heartbeat (consumer clock)
  // Counters over the completions below DONE_COUNT (reaping them first).
  // DONE_COUNT can trail a completion that wait() already returned by a
  // moment: wait_done() the last ticket first for exact counts. With a
  // TenantRegistry attached only its drain pump reaps, so the counters cover
  // what the pump has drained.
  RuntimeStats stats() noexcept;
  // The consumer's own counters (a copy from consumer memory; not a
  // consistent cut while slots run).
  Status consumer_counters(ConsumerCounters* out) noexcept;
  // Control operations so far (ControlStats).
  Status control_stats(ControlStats* out) noexcept;
  // Config::count_costs: the consumer units' cost counters, summed
  // (kInvalidArgument when counting is off) ...
  Status consumer_costs(CostCounters* out) noexcept;
  // ... or by role: the executors' summed, and the I/O unit's (the fetcher
  // and the completer, whose costs are serial for the whole consumer).
  Status consumer_costs(CostCounters* executors, CostCounters* io) noexcept;

  // Consumer-side buffers that slots name by handle (device memory on the
  // GPU), zero-filled. After free_buffer(), slots published before it still
  // run on the buffer and slots published after it fault with
  // MR_FAULT_BAD_HANDLE; the memory is released once every earlier slot has
  // completed. Host reads/writes of a freed handle fail at once.
  // `bytes` may be 0 (every non-empty range in it faults) and at most
  // kMaxBufferBytes; ranges are checked without overflow. A handle is an
  // index and a generation: a freed or stale handle is refused (a handle of
  // another runtime is refused unless its index and generation happen to
  // name one of ours: each runtime starts its generations elsewhere).
  Status alloc_buffer(uint64_t bytes, BufferHandle* handle) noexcept;
  Status free_buffer(BufferHandle handle) noexcept;
  // Memory the caller allocated, as a buffer, without a copy: device (or
  // managed) memory of this runtime's GPU from any allocator (cudaMalloc,
  // PyTorch, CuPy); any host memory on the CPU backend. The caller keeps
  // owning it: megaring never frees it, and the caller must keep it alive
  // until unregister_buffer() returns OK. Slots name it by handle like any
  // buffer; bytes 0 .. kMaxBufferBytes, and [memory, memory + bytes) must
  // not wrap. unregister_buffer() retires the handle (slots published from
  // then on fault BAD_HANDLE) and returns once no slot published before can
  // touch the memory any more. On kTimeout the handle stays retired and the
  // memory in use; a later unregister_buffer(handle) waits on. free_buffer()
  // on a registered buffer retires it without waiting; the memory is then
  // the caller's once every slot published before has completed.
  // With WhileInUse::kFail, unregister_buffer does not retire a buffer that
  // a slot published before the call may still use (any slot of any ring not
  // yet completed: megaring does not read slot arguments, so "may use" is
  // "is outstanding"): it returns kInUse and the handle stays registered.
  // Past that check it retires the buffer and waits as kWait does, for the
  // slots published between the check and the retire (on kTimeout the
  // buffer is retired, as with kWait).
  Status register_buffer(void* memory, uint64_t bytes, BufferHandle* handle) noexcept;
  Status unregister_buffer(BufferHandle handle, Nanoseconds timeout = kForever,
                           WhileInUse while_in_use = WhileInUse::kWait) noexcept;
  // write_buffer / read_buffer are not ordered with slots in flight on the
  // same buffer (as cudaMemcpy is not with a running kernel): wait for those
  // slots first.
  Status write_buffer(BufferHandle handle, uint64_t offset, const void* src, uint64_t bytes) noexcept;
  Status read_buffer(BufferHandle handle, uint64_t offset, void* dst, uint64_t bytes) noexcept;

  // Staging regions, cut from the staging arena (Config::staging_arena_bytes):
  // host memory that slots name by descriptor (ops::stage_to_buffer) or
  // write results into (ops::buffer_to_staging, mutable regions only).
  // `bytes` in [1, the arena's size]; kOutOfMemory when the arena or the
  // region table is full. The policy fixes what may change the bytes:
  //   kImmutable: write_region until seal_region; descriptors read nothing
  //     before the seal and everything after; no write after it.
  //   kAppendOnly: append_region adds at the committed end (the length is
  //     published after the bytes); descriptors read below it; nothing
  //     below it ever changes.
  //   kMutable: write_region and the consumer's writes anywhere, anytime;
  //     no descriptor may name it.
  // read_region reads any region (results: after the slots that write them
  // completed). free_region retires the handle as free_buffer does (slots
  // published after it fault BAD_REGION; the bytes go back to the arena once
  // every earlier slot completed). Ranges are checked without overflow.
  Status create_region(RegionPolicy policy, uint64_t bytes, RegionHandle* handle) noexcept;
  Status write_region(RegionHandle handle, uint64_t offset, const void* src, uint64_t bytes) noexcept;
  Status seal_region(RegionHandle handle) noexcept;
  // Appends at the committed end; *offset (may be null) is where the bytes went.
  Status append_region(RegionHandle handle, const void* src, uint64_t bytes, uint64_t* offset) noexcept;
  Status read_region(RegionHandle handle, uint64_t offset, void* dst, uint64_t bytes) noexcept;
  Status free_region(RegionHandle handle) noexcept;
  // Timeline mode (Config::timeline_capacity > 0): a snapshot of the records
  // of completed tickets, safe while slots are still running (records being
  // overwritten are left out). kInvalidArgument when the mode is off.
  Status timeline(Timeline* out) noexcept;
  // Writes the snapshot as a Chrome trace (JSON), for Perfetto or
  // chrome://tracing: one track per consumer unit, host publishes and reap
  // passes beside them, and a flow arrow from each publish to its slot.
  Status write_timeline_trace(const std::string& path) noexcept;

  // The operator's view (megaring/health.hpp; README, "Operating it"). No
  // call publishes a slot; each is safe at any time, after shutdown too.
  // health: state, whether the consumer is alive, heartbeat age, last error.
  Status health(Health* out) noexcept;
  // dump_state: health, every ring's cursors, the consumer's cursors, what
  // each executor runs, the oldest outstanding ticket; as a struct or as
  // text (several lines).
  Status dump_state(StateDump* out) noexcept;
  Status dump_state(std::string* out) noexcept;
  // metrics_text: stats(), consumer_counters() and health as Prometheus
  // text exposition (counters and gauges named megaring_*). It reaps, as
  // stats() does.
  Status metrics_text(std::string* out) noexcept;

  // Suspension (README, "Beside PyTorch"): a persistent kernel makes every
  // device-wide synchronisation of the application (cudaDeviceSynchronize,
  // torch.cuda.synchronize, cudaFree) wait for it. suspend() stops the
  // consumer and returns once it has exited: every slot it had staged
  // completed as usual first; on the GPU the kernel has returned. Rings,
  // buffers, regions, tenants, grants and ring classes stay; publishers may
  // go on publishing (a full ring back-pressures as usual) and waits wait.
  // resume() starts the consumer again where each ring stopped: every
  // ticket runs once, in its ring's order. Both block, and touch the device.
  //   suspend(t): OK once the consumer exited; OK at once if suspended.
  //     kTimeout if a slot it staged still runs at t: the runtime stays
  //     suspending (the consumer exits once the slot ends); suspend() again
  //     waits again, resume() waits for the exit and then starts it.
  //   resume(): OK once started; kInvalidArgument if not suspended or
  //     suspending; waits for a suspension in progress (abort() ends the
  //     wait).
  //   After shutdown/abort (or a failure): closed_status (kShutdown,
  //     kAborted) or the failure. shutdown() of a suspended runtime resumes
  //     it and drains; abort() aborts what is not completed; ~Runtime too.
  // Control operations (set_grants, Producer::set_priority) while suspended
  // apply at once: no slot runs; the slots after resume() see them.
  Status suspend(Nanoseconds timeout = kForever) noexcept;
  Status resume() noexcept;
  // kLive, kSuspending or kSuspended (health.hpp), while running; kLive
  // otherwise.
  ConsumerPhase consumer_phase() const noexcept;

  // Graceful stop: refuse new publishes, drain, let the consumer exit, free
  // device memory. On timeout it aborts and returns kTimeout.
  Status shutdown(Nanoseconds timeout = std::chrono::seconds(30)) noexcept;
  // Immediate stop; every slot not completed reads ABORTED.
  Status abort() noexcept;

  class Impl;

 private:
  friend struct detail::RuntimeInternals;
  explicit Runtime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when a CUDA device and driver are usable (clears any CUDA error).
bool cuda_device_available() noexcept;

}  // namespace megaring
