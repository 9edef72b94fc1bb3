#include "user_kernel.hpp"

namespace megaring_test {
namespace {

__global__ void store_value(int* out, int value) {
  if (threadIdx.x == 0) *out = value;
}

}  // namespace

cudaError_t launch_store_value(int* device_out, int value, cudaStream_t stream) {
  store_value<<<1, 32, 0, stream>>>(device_out, value);
  return cudaGetLastError();
}

}  // namespace megaring_test
