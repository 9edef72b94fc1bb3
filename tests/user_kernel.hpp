// A kernel of "the user's" (user_kernel.cu, nvcc) that nothing launches
// before the test that needs it: under lazy module loading it is loaded by
// its first launch. Usable from plain C++.
#pragma once

#include <cuda_runtime_api.h>

namespace megaring_test {

// Launches one block that stores `value` to *device_out on `stream`; returns
// the launch's error.
cudaError_t launch_store_value(int* device_out, int value, cudaStream_t stream);

}  // namespace megaring_test
