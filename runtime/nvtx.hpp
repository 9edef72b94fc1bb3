// Internal: NVTX ranges in the "megaring" domain, compiled out when the
// MEGARING_NVTX CMake option is OFF. Without a tool attached an NVTX range
// costs a few nanoseconds (one predicted branch on a function pointer).
#pragma once

#if MEGARING_NVTX
#include <nvtx3/nvtx3.hpp>

namespace megaring::detail {
struct NvtxDomain {
  static constexpr const char* name{"megaring"};
};
}  // namespace megaring::detail

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
#define MR_NVTX_MARK(literal) nvtx3::mark_in<::megaring::detail::NvtxDomain>(literal)
#else
#define MR_NVTX_RANGE(literal) \
  do {                         \
  } while (0)
#define MR_NVTX_MARK(literal) \
  do {                        \
  } while (0)
#endif
