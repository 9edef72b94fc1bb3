// CPU backend: the consumer protocol and opcode handlers of the megakernel,
// run by host worker threads over ordinary host memory. Same ABI, same
// completion semantics; it is how CI exercises the protocol without a GPU.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sys/prctl.h>
#endif

#include "backends/backend.hpp"
#include "megaring/detail/checked.hpp"

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
  (void)pthread_setname_np(pthread_self(), name);
#else
  (void)unit;
  (void)io;
  (void)poll_backoff_max_ns;
#endif
}

// `count` zeroed T on 64-byte lines (aligned_alloc wants a multiple of the
// alignment), or null if that size does not fit in 64 bits or memory.
template <class T>
T* alloc_zeroed(uint64_t count) {
  uint64_t bytes = 0;
  if (!checked_mul(sizeof(T), count == 0 ? 1 : count, &bytes) ||
      !checked_round_up(bytes, 64, &bytes) || bytes > SIZE_MAX)
    return nullptr;
  void* p = std::aligned_alloc(64, static_cast<size_t>(bytes));
  if (p != nullptr) std::memset(p, 0, static_cast<size_t>(bytes));
  return static_cast<T*>(p);
}

class CpuBackend final : public ConsumerBackend {
 public:
  ~CpuBackend() override {
    // The runtime joins before destroying; joining here keeps memory alive
    // for a consumer that is somehow still running rather than free it under it.
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    for (void* p : {static_cast<void*>(host_.slots), static_cast<void*>(host_.submission),
                    static_cast<void*>(host_.completions), static_cast<void*>(host_.ring_done),
                    static_cast<void*>(host_.completion_control), static_cast<void*>(params_.priv),
                    static_cast<void*>(params_.done_flags), static_cast<void*>(params_.staged),
                    static_cast<void*>(params_.outcomes), static_cast<void*>(params_.buffers),
                    static_cast<void*>(params_.timeline), static_cast<void*>(params_.tenants),
                    static_cast<void*>(params_.tenant_counters)})
      std::free(p);
  }

  Status init(const Config& config) override {
    const uint32_t cap = config.ring_capacity;
    const uint32_t rings = ring_count(config);
    host_.slots = alloc_zeroed<mr_slot>(uint64_t{rings} * cap);
    host_.submission = alloc_zeroed<mr_submission_control>(1);
    host_.completions = alloc_zeroed<mr_completion>(uint64_t{rings} * cap);
    host_.ring_done = alloc_zeroed<mr_ring_done>(rings);
    host_.completion_control = alloc_zeroed<mr_completion_control>(1);
    params_.priv = alloc_zeroed<ConsumerPrivate>(1);
    params_.done_flags = alloc_zeroed<uint64_t>(cap);
    params_.staged = alloc_zeroed<mr_slot>(cap);
    params_.outcomes = alloc_zeroed<mr_completion>(cap);
    params_.buffers = alloc_zeroed<mr_buffer_entry>(config.max_buffers);
    params_.tenants = alloc_zeroed<mr_tenant_entry>(config.max_tenants);
    tenant_table_size_ = config.max_tenants;
    params_.tenant_counters = alloc_zeroed<mr_tenant_counters>(config.max_tenants);
    if (config.timeline_capacity != 0) {
      params_.timeline = alloc_zeroed<mr_timeline_record>(config.timeline_capacity);
      params_.timeline_mask = config.timeline_capacity - 1;
      timeline_size_ = config.timeline_capacity;
    }
    if (!host_.slots || !host_.submission || !host_.completions || !host_.ring_done ||
        !host_.completion_control ||
        !params_.priv || !params_.done_flags || !params_.staged || !params_.outcomes ||
        !params_.buffers || !params_.tenants ||
        !params_.tenant_counters ||
        (config.timeline_capacity != 0 && !params_.timeline))
      return Status(Result::kOutOfMemory, "cpu backend: ring allocation failed");
    params_.slots = host_.slots;
    params_.submission = host_.submission;
    params_.completions = host_.completions;
    params_.ring_done = host_.ring_done;
    params_.completion_control = host_.completion_control;
    params_.rings = rings;
    params_.units = config.workers == 0 ? 2 : config.workers;
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
        cuda::atomic_ref<uint32_t, cuda::thread_scope_system>(host_.submission->abort_flag)
            .store(1, cuda::std::memory_order_release);
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

  Status alloc(uint64_t bytes, uint64_t* address) override {
    void* p = alloc_zeroed<uint8_t>(bytes);
    if (p == nullptr) return Status(Result::kOutOfMemory, "cpu backend: buffer allocation failed");
    *address = reinterpret_cast<uint64_t>(p);
    return Status::ok();
  }
  Status free(uint64_t address) override {
    std::free(reinterpret_cast<void*>(address));
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
  Status write_table_entry(uint32_t index, const mr_buffer_entry& entry) override {
    mr_buffer_entry& e = params_.buffers[index];
    // Relaxed word stores: no slot naming this handle is in flight yet; the
    // publish of such a slot orders them (header release).
    DevRef<uint64_t>(e.base).store(entry.base, cuda::std::memory_order_relaxed);
    DevRef<uint64_t>(e.bytes).store(entry.bytes, cuda::std::memory_order_relaxed);
    DevRef<uint64_t>(e.retire_ticket).store(entry.retire_ticket, cuda::std::memory_order_relaxed);
    DevRef<uint32_t>(e.owner).store(entry.owner, cuda::std::memory_order_relaxed);
    DevRef<uint32_t>(e.handle).store(entry.handle, cuda::std::memory_order_release);
    return Status::ok();
  }
  Status retire_table_entry(uint32_t index, uint64_t retire_ticket) override {
    // Relaxed: slots published later (tickets >= retire_ticket) are ordered
    // after this store by their header release.
    DevRef<uint64_t>(params_.buffers[index].retire_ticket)
        .store(retire_ticket, cuda::std::memory_order_relaxed);
    return Status::ok();
  }
  Status clear_table_handle(uint32_t index) override {
    DevRef<uint32_t>(params_.buffers[index].handle).store(0, cuda::std::memory_order_release);
    return Status::ok();
  }

  Status write_tenant_entry(uint32_t index, const mr_tenant_entry& entry) override {
    mr_tenant_entry& e = params_.tenants[index];
    // The tenant word first, then (after a RELEASE fence) the rest: the
    // seqlock order admit_slot relies on, so a slot of the index's previous
    // tenant never pairs its old id with the new window or state. The header
    // release of the new tenant's first slot orders all of them before use.
    DevRef<uint32_t>(e.tenant).store(entry.tenant, cuda::std::memory_order_relaxed);
    cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_device);
    DevRef<uint32_t>(e.state).store(entry.state, cuda::std::memory_order_relaxed);
    DevRef<uint32_t>(e.base_opcode).store(entry.base_opcode, cuda::std::memory_order_relaxed);
    DevRef<uint32_t>(e.opcode_cap).store(entry.opcode_cap, cuda::std::memory_order_relaxed);
    return Status::ok();
  }
  Status set_tenant_state(uint32_t index, uint32_t state) override {
    // Relaxed: one word; a unit admitting a queued slot reads the old or the
    // new state, and slots admitted after this store see REVOKED.
    DevRef<uint32_t>(params_.tenants[index].state).store(state, cuda::std::memory_order_relaxed);
    return Status::ok();
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
    out->pad = 0;
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

  Status read_consumer_costs(CostCounters* executors, CostCounters* io) override {
    if (!costs_) return ConsumerBackend::read_consumer_costs(executors, io);
    // Relaxed loads: each unit writes its own counters (cost_count.hpp).
    *executors = CostCounters{};
    *io = CostCounters{};
    for (uint32_t u = 0; u <= params_.units; ++u) {
      CostCounters* to = u == params_.units ? io : executors;
      for (const CostField& f : kCostFields)
        to->*f.member += cuda::atomic_ref<uint64_t, cuda::thread_scope_system>(costs_[u].*f.member)
                             .load(cuda::std::memory_order_relaxed);
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
  template <class T>
  using DevRef = cuda::atomic_ref<T, cuda::thread_scope_device>;
  std::vector<std::thread> threads_;
  std::unique_ptr<CostCounters[]> costs_;  // Config::count_costs: one per unit
  uint64_t timeline_size_ = 0;
  uint32_t tenant_table_size_ = 0;
};

}  // namespace

std::unique_ptr<ConsumerBackend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace megaring::detail
