// SPDX-License-Identifier: Apache-2.0
// TenantRegistry::metrics_text: each tenant's counters (its handle's
// runtime_counters and quota_counters) and the registry's, as Prometheus
// text exposition. A family's samples stay together, a tenant a line.
#include <string>
#include <vector>

#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"
#include "support/prometheus_text.hpp"
#include "tenants/registry_core.hpp"

namespace megaring {

Status TenantRegistry::metrics_text(std::string* out) const noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  return detail::guarded([&]() -> Status {
    using detail::PrometheusText;
    struct Row {
      std::string labels;
      TenantRuntimeCounters runtime;
      TenantQuotaCounters quotas;
    };
    std::vector<Row> rows;
    for (const auto& state : core_->tenants()) {
      const TenantHandle handle(state);
      rows.push_back(Row{PrometheusText::labels({{"tenant", std::to_string(handle.id())},
                                                 {"label", handle.label()}}),
                         handle.runtime_counters(), handle.quota_counters()});
    }
    PrometheusText m;
    const struct {
      const char* name;
      const char* type;
      const char* help;
      uint64_t (*value)(const Row&);
    } families[] = {
        {"megaring_tenant_published_total", "counter", "Slots the tenant published.",
         [](const Row& r) { return r.runtime.published; }},
        {"megaring_tenant_drained_total", "counter", "The tenant's slots the drain pump delivered.",
         [](const Row& r) { return r.runtime.drained; }},
        {"megaring_tenant_completed_ok_total", "counter", "The tenant's slots that completed OK.",
         [](const Row& r) { return r.runtime.completed_ok; }},
        {"megaring_tenant_faulted_total", "counter", "The tenant's slots that completed FAULT.",
         [](const Row& r) { return r.runtime.faulted; }},
        {"megaring_tenant_revoked_total", "counter", "The tenant's slots that completed REVOKED.",
         [](const Row& r) { return r.runtime.revoked; }},
        {"megaring_tenant_aborted_total", "counter", "The tenant's slots that completed ABORTED.",
         [](const Row& r) { return r.runtime.aborted; }},
        {"megaring_tenant_backpressure_events_total", "counter", "Publishes the slot quota refused or delayed.",
         [](const Row& r) { return r.runtime.backpressure_events; }},
        {"megaring_tenant_pipeline_errors_total", "counter", "Publishes the ring refused (rolled back).",
         [](const Row& r) { return r.runtime.pipeline_errors; }},
        {"megaring_tenant_device_admitted_total", "counter", "Slots with the tenant's id the consumer admitted.",
         [](const Row& r) { return r.runtime.device_admitted; }},
        {"megaring_tenant_device_out_of_window_total", "counter", "Slots the consumer faulted OUT_OF_WINDOW.",
         [](const Row& r) { return r.runtime.device_out_of_window; }},
        {"megaring_tenant_device_revoked_total", "counter", "Slots the consumer completed REVOKED.",
         [](const Row& r) { return r.runtime.device_revoked; }},
        {"megaring_tenant_device_not_granted_total", "counter", "Slots the consumer faulted NOT_GRANTED.",
         [](const Row& r) { return r.runtime.device_not_granted; }},
        {"megaring_tenant_outstanding_slots", "gauge", "Slots published and not yet drained.",
         [](const Row& r) { return r.quotas.outstanding_slots; }},
        {"megaring_tenant_max_outstanding_slots", "gauge", "The slot quota.",
         [](const Row& r) { return r.quotas.max_outstanding_slots; }},
        {"megaring_tenant_staging_bytes_in_use", "gauge", "Staging bytes reserved and in regions.",
         [](const Row& r) { return r.quotas.staging_bytes_in_use; }},
        {"megaring_tenant_staging_bytes_limit", "gauge", "The staging quota.",
         [](const Row& r) { return r.quotas.staging_bytes_limit; }},
        {"megaring_tenant_resident_handles_in_use", "gauge", "Resident handles reserved and held by buffers.",
         [](const Row& r) { return r.quotas.resident_handles_in_use; }},
        {"megaring_tenant_resident_handles_limit", "gauge", "The resident-handle quota.",
         [](const Row& r) { return r.quotas.resident_handles_limit; }},
    };
    for (const auto& f : families) {
      m.family(f.name, f.type, f.help);
      for (const Row& r : rows) m.sample(f.name, r.labels, f.value(r));
    }
    m.family("megaring_tenant_faults_total", "counter", "The tenant's FAULT completions by fault code.");
    for (const Row& r : rows)
      for (uint32_t code = 1; code < MR_FAULT_CODE_COUNT; ++code)
        m.sample("megaring_tenant_faults_total",
                 r.labels.substr(0, r.labels.size() - 1) + ",code=\"" + std::to_string(code) + "\"}",
                 r.runtime.faults_by_code[code]);
    const RegistryStats s = core_->stats();
    m.family("megaring_registry_live_tenants", "gauge", "Tenants registered and not revoked.");
    m.sample("megaring_registry_live_tenants", "", s.live_tenants);
    m.family("megaring_registry_draining_tenants", "gauge", "Revoked tenants whose slots have not all drained.");
    m.sample("megaring_registry_draining_tenants", "", s.draining_tenants);
    m.family("megaring_registry_drained_slots_total", "counter", "Tickets the pump delivered, all tenants.");
    m.sample("megaring_registry_drained_slots_total", "", s.drained_slots);
    m.family("megaring_registry_untenanted_slots_total", "counter", "Tickets the pump reaped that no tenant published.");
    m.sample("megaring_registry_untenanted_slots_total", "", s.untenanted_slots);
    *out = std::move(m.text());
    return Status::ok();
  });
}

}  // namespace megaring
