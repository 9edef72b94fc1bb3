// SPDX-License-Identifier: Apache-2.0
// CPU backend: the consumer protocol and opcode handlers of the megakernel,
// run by host worker threads over ordinary host memory. Same ABI, same
// completion semantics; it is how CI exercises the protocol without a GPU.
//
// Who owns what (owned.hpp), and in which order it goes: the backend holds
// every region the workers touch (the ring, the completions, the control
// words, the consumer-private state and tables, the cost counters) as
// owning members (HostArray, unique_ptr), and the worker threads after them. ~CpuBackend joins
// the threads; then the members go in reverse, threads before memory. The
// runtime leaks the whole backend of a wedged consumer (unique_ptr::release),
// so no destructor runs then. Buffers from alloc() are the runtime's: handed
// out as addresses and given back by free().
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include "backends/atomic_table_store.hpp"
#include "backends/backend.hpp"
#include "backends/owned.hpp"
#include "backends/table_writes.hpp"
#include "support/thread_name.hpp"

namespace megaring::detail {
namespace {

// Run at the start of each worker thread. Best effort: either failing only
// makes the worker slower to wake or harder to find.
//  * Its timer slack. A worker's poll backoff sleeps for up to
//    Config::poll_backoff_max_ns, but Linux lets a sleep overrun by the
//    thread's timer slack, 50 us by default: a worker asked to sleep 2 us
//    slept about 55, and since it holds the ticket it claimed next, every
//    slot behind that ticket waited too. A quarter of the cap, between 1 us
//    and the default (the slack applies to the backoff's short sleeps too).
//  * Then its name, "megaring-w<unit>" for an executor and "megaring-io" for
//    the I/O thread (fetcher and completer), for perf, nsys, top -H and gdb
//    (a thread that shows its name has its slack set).
void prepare_worker_thread(unsigned unit, bool io, uint32_t poll_backoff_max_ns) {
#if defined(__linux__)
  const unsigned long slack_ns = std::clamp<unsigned long>(poll_backoff_max_ns / 4, 1000, 50'000);
  (void)prctl(PR_SET_TIMERSLACK, slack_ns, 0, 0, 0);
  char name[16];  // 15 characters and the NUL, the kernel's limit
  if (io)
    std::snprintf(name, sizeof name, "megaring-io");
  else
    std::snprintf(name, sizeof name, "megaring-w%u", unit % 100000);
  name_this_thread(name);
#else
  (void)unit;
  (void)io;
  (void)poll_backoff_max_ns;
#endif
}


class CpuBackend final : public ConsumerBackend {
 public:
  ~CpuBackend() override {
    // The runtime joins before destroying; joining here keeps memory alive
    // for a consumer that is somehow still running rather than free it under
    // it. The members then go in reverse: threads_ (joined), then memory.
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  Status init(const Config& config) override {
    const uint32_t cap = config.ring_capacity;
    const uint32_t rings = ring_count(config);
    shared_.slots = allocate_host_zeroed<mr_slot>(uint64_t{rings} * cap);
    shared_.submission = allocate_host_zeroed<mr_submission_control>(1);
    shared_.completions = allocate_host_zeroed<mr_completion>(uint64_t{rings} * cap);
    shared_.ring_done = allocate_host_zeroed<mr_ring_done>(rings);
    shared_.completion_control = allocate_host_zeroed<mr_completion_control>(1);
    consumer_.priv = allocate_host_zeroed<ConsumerPrivate>(1);
    consumer_.done_flags = allocate_host_zeroed<uint64_t>(cap);
    consumer_.staged = allocate_host_zeroed<mr_slot>(cap);
    consumer_.outcomes = allocate_host_zeroed<mr_completion>(cap);
    consumer_.buffers = allocate_host_zeroed<mr_buffer_entry>(config.max_buffers);
    consumer_.tenants = allocate_host_zeroed<mr_tenant_entry>(config.max_tenants);
    tenant_table_size_ = config.max_tenants;
    consumer_.tenant_counters = allocate_host_zeroed<mr_tenant_counters>(config.max_tenants);
    consumer_.tenant_grants = allocate_host_zeroed<mr_tenant_grants>(config.max_tenants);
    consumer_.regions = allocate_host_zeroed<mr_region_entry>(config.max_regions);
    if (config.staging_arena_bytes != 0) {
      consumer_.staging = allocate_host_zeroed<uint8_t>(config.staging_arena_bytes);
      if (!consumer_.staging)
        return Status(Result::kOutOfMemory, "cpu backend: staging arena allocation failed");
      staging_.host = consumer_.staging.get();
      staging_.consumer = reinterpret_cast<uint64_t>(staging_.host);  // the workers are host threads
      staging_.bytes = config.staging_arena_bytes;
    }
    if (config.timeline_capacity != 0) {
      consumer_.timeline = allocate_host_zeroed<mr_timeline_record>(config.timeline_capacity);
      params_.timeline_mask = config.timeline_capacity - 1;
      timeline_size_ = config.timeline_capacity;
    }
    if (!shared_.slots || !shared_.submission || !shared_.completions || !shared_.ring_done || !shared_.completion_control ||
        !consumer_.priv || !consumer_.done_flags || !consumer_.staged || !consumer_.outcomes || !consumer_.buffers || !consumer_.tenants ||
        !consumer_.tenant_counters || !consumer_.tenant_grants || !consumer_.regions || (config.timeline_capacity != 0 && !consumer_.timeline))
      return Status(Result::kOutOfMemory, "cpu backend: ring allocation failed");
    host_.slots = shared_.slots.get();
    host_.submission = shared_.submission.get();
    host_.completions = shared_.completions.get();
    host_.ring_done = shared_.ring_done.get();
    host_.completion_control = shared_.completion_control.get();
    params_.slots = host_.slots;
    params_.submission = host_.submission;
    params_.completions = host_.completions;
    params_.ring_done = host_.ring_done;
    params_.completion_control = host_.completion_control;
    params_.priv = consumer_.priv.get();
    params_.done_flags = consumer_.done_flags.get();
    params_.staged = consumer_.staged.get();
    params_.outcomes = consumer_.outcomes.get();
    params_.buffers = consumer_.buffers.get();
    params_.tenants = consumer_.tenants.get();
    params_.tenant_counters = consumer_.tenant_counters.get();
    params_.tenant_grants = consumer_.tenant_grants.get();
    params_.regions = consumer_.regions.get();
    params_.max_regions = config.max_regions;
    params_.timeline = consumer_.timeline.get();  // null unless timeline mode
    params_.rings = rings;
    params_.units = config.workers == 0 ? 2 : config.workers;
    consumer_.unit_notes = allocate_host_zeroed<UnitNote>(params_.units);
    if (!consumer_.unit_notes) return Status(Result::kOutOfMemory, "cpu backend: unit notes");
    params_.unit_notes = consumer_.unit_notes.get();
    if (config.count_costs) {
      costs_.reset(new (std::nothrow) CostCounters[params_.units + 1]());  // + the I/O thread
      if (!costs_) return Status(Result::kOutOfMemory, "cpu backend: cost counters");
      params_.costs = costs_.get();
    }
    return Status::ok();
  }

  Status set_private_cursors(uint64_t initial_ticket) override {
    *params_.priv = initial_private(initial_ticket);
    return Status::ok();
  }

  Status start(const Consumer& consumer) override {
    auto worker = params_.timeline != nullptr ? consumer.cpu_worker_timeline : consumer.cpu_worker;
    if (worker == nullptr) return Status(Result::kInvalidArgument, "consumer has no CPU worker");
    // The I/O thread (unit params_.units) first: it is the only reader of the
    // abort flag, so executors started after it can always be stopped.
    try {
      threads_.reserve(params_.units + 1);
      for (uint32_t i = 0; i <= params_.units; ++i) {
        const uint32_t unit = i == 0 ? params_.units : i - 1;
        threads_.emplace_back([worker, params = params_, unit] {
          prepare_worker_thread(unit, unit == params.units, params.poll_backoff_max_ns);
          worker(params, unit);
        });
      }
    } catch (const std::exception& e) {
      // Threads already started must stop before the runtime frees memory:
      // the abort stops them, and the executors that never started count as
      // exited, so that the I/O thread's completer does not wait for them.
      if (!threads_.empty()) {
        SysRef<uint32_t>(host_.submission->abort_flag).store(1, cuda::std::memory_order_release);
        DevRef<uint32_t>(params_.priv->exited_units)
            .fetch_add(static_cast<uint32_t>(params_.units + 1 - threads_.size()),
                       cuda::std::memory_order_acq_rel);
      }
      for (auto& t : threads_) t.join();
      threads_.clear();
      return Status(Result::kInternal, std::string("cpu backend: cannot start workers: ") + e.what());
    }
    return Status::ok();
  }

  Status health() override { return Status::ok(); }  // threads cannot die alone

  Status join(Nanoseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::min(timeout, Nanoseconds(std::chrono::hours(24 * 365)));
    while (!consumer_exited()) {
      if (std::chrono::steady_clock::now() > deadline)
        return Status(Result::kTimeout, "cpu workers did not stop in time");
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
    return Status::ok();
  }

  Status restart(const Consumer& consumer) override {
    if (!threads_.empty()) return Status(Result::kInternal, "cpu backend: restart while the workers run");
    // Relaxed: the threads' start below orders these stores before them.
    DevRef<uint32_t>(params_.priv->exited_units).store(0, cuda::std::memory_order_relaxed);
    DevRef<uint64_t>(params_.priv->stop_seq).store(~0ull, cuda::std::memory_order_relaxed);
    for (uint32_t u = 0; u < params_.units; ++u)
      DevRef<uint64_t>(params_.unit_notes[u].control_parked).store(0, cuda::std::memory_order_relaxed);
    SysRef<uint32_t>(host_.completion_control->exited_units).store(0, cuda::std::memory_order_relaxed);
    params_.resume = 1;
    return start(consumer);
  }

  Status alloc(uint64_t bytes, uint64_t* address) override {
    HostArray<uint8_t> buffer = allocate_host_zeroed<uint8_t>(bytes);
    if (!buffer) return Status(Result::kOutOfMemory, "cpu backend: buffer allocation failed");
    *address = reinterpret_cast<uint64_t>(buffer.release());  // the runtime's until free()
    return Status::ok();
  }
  // The workers are host threads: any host memory of the caller serves.
  Status check_external(uint64_t, uint64_t) override { return Status::ok(); }
  Status free(uint64_t address) override {
    AlignedHostFree{}(reinterpret_cast<void*>(address));  // as alloc()'s owner would have
    return Status::ok();
  }
  Status copy_in(uint64_t address, const void* src, uint64_t bytes) override {
    std::memcpy(reinterpret_cast<void*>(address), src, bytes);
    return Status::ok();
  }
  Status copy_out(void* dst, uint64_t address, uint64_t bytes) override {
    std::memcpy(dst, reinterpret_cast<const void*>(address), bytes);
    return Status::ok();
  }

  // The table writes: their order is table_writes.hpp's; their words go out
  // as atomic stores (AtomicTableStore).
  Status write_table_entry(uint32_t index, const mr_buffer_entry& entry) override {
    AtomicTableStore store;
    return table_writes::write_buffer_entry(store, &params_.buffers[index], entry);
  }
  Status retire_table_entry(uint32_t index, uint64_t retire_ticket) override {
    AtomicTableStore store;
    return table_writes::retire_buffer_entry(store, &params_.buffers[index], retire_ticket);
  }
  Status clear_table_handle(uint32_t index) override {
    AtomicTableStore store;
    return table_writes::clear_buffer_handle(store, &params_.buffers[index]);
  }
  Status write_region_entry(uint32_t index, const mr_region_entry& entry) override {
    AtomicTableStore store;
    return table_writes::write_region_entry(store, &params_.regions[index], entry);
  }
  Status set_region_committed(uint32_t index, uint64_t committed) override {
    AtomicTableStore store;
    return table_writes::set_region_committed(store, &params_.regions[index], committed);
  }
  Status retire_region_entry(uint32_t index, uint64_t retire_ticket) override {
    AtomicTableStore store;
    return table_writes::retire_region_entry(store, &params_.regions[index], retire_ticket);
  }
  Status clear_region_handle(uint32_t index) override {
    AtomicTableStore store;
    return table_writes::clear_region_handle(store, &params_.regions[index]);
  }
  Status write_tenant_entry(uint32_t index, const mr_tenant_entry& entry,
                            const mr_tenant_grants& grants) override {
    AtomicTableStore store;
    return table_writes::write_tenant_entry(store, &params_.tenants[index], entry,
                                            &params_.tenant_grants[index], grants);
  }
  Status set_tenant_state(uint32_t index, uint32_t state) override {
    AtomicTableStore store;
    return table_writes::set_tenant_state(store, &params_.tenants[index], state);
  }
  Status set_tenant_grants(uint32_t index, const mr_tenant_grants& grants) override {
    AtomicTableStore store;
    return table_writes::set_tenant_grants(store, &params_.tenant_grants[index], grants);
  }
  Status set_ring_class(uint32_t ring, uint32_t ring_class) override {
    if (ring >= params_.rings) return Status(Result::kInvalidArgument, "no such ring");
    AtomicTableStore store;
    return table_writes::set_ring_class(store, &params_.priv->ring_class[ring], ring_class);
  }
  Status read_tenant_ids(uint32_t* ids) override {
    // Host-written words; relaxed loads for the checker's sake.
    for (uint32_t i = 0; i < tenant_table_size_; ++i)
      ids[i] = DevRef<uint32_t>(params_.tenants[i].tenant).load(cuda::std::memory_order_relaxed);
    return Status::ok();
  }
  Status read_tenant_counters(uint32_t index, mr_tenant_counters* out) override {
    mr_tenant_counters& c = params_.tenant_counters[index];
    // Relaxed: statistics; workers may be counting concurrently.
    out->admitted = DevRef<uint64_t>(c.admitted).load(cuda::std::memory_order_relaxed);
    out->out_of_window = DevRef<uint64_t>(c.out_of_window).load(cuda::std::memory_order_relaxed);
    out->revoked = DevRef<uint64_t>(c.revoked).load(cuda::std::memory_order_relaxed);
    out->not_granted = DevRef<uint64_t>(c.not_granted).load(cuda::std::memory_order_relaxed);
    return Status::ok();
  }

  Status read_consumer_counters(ConsumerCounters* out) override {
    ConsumerPrivate& priv = *params_.priv;
    // Relaxed: statistics; the fetcher and completer may be counting.
    out->fetch_rounds = DevRef<uint64_t>(priv.fetch_rounds).load(cuda::std::memory_order_relaxed);
    out->tickets_fetched =
        DevRef<uint64_t>(priv.tickets_fetched).load(cuda::std::memory_order_relaxed);
    out->header_rounds =
        DevRef<uint64_t>(priv.header_rounds).load(cuda::std::memory_order_relaxed);
    out->idle_polls = DevRef<uint64_t>(priv.idle_polls).load(cuda::std::memory_order_relaxed);
    out->flushes = DevRef<uint64_t>(priv.flushes).load(cuda::std::memory_order_relaxed);
    out->records_written =
        DevRef<uint64_t>(priv.records_written).load(cuda::std::memory_order_relaxed);
    return Status::ok();
  }

  Status write_control_word(ControlWord which, uint64_t epoch) override {
    AtomicTableStore store;
    ConsumerPrivate& priv = *params_.priv;
    return table_writes::set_control_word(
        store, which == ControlWord::kRequest ? &priv.control_request : &priv.control_release, epoch);
  }
  Status read_control_parked(std::vector<uint64_t>* parked) override {
    parked->assign(params_.units, 0);
    for (uint32_t u = 0; u < params_.units; ++u)
      // ACQUIRE: pairs with park_for_control's release; the executor's table
      // loads before it happen before the change this caller writes next.
      (*parked)[u] = DevRef<uint64_t>(params_.unit_notes[u].control_parked)
                         .load(cuda::std::memory_order_acquire);
    return Status::ok();
  }
  Status read_consumer_state(uint64_t cursors[3], std::vector<UnitNote>* notes) override {
    ConsumerPrivate& priv = *params_.priv;
    // Relaxed: a diagnostic copy; each word is read whole.
    cursors[0] = DevRef<uint64_t>(priv.fetched).load(cuda::std::memory_order_relaxed);
    cursors[1] = DevRef<uint64_t>(priv.claim_cursor).load(cuda::std::memory_order_relaxed);
    cursors[2] = DevRef<uint64_t>(priv.done_cursor).load(cuda::std::memory_order_relaxed);
    notes->assign(params_.units, UnitNote{});
    for (uint32_t u = 0; u < params_.units; ++u) {
      UnitNote& from = params_.unit_notes[u];
      UnitNote& to = (*notes)[u];
      to.ticket = DevRef<uint64_t>(from.ticket).load(cuda::std::memory_order_relaxed);
      to.tenant_opcode = DevRef<uint64_t>(from.tenant_opcode).load(cuda::std::memory_order_relaxed);
      to.what = DevRef<uint64_t>(from.what).load(cuda::std::memory_order_relaxed);
      to.control_parked = DevRef<uint64_t>(from.control_parked).load(cuda::std::memory_order_relaxed);
    }
    return Status::ok();
  }

  Status read_consumer_costs(CostCounters* executors, CostCounters* io) override {
    if (!costs_) return ConsumerBackend::read_consumer_costs(executors, io);
    // Relaxed loads: each unit writes its own counters (cost_count.hpp).
    *executors = CostCounters{};
    *io = CostCounters{};
    for (uint32_t u = 0; u <= params_.units; ++u) {
      CostCounters* to = u == params_.units ? io : executors;
      for (const CostField& f : kCostFields)
        to->*f.member += SysRef<uint64_t>(costs_[u].*f.member).load(cuda::std::memory_order_relaxed);
    }
    return Status::ok();
  }

  Status read_timeline(mr_timeline_record* dst) override {
    // Word loads: workers may be rewriting some records; the caller keeps
    // only those no running ticket can touch (see Runtime::timeline).
    for (uint64_t i = 0; i < timeline_size_; ++i) {
      mr_timeline_record& src = params_.timeline[i];
      mr_timeline_record& r = dst[i];
      r.ticket = DevRef<uint64_t>(src.ticket).load(cuda::std::memory_order_relaxed);
      r.claim_ns = DevRef<uint64_t>(src.claim_ns).load(cuda::std::memory_order_relaxed);
      r.complete_ns = DevRef<uint64_t>(src.complete_ns).load(cuda::std::memory_order_relaxed);
      r.unit = DevRef<uint32_t>(src.unit).load(cuda::std::memory_order_relaxed);
      r.opcode = DevRef<uint32_t>(src.opcode).load(cuda::std::memory_order_relaxed);
    }
    return Status::ok();
  }

  Backend kind() const override { return Backend::kCpu; }
  const char* device_name() const override { return "cpu"; }

 private:
  // What the workers touch (views in host_ and params_). Destroyed after
  // threads_, declared below them.
  struct SharedRegions {  // the host-visible regions of slot_abi.h
    HostArray<mr_slot> slots;
    HostArray<mr_submission_control> submission;
    HostArray<mr_completion> completions;
    HostArray<mr_ring_done> ring_done;
    HostArray<mr_completion_control> completion_control;
  };
  struct ConsumerMemory {  // the consumer's own (device memory on the GPU)
    HostArray<ConsumerPrivate> priv;
    HostArray<uint64_t> done_flags;
    HostArray<mr_slot> staged;
    HostArray<mr_completion> outcomes;
    HostArray<mr_buffer_entry> buffers;
    HostArray<mr_tenant_entry> tenants;
    HostArray<mr_region_entry> regions;
    HostArray<uint8_t> staging;  // the staging arena (Config::staging_arena_bytes)
    HostArray<mr_tenant_counters> tenant_counters;
    HostArray<mr_tenant_grants> tenant_grants;
    HostArray<mr_timeline_record> timeline;  // timeline mode only
    HostArray<UnitNote> unit_notes;          // [units]
  };
  SharedRegions shared_;
  ConsumerMemory consumer_;
  std::unique_ptr<CostCounters[]> costs_;   // Config::count_costs: one per unit
  uint64_t timeline_size_ = 0;
  uint32_t tenant_table_size_ = 0;
  std::vector<std::thread> threads_;  // joined before the members above go
};

}  // namespace

std::unique_ptr<ConsumerBackend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace megaring::detail
