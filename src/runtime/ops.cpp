// SPDX-License-Identifier: Apache-2.0
// The slot builders (megaring::ops), and the backend helpers of runtime.hpp.
#include <cuda_runtime_api.h>

#include <cstring>

#include "megaring/runtime.hpp"

namespace megaring {

const char* backend_name(Backend backend) noexcept {
  switch (backend) {
    case Backend::kAuto: return "auto";
    case Backend::kCuda: return "cuda";
    case Backend::kCpu: return "cpu";
  }
  return "unknown";
}

bool cuda_device_available() noexcept {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  (void)cudaGetLastError();  // e.g. cudaErrorInsufficientDriver without a driver
  return err == cudaSuccess && count > 0;
}

namespace ops {
namespace {
// One slot request: an opcode and its leading arguments (the rest are 0).
static_assert(MR_SLOT_ARGS == 5, "make() takes every argument");
SlotRequest make(uint32_t opcode, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                 uint64_t a3 = 0, uint64_t a4 = 0) {
  return SlotRequest{opcode, /*tenant=*/0, MR_SLOT_FLAG_NONE, {a0, a1, a2, a3, a4}};
}
}  // namespace

SlotRequest nop(uint64_t echo) { return make(MR_OP_NOP, echo); }
SlotRequest store_u32(BufferHandle buffer, uint64_t offset, uint32_t value) {
  return make(MR_OP_STORE_U32, buffer, offset, value);
}
SlotRequest atomic_add(BufferHandle buffer, uint64_t offset, uint64_t delta) {
  return make(MR_OP_ATOMIC_ADD, buffer, offset, delta);
}
SlotRequest fill(BufferHandle buffer, uint64_t offset, uint64_t bytes, uint8_t value) {
  return make(MR_OP_FILL, buffer, offset, bytes, value);
}
SlotRequest copy(BufferHandle dst, uint64_t dst_offset, BufferHandle src, uint64_t src_offset,
                 uint64_t bytes) {
  return make(MR_OP_COPY, dst, dst_offset, src, src_offset, bytes);
}
SlotRequest reduce_add_u32(BufferHandle buffer, uint64_t offset, uint64_t count) {
  return make(MR_OP_REDUCE_ADD_U32, buffer, offset, count);
}
SlotRequest fence() { return make(MR_OP_FENCE); }
SlotRequest delay_ns(uint64_t ns) { return make(MR_OP_DELAY_NS, ns); }
SlotRequest stage_to_buffer(const StagingDescriptor& source, BufferHandle dst, uint64_t dst_offset) {
  return make(MR_OP_STAGE_TO_BUFFER, source.region, source.offset, source.bytes, dst, dst_offset);
}
SlotRequest buffer_to_staging(BufferHandle src, uint64_t src_offset, RegionHandle region,
                              uint64_t region_offset, uint64_t bytes) {
  return make(MR_OP_BUFFER_TO_STAGING, region, region_offset, bytes, src, src_offset);
}
SlotRequest axpy_f32(BufferHandle y, uint64_t y_offset, BufferHandle x, uint64_t x_offset,
                     uint32_t count, float alpha) {
  uint32_t alpha_bits = 0;
  std::memcpy(&alpha_bits, &alpha, sizeof alpha_bits);
  return make(MR_OP_AXPY_F32, y, y_offset, x, x_offset,
              (uint64_t{alpha_bits} << 32) | uint64_t{count});
}
}  // namespace ops

}  // namespace megaring
