// The interface between the host runtime and a consumer: the persistent
// megakernel on the GPU, or the CPU worker loop. Both are instances of one
// template (megaring/megakernel.cuh) over a handler table; the runtime only
// sees this descriptor, so users can plug in their own instantiation:
//
//   // my_consumer.cu (compiled by nvcc)
//   #include <megaring/megakernel.cuh>
//   struct MyHandlers { /* see megakernel.cuh */ };
//   const megaring::Consumer& my_consumer() {
//     static const megaring::Consumer c = megaring::make_consumer<MyHandlers>("mine");
//     return c;
//   }
//
// Everything here is plain data: the consumer parameters are passed to the
// kernel by value.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "megaring/slot_abi.h"

namespace megaring {

struct CostCounters;  // megaring/detail/cost_count.hpp

namespace detail {

// Consumer-private words (device memory on the GPU, host memory on the CPU
// backend). The host writes them only before the consumer starts
// (initial_private below).
//
// Only one unit at a time reads the submission region while the ring is
// idle: the scout, the unit whose claimed ticket equals scan_cursor. Every
// other unit waiting for its ticket polls scan_cursor and the two mirrors
// here, in device memory, so that idle units put no reads on PCIe (the first
// H100 run: 132 units each polling its own slot header over PCIe queued the
// link's reads until a round trip took 320 us; bench/NOTES.md).
struct alignas(64) ConsumerPrivate {
  alignas(64) uint64_t claim_cursor;   // next ticket a consumer unit claims
  alignas(64) uint64_t done_cursor;    // private copy of DONE_COUNT
  alignas(64) uint32_t advance_lock;   // held while advancing done_cursor
  alignas(64) uint32_t exited_units;   // units that left the loop
  // Every ticket below it was seen published. Written only by the scout (a
  // single writer: the role passes with the value). A hint: each unit still
  // acquires its own slot's header.
  alignas(64) uint64_t scan_cursor;
  // The submission region's stop_at and abort_flag as a unit last read them,
  // for the units that do not read that region. Written by the units that
  // do (the scout, and units fetching a published slot); they only ever
  // store what the host wrote, so concurrent stores agree.
  alignas(64) uint64_t stop_at_seen;
  uint32_t abort_seen;
  // Diagnostics of the protocol above (Runtime::consumer_counters), counted
  // with relaxed device-scope adds: rounds in which a scout found its slot
  // published, the tickets those rounds moved scan_cursor over (its own
  // included), and polls by a unit below scan_cursor that found its header
  // not yet READY (which a scout's reads should make rare).
  alignas(64) uint64_t scout_rounds;
  uint64_t tickets_scanned;
  uint64_t not_ready_retries;
};

// The private words before the consumer starts, tickets from `first_ticket`.
inline ConsumerPrivate initial_private(uint64_t first_ticket) {
  ConsumerPrivate priv{};
  priv.claim_cursor = first_ticket;
  priv.done_cursor = first_ticket;
  priv.scan_cursor = first_ticket;
  priv.stop_at_seen = ~0ull;  // mr_submission_control::stop_at's initial value
  priv.abort_seen = 0;
  return priv;
}

}  // namespace detail

// Everything a consumer unit (GPU block or CPU worker) needs, by value.
struct ConsumerParams {
  // Submission region: host-written, consumer-read.
  mr_slot* slots;
  mr_submission_control* submission;
  // Completion region: consumer-written, host-read.
  mr_completion* completions;
  mr_completion_control* completion_control;
  // Consumer-private.
  detail::ConsumerPrivate* priv;
  uint64_t* done_flags;        // [capacity]: ticket + 1 once that ticket completed
  mr_buffer_entry* buffers;    // [max_buffers]
  mr_tenant_entry* tenants;    // [max_tenants]; index 0 is never a tenant
  mr_tenant_counters* tenant_counters;  // [max_tenants]
  uint32_t max_buffers;
  uint32_t max_tenants;
  uint32_t capacity;           // power of two
  uint64_t mask;               // capacity - 1
  uint32_t units;              // blocks or worker threads
  uint32_t poll_backoff_min_ns;
  uint32_t poll_backoff_max_ns;
  uint32_t heartbeat_interval_ns;
  // Timeline mode (the *_timeline entry points only): per-ticket records.
  mr_timeline_record* timeline;  // [timeline_mask + 1], consumer-private
  uint64_t timeline_mask;
  // Config::count_costs (CPU backend only): each unit's cost counters, or null.
  CostCounters* costs;  // [units]
};

// A consumer instantiation. Built by make_consumer<Handlers>() in a .cu file.
struct Consumer {
  const char* name;
  unsigned block_threads;
  unsigned max_registers;  // the kernel's register cap a thread; 0: none
  // Blocks of this kernel that fit on one SM; also loads the module, which
  // must happen before the persistent kernel starts (lazy loading next to a
  // running persistent kernel can deadlock).
  cudaError_t (*gpu_occupancy)(int* blocks_per_sm);
  // Cooperative launch of `grid` blocks on `stream`.
  cudaError_t (*gpu_launch)(const ConsumerParams& params, unsigned grid, cudaStream_t stream);
  // Body of one CPU worker thread; returns when the consumer stops.
  void (*cpu_worker)(const ConsumerParams& params, unsigned unit);
  // The same, instantiated with timeline recording (Config::timeline_capacity
  // > 0). Separate instantiations keep the default path free of it.
  cudaError_t (*gpu_launch_timeline)(const ConsumerParams& params, unsigned grid,
                                     cudaStream_t stream);
  void (*cpu_worker_timeline)(const ConsumerParams& params, unsigned unit);
};

// The built-in consumer: megaring's opcodes only (MR_OP_NOP ... MR_OP_DELAY_NS).
const Consumer& builtin_consumer() noexcept;

}  // namespace megaring
