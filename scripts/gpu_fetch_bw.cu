// How fast the GPU's SMs can read pinned host memory, in the shape of the
// fetcher's rounds (bench/NOTES.md, "Second ABI v3 run"). On the H200 of
// 2026-12-04 a round that copies 128 slot bodies (8 KB, one warp, 16
// ld.relaxed.sys.v2 a lane, all in flight) took about 9.3 us, so the
// fetcher, not the executors, capped the consumer at 13.8 M slots/s. Is
// that a limit a warp, an SM, or the link?
//
// Each config: B blocks of W warps; every round each thread issues K loads
// of one kind, all in flight, over its block's own part of a pinned buffer of
// F bytes (the round's bytes are contiguous, walking through F round by
// round), then the block meets at a barrier. Rounds are timed with events;
// the table gives us a round (per block) and GB/s in total.
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_fetch_bw scripts/gpu_fetch_bw.cu
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

enum Kind { kRelaxedSysV2, kRelaxedSysU64Strided, kWeakCgV2, kKinds };
const char* kKindNames[kKinds] = {"ld.relaxed.sys.v2 (16 B, dense)",
                                  "ld.relaxed.sys.u64 (8 B, 64 B apart)",
                                  "ld.global.cg.v2 (16 B, dense, weak)"};
// Bytes a load covers in the buffer (the strided kind reads one header a slot).
__host__ __device__ constexpr uint32_t stride_of(int kind) {
  return kind == kRelaxedSysU64Strided ? 64u : 16u;
}

template <int kK>
__global__ void rounds(int kind, const char* base, uint64_t part_bytes, int iters, uint64_t* sink) {
  const char* part = base + blockIdx.x * part_bytes;
  const uint32_t stride = stride_of(kind);
  const uint64_t round_bytes = uint64_t(blockDim.x) * kK * stride;
  uint64_t acc = 0;
  uint64_t offset = 0;
  for (int r = 0; r < iters; ++r) {
    uint64_t a[kK], b[kK];
#pragma unroll
    for (int k = 0; k < kK; ++k) {
      const char* p = part + (offset + (uint64_t(k) * blockDim.x + threadIdx.x) * stride) % part_bytes;
      if (kind == kRelaxedSysV2)
        asm volatile("ld.relaxed.sys.global.v2.u64 {%0, %1}, [%2];"
                     : "=l"(a[k]), "=l"(b[k]) : "l"(p) : "memory");
      else if (kind == kRelaxedSysU64Strided) {
        asm volatile("ld.relaxed.sys.global.u64 %0, [%1];" : "=l"(a[k]) : "l"(p) : "memory");
        b[k] = 0;
      } else
        asm volatile("ld.global.cg.v2.u64 {%0, %1}, [%2];"
                     : "=l"(a[k]), "=l"(b[k]) : "l"(p) : "memory");
    }
#pragma unroll
    for (int k = 0; k < kK; ++k) acc += a[k] ^ b[k];
    offset = (offset + round_bytes) % part_bytes;
    __syncthreads();
  }
  if (acc == 0x5eed) *sink = acc;  // keep the loads
}

struct Config {
  int blocks, warps, k;
  uint64_t part_bytes;
};

}  // namespace

int main() {
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, 0));
  constexpr uint64_t kMaxBytes = 64ull << 20;
  char* host = nullptr;
  char* host_dev = nullptr;
  uint64_t* sink = nullptr;
  CHECK(cudaHostAlloc(&host, kMaxBytes, cudaHostAllocMapped));
  for (uint64_t i = 0; i < kMaxBytes; i += 4096) host[i] = char(i);
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&host_dev), host, 0));
  CHECK(cudaMalloc(&sink, sizeof(uint64_t)));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  std::printf("%s: pinned host memory read by SMs; a round = every thread's K loads in flight, "
              "then a block barrier\n", prop.name);
  std::printf("%-38s %6s %5s %3s %9s %10s | %10s %9s\n", "load", "blocks", "warps", "K",
              "round KB", "part KB", "us/round", "GB/s");
  // The fetcher today: 1 block, 1 warp, K = 16 (8 KB a round) over the 64 KB
  // ring; then more warps, more blocks, larger footprints.
  const Config configs[] = {
      {1, 1, 16, 64 << 10},  {1, 1, 4, 64 << 10},   {1, 4, 4, 64 << 10},   {1, 8, 2, 64 << 10},
      {1, 8, 8, 64 << 10},   {1, 1, 16, 8 << 20},   {2, 1, 16, 64 << 10},  {8, 1, 16, 64 << 10},
      {8, 8, 8, 64 << 10},   {8, 8, 8, 8 << 20},    {32, 8, 8, 1 << 20},
  };
  for (int kind = 0; kind < kKinds; ++kind) {
    for (const Config& c : configs) {
      if (kind != kRelaxedSysV2 && c.part_bytes > (64 << 10) && c.blocks > 1) continue;
      const int threads = c.warps * 32;
      const int iters = 400;
      auto launch = [&](int n) {
        switch (c.k) {
          case 2: rounds<2><<<c.blocks, threads>>>(kind, host_dev, c.part_bytes, n, sink); break;
          case 4: rounds<4><<<c.blocks, threads>>>(kind, host_dev, c.part_bytes, n, sink); break;
          case 8: rounds<8><<<c.blocks, threads>>>(kind, host_dev, c.part_bytes, n, sink); break;
          default: rounds<16><<<c.blocks, threads>>>(kind, host_dev, c.part_bytes, n, sink); break;
        }
      };
      launch(4);  // warm-up
      CHECK(cudaGetLastError());
      CHECK(cudaEventRecord(a));
      launch(iters);
      CHECK(cudaGetLastError());
      CHECK(cudaEventRecord(b));
      CHECK(cudaEventSynchronize(b));
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, a, b));
      const double round_bytes = double(threads) * c.k * 16.0;  // bytes loaded (8 B kinds: half)
      const double loaded = kind == kRelaxedSysU64Strided ? round_bytes / 2 : round_bytes;
      const double us = ms * 1e3 / iters;
      const double gbs = loaded * c.blocks * iters / (ms * 1e-3) / 1e9;
      std::printf("%-38s %6d %5d %3d %9.1f %10.0f | %10.2f %9.2f\n", kKindNames[kind], c.blocks,
                  c.warps, c.k, loaded / 1024.0, c.part_bytes / 1024.0, us, gbs);
    }
  }
  CHECK(cudaFreeHost(host));
  std::printf("done\n");
  return 0;
}
