// SPDX-License-Identifier: Apache-2.0
// Checked arithmetic on values that come from callers or from slots: sizes,
// offsets, counts and durations. Every such value is hostile until checked,
// and the checks live here, once: the host API, the tenant quotas, the
// backends and the consumer (on the GPU too) all use these.
//
// Each function returns false instead of wrapping; on false `*out` is left
// unchanged. No function here reads anything but its arguments.
#pragma once

#include <cstdint>

#if !defined(__CUDA_ARCH__)
#include <chrono>
#endif

#if defined(__CUDACC__)
#define MR_CHECKED_HDI __host__ __device__ __forceinline__
#else
#define MR_CHECKED_HDI inline
#endif

namespace megaring::detail {

// *out = a + b, if that fits in 64 bits.
MR_CHECKED_HDI bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  if (b > ~0ull - a) return false;
  *out = a + b;
  return true;
}

// *out = a * b, if that fits in 64 bits.
MR_CHECKED_HDI bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > ~0ull / a) return false;
  *out = a * b;
  return true;
}

// *out = value rounded up to a multiple of `align` (a power of two), if that
// fits in 64 bits. False for an align that is 0 or not a power of two.
MR_CHECKED_HDI bool checked_round_up(uint64_t value, uint64_t align, uint64_t* out) {
  if (align == 0 || (align & (align - 1)) != 0) return false;
  uint64_t sum = 0;
  if (!checked_add(value, align - 1, &sum)) return false;
  *out = sum & ~(align - 1);
  return true;
}

// [offset, offset + length) lies within [0, size), without computing a sum
// that could wrap. An empty range at offset == size is within.
MR_CHECKED_HDI bool range_within(uint64_t offset, uint64_t length, uint64_t size) {
  return offset <= size && length <= size - offset;
}

// `used + amount <= limit`, without wrapping: whether a quota admits more.
MR_CHECKED_HDI bool fits_quota(uint64_t used, uint64_t amount, uint64_t limit) {
  return amount <= limit && used <= limit - amount;
}

#if !defined(__CUDA_ARCH__)
// Durations from callers. Negative ones are refused by valid_timeout();
// deadline_after() saturates: any timeout too long to add to now (kForever,
// or anything beyond a century) never expires.
using SteadyClock = std::chrono::steady_clock;

inline bool valid_timeout(std::chrono::nanoseconds timeout) {
  return timeout >= std::chrono::nanoseconds::zero();
}

inline SteadyClock::time_point deadline_after(std::chrono::nanoseconds timeout) {
  constexpr auto kCentury = std::chrono::hours(24 * 365 * 100);
  const auto now = SteadyClock::now();
  if (timeout >= kCentury) return SteadyClock::time_point::max();
  if (timeout <= std::chrono::nanoseconds::zero()) return now;
  return now + std::chrono::duration_cast<SteadyClock::duration>(timeout);
}
#endif

}  // namespace megaring::detail

#undef MR_CHECKED_HDI
