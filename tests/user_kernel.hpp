// SPDX-License-Identifier: Apache-2.0
// Kernels of "the user's" (user_kernel.cu, nvcc), usable from plain C++. Each
// has its own function, so that under lazy module loading (CUDA's default
// since 12.2) each test decides when its kernel is loaded: by its first
// launch, or by an explicit preload before the persistent kernel starts.
#pragma once

#include <cuda_runtime_api.h>

namespace megaring_test {

// Launches one block that stores `value` to *device_out on `stream`; returns
// the launch's error. Nothing loads this kernel before its first launch.
cudaError_t launch_store_value_lazily(int* device_out, int value, cudaStream_t stream);

// The same with another kernel, which preload_store_value() loads first
// (cudaFuncGetAttributes: the documented way to load a kernel ahead of time).
cudaError_t preload_store_value();
cudaError_t launch_store_value_preloaded(int* device_out, int value, cudaStream_t stream);

}  // namespace megaring_test
