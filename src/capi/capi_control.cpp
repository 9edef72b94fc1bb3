// SPDX-License-Identifier: Apache-2.0
// C API: the control plane (megaring/megaring.h, "Control operations";
// megaring_tenants.h, grants): control statistics, unregistering a buffer
// that may still be in use, and a tenant's opcode grants, each the C++ call
// it names.
#include <algorithm>

#include "capi/capi_internal.hpp"

using megaring::Status;
using megaring::capi::entry;

namespace {

constexpr uint32_t kControlStatsV1Size = 56;
static_assert(sizeof(mr_control_stats_t) == kControlStatsV1Size, "the first version's size");

// MR_UNREGISTER_* flags as the C++ argument; unknown bits are refused.
Status to_while_in_use(uint32_t flags, megaring::WhileInUse* out) {
  if ((flags & ~MR_UNREGISTER_FAIL_IF_IN_USE) != 0)
    return Status(megaring::Result::kInvalidArgument,
                  "unknown unregister flags " + std::to_string(flags & ~MR_UNREGISTER_FAIL_IF_IN_USE));
  *out = (flags & MR_UNREGISTER_FAIL_IF_IN_USE) != 0 ? megaring::WhileInUse::kFail
                                                     : megaring::WhileInUse::kWait;
  return Status::ok();
}

}  // namespace

extern "C" {

mr_result_t mr_runtime_control_stats(mr_runtime_t* runtime, mr_control_stats_t* stats) {
  return entry("mr_runtime_control_stats", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(stats);
    megaring::ControlStats c;
    Status st = runtime->runtime->control_stats(&c);
    if (!st) return st;
    mr_control_stats_t full{};
    full.operations = c.operations;
    full.rolled_back = c.rolled_back;
    full.cancelled = c.cancelled;
    full.last_ns = c.last_ns;
    full.max_ns = c.max_ns;
    full.total_ns = c.total_ns;
    return megaring::capi::write_sized(stats, &full, kControlStatsV1Size, sizeof full,
                                       "mr_control_stats_t");
  });
}

mr_result_t mr_buffer_unregister_ex(mr_runtime_t* runtime, uint32_t handle, int64_t timeout_ns,
                                    uint32_t flags) {
  return entry("mr_buffer_unregister_ex", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    megaring::WhileInUse while_in_use;
    Status st = to_while_in_use(flags, &while_in_use);
    if (!st) return st;
    return runtime->runtime->unregister_buffer(handle, megaring::capi::to_duration(timeout_ns),
                                               while_in_use);
  });
}

mr_result_t mr_tenant_buffer_unregister_ex(mr_tenant_t* tenant, uint32_t handle,
                                           int64_t timeout_ns, uint32_t flags) {
  return entry("mr_tenant_buffer_unregister_ex", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    megaring::WhileInUse while_in_use;
    Status st = to_while_in_use(flags, &while_in_use);
    if (!st) return st;
    return tenant->handle.unregister_buffer(handle, megaring::capi::to_duration(timeout_ns),
                                            while_in_use);
  });
}

mr_result_t mr_tenant_set_grants(mr_tenant_t* tenant, uint32_t mode, const uint32_t* opcodes,
                                 uint32_t count) {
  return entry("mr_tenant_set_grants", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    megaring::OpcodeGrants grants;
    Status st = megaring::capi::to_grants(mode, opcodes, count, "opcodes", &grants);
    if (!st) return st;
    return tenant->handle.set_grants(grants);
  });
}

mr_result_t mr_tenant_get_grants(mr_tenant_t* tenant, uint32_t* mode, uint32_t* opcodes,
                                 uint32_t capacity, uint32_t* count) {
  return entry("mr_tenant_get_grants", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(mode);
    MR_CAPI_REQUIRE(count);
    if (capacity > 0) MR_CAPI_REQUIRE(opcodes);
    megaring::OpcodeGrants grants;
    Status st = tenant->handle.grants(&grants);
    if (!st) return st;
    const size_t n = grants.all ? 0 : grants.opcodes.size();
    std::copy_n(grants.opcodes.begin(), std::min<size_t>(n, capacity), opcodes);
    *mode = grants.all ? MR_GRANTS_ALL : MR_GRANTS_ONLY;
    *count = static_cast<uint32_t>(n);  // at most the grantable opcodes, far below 2^32
    return Status::ok();
  });
}

}  // extern "C"
