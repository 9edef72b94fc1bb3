// What a system-scope memory order costs on this GPU, and whether it scales
// with the number of SMs that pay it (bench/NOTES.md, "What bounds the
// consumer"). The first H100 run served 0.83-0.93 M slots/s whatever the
// producers, batch or protocol, one slot acquired about every microsecond
// across all 132 units: something a slot pays once is serialised GPU-wide.
//
// Each row: B blocks of one thread, each doing K operations on its own
// 128-byte line, timed with events; rate = B * K / time.
//   st.release.sys -> host   the completion tag's release (C5)
//   fence.sc.sys             a system fence alone
//   ld.acquire.sys <- host   the slot header's acquire (C2)
//   ld.relaxed.sys <- host   a poll without ordering
//   st.relaxed.sys -> host   a posted write
//   st.release.gpu -> device the done flag's order (C6)
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_order_cost scripts/gpu_order_cost.cu
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#define CHECK(x)                                                                     \
  do {                                                                               \
    cudaError_t e_ = (x);                                                            \
    if (e_ != cudaSuccess) {                                                         \
      std::printf("%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                  \
    }                                                                                \
  } while (0)

namespace {

constexpr int kLineWords = 16;  // 128 bytes of uint64_t

enum Op { kStReleaseSysHost, kFenceSys, kLdAcquireSysHost, kLdRelaxedSysHost,
          kStRelaxedSysHost, kStReleaseGpuDevice, kOps };
const char* kNames[kOps] = {"st.release.sys -> host", "fence.sc.sys",
                            "ld.acquire.sys <- host", "ld.relaxed.sys <- host",
                            "st.relaxed.sys -> host", "st.release.gpu -> device"};

__global__ void run(int op, uint64_t* host, uint64_t* dev, int iters, uint64_t* sink) {
  uint64_t* h = host + blockIdx.x * kLineWords;
  uint64_t* d = dev + blockIdx.x * kLineWords;
  uint64_t acc = 0;
  for (int i = 0; i < iters; ++i) {
    switch (op) {
      case kStReleaseSysHost:
        asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(h), "l"((uint64_t)i) : "memory");
        break;
      case kFenceSys:
        asm volatile("fence.sc.sys;" ::: "memory");
        break;
      case kLdAcquireSysHost: {
        uint64_t v;
        asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(h) : "memory");
        acc += v;
        break;
      }
      case kLdRelaxedSysHost: {
        uint64_t v;
        asm volatile("ld.relaxed.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(h) : "memory");
        acc += v;
        break;
      }
      case kStRelaxedSysHost:
        asm volatile("st.relaxed.sys.global.u64 [%0], %1;" ::"l"(h), "l"((uint64_t)i) : "memory");
        break;
      case kStReleaseGpuDevice:
        asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(d), "l"((uint64_t)i) : "memory");
        break;
    }
  }
  if (acc == 42) *sink = acc;  // keeps the loads
}

}  // namespace

int main() {
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  const int max_blocks = prop.multiProcessorCount;
  uint64_t *host = nullptr, *host_dev = nullptr, *dev = nullptr, *sink = nullptr;
  const size_t bytes = sizeof(uint64_t) * kLineWords * max_blocks;
  CHECK(cudaHostAlloc(&host, bytes, cudaHostAllocMapped));
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&host_dev), host, 0));
  CHECK(cudaMalloc(&dev, bytes));
  CHECK(cudaMalloc(&sink, sizeof(uint64_t)));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  const int blocks[] = {1, 8, 32, max_blocks};
  std::printf("%s, %d SMs; one thread a block, its own 128 B line; M ops/s in total "
              "(ns per op per block)\n", prop.name, max_blocks);
  std::printf("%-26s", "op \\ blocks");
  for (int n : blocks) std::printf("%22d", n);
  std::printf("\n");
  for (int op = 0; op < kOps; ++op) {
    std::printf("%-26s", kNames[op]);
    for (int n : blocks) {
      const int iters = op == kFenceSys || op == kStReleaseSysHost || op == kLdAcquireSysHost ||
                                op == kLdRelaxedSysHost
                            ? 2000
                            : 20000;
      run<<<n, 1>>>(op, host_dev, dev, 10, sink);  // warm-up
      CHECK(cudaGetLastError());
      CHECK(cudaEventRecord(a));
      run<<<n, 1>>>(op, host_dev, dev, iters, sink);
      CHECK(cudaGetLastError());
      CHECK(cudaEventRecord(b));
      CHECK(cudaEventSynchronize(b));
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, a, b));
      const double ops = double(n) * iters;
      const double rate = ops / (ms * 1e-3) / 1e6;
      const double ns_each = ms * 1e6 / iters;
      char cell[64];
      std::snprintf(cell, sizeof cell, "%.2f (%.0f ns)", rate, ns_each);
      std::printf("%22s", cell);
    }
    std::printf("\n");
  }
  CHECK(cudaFreeHost(host));
  CHECK(cudaFree(dev));
  CHECK(cudaFree(sink));
  return 0;
}
