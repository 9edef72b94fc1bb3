// SPDX-License-Identifier: Apache-2.0
// The staging built-ins (slot_abi.h, "Staging"): STAGE_TO_BUFFER,
// BUFFER_TO_STAGING, and the compute opcode AXPY_F32 over two buffers.
// Block-collective like every handler (exec_context.cuh); every argument is
// checked before any memory is touched.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "megaring/consumer/region_access.cuh"

namespace megaring {
namespace detail {

// Whether [a, a + bytes) and [b, b + bytes) share a byte. Both ranges were
// resolved, so neither sum wraps.
MR_HDI bool ranges_overlap(const uint8_t* a, const uint8_t* b, uint64_t bytes) {
  return bytes != 0 && a < b + bytes && b < a + bytes;
}

// Copies disjoint ranges block-wide: 16-byte pieces where both ends allow
// them (host memory is read over PCIe: wide loads matter), bytes for the rest.
template <class Ctx>
MR_HDI void copy_range(Ctx& ctx, uint8_t* dst, const uint8_t* src, uint64_t bytes) {
#if defined(__CUDA_ARCH__)
  struct alignas(16) Piece {
    uint64_t lo, hi;
  };
  uint64_t done = 0;
  if (((reinterpret_cast<uint64_t>(dst) | reinterpret_cast<uint64_t>(src)) & 15u) == 0) {
    const uint64_t pieces = bytes / 16;
    for (uint64_t i = ctx.rank(); i < pieces; i += ctx.size())
      reinterpret_cast<Piece*>(dst)[i] = reinterpret_cast<const Piece*>(src)[i];
    done = pieces * 16;
  }
  for (uint64_t i = done + ctx.rank(); i < bytes; i += ctx.size()) dst[i] = src[i];
#else
  (void)ctx;  // a block of one thread
  if (bytes != 0) std::memcpy(dst, src, static_cast<size_t>(bytes));
#endif
}

// Descriptor (region a0, offset a1, bytes a2) -> buffer a3 at a4.
template <class Ctx>
MR_HDI void op_stage_to_buffer(Ctx& ctx, const mr_slot& s, Outcome& out) {
  const uint64_t bytes = s.args[2];
  const uint8_t* src = ctx.resolve_region(s.args[0], s.args[1], bytes, kRegionRead, out);
  if (src == nullptr) return;
  uint8_t* dst = ctx.resolve(s.args[3], s.args[4], bytes, 1, 0, out);
  if (dst == nullptr) return;
  // A registered buffer could name arena memory (CPU backend): refuse what
  // the parallel copy cannot do.
  if (ranges_overlap(dst, src, bytes)) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  copy_range(ctx, dst, src, bytes);
  out.result = bytes;
}

// Buffer a3 at a4 -> mutable region a0 at a1, a2 bytes: results for the
// host, which reads them after the slot completed.
template <class Ctx>
MR_HDI void op_buffer_to_staging(Ctx& ctx, const mr_slot& s, Outcome& out) {
  const uint64_t bytes = s.args[2];
  uint8_t* dst = ctx.resolve_region(s.args[0], s.args[1], bytes, kRegionWrite, out);
  if (dst == nullptr) return;
  const uint8_t* src = ctx.resolve(s.args[3], s.args[4], bytes, 1, 0, out);
  if (src == nullptr) return;
  if (ranges_overlap(dst, src, bytes)) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  copy_range(ctx, dst, src, bytes);
#if defined(__CUDA_ARCH__)
  // RELEASE (system): this thread's stores to host memory before the
  // completion the host acquires (the completer's system-scope release
  // follows the done flag, but the stores cross PCIe: order them here).
  __threadfence_system();
#endif
  out.result = bytes;
}

// y[i] = fmaf(alpha, x[i], y[i]) for i < count: fused on the GPU and on the
// host alike (fmaf rounds once on both), so both backends give the same bits.
template <class Ctx>
MR_HDI void op_axpy_f32(Ctx& ctx, const mr_slot& s, Outcome& out) {
  const uint64_t count = s.args[4] & 0xFFFFFFFFull;
  const uint32_t alpha_bits = static_cast<uint32_t>(s.args[4] >> 32);
  const uint64_t bytes = count * 4;  // below 2^34: no wrap
  uint8_t* y = ctx.resolve(s.args[0], s.args[1], bytes, 4, 0, out);
  if (y == nullptr) return;
  const uint8_t* x = ctx.resolve(s.args[2], s.args[3], bytes, 4, 1, out);
  if (x == nullptr) return;
  // Element i reads x[i] and writes y[i]: the same range is fine, a shifted
  // one would read elements another thread already wrote.
  if (x != y && ranges_overlap(y, x, bytes)) return out.set_fault(MR_FAULT_BAD_ARGUMENT);
  float alpha = 0.0f;
  std::memcpy(&alpha, &alpha_bits, sizeof alpha);
  float* yf = reinterpret_cast<float*>(y);
  const float* xf = reinterpret_cast<const float*>(x);
  for (uint64_t i = ctx.rank(); i < count; i += ctx.size()) yf[i] = ::fmaf(alpha, xf[i], yf[i]);
  out.result = count;
}

}  // namespace detail
}  // namespace megaring
