// SPDX-License-Identifier: Apache-2.0
// Internal: names the calling thread, for debuggers, `top -H`, /proc and
// Nsight Systems' thread rows (the kernel keeps 15 characters).
#pragma once

#if defined(__linux__)
#include <pthread.h>
#endif

namespace megaring::detail {

inline void name_this_thread(const char* name) noexcept {
#if defined(__linux__)
  (void)pthread_setname_np(pthread_self(), name);
#else
  (void)name;
#endif
}

}  // namespace megaring::detail
