// SPDX-License-Identifier: Apache-2.0
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

struct CostCounters;  // megaring/consumer/cost_count.hpp

namespace detail {

// Consumer-private words (device memory on the GPU, host memory on the CPU
// backend). The host writes them only before the consumer starts
// (initial_private below). Each cursor has one writing role (slot_abi.h,
// "Roles"), and each sits on its own line, so a role's stores never move a
// line another role writes.
struct alignas(64) ConsumerPrivate {
  // Cursors count the consumer's SEQUENCE (slot_abi.h, "Rings"): the order
  // in which the fetcher staged slots from all rings. With one ring it is
  // ring 0's ticket.
  // Fetcher: every sequence number below it has its slot copied into
  // `staged` (RELEASE, device scope; executors acquire it).
  alignas(64) uint64_t fetched;
  // Executors: the next sequence number to claim (a CAS claims a chunk).
  alignas(64) uint64_t claim_cursor;
  // Completer: every sequence number below it completed and is published in
  // its ring's DONE_COUNT (RELEASE after them; FENCE slots wait on it, and
  // the fetcher, before it reuses a staged position).
  alignas(64) uint64_t done_cursor;
  // Units that left the loop: executors, then the I/O unit last. Written
  // by the units while a run lasts; reset to 0 by the host between runs
  // (ConsumerBackend::restart), with stop_seq.
  alignas(64) uint32_t exited_units;
  // The sequence number at which the consumer stops (the fetcher's count
  // once it has fetched ring 0 up to stop_at; ~0 until then), and the abort
  // flag as the fetcher last read it: for the executors and the completer,
  // which never read host memory. Written by the fetcher only.
  alignas(64) uint64_t stop_seq;
  uint32_t abort_seen;
  // Control operations (src/runtime/control_barrier.hpp): the epoch of the
  // newest request, and the newest epoch released. Written by the host only
  // (the table-write path), each after every table word stored before it;
  // read by the executors between chunks (claim_chunk, park_for_control).
  alignas(64) uint64_t control_request;
  uint64_t control_release;
  // Diagnostics (Runtime::consumer_counters), each with one writer, so
  // plain relaxed stores: the fetcher's rounds that copied slots, the tickets
  // they copied, its rounds that only found headers and its polls that found
  // nothing ...
  alignas(64) uint64_t fetch_rounds;
  uint64_t tickets_fetched;
  uint64_t header_rounds;
  uint64_t idle_polls;
  // ... and the completer's DONE_COUNT stores and records written.
  alignas(64) uint64_t flushes;
  uint64_t records_written;
  // Each ring's class (MR_RING_CLASS_*, slot_abi.h "Priorities"): written by
  // the host (Runtime::Impl::set_ring_class, through the table-write path,
  // when a Producer opens the ring and when it releases it), read by the
  // fetcher at its polls of all rings. 0, normal, until then.
  alignas(64) uint32_t ring_class[MR_MAX_RINGS];
  // Where a run that stopped gracefully left off (Runtime::suspend): the
  // sequence it staged, and each ring's first ticket it did not stage
  // (fetched_end: validated bodies it had not copied are read again). Once
  // the run drained, each ring's DONE_COUNT too. Written by the fetcher only,
  // as it stops (save_resume_cursors); read by the next run's fetcher and
  // completer as they start (ConsumerParams::resume). The relaunch orders
  // the two runs (thread join and start; kernel completion and launch).
  alignas(64) uint64_t resume_seq;
  uint64_t resume_next[MR_MAX_RINGS];
};

// What an executor is running, for the operator's view (Runtime::dump_state):
// its leader stores these, relaxed, as it takes a slot (once a chunk for a
// chunk that one thread runs alone). Consumer-private, a line a unit, one
// writer each: no host memory, no fence, no line another unit writes. The
// host reads each word whole; `what` is 0 until the unit's first slot.
struct alignas(64) UnitNote {
  uint64_t ticket;         // the ring's ticket
  uint64_t tenant_opcode;  // slot.tenant << 32 | slot.opcode (as published)
  uint64_t what;           // 1 | ring << 8 | chunk slots << 16
  // The newest control epoch this executor parked for (park_for_control):
  // its acknowledgement, a RELEASE after every table load of the slots it
  // ran before. The host waits for every executor's.
  uint64_t control_parked;
};
__host__ __device__ inline constexpr uint64_t unit_note_what(uint32_t ring, uint32_t chunk_slots) {
  return 1u | (uint64_t{ring} << 8) | (uint64_t{chunk_slots} << 16);
}

// The private words before the consumer starts: every ring's tickets, and
// the sequence, from `first_ticket`.
inline ConsumerPrivate initial_private(uint64_t first_ticket) {
  ConsumerPrivate priv{};
  priv.fetched = first_ticket;
  priv.claim_cursor = first_ticket;
  priv.done_cursor = first_ticket;
  priv.stop_seq = ~0ull;  // no stop yet
  priv.abort_seen = 0;
  return priv;
}

}  // namespace detail

// Everything a consumer unit (GPU block or CPU worker) needs, by value.
// Config::fetch_warps: the warps of the I/O block that share the fetcher's
// loads (consumer/fetcher.cuh, "The fetch crew"). At most a 256-thread
// block's warps less the completer's.
inline constexpr uint32_t kMaxFetchWarps = 7;
inline constexpr uint32_t kDefaultFetchWarps = 4;

struct ConsumerParams {
  // Submission region: host-written, consumer-read.
  mr_slot* slots;              // [rings * capacity]: ring r's from r * capacity
  mr_submission_control* submission;
  // Completion region: consumer-written, host-read.
  mr_completion* completions;  // [rings * capacity], as the slots
  mr_ring_done* ring_done;     // [rings]: each ring's DONE_COUNT
  mr_completion_control* completion_control;
  // Consumer-private, indexed by sequence number & mask.
  detail::ConsumerPrivate* priv;
  mr_slot* staged;             // [capacity]: the fetcher's copies of published slots
                               // (header: the ring's ticket; reserved: the ring
                               // and whether the published word was non-zero,
                               // detail::staged_reserved)
  mr_completion* outcomes;     // [capacity]: each executed slot's outcome (stamp + result)
  uint64_t* done_flags;        // [capacity]: detail::done_flag(seq, ring, ...) once it finished
  mr_buffer_entry* buffers;    // [max_buffers]
  mr_tenant_entry* tenants;    // [max_tenants]; index 0 is never a tenant
  mr_tenant_counters* tenant_counters;  // [max_tenants]
  mr_tenant_grants* tenant_grants;      // [max_tenants]: each index's opcode grants
  mr_region_entry* regions;    // [max_regions]: the staging regions (regions beside buffers)
  detail::UnitNote* unit_notes;  // [units]: what each executor runs (null: not noted)
  uint32_t max_regions;
  uint32_t max_buffers;
  uint32_t max_tenants;
  uint32_t capacity;           // power of two; of each ring and of the staged queue
  uint64_t mask;               // capacity - 1
  uint32_t rings;              // 1 .. MR_MAX_RINGS (Config::producer_rings + 1)
  uint32_t units;              // executors: blocks or worker threads (the I/O unit is extra)
  uint64_t first_ticket;       // Config::initial_ticket: where every cursor starts
  uint32_t poll_backoff_min_ns;
  uint32_t poll_backoff_max_ns;
  uint32_t heartbeat_interval_ns;
  // Warps of block 0 that share the fetcher's loads (Config::fetch_warps,
  // resolved: 1 .. kMaxFetchWarps).
  uint32_t fetch_warps;
  // The completer publishes a run of finished tickets once its oldest has
  // waited this long, even if the run is short and more are running.
  uint32_t completion_flush_ns;
  // 0: every cursor starts from first_ticket (the first run). 1: from where
  // the last run stopped (priv->resume_seq, resume_next: a relaunch after
  // Runtime::suspend).
  uint32_t resume;
  // Timeline mode (the *_timeline entry points only): per-ticket records.
  mr_timeline_record* timeline;  // [timeline_mask + 1], consumer-private
  uint64_t timeline_mask;
  // Config::count_costs (CPU backend only): each unit's cost counters, or
  // null; [units] is the I/O unit's (fetcher and completer).
  CostCounters* costs;  // [units + 1]
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
  // Cooperative launch of `grid` blocks on `stream`: block 0 is the I/O
  // unit, blocks 1 .. grid - 1 the executors.
  cudaError_t (*gpu_launch)(const ConsumerParams& params, unsigned grid, cudaStream_t stream);
  // Body of one CPU thread; returns when the consumer stops. Unit
  // params.units is the I/O thread, the others executors.
  void (*cpu_worker)(const ConsumerParams& params, unsigned unit);
  // The same, instantiated with timeline recording (Config::timeline_capacity
  // > 0). Separate instantiations keep the default path free of it.
  cudaError_t (*gpu_launch_timeline)(const ConsumerParams& params, unsigned grid,
                                     cudaStream_t stream);
  void (*cpu_worker_timeline)(const ConsumerParams& params, unsigned unit);
};

// The built-in consumer: megaring's opcodes only (MR_OP_NOP ... MR_OP_AXPY_F32).
const Consumer& builtin_consumer() noexcept;

}  // namespace megaring
