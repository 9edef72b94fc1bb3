// SPDX-License-Identifier: Apache-2.0
// C API: a tenant's publishes, waits, quotas and buffers
// (megaring/megaring_tenants.h), each the TenantHandle call it names.
#include "capi/capi_internal.hpp"

using megaring::Status;
using megaring::capi::entry;

namespace {

megaring::TenantPublishOptions tenant_options(uint32_t flags, int64_t timeout_ns) {
  megaring::TenantPublishOptions options;
  options.keep_result = (flags & MR_PUBLISH_KEEP_RESULT) != 0;
  options.timeout = megaring::capi::to_duration(timeout_ns);
  return options;
}

}  // namespace

extern "C" {

mr_result_t mr_tenant_publish(mr_tenant_t* tenant, const mr_slot_request_t* request,
                              uint32_t flags, int64_t timeout_ns, mr_ticket_t* ticket) {
  return entry("mr_tenant_publish", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(request);
    MR_CAPI_REQUIRE(ticket);
    megaring::SlotRequest cpp;
    Status st = megaring::capi::to_request(*request, &cpp);
    if (!st) return st;
    if (!(st = megaring::capi::check_flags(flags, MR_PUBLISH_KEEP_RESULT))) return st;
    megaring::Ticket t;
    st = tenant->handle.publish_slot(cpp, &t, tenant_options(flags, timeout_ns));
    if (st) *ticket = megaring::capi::from_ticket(t);
    return st;
  });
}

mr_result_t mr_tenant_publish_batch(mr_tenant_t* tenant, const mr_slot_request_t* requests,
                                    uint32_t count, uint32_t flags, int64_t timeout_ns,
                                    mr_ticket_t* first) {
  return entry("mr_tenant_publish_batch", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(requests);
    MR_CAPI_REQUIRE(first);
    Status st = megaring::capi::check_flags(flags, MR_PUBLISH_KEEP_RESULT);
    if (!st) return st;
    std::vector<megaring::SlotRequest> cpp;
    if (!(st = megaring::capi::to_requests(requests, count, tenant->capacity, &cpp))) return st;
    megaring::Ticket t;
    st = tenant->handle.publish_batch(cpp.data(), count, &t, tenant_options(flags, timeout_ns));
    if (st) *first = megaring::capi::from_ticket(t);
    return st;
  });
}

mr_result_t mr_tenant_wait(mr_tenant_t* tenant, const mr_ticket_t* ticket, int64_t timeout_ns,
                           mr_completion_t* completion) {
  return entry("mr_tenant_wait", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(ticket);
    MR_CAPI_REQUIRE(completion);
    return megaring::capi::wait_on(tenant->handle, *ticket, timeout_ns, completion);
  });
}

mr_result_t mr_tenant_release(mr_tenant_t* tenant, const mr_ticket_t* ticket) {
  return entry("mr_tenant_release", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(ticket);
    megaring::Ticket t;
    Status st = megaring::capi::to_ticket(*ticket, &t);
    if (!st) return st;
    return tenant->handle.release(t);
  });
}

mr_result_t mr_tenant_quiesce(mr_tenant_t* tenant, int64_t timeout_ns) {
  return entry("mr_tenant_quiesce", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.quiesce(megaring::capi::to_duration(timeout_ns));
  });
}

mr_result_t mr_tenant_reserve_staging_bytes(mr_tenant_t* tenant, uint64_t bytes) {
  return entry("mr_tenant_reserve_staging_bytes", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.reserve_staging_bytes(bytes);
  });
}

mr_result_t mr_tenant_release_staging_bytes(mr_tenant_t* tenant, uint64_t bytes) {
  return entry("mr_tenant_release_staging_bytes", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.release_staging_bytes(bytes);
  });
}

mr_result_t mr_tenant_reserve_resident_handles(mr_tenant_t* tenant, uint64_t count) {
  return entry("mr_tenant_reserve_resident_handles", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.reserve_resident_handles(count);
  });
}

mr_result_t mr_tenant_release_resident_handles(mr_tenant_t* tenant, uint64_t count) {
  return entry("mr_tenant_release_resident_handles", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.release_resident_handles(count);
  });
}

mr_result_t mr_tenant_buffer_alloc(mr_tenant_t* tenant, uint64_t bytes, uint32_t* handle) {
  return entry("mr_tenant_buffer_alloc", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(handle);
    megaring::BufferHandle h = 0;
    Status st = tenant->handle.alloc_buffer(bytes, &h);
    if (st) *handle = h;
    return st;
  });
}

mr_result_t mr_tenant_buffer_free(mr_tenant_t* tenant, uint32_t handle) {
  return entry("mr_tenant_buffer_free", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.free_buffer(handle);
  });
}

mr_result_t mr_tenant_buffer_write(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                   const void* src, uint64_t bytes) {
  return entry("mr_tenant_buffer_write", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(src);
    return tenant->handle.write_buffer(handle, offset, src, bytes);
  });
}

mr_result_t mr_tenant_buffer_read(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                  void* dst, uint64_t bytes) {
  return entry("mr_tenant_buffer_read", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(dst);
    return tenant->handle.read_buffer(handle, offset, dst, bytes);
  });
}

mr_result_t mr_tenant_buffer_register(mr_tenant_t* tenant, void* memory, uint64_t bytes,
                                      uint32_t* handle) {
  return entry("mr_tenant_buffer_register", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    MR_CAPI_REQUIRE(memory);
    MR_CAPI_REQUIRE(handle);
    megaring::BufferHandle h = 0;
    Status st = tenant->handle.register_buffer(memory, bytes, &h);
    if (st) *handle = h;
    return st;
  });
}

mr_result_t mr_tenant_buffer_unregister(mr_tenant_t* tenant, uint32_t handle,
                                        int64_t timeout_ns) {
  return entry("mr_tenant_buffer_unregister", [&]() -> Status {
    MR_CAPI_REQUIRE(tenant);
    return tenant->handle.unregister_buffer(handle, megaring::capi::to_duration(timeout_ns));
  });
}

}  // extern "C"
