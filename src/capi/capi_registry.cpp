// SPDX-License-Identifier: Apache-2.0
// C API: tenant registries, and tenants' registration, info and counters
// (megaring/megaring_tenants.h), each the TenantRegistry / TenantHandle
// call it names.
#include <cstddef>
#include <string>

#include "capi/capi_internal.hpp"

using megaring::Status;
using megaring::capi::entry;

namespace {

constexpr uint32_t kRegistryConfigV1Size = 40;
constexpr uint32_t kRegistryStatsV1Size = 32;
// Pointers differ in size between ABIs; on LP64 version 1 is 64 bytes and
// version 2 (the grants) 80.
constexpr uint32_t kTenantConfigSizes[] = {offsetof(mr_tenant_config_t, grants_mode),
                                           sizeof(mr_tenant_config_t)};
static_assert(MR_TENANT_CONFIG_VERSION == 2, "kTenantConfigSizes has a size per version");
constexpr uint32_t kTenantInfoV1Size = 24;
constexpr uint32_t kTenantCountersV1Size = 680;
static_assert(sizeof(mr_registry_config_t) == kRegistryConfigV1Size &&
                  sizeof(mr_registry_stats_t) == kRegistryStatsV1Size &&
                  sizeof(mr_tenant_info_t) == kTenantInfoV1Size &&
                  offsetof(mr_tenant_counters_t, staging_region_bytes) == kTenantCountersV1Size,
              "the first versions' sizes");
static_assert(sizeof(void*) != 8 || (kTenantConfigSizes[0] == 64 && kTenantConfigSizes[1] == 80),
              "mr_tenant_config_t is 64 bytes (v1), 80 (v2) on LP64");
static_assert(static_cast<int>(megaring::PumpMode::kThread) == MR_PUMP_THREAD &&
                  static_cast<int>(megaring::PumpMode::kManual) == MR_PUMP_MANUAL,
              "MR_PUMP_* are PumpMode's numbers");

mr_registry_config_t default_registry_config() {
  const megaring::RegistryConfig d;
  mr_registry_config_t c{};
  c.struct_size = sizeof c;
  c.struct_version = MR_REGISTRY_CONFIG_VERSION;
  c.max_tenants = d.max_tenants;
  c.opcode_begin = d.opcode_begin;
  c.opcode_end = d.opcode_end;
  c.pump = static_cast<int32_t>(d.pump);
  c.pump_idle_sleep_max_ns = d.pump_idle_sleep_max.count();
  c.close_timeout_ns = d.close_timeout.count();
  return c;
}

mr_tenant_config_t default_tenant_config() {
  const megaring::TenantQuotas d;
  mr_tenant_config_t c{};
  c.struct_size = sizeof c;
  c.struct_version = MR_TENANT_CONFIG_VERSION;
  c.opcode_cap = d.opcode_cap;
  c.max_outstanding_slots = d.max_outstanding_slots;
  c.staging_bytes = d.staging_bytes;
  c.resident_handles = d.resident_handles;
  return c;
}

}  // namespace

extern "C" {

mr_result_t mr_registry_config_init_sized(mr_registry_config_t* config, uint32_t struct_size) {
  return entry("mr_registry_config_init", [&]() -> Status {
    MR_CAPI_REQUIRE(config);
    const mr_registry_config_t defaults = default_registry_config();
    return megaring::capi::init_sized_config(config, struct_size, &defaults, kRegistryConfigV1Size,
                                             sizeof defaults, "mr_registry_config_t");
  });
}

mr_result_t mr_registry_create(mr_runtime_t* runtime, const mr_registry_config_t* config,
                               mr_registry_t** out) {
  return entry("mr_registry_create", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(config);
    MR_CAPI_REQUIRE(out);
    mr_registry_config_t c = default_registry_config();
    Status st = megaring::capi::read_sized_config(config, kRegistryConfigV1Size, sizeof c,
                                                  MR_REGISTRY_CONFIG_VERSION,
                                                  "mr_registry_config_t", &c);
    if (!st) return st;
    if (c.pump != MR_PUMP_THREAD && c.pump != MR_PUMP_MANUAL)
      return Status(megaring::Result::kInvalidArgument,
                    "pump " + std::to_string(c.pump) + " is not MR_PUMP_THREAD or MR_PUMP_MANUAL");
    megaring::RegistryConfig cpp;
    cpp.max_tenants = c.max_tenants;
    cpp.opcode_begin = c.opcode_begin;
    cpp.opcode_end = c.opcode_end;
    cpp.pump = static_cast<megaring::PumpMode>(c.pump);
    cpp.pump_idle_sleep_max = megaring::capi::to_duration(c.pump_idle_sleep_max_ns);
    cpp.close_timeout = megaring::capi::to_duration(c.close_timeout_ns);
    auto handle = std::make_unique<mr_registry_s>();
    handle->capacity = runtime->runtime->capacity();
    if (!(st = megaring::TenantRegistry::create(*runtime->runtime, cpp, &handle->registry)))
      return st;
    *out = handle.release();
    return Status::ok();
  });
}

mr_result_t mr_registry_destroy(mr_registry_t* registry) {
  return entry("mr_registry_destroy", [&]() -> Status {
    MR_CAPI_REQUIRE(registry);
    delete registry;  // revokes every tenant, drains their slots (close_timeout)
    return Status::ok();
  });
}

mr_result_t mr_registry_pump(mr_registry_t* registry, uint64_t* drained) {
  return entry("mr_registry_pump", [&]() -> Status {
    MR_CAPI_REQUIRE(registry);
    const size_t n = registry->registry->pump_once();
    if (drained != nullptr) *drained = n;
    return Status::ok();
  });
}

mr_result_t mr_registry_stats(mr_registry_t* registry, mr_registry_stats_t* stats) {
  return entry("mr_registry_stats", [&]() -> Status {
    MR_CAPI_REQUIRE(registry);
    MR_CAPI_REQUIRE(stats);
    const megaring::RegistryStats s = registry->registry->stats();
    mr_registry_stats_t full{};
    full.live_tenants = s.live_tenants;
    full.draining_tenants = s.draining_tenants;
    full.drained_slots = s.drained_slots;
    full.untenanted_slots = s.untenanted_slots;
    return megaring::capi::write_sized(stats, &full, kRegistryStatsV1Size, sizeof full,
                                       "mr_registry_stats_t");
  });
}

mr_result_t mr_tenant_config_init_sized(mr_tenant_config_t* config, uint32_t struct_size) {
  return entry("mr_tenant_config_init", [&]() -> Status {
    MR_CAPI_REQUIRE(config);
    const mr_tenant_config_t defaults = default_tenant_config();
    return megaring::capi::init_versioned_config(config, struct_size, &defaults,
                                                 kTenantConfigSizes, MR_TENANT_CONFIG_VERSION,
                                                 "mr_tenant_config_t");
  });
}

mr_result_t mr_tenant_register(mr_registry_t* registry, const mr_tenant_config_t* config,
                               mr_tenant_t** out) {
  return entry("mr_tenant_register", [&]() -> Status {
    MR_CAPI_REQUIRE(registry);
    MR_CAPI_REQUIRE(config);
    MR_CAPI_REQUIRE(out);
    mr_tenant_config_t c = default_tenant_config();
    Status st = megaring::capi::read_versioned_config(config, kTenantConfigSizes,
                                                      MR_TENANT_CONFIG_VERSION,
                                                      "mr_tenant_config_t", &c);
    if (!st) return st;
    if (c.reserved != 0)
      return Status(megaring::Result::kInvalidArgument, "mr_tenant_config_t.reserved must be 0");
    megaring::TenantConfig cpp;
    st = megaring::capi::to_grants(c.grants_mode, c.grant_opcodes, c.grant_count,
                                   "mr_tenant_config_t.grant_opcodes", &cpp.grants);
    if (!st) return st;
    cpp.label = c.label != nullptr ? c.label : "";
    cpp.quotas.opcode_cap = c.opcode_cap;
    cpp.quotas.max_outstanding_slots = c.max_outstanding_slots;
    cpp.quotas.staging_bytes = c.staging_bytes;
    cpp.quotas.resident_handles = c.resident_handles;
    if (c.on_completion != nullptr) {
      const mr_completion_fn fn = c.on_completion;
      void* const user_data = c.user_data;
      cpp.on_completion = [fn, user_data](const megaring::Completion& completion) {
        const mr_completion_t cc = megaring::capi::from_completion(completion);
        fn(user_data, &cc);
      };
    }
    auto handle = std::make_unique<mr_tenant_s>();
    handle->capacity = registry->capacity;
    if (!(st = registry->registry->register_tenant(cpp, &handle->handle))) return st;
    *out = handle.release();
    return Status::ok();
  });
}

mr_result_t mr_tenant_unregister(mr_registry_t* registry, mr_tenant_t* tenant) {
  return entry("mr_tenant_unregister", [&]() -> Status {
    MR_CAPI_REQUIRE(registry);
    MR_CAPI_REQUIRE(tenant);
    return registry->registry->unregister_tenant(tenant->handle);
  });
}

mr_result_t mr_tenant_destroy(mr_tenant_t* tenant) {
  return entry("mr_tenant_destroy", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    delete tenant;  // the handle only: the tenant stays registered
    return Status::ok();
  });
}

mr_result_t mr_tenant_get_info(mr_tenant_t* tenant, mr_tenant_info_t* info) {
  return entry("mr_tenant_get_info", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(info);
    const megaring::TenantHandle& h = tenant->handle;
    mr_tenant_info_t full{};
    full.id = h.id();
    full.base_opcode = h.base_opcode();
    full.opcode_cap = h.opcode_cap();
    full.revoked = h.revoked() ? 1u : 0u;
    return megaring::capi::write_sized(info, &full, kTenantInfoV1Size, sizeof full,
                                       "mr_tenant_info_t");
  });
}

mr_result_t mr_tenant_get_counters(mr_tenant_t* tenant, mr_tenant_counters_t* counters) {
  return entry("mr_tenant_get_counters", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(counters);
    const megaring::TenantQuotaCounters q = tenant->handle.quota_counters();
    const megaring::TenantRuntimeCounters r = tenant->handle.runtime_counters();
    mr_tenant_counters_t full{};
    full.max_outstanding_slots = q.max_outstanding_slots;
    full.outstanding_slots = q.outstanding_slots;
    full.staging_bytes_limit = q.staging_bytes_limit;
    full.staging_bytes_in_use = q.staging_bytes_in_use;
    full.resident_handles_limit = q.resident_handles_limit;
    full.resident_handles_in_use = q.resident_handles_in_use;
    full.resident_handles_reserved = q.resident_handles_reserved;
    full.resident_buffers = q.resident_buffers;
    full.published = r.published;
    full.drained = r.drained;
    full.completed_ok = r.completed_ok;
    full.faulted = r.faulted;
    full.revoked = r.revoked;
    full.aborted = r.aborted;
    for (uint32_t i = 0; i < MR_FAULT_CODE_COUNT; ++i) full.faults_by_code[i] = r.faults_by_code[i];
    full.backpressure_events = r.backpressure_events;
    full.pipeline_errors = r.pipeline_errors;
    full.device_admitted = r.device_admitted;
    full.device_out_of_window = r.device_out_of_window;
    full.device_revoked = r.device_revoked;
    full.device_not_granted = r.device_not_granted;
    full.staging_region_bytes = q.staging_region_bytes;
    full.staging_regions = q.staging_regions;
    return megaring::capi::write_sized(counters, &full, kTenantCountersV1Size, sizeof full,
                                       "mr_tenant_counters_t");
  });
}

}  // extern "C"
