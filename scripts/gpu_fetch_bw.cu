// SPDX-License-Identifier: Apache-2.0
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
//
// Part 2: the same read, of lines the host CPU has just written, as the
// fetcher reads slots. The host writes N bytes (plain stores, which leave the
// lines dirty in its cache; non-temporal stores + sfence, which do not; or
// no stores at all), then releases a flag; one warp acquires it, reads the N
// bytes (16 ld.relaxed.sys.v2 a lane at most, all in flight) and releases an
// ack the host spins on. Time a round trip, host side: the difference
// between modes is what dirty lines cost the GPU's reads.
//
// Part 3: rounds shaped like the fetcher's (loads stored to device memory
// before the round ends, the crew's barrier, the release and fences it
// takes), one warp to seven: see round_anatomy.
// Part 4: whether a warp's read of one 64-byte host line can tear while the
// host rewrites it (the premise of fetching a slot's body with its header),
// with a two-line read as the control that should tear: see line_tearing.
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_fetch_bw scripts/gpu_fetch_bw.cu
#include <cuda_runtime.h>
#include <immintrin.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "probe_check.cuh"

namespace {

// Calls f(std::integral_constant<int, K>{}) for K = k, the loads a thread
// has in flight (2, 4, 8, else 16): the kernels take K as a template
// argument, to keep their loads in registers.
template <class F>
void with_loads_per_thread(int k, F&& f) {
  switch (k) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default: f(std::integral_constant<int, 16>{}); break;
  }
}

// Milliseconds `launch(n)` takes on the GPU, timed with events a and b,
// after a warm-up launch of 4.
template <class L>
float time_launch(L&& launch, int n, cudaEvent_t a, cudaEvent_t b) {
  launch(4);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(a));
  launch(n);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(b));
  CHECK(cudaEventSynchronize(b));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

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

// Part 2's warp: round r waits for flag == r, reads `bytes`, acks r.
__global__ void dirty_reader(const char* data, uint32_t bytes, uint64_t* flag, uint64_t* ack,
                             int rounds, uint64_t* sink) {
  uint64_t acc = 0;
  for (int r = 1; r <= rounds; ++r) {
    if (threadIdx.x == 0) {
      uint64_t v;
      do {
        asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(flag) : "memory");
      } while (v < uint64_t(r));  // the host jumps past every round to let it go
    }
    __syncwarp();
    uint64_t a[16], b[16];
#pragma unroll
    for (int k = 0; k < 16; ++k) {
      const uint32_t off = (k * 32u + threadIdx.x) * 16u;
      a[k] = b[k] = 0;
      if (off < bytes)
        asm volatile("ld.relaxed.sys.global.v2.u64 {%0, %1}, [%2];"
                     : "=l"(a[k]), "=l"(b[k]) : "l"(data + off) : "memory");
    }
#pragma unroll
    for (int k = 0; k < 16; ++k) acc += a[k] ^ b[k];
    __syncwarp();
    if (threadIdx.x == 0)
      asm volatile("st.release.sys.global.u64 [%0], %1;" ::"l"(ack), "l"(uint64_t(r)) : "memory");
  }
  if (acc == 0x5eed) *sink = acc;
}

// Part 3: the anatomy of a fetcher round. Parts 1 and 2 disagree: part 1's
// one warp reads 8 KB in 3.4 us a round, part 2's takes ~20 us more for 8 KB
// than for 64 B, and the fetcher's rounds took ~7 us. Part 1 never uses what
// it loads before the next round's loads, so its rounds may overlap; the
// fetcher stores every piece it loads (staging) before its round ends. Here
// W warps of one block (a crew: warp 0 and warps 2 ..) run rounds like the
// fetcher's: K 16-byte loads a lane (ld.relaxed.sys.v2) of consecutive
// 64-byte slots, each piece stored to device memory, then, by `steps`:
//   kRelease  lane 0 of warp 0 releases a device counter (st.release.gpu),
//             as the fetcher releases `fetched`;
//   kSysFence every thread a fence.acq_rel.sys, as a window round's acquire;
//   kAcquire  before the loads, lane 0 of warp 0 acquire-loads one host
//             word (ld.acquire.sys), as an idle poll.
// then the crew's barrier (bar.sync 1, or __syncwarp for one warp). A round
// cannot overlap the next: its stores need what it loaded. Timed with
// events over 2000 rounds: the mean round.
enum RoundStep : uint32_t { kRelease = 1, kSysFence = 2, kAcquire = 4 };

template <int K>
__global__ void round_anatomy(const char* ring, uint64_t ring_bytes, char* staged, uint32_t steps,
                              int rounds, uint64_t* counter) {
  const uint32_t crew = blockDim.x / 32;
  const uint32_t rank = threadIdx.x;  // one crew: every warp of the block
  const uint64_t round_bytes = uint64_t(crew) * 32 * K * 16;
  uint64_t offset = 0;
  for (int r = 0; r < rounds; ++r) {
    if ((steps & kAcquire) && rank == 0) {
      uint64_t v;
      asm volatile("ld.acquire.sys.global.u64 %0, [%1];" : "=l"(v) : "l"(ring + offset) : "memory");
      if (v == 0x5eed) counter[1] = v;
    }
    uint64_t a[K], b[K];
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const uint64_t at = (offset + (uint64_t(k) * crew * 32 + rank) * 16) % ring_bytes;
      asm volatile("ld.relaxed.sys.global.v2.u64 {%0, %1}, [%2];"
                   : "=l"(a[k]), "=l"(b[k]) : "l"(ring + at) : "memory");
    }
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const uint64_t at = (uint64_t(k) * crew * 32 + rank) * 16;
      reinterpret_cast<ulonglong2*>(staged + at)[0] = make_ulonglong2(a[k], b[k]);
    }
    if (steps & kSysFence) asm volatile("fence.acq_rel.sys;" ::: "memory");
    if (crew == 1)
      __syncwarp();
    else
      asm volatile("bar.sync 1, %0;" ::"r"(crew * 32) : "memory");
    if ((steps & kRelease) && rank == 0)
      asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(counter), "l"(uint64_t(r)) : "memory");
    offset = (offset + round_bytes) % ring_bytes;
  }
}

void round_anatomy_table(const char* ring_dev, uint64_t ring_bytes, const char* where) {
  constexpr int kRounds = 2000;
  char* staged = nullptr;
  uint64_t* counter = nullptr;
  CHECK(cudaMalloc(&staged, 64 << 10));
  CHECK(cudaMalloc(&counter, 2 * sizeof(uint64_t)));
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  std::printf("\nfetcher rounds, %s: us a round (mean of %d; loads stored to device memory)\n",
              where, kRounds);
  std::printf("%-6s %3s %8s | %9s %9s %9s %9s %9s\n", "warps", "K", "slots", "loads", "+release",
              "+sysfence", "+acquire", "all");
  struct Shape { int warps, k; };
  // 128 slots (8 KB): the old fetcher (1 x 16), the default crew (4 x 4),
  // seven warps; then 256 slots: the default crew's round (4 x 8).
  const Shape shapes[] = {{1, 16}, {1, 8}, {2, 8}, {4, 4}, {7, 2}, {4, 8}, {7, 4}};
  for (const Shape& sh : shapes) {
    const int slots = sh.warps * 32 * sh.k / 4;
    std::printf("%-6d %3d %8d |", sh.warps, sh.k, slots);
    for (uint32_t steps : {0u, uint32_t(kRelease), uint32_t(kSysFence), uint32_t(kAcquire),
                           uint32_t(kRelease | kSysFence | kAcquire)}) {
      auto launch = [&](int n) {
        const int threads = sh.warps * 32;
        with_loads_per_thread(sh.k, [&](auto K) {
          round_anatomy<K.value><<<1, threads>>>(ring_dev, ring_bytes, staged, steps, n, counter);
        });
      };
      std::printf(" %9.2f", time_launch(launch, kRounds, a, b) * 1e3 / kRounds);
    }
    std::printf("\n");
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  CHECK(cudaFree(staged));
  CHECK(cudaFree(counter));
}

// Part 4: can one warp's read of a 64-byte line of host memory tear? A
// fetch that read a slot's body with its header (one round trip for a lone
// slot, not two) would be sound only if it cannot: no memory model promises
// it, it holds only if the GPU reads the line in one request and the
// host's coherent line is a snapshot. A host thread rewrites the line,
// generation g in every 8-byte word, the words after the first with plain
// stores and then word 0 with a release (as a producer writes a body, then
// its header). Lanes 0..3 of one warp load the line (16 bytes a lane, one
// warp load, as the fetcher would) over and over: a read whose later words
// are older than its word 0 tore. The control: the same over 128 bytes,
// two lines (lanes 0..7), where a tear is expected.
__device__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// At most `reads` reads, and about a second: each read waits for the last
// (the shuffle), and the host thread rewriting the line slows every one.
__global__ void line_reader(const uint64_t* line, uint32_t lanes, int reads,
                            unsigned long long* out /* [reads seen fresh, torn, made] */) {
  constexpr uint64_t kBudgetNs = 1000000000ull;
  const uint32_t lane = threadIdx.x & 31u;
  unsigned long long fresh = 0, torn = 0;
  uint64_t last = ~0ull;
  const uint64_t start = global_ns();
  int r = 0;
  for (; r < reads; ++r) {
    // Warp-uniform: lane 0's clock decides for the warp.
    if ((r & 1023) == 0 && __shfl_sync(0xFFFFFFFFu, global_ns() - start, 0) > kBudgetNs) break;
    uint64_t a = 0, b = ~0ull;
    if (lane < lanes)
      asm volatile("ld.relaxed.sys.global.v2.u64 {%0, %1}, [%2];"
                   : "=l"(a), "=l"(b) : "l"(line + 2 * lane) : "memory");
    const uint64_t head = __shfl_sync(0xFFFFFFFFu, a, 0);
    // Every word after word 0 must be at least word 0's generation.
    const bool old_word = lane < lanes && ((lane != 0 && a < head) || b < head);
    if (__any_sync(0xFFFFFFFFu, old_word)) ++torn;
    if (head != last) ++fresh;
    last = head;
  }
  if (lane == 0) {
    out[0] = fresh;
    out[1] = torn;
    out[2] = static_cast<unsigned long long>(r);
  }
}

void line_tearing() {
  constexpr int kReads = 1 << 20;
  std::printf("\none warp reads a host line a host thread rewrites (body words, then word 0 "
              "released): up to %d reads or about 1 s each\n", kReads);
  std::printf("%-44s %12s %12s %12s\n", "read", "reads made", "fresh reads", "torn reads");
  uint64_t* line = nullptr;
  uint64_t* line_dev = nullptr;
  unsigned long long* out = nullptr;
  CHECK(cudaHostAlloc(&line, 4096, cudaHostAllocMapped));
  std::memset(line, 0, 4096);
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&line_dev), line, 0));
  CHECK(cudaMalloc(&out, 3 * sizeof(unsigned long long)));
  struct Variant {
    const char* name;
    uint32_t lanes;  // 16 bytes each
  };
  for (const Variant v : {Variant{"64 bytes, one line (lanes 0-3)", 4},
                          Variant{"128 bytes, two lines (lanes 0-7): control", 8}}) {
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      const uint32_t words = v.lanes * 2;
      for (uint64_t g = 1; !stop.load(std::memory_order_relaxed); ++g) {
        for (uint32_t w = 1; w < words; ++w) std::memcpy(&line[w], &g, 8);
        __atomic_store_n(&line[0], g, __ATOMIC_RELEASE);
      }
    });
    line_reader<<<1, 32>>>(line_dev, v.lanes, kReads, out);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    stop.store(true);
    writer.join();
    unsigned long long got[3] = {0, 0, 0};
    CHECK(cudaMemcpy(got, out, sizeof(got), cudaMemcpyDeviceToHost));
    std::printf("%-44s %12llu %12llu %12llu\n", v.name, got[2], got[0], got[1]);
  }
  CHECK(cudaFree(out));
  CHECK(cudaFreeHost(line));
}

enum HostWrite { kNoWrite, kPlainStores, kNonTemporal, kHostWrites };
const char* kHostWriteNames[kHostWrites] = {"no host stores (clean lines)",
                                            "plain stores (dirty in the CPU cache)",
                                            "non-temporal stores + sfence"};

void host_write(HostWrite mode, char* data, uint32_t bytes, uint64_t value) {
  if (mode == kPlainStores) {
    for (uint32_t i = 0; i < bytes; i += 8) std::memcpy(data + i, &value, 8);
  } else if (mode == kNonTemporal) {
    const __m128i v = _mm_set1_epi64x(static_cast<long long>(value));
    for (uint32_t i = 0; i < bytes; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(data + i), v);
    _mm_sfence();
  }
}

void dirty_lines() {
  constexpr uint32_t kBytes = 8192;
  char* data = nullptr;
  uint64_t* words = nullptr;  // [0] flag, [8] ack: separate lines
  char *data_dev = nullptr;
  uint64_t *words_dev = nullptr, *sink = nullptr;
  CHECK(cudaHostAlloc(&data, kBytes, cudaHostAllocMapped));
  CHECK(cudaHostAlloc(&words, 4096, cudaHostAllocMapped));
  std::memset(data, 0, kBytes);
  std::memset(words, 0, 4096);
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&data_dev), data, 0));
  CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&words_dev), words, 0));
  CHECK(cudaMalloc(&sink, sizeof(uint64_t)));
  std::printf("\nlines the host just wrote, read by one warp: host round trip, us (p50 of 2000)\n");
  std::printf("%-40s %10s %10s %10s\n", "host writes \\ bytes read", "64", "1024", "8192");
  for (int mode = 0; mode < kHostWrites; ++mode) {
    std::printf("%-40s", kHostWriteNames[mode]);
    for (uint32_t bytes : {64u, 1024u, 8192u}) {
      constexpr int kRounds = 2000;
      words[0] = 0;
      words[8] = 0;
      dirty_reader<<<1, 32>>>(data_dev, bytes, words_dev, words_dev + 8, kRounds, sink);
      CHECK(cudaGetLastError());
      static double us[kRounds];
      bool stuck = false;
      for (int r = 1; r <= kRounds && !stuck; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        host_write(static_cast<HostWrite>(mode), data, bytes, uint64_t(r));
        __atomic_store_n(&words[0], uint64_t(r), __ATOMIC_RELEASE);
        while (__atomic_load_n(&words[8], __ATOMIC_ACQUIRE) != uint64_t(r)) {
          if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(1)) {
            // No ack in a second: let the reader past every round, and stop.
            __atomic_store_n(&words[0], uint64_t(kRounds + 1), __ATOMIC_RELEASE);
            std::printf(" (round %d: no ack within 1 s)", r);
            stuck = true;
            break;
          }
        }
        us[r - 1] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      }
      CHECK(cudaDeviceSynchronize());
      if (stuck) {
        std::printf("\n");
        CHECK(cudaFreeHost(data));
        CHECK(cudaFreeHost(words));
        return;
      }
      std::sort(us, us + kRounds);
      std::printf(" %10.2f", us[kRounds / 2]);
    }
    std::printf("\n");
  }
  CHECK(cudaFreeHost(data));
  CHECK(cudaFreeHost(words));
}

struct Config {
  int blocks, warps, k;
  uint64_t part_bytes;
};

}  // namespace

int main() {
  // Line-buffered: a step killed at its time limit keeps every line printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
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
        with_loads_per_thread(c.k, [&](auto K) {
          rounds<K.value><<<c.blocks, threads>>>(kind, host_dev, c.part_bytes, n, sink);
        });
      };
      const float ms = time_launch(launch, iters, a, b);
      const double round_bytes = double(threads) * c.k * 16.0;  // bytes loaded (8 B kinds: half)
      const double loaded = kind == kRelaxedSysU64Strided ? round_bytes / 2 : round_bytes;
      const double us = ms * 1e3 / iters;
      const double gbs = loaded * c.blocks * iters / (ms * 1e-3) / 1e9;
      std::printf("%-38s %6d %5d %3d %9.1f %10.0f | %10.2f %9.2f\n", kKindNames[kind], c.blocks,
                  c.warps, c.k, loaded / 1024.0, c.part_bytes / 1024.0, us, gbs);
    }
  }
  // Part 3, over a 64 KB ring in the 64 MB allocation (as part 1), then in
  // an allocation of its own (as the runtime's ring, and part 2's data).
  round_anatomy_table(host_dev, 64 << 10, "a 64 KB ring inside a 64 MB pinned allocation");
  {
    char* ring = nullptr;
    char* ring_dev = nullptr;
    CHECK(cudaHostAlloc(&ring, 64 << 10, cudaHostAllocMapped));
    std::memset(ring, 1, 64 << 10);
    CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&ring_dev), ring, 0));
    round_anatomy_table(ring_dev, 64 << 10, "a 64 KB pinned allocation of its own");
    CHECK(cudaFreeHost(ring));
  }
  CHECK(cudaFreeHost(host));
  dirty_lines();
  line_tearing();
  std::printf("done\n");
  return 0;
}
