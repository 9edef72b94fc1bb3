// SPDX-License-Identifier: Apache-2.0
// Internal: what the runtime needs from a consumer backend (CUDA or CPU).
// The runtime owns the ring protocol on the host side; a backend owns memory
// placement and the consumer's execution (kernel or threads).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "megaring/consumer.hpp"
#include "megaring/detail/atomic_ref.hpp"
#include "megaring/runtime.hpp"
#include "megaring/status.hpp"

namespace megaring::detail {

// Host views of the shared regions. On the CUDA backend these are pinned,
// host-mapped allocations; on the CPU backend ordinary host memory.
struct HostRegions {
  mr_slot* slots = nullptr;                       // [rings * capacity]: ring r's from r * capacity
  mr_submission_control* submission = nullptr;
  mr_completion* completions = nullptr;           // [rings * capacity]
  mr_ring_done* ring_done = nullptr;              // [rings]
  mr_completion_control* completion_control = nullptr;
};

// The rings a configuration asks for: ring 0 and one per producer.
inline uint32_t ring_count(const Config& config) { return config.producer_rings + 1; }

// The staging arena (Config::staging_arena_bytes): host memory the consumer
// reaches (pinned and device-mapped on the GPU), allocated by init() and
// freed with the backend, never while the consumer runs (cudaFreeHost could
// wait on the persistent kernel). `host` is where the host reads and writes
// it; `consumer` is the same bytes' address for the consumer.
struct StagingArena {
  uint8_t* host = nullptr;
  uint64_t consumer = 0;
  uint64_t bytes = 0;
};

class ConsumerBackend {
 public:
  virtual ~ConsumerBackend() = default;

  // Allocates every region; host words may be initialised until start().
  virtual Status init(const Config& config) = 0;
  const HostRegions& host() const { return host_; }
  // Consumer-side pointers for the kernel/workers; set by init().
  ConsumerParams& params() { return params_; }
  // Writes the consumer-private cursors (only before start()).
  virtual Status set_private_cursors(uint64_t initial_ticket) = 0;
  virtual Status start(const Consumer& consumer) = 0;

  // OK while the consumer runs or after it exited cleanly; an error if it
  // died (e.g. a sticky CUDA error). Cheap enough to call every millisecond.
  virtual Status health() = 0;
  // True once every consumer unit has returned.
  bool consumer_exited() const {
    // ACQUIRE: pairs with the last unit's release in unit_exit(); every
    // completion record the consumer wrote is visible after it.
    return SysRef<uint32_t>(host_.completion_control->exited_units)
               .load(cuda::std::memory_order_acquire) == params_.units + 1;  // + the I/O unit
  }
  // Waits for the consumer to exit, then reaps its resources (stream/threads).
  // OK at once when it is not running (never started, or already joined).
  virtual Status join(Nanoseconds timeout) = 0;
  // Runtime::resume: starts the consumer again, after join() returned OK on
  // a run that stopped gracefully, from where that run stopped
  // (params().resume, ConsumerPrivate::resume_seq), with the same params
  // (the same grid and stream on the GPU). First it resets the words a run
  // writes that the next must find fresh; each has one writer at a time,
  // the units while a run lasts and the host between runs: exited_units
  // (consumer-private and host), stop_seq and each executor's control
  // acknowledgement (UnitNote::control_parked, left at ~0 by leave_control;
  // the caller holds the topology token, so no control operation reads it
  // meanwhile). The host's stop_at is the runtime's to reset.
  virtual Status restart(const Consumer& consumer) = 0;

  // Consumer-side buffers (device memory on the GPU). Zero-filled.
  virtual Status alloc(uint64_t bytes, uint64_t* address) = 0;
  // Whether caller memory [address, address + bytes) can back a buffer:
  // memory the consumer can reach (on the GPU, device or managed memory of
  // this runtime's device). The caller checked that the range does not wrap.
  virtual Status check_external(uint64_t address, uint64_t bytes) = 0;
  virtual Status free(uint64_t address) = 0;
  virtual Status copy_in(uint64_t address, const void* src, uint64_t bytes) = 0;
  virtual Status copy_out(void* dst, uint64_t address, uint64_t bytes) = 0;
  // Buffer table: write a whole entry (before any slot may name it), set the
  // retire ticket of a live entry (one word), clear the handle of a retired
  // entry once no slot can name it any more.
  virtual Status write_table_entry(uint32_t index, const mr_buffer_entry& entry) = 0;
  virtual Status retire_table_entry(uint32_t index, uint64_t retire_ticket) = 0;
  virtual Status clear_table_handle(uint32_t index) = 0;

  // Staging regions (params().regions, beside the buffer table): the same
  // writes as the buffer table's, and the committed length of a live entry
  // (a RELEASE after the region bytes the host wrote: table_writes.hpp).
  const StagingArena& staging() const { return staging_; }
  virtual Status write_region_entry(uint32_t index, const mr_region_entry& entry) = 0;
  virtual Status set_region_committed(uint32_t index, uint64_t committed) = 0;
  virtual Status retire_region_entry(uint32_t index, uint64_t retire_ticket) = 0;
  virtual Status clear_region_handle(uint32_t index) = 0;

  // Tenant table: write a whole entry and its grants (tenant word first;
  // see admit_slot), change the state word of a live entry (revocation) or
  // its grants, read the tenant words, and copy an index's consumer-written
  // counters.
  virtual Status write_tenant_entry(uint32_t index, const mr_tenant_entry& entry,
                                    const mr_tenant_grants& grants) = 0;
  virtual Status set_tenant_state(uint32_t index, uint32_t state) = 0;
  virtual Status set_tenant_grants(uint32_t index, const mr_tenant_grants& grants) = 0;
  // A ring's class word (MR_RING_CLASS_*; ring < Config::producer_rings + 1).
  virtual Status set_ring_class(uint32_t ring, uint32_t ring_class) = 0;
  // Copies every entry's tenant word (Config::max_tenants of them).
  virtual Status read_tenant_ids(uint32_t* ids) = 0;
  virtual Status read_tenant_counters(uint32_t index, mr_tenant_counters* out) = 0;
  // Control operations (runtime/control_barrier.hpp): stores the request or
  // the release epoch (table_writes::set_control_word), and copies each
  // executor's parked epoch (UnitNote::control_parked; parked->size()
  // becomes units()), an ACQUIRE of each: the executor's table loads before
  // it happen before the host's writes after.
  enum class ControlWord { kRequest, kRelease };
  virtual Status write_control_word(ControlWord which, uint64_t epoch) = 0;
  virtual Status read_control_parked(std::vector<uint64_t>* parked) = 0;
  // The consumer-private diagnostic counters (ConsumerPrivate).
  virtual Status read_consumer_counters(ConsumerCounters* out) = 0;
  // The operator's view (Runtime::dump_state): the consumer's sequence
  // cursors (fetched, claim_cursor, done_cursor) and each executor's note
  // (notes->size() becomes units()). A copy while the consumer runs: each
  // word read whole, not a consistent cut.
  virtual Status read_consumer_state(uint64_t cursors[3], std::vector<UnitNote>* notes) = 0;
  // Config::count_costs: the executors' cost counters summed, and the I/O
  // unit's (fetcher and completer) on their own (CPU backend).
  virtual Status read_consumer_costs(CostCounters* executors, CostCounters* io) {
    (void)executors;
    (void)io;
    return Status(Result::kInvalidArgument, "cost counting is off (Config::count_costs)");
  }

  // Timeline mode: copies the record ring (consumer-private) to `dst`. Records
  // may be written concurrently; the caller validates them by ticket.
  virtual Status read_timeline(mr_timeline_record* dst) = 0;

  virtual Backend kind() const = 0;
  virtual const char* device_name() const = 0;
  uint32_t units() const { return params_.units; }  // executors

 protected:
  HostRegions host_;
  ConsumerParams params_{};
  StagingArena staging_;
};

std::unique_ptr<ConsumerBackend> make_cpu_backend();
std::unique_ptr<ConsumerBackend> make_cuda_backend();

}  // namespace megaring::detail
