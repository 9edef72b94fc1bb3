// SPDX-License-Identifier: Apache-2.0
// C API: staging regions of a runtime and of a tenant, and the staging
// opcodes' slot builders (megaring/megaring_staging.h), each the C++ call it
// names; Runtime / TenantHandle check policies, handles and ranges.
#include "capi/capi_internal.hpp"

using megaring::Status;
using megaring::capi::entry;

namespace {

static_assert(sizeof(mr_staging_descriptor_t) == 24, "mr_staging_descriptor_t keeps its layout");

// The policy as the C++ enum; Runtime::create_region refuses other values.
megaring::RegionPolicy to_policy(uint32_t policy) { return static_cast<megaring::RegionPolicy>(policy); }

mr_slot_request_t from_request(const megaring::SlotRequest& r) {
  mr_slot_request_t out{};
  out.opcode = r.opcode;
  out.tenant = r.tenant;
  out.flags = r.flags;
  for (uint32_t i = 0; i < MR_SLOT_ARGS; ++i) out.args[i] = r.args[i];
  return out;
}

// The region calls of an owner (Runtime or TenantHandle): one body each.
template <class Owner>
Status region_create(Owner& owner, uint32_t policy, uint64_t bytes, uint32_t* handle) {
  MR_CAPI_REQUIRE(handle);
  megaring::RegionHandle h = 0;
  Status st = owner.create_region(to_policy(policy), bytes, &h);
  if (st) *handle = h;
  return st;
}
template <class Owner>
Status region_write(Owner& owner, uint32_t handle, uint64_t offset, const void* src, uint64_t bytes) {
  MR_CAPI_REQUIRE(src);
  return owner.write_region(handle, offset, src, bytes);
}
template <class Owner>
Status region_append(Owner& owner, uint32_t handle, const void* src, uint64_t bytes, uint64_t* offset) {
  MR_CAPI_REQUIRE(src);
  uint64_t at = 0;
  Status st = owner.append_region(handle, src, bytes, &at);
  if (st && offset != nullptr) *offset = at;
  return st;
}
template <class Owner>
Status region_read(Owner& owner, uint32_t handle, uint64_t offset, void* dst, uint64_t bytes) {
  MR_CAPI_REQUIRE(dst);
  return owner.read_region(handle, offset, dst, bytes);
}

}  // namespace

extern "C" {

mr_result_t mr_region_create(mr_runtime_t* runtime, uint32_t policy, uint64_t bytes,
                             uint32_t* handle) {
  return entry("mr_region_create", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return region_create(*runtime->runtime, policy, bytes, handle);
  });
}

mr_result_t mr_region_free(mr_runtime_t* runtime, uint32_t handle) {
  return entry("mr_region_free", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->free_region(handle);
  });
}

mr_result_t mr_region_write(mr_runtime_t* runtime, uint32_t handle, uint64_t offset,
                            const void* src, uint64_t bytes) {
  return entry("mr_region_write", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return region_write(*runtime->runtime, handle, offset, src, bytes);
  });
}

mr_result_t mr_region_seal(mr_runtime_t* runtime, uint32_t handle) {
  return entry("mr_region_seal", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->seal_region(handle);
  });
}

mr_result_t mr_region_append(mr_runtime_t* runtime, uint32_t handle, const void* src,
                             uint64_t bytes, uint64_t* offset) {
  return entry("mr_region_append", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return region_append(*runtime->runtime, handle, src, bytes, offset);
  });
}

mr_result_t mr_region_read(mr_runtime_t* runtime, uint32_t handle, uint64_t offset, void* dst,
                           uint64_t bytes) {
  return entry("mr_region_read", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return region_read(*runtime->runtime, handle, offset, dst, bytes);
  });
}

mr_result_t mr_tenant_region_create(mr_tenant_t* tenant, uint32_t policy, uint64_t bytes,
                                    uint32_t* handle) {
  return entry("mr_tenant_region_create", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return region_create(tenant->handle, policy, bytes, handle);
  });
}

mr_result_t mr_tenant_region_free(mr_tenant_t* tenant, uint32_t handle) {
  return entry("mr_tenant_region_free", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.free_region(handle);
  });
}

mr_result_t mr_tenant_region_write(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                   const void* src, uint64_t bytes) {
  return entry("mr_tenant_region_write", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return region_write(tenant->handle, handle, offset, src, bytes);
  });
}

mr_result_t mr_tenant_region_seal(mr_tenant_t* tenant, uint32_t handle) {
  return entry("mr_tenant_region_seal", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.seal_region(handle);
  });
}

mr_result_t mr_tenant_region_append(mr_tenant_t* tenant, uint32_t handle, const void* src,
                                    uint64_t bytes, uint64_t* offset) {
  return entry("mr_tenant_region_append", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return region_append(tenant->handle, handle, src, bytes, offset);
  });
}

mr_result_t mr_tenant_region_read(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                  void* dst, uint64_t bytes) {
  return entry("mr_tenant_region_read", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return region_read(tenant->handle, handle, offset, dst, bytes);
  });
}

mr_result_t mr_op_stage_to_buffer(const mr_staging_descriptor_t* source, uint32_t dst,
                                  uint64_t dst_offset, mr_slot_request_t* out) {
  return entry("mr_op_stage_to_buffer", [&]() -> Status {
    MR_CAPI_REQUIRE(source);
    MR_CAPI_REQUIRE(out);
    if (source->reserved != 0)
      return Status(megaring::Result::kInvalidArgument,
                    "mr_staging_descriptor_t.reserved must be 0");
    const megaring::StagingDescriptor d{source->region, source->offset, source->bytes};
    *out = from_request(megaring::ops::stage_to_buffer(d, dst, dst_offset));
    return Status::ok();
  });
}

mr_result_t mr_op_buffer_to_staging(uint32_t src, uint64_t src_offset, uint32_t region,
                                    uint64_t region_offset, uint64_t bytes,
                                    mr_slot_request_t* out) {
  return entry("mr_op_buffer_to_staging", [&]() -> Status {
    MR_CAPI_REQUIRE(out);
    *out = from_request(megaring::ops::buffer_to_staging(src, src_offset, region, region_offset, bytes));
    return Status::ok();
  });
}

mr_result_t mr_op_axpy_f32(uint32_t y, uint64_t y_offset, uint32_t x, uint64_t x_offset,
                           uint32_t count, float alpha, mr_slot_request_t* out) {
  return entry("mr_op_axpy_f32", [&]() -> Status {
    MR_CAPI_REQUIRE(out);
    *out = from_request(megaring::ops::axpy_f32(y, y_offset, x, x_offset, count, alpha));
    return Status::ok();
  });
}

}  // extern "C"
