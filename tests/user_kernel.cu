// SPDX-License-Identifier: Apache-2.0
#include "user_kernel.hpp"

namespace megaring_test {
namespace {

__global__ void store_value_lazy(int* out, int value) {
  if (threadIdx.x == 0) *out = value;
}

__global__ void store_value_preloaded(int* out, int value) {
  if (threadIdx.x == 0) *out = value;
}

}  // namespace

cudaError_t launch_store_value_lazily(int* device_out, int value, cudaStream_t stream) {
  store_value_lazy<<<1, 32, 0, stream>>>(device_out, value);
  return cudaGetLastError();
}

cudaError_t preload_store_value() {
  cudaFuncAttributes attributes;
  return cudaFuncGetAttributes(&attributes, store_value_preloaded);
}

cudaError_t launch_store_value_preloaded(int* device_out, int value, cudaStream_t stream) {
  store_value_preloaded<<<1, 32, 0, stream>>>(device_out, value);
  return cudaGetLastError();
}

}  // namespace megaring_test
