// SPDX-License-Identifier: Apache-2.0
// The atomic vocabulary of every word megaring shares between threads,
// units or the two sides of PCIe, defined once: host code (runtime, rings,
// CPU backend) and the consumer protocol (consumer/*.cuh) use these names,
// and every acquire or release on them says in a comment what it orders.
#pragma once

#include <cuda/atomic>

namespace megaring::detail {

// Words shared with the other side of PCIe (pinned, host-mapped memory):
// system scope.
template <class T>
using SysRef = cuda::atomic_ref<T, cuda::thread_scope_system>;
// Consumer-private words shared among its units (device memory): device scope.
template <class T>
using DevRef = cuda::atomic_ref<T, cuda::thread_scope_device>;

}  // namespace megaring::detail
