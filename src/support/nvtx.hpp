// SPDX-License-Identifier: Apache-2.0
// Internal: NVTX ranges and markers in the "megaring" domain, compiled out
// when the MEGARING_NVTX CMake option is OFF. Without a tool attached each
// costs a few nanoseconds (one predicted branch on a function pointer).
#pragma once

#if MEGARING_NVTX
#include <nvtx3/nvtx3.hpp>

#include "support/nvtx_payload.hpp"  // NvtxDomain, NvtxTickets, NvtxTicketsRange

#define MR_NVTX_CONCAT_(a, b) a##b
#define MR_NVTX_CONCAT(a, b) MR_NVTX_CONCAT_(a, b)
// A scoped range named by a string literal, registered once per call site.
#define MR_NVTX_RANGE(literal)                                                       \
  static const nvtx3::registered_string_in<::megaring::detail::NvtxDomain>           \
      MR_NVTX_CONCAT(mr_nvtx_name_, __LINE__){literal};                               \
  const nvtx3::scoped_range_in<::megaring::detail::NvtxDomain> MR_NVTX_CONCAT(       \
      mr_nvtx_range_, __LINE__) {                                                    \
    MR_NVTX_CONCAT(mr_nvtx_name_, __LINE__)                                          \
  }
// A scoped range named by a string literal that carries which tickets the
// call is about (support/nvtx_payload.hpp): the first, how many, the tenant
// (0: none) and the ring (0: the shared ring). Each is evaluated once, when
// the range opens.
#define MR_NVTX_TICKETS_RANGE(literal, first_ticket, count, tenant, ring)              \
  static const nvtx3::registered_string_in<::megaring::detail::NvtxDomain>           \
      MR_NVTX_CONCAT(mr_nvtx_name_, __LINE__){literal};                               \
  const ::megaring::detail::NvtxTicketsRange MR_NVTX_CONCAT(mr_nvtx_range_, __LINE__) { \
    MR_NVTX_CONCAT(mr_nvtx_name_, __LINE__),                                          \
        ::megaring::detail::NvtxTickets {                                             \
      static_cast<uint64_t>(first_ticket), static_cast<uint32_t>(count),              \
          static_cast<uint32_t>(tenant), static_cast<uint32_t>(ring)                  \
    }                                                                                 \
  }
// An instantaneous marker named by a string literal, registered once per
// call site: events a timeline should show where they happened (the ring or
// a tenant's quota found full), not how long they took.
#define MR_NVTX_MARKER(literal)                                                    \
  do {                                                                             \
    static const nvtx3::registered_string_in<::megaring::detail::NvtxDomain>       \
        mr_nvtx_marker_name{literal};                                              \
    nvtx3::mark_in<::megaring::detail::NvtxDomain>(mr_nvtx_marker_name);           \
  } while (0)
#else
#define MR_NVTX_RANGE(literal) \
  do {                         \
  } while (0)
// Compiled out: the arguments are not evaluated (sizeof), only named, so a
// variable kept for the range alone draws no unused-variable warning.
#define MR_NVTX_TICKETS_RANGE(literal, first_ticket, count, tenant, ring)         \
  do {                                                                            \
    (void)sizeof(first_ticket), (void)sizeof(count), (void)sizeof(tenant),        \
        (void)sizeof(ring);                                                       \
  } while (0)
#define MR_NVTX_MARKER(literal) \
  do {                          \
  } while (0)
#endif
