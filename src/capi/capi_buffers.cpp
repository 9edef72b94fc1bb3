// SPDX-License-Identifier: Apache-2.0
// C API: a runtime's buffers (megaring/megaring.h, "Buffers"), each call the
// Runtime call it names; Runtime checks handles and ranges (no overflow).
#include "capi/capi_internal.hpp"

using megaring::Status;
using megaring::capi::entry;

extern "C" {

mr_result_t mr_buffer_alloc(mr_runtime_t* runtime, uint64_t bytes, uint32_t* handle) {
  return entry("mr_buffer_alloc", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(handle);
    megaring::BufferHandle h = 0;
    Status st = runtime->runtime->alloc_buffer(bytes, &h);
    if (st) *handle = h;
    return st;
  });
}

mr_result_t mr_buffer_free(mr_runtime_t* runtime, uint32_t handle) {
  return entry("mr_buffer_free", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->free_buffer(handle);
  });
}

mr_result_t mr_buffer_write(mr_runtime_t* runtime, uint32_t handle, uint64_t offset,
                            const void* src, uint64_t bytes) {
  return entry("mr_buffer_write", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(src);
    return runtime->runtime->write_buffer(handle, offset, src, bytes);
  });
}

mr_result_t mr_buffer_read(mr_runtime_t* runtime, uint32_t handle, uint64_t offset, void* dst,
                           uint64_t bytes) {
  return entry("mr_buffer_read", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(dst);
    return runtime->runtime->read_buffer(handle, offset, dst, bytes);
  });
}

mr_result_t mr_buffer_register(mr_runtime_t* runtime, void* memory, uint64_t bytes,
                               uint32_t* handle) {
  return entry("mr_buffer_register", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(memory);
    MR_CAPI_REQUIRE(handle);
    megaring::BufferHandle h = 0;
    Status st = runtime->runtime->register_buffer(memory, bytes, &h);
    if (st) *handle = h;
    return st;
  });
}

mr_result_t mr_buffer_unregister(mr_runtime_t* runtime, uint32_t handle, int64_t timeout_ns) {
  return entry("mr_buffer_unregister", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    return runtime->runtime->unregister_buffer(handle, megaring::capi::to_duration(timeout_ns));
  });
}

}  // extern "C"
