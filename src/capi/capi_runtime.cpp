// SPDX-License-Identifier: Apache-2.0
// C API: runtime configuration, lifecycle, publish / wait and counters
// (megaring/megaring.h), each a thin wrapper of the Runtime call it names.
#include <cstddef>
#include <string>

#include "capi/capi_internal.hpp"

using megaring::Backend;
using megaring::Config;
using megaring::Status;
using megaring::capi::entry;

namespace {

// The first version's size: grows only by new versions, never changes.
constexpr uint32_t kConfigV1Size = 80;
constexpr uint32_t kConfigV2Size = 104;  // + staging_arena_bytes .. control_timeout_ns
constexpr uint32_t kConfigSizes[] = {kConfigV1Size, kConfigV2Size};
static_assert(offsetof(mr_runtime_config_t, staging_arena_bytes) == kConfigV1Size,
              "version 2 appends to the 80 bytes of version 1");
static_assert(sizeof(mr_runtime_config_t) == kConfigV2Size &&
                  MR_RUNTIME_CONFIG_VERSION == sizeof kConfigSizes / sizeof kConfigSizes[0],
              "mr_runtime_config_t v2 is 104 bytes");
constexpr uint32_t kInfoV1Size = 24;
constexpr uint32_t kStatsV1Size = 600;
static_assert(MR_FAULT_CODE_COUNT <= MR_FAULT_MAX + 1, "faults_by_code holds every fault code");
constexpr uint32_t kCountersV1Size = 56;
static_assert(sizeof(mr_runtime_info_t) == kInfoV1Size && sizeof(mr_runtime_stats_t) == kStatsV1Size &&
                  sizeof(mr_consumer_counters_t) == kCountersV1Size,
              "the first versions' sizes");
static_assert(offsetof(mr_runtime_config_t, struct_size) == 0, "struct_size first");
static_assert(sizeof(mr_slot_request_t) == 56 && sizeof(mr_ticket_t) == 16 &&
                  sizeof(mr_completion_t) == 24,
              "the fixed C structs keep their layout");
static_assert(static_cast<int>(Backend::kAuto) == MR_BACKEND_AUTO &&
                  static_cast<int>(Backend::kCuda) == MR_BACKEND_CUDA &&
                  static_cast<int>(Backend::kCpu) == MR_BACKEND_CPU,
              "MR_BACKEND_* are Backend's numbers");

mr_runtime_config_t default_config() {
  const Config d;
  mr_runtime_config_t c{};
  c.struct_size = sizeof c;
  c.struct_version = MR_RUNTIME_CONFIG_VERSION;
  c.backend = static_cast<int32_t>(d.backend);
  c.device = d.device;
  c.ring_capacity = d.ring_capacity;
  c.workers = d.workers;
  c.max_buffers = d.max_buffers;
  c.max_tenants = d.max_tenants;
  c.initial_ticket = d.initial_ticket;
  c.poll_backoff_min_ns = d.poll_backoff_min_ns;
  c.poll_backoff_max_ns = d.poll_backoff_max_ns;
  c.fetch_warps = d.fetch_warps;
  c.producer_rings = d.producer_rings;
  c.heartbeat_interval_ns = d.heartbeat_interval_ns;
  c.force_eager_module_loading = d.force_eager_module_loading ? 1u : 0u;
  c.abort_timeout_ns = d.abort_timeout.count();
  c.timeline_capacity = d.timeline_capacity;
  c.count_costs = d.count_costs ? 1u : 0u;
  c.staging_arena_bytes = d.staging_arena_bytes;
  c.max_regions = d.max_regions;
  c.dump_on_wait_timeout = d.dump_on_wait_timeout ? 1u : 0u;
  c.control_timeout_ns = d.control_timeout.count();
  return c;
}

Status to_config(const mr_runtime_config_t& c, Config* out) {
  if (c.force_eager_module_loading > 1 || c.count_costs > 1 || c.dump_on_wait_timeout > 1)
    return Status(megaring::Result::kInvalidArgument,
                  "force_eager_module_loading, count_costs and dump_on_wait_timeout are 0 or 1");
  // An out-of-range backend number reaches Runtime::create, which refuses it.
  out->backend = static_cast<Backend>(c.backend);
  out->device = c.device;
  out->ring_capacity = c.ring_capacity;
  out->workers = c.workers;
  out->max_buffers = c.max_buffers;
  out->max_tenants = c.max_tenants;
  out->initial_ticket = c.initial_ticket;
  out->poll_backoff_min_ns = c.poll_backoff_min_ns;
  out->poll_backoff_max_ns = c.poll_backoff_max_ns;
  out->fetch_warps = c.fetch_warps;
  out->producer_rings = c.producer_rings;
  out->heartbeat_interval_ns = c.heartbeat_interval_ns;
  out->force_eager_module_loading = c.force_eager_module_loading != 0;
  out->abort_timeout = megaring::capi::to_duration(c.abort_timeout_ns);
  out->timeline_capacity = c.timeline_capacity;
  out->count_costs = c.count_costs != 0;
  // Version 2: zero is the default (the growth rule for new fields); the
  // C++ checks bound the rest (a negative control timeout included).
  out->staging_arena_bytes = c.staging_arena_bytes;
  if (c.max_regions != 0) out->max_regions = c.max_regions;
  out->dump_on_wait_timeout = c.dump_on_wait_timeout != 0;
  if (c.control_timeout_ns != 0)
    out->control_timeout = megaring::capi::to_duration(c.control_timeout_ns);
  return Status::ok();
}

}  // namespace

extern "C" {

mr_result_t mr_runtime_config_init_sized(mr_runtime_config_t* config, uint32_t struct_size) {
  return entry("mr_runtime_config_init", [&]() -> Status {
    MR_CAPI_REQUIRE(config);
    const mr_runtime_config_t defaults = default_config();
    return megaring::capi::init_versioned_config(config, struct_size, &defaults, kConfigSizes,
                                                 MR_RUNTIME_CONFIG_VERSION, "mr_runtime_config_t");
  });
}

mr_result_t mr_runtime_create(const mr_runtime_config_t* config, mr_runtime_t** out) {
  return entry("mr_runtime_create", [&]() -> Status {
    MR_CAPI_REQUIRE(config);
    MR_CAPI_REQUIRE(out);
    mr_runtime_config_t known = default_config();
    Status st = megaring::capi::read_versioned_config(config, kConfigSizes,
                                                      MR_RUNTIME_CONFIG_VERSION,
                                                      "mr_runtime_config_t", &known);
    if (!st) return st;
    Config cpp;
    if (!(st = to_config(known, &cpp))) return st;
    auto handle = std::make_unique<mr_runtime_s>();
    if (!(st = megaring::Runtime::create(cpp, &handle->runtime))) return st;
    *out = handle.release();
    return Status::ok();
  });
}

mr_result_t mr_runtime_finalize(mr_runtime_t* runtime, int64_t timeout_ns) {
  return entry("mr_runtime_finalize", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->shutdown(megaring::capi::to_duration(timeout_ns));
  });
}

mr_result_t mr_runtime_abort(mr_runtime_t* runtime) {
  return entry("mr_runtime_abort", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->abort();
  });
}

mr_result_t mr_runtime_suspend(mr_runtime_t* runtime, int64_t timeout_ns) {
  return entry("mr_runtime_suspend", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->suspend(megaring::capi::to_duration(timeout_ns));
  });
}

mr_result_t mr_runtime_resume(mr_runtime_t* runtime) {
  return entry("mr_runtime_resume", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->resume();
  });
}

mr_result_t mr_runtime_consumer_phase(mr_runtime_t* runtime, mr_consumer_phase_t* phase) {
  return entry("mr_runtime_consumer_phase", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(phase);
    switch (runtime->runtime->consumer_phase()) {
      case megaring::ConsumerPhase::kLive: *phase = MR_CONSUMER_LIVE; break;
      case megaring::ConsumerPhase::kSuspending: *phase = MR_CONSUMER_SUSPENDING; break;
      case megaring::ConsumerPhase::kSuspended: *phase = MR_CONSUMER_SUSPENDED; break;
    }
    return Status::ok();
  });
}

mr_result_t mr_runtime_destroy(mr_runtime_t* runtime) {
  return entry("mr_runtime_destroy", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    delete runtime;  // ~Runtime aborts a runtime that still runs
    return Status::ok();
  });
}

mr_result_t mr_runtime_get_info(mr_runtime_t* runtime, mr_runtime_info_t* info) {
  return entry("mr_runtime_get_info", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(info);
    const megaring::Runtime& rt = *runtime->runtime;
    mr_runtime_info_t full{};
    full.backend = static_cast<int32_t>(rt.backend());
    full.capacity = rt.capacity();
    full.consumer_units = rt.consumer_units();
    full.device_name = rt.device_name();
    return megaring::capi::write_sized(info, &full, kInfoV1Size, sizeof full, "mr_runtime_info_t");
  });
}

mr_result_t mr_runtime_publish(mr_runtime_t* runtime, const mr_slot_request_t* request,
                               uint32_t flags, int64_t timeout_ns, mr_ticket_t* ticket) {
  return entry("mr_runtime_publish", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(request);
    MR_CAPI_REQUIRE(ticket);
    return megaring::capi::publish_on(*runtime->runtime, *request, flags, timeout_ns, ticket);
  });
}

mr_result_t mr_runtime_publish_batch(mr_runtime_t* runtime, const mr_slot_request_t* requests,
                                     uint32_t count, uint32_t flags, int64_t timeout_ns,
                                     mr_ticket_t* first) {
  return entry("mr_runtime_publish_batch", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(requests);
    MR_CAPI_REQUIRE(first);
    return megaring::capi::publish_batch_on(*runtime->runtime, runtime->runtime->capacity(), requests,
                                            count, flags, timeout_ns, first);
  });
}

mr_result_t mr_runtime_wait(mr_runtime_t* runtime, const mr_ticket_t* ticket, int64_t timeout_ns,
                            mr_completion_t* completion) {
  return entry("mr_runtime_wait", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(ticket);
    MR_CAPI_REQUIRE(completion);
    return megaring::capi::wait_on(*runtime->runtime, *ticket, timeout_ns, completion);
  });
}

mr_result_t mr_runtime_wait_done(mr_runtime_t* runtime, const mr_ticket_t* ticket,
                                 int64_t timeout_ns) {
  return entry("mr_runtime_wait_done", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(ticket);
    return megaring::capi::wait_done_on(*runtime->runtime, *ticket, timeout_ns);
  });
}

mr_result_t mr_runtime_release(mr_runtime_t* runtime, const mr_ticket_t* ticket) {
  return entry("mr_runtime_release", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(ticket);
    return megaring::capi::release_on(*runtime->runtime, *ticket);
  });
}

mr_result_t mr_runtime_call(mr_runtime_t* runtime, const mr_slot_request_t* request,
                            int64_t timeout_ns, mr_completion_t* completion) {
  return entry("mr_runtime_call", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(request);
    MR_CAPI_REQUIRE(completion);
    megaring::SlotRequest cpp;
    Status st = megaring::capi::to_request(*request, &cpp);
    if (!st) return st;
    megaring::Completion c;
    st = runtime->runtime->call(cpp, &c, megaring::capi::to_duration(timeout_ns));
    if (st) *completion = megaring::capi::from_completion(c);
    return st;
  });
}

mr_result_t mr_runtime_done_count(mr_runtime_t* runtime, uint64_t* done_count) {
  return entry("mr_runtime_done_count", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(done_count);
    *done_count = runtime->runtime->done_count();
    return Status::ok();
  });
}

mr_result_t mr_runtime_heartbeat_ns(mr_runtime_t* runtime, uint64_t* heartbeat_ns) {
  return entry("mr_runtime_heartbeat_ns", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(heartbeat_ns);
    *heartbeat_ns = runtime->runtime->heartbeat_ns();
    return Status::ok();
  });
}

mr_result_t mr_runtime_stats(mr_runtime_t* runtime, mr_runtime_stats_t* stats) {
  return entry("mr_runtime_stats", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(stats);
    const megaring::RuntimeStats s = runtime->runtime->stats();
    mr_runtime_stats_t full{};
    full.published = s.published;
    full.done_count = s.done_count;
    full.reaped = s.reaped;
    full.completed_ok = s.completed_ok;
    full.faulted = s.faulted;
    full.aborted = s.aborted;
    full.revoked = s.revoked;
    for (uint32_t i = 0; i < MR_FAULT_CODE_COUNT; ++i) full.faults_by_code[i] = s.faults_by_code[i];
    full.ring_full_events = s.ring_full_events;
    full.protocol_errors = s.protocol_errors;
    full.parked_results = s.parked_results;
    return megaring::capi::write_sized(stats, &full, kStatsV1Size, sizeof full, "mr_runtime_stats_t");
  });
}

mr_result_t mr_runtime_consumer_counters(mr_runtime_t* runtime, mr_consumer_counters_t* counters) {
  return entry("mr_runtime_consumer_counters", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(counters);
    megaring::ConsumerCounters c;
    Status st = runtime->runtime->consumer_counters(&c);
    if (!st) return st;
    mr_consumer_counters_t full{};
    full.fetch_rounds = c.fetch_rounds;
    full.tickets_fetched = c.tickets_fetched;
    full.header_rounds = c.header_rounds;
    full.idle_polls = c.idle_polls;
    full.flushes = c.flushes;
    full.records_written = c.records_written;
    return megaring::capi::write_sized(counters, &full, kCountersV1Size, sizeof full,
                                       "mr_consumer_counters_t");
  });
}

mr_result_t mr_runtime_write_timeline_trace(mr_runtime_t* runtime, const char* path) {
  return entry("mr_runtime_write_timeline_trace", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(path);
    return runtime->runtime->write_timeline_trace(std::string(path));
  });
}

}  // extern "C"
