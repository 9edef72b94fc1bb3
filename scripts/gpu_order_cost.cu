// SPDX-License-Identifier: Apache-2.0
// What system-scope memory orders and host-memory traffic cost on this GPU,
// and whether they scale with the number of SMs that pay them (bench/NOTES.md,
// "What bounds the consumer"). The first H100 runs served 0.82-0.93 M slots/s
// whatever the producers, batch, ring size or consumer protocol, about one
// slot a microsecond across all units: something a slot pays is serialised.
//
// 1. Orders. B blocks of one thread, each doing K operations on its own
//    128-byte line, timed with events; rate = B * K / time:
//      st.release.sys -> host   the completion tag's release (C5)
//      fence.sc.sys             a system fence alone
//      ld.acquire.sys <- host   the slot header's acquire (C2)
//      ld.relaxed.sys <- host   a poll without ordering
//      st.relaxed.sys -> host   a posted write
//      st.release.gpu -> device the done flag's order (C6)
// 2. __nanosleep as the backoff uses it, and how late a block polling device
//    memory sees a store.
// 3. Completion records (16 bytes, four to a host cache line) as the
//    consumer writes them, from B blocks, with and without a host thread
//    reading them: tests whether partial-line PCIe writes to shared lines
//    are the serialised step.
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_order_cost scripts/gpu_order_cost.cu
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "probe_check.cuh"

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

__device__ uint64_t now_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Completion records as the consumer writes them (slot_abi.h: 16 bytes, four
// to a 64-byte host line): record r = i * blocks + block, so consecutive
// records, like consecutive tickets, come from different blocks and share
// host lines. Modes:
//   kFields  result, status|fault, then the tag with a system release
//            (complete_slot today: three partial-line PCIe writes)
//   kOneStore a system fence, then the whole record in one 16-byte store
//   kOwnLine  kFields, but each block writes its own line only
enum RecordMode { kFields, kOneStore, kOwnLine, kRecordModes };
const char* kRecordNames[kRecordModes] = {"3 stores, shared lines", "fence + 1 store, shared",
                                          "3 stores, own line"};

__global__ void write_records(int mode, uint64_t* records, uint32_t n_records, int iters) {
  if (threadIdx.x != 0) return;
  for (int i = 0; i < iters; ++i) {
    const uint32_t r = mode == kOwnLine
                           ? blockIdx.x * 4
                           : (static_cast<uint32_t>(i) * gridDim.x + blockIdx.x) % n_records;
    uint64_t* rec = records + 2 * r;
    const uint64_t result = i, status_tag = (static_cast<uint64_t>(i) << 32) | 1u;
    if (mode == kOneStore) {
      asm volatile("fence.sc.sys;" ::: "memory");
      asm volatile("st.global.v2.u64 [%0], {%1, %2};" ::"l"(rec), "l"(result), "l"(status_tag)
                   : "memory");
    } else {
      asm volatile("st.relaxed.sys.global.u64 [%0], %1;" ::"l"(rec), "l"(result) : "memory");
      asm volatile("st.relaxed.sys.global.u32 [%0], %1;" ::"l"(rec + 1), "r"(1u) : "memory");
      uint32_t* tag = reinterpret_cast<uint32_t*>(rec + 1) + 1;
      asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(tag), "r"(static_cast<uint32_t>(i))
                   : "memory");
    }
  }
}

// Each block's thread 0 sleeps `iters` times __nanosleep(ns); out[block] = the
// mean sleep it measured, in ns.
__global__ void sleep_cost(uint32_t ns, int iters, double* out) {
  if (threadIdx.x != 0) return;
  const uint64_t t0 = now_ns();
  for (int i = 0; i < iters; ++i) __nanosleep(ns);
  out[blockIdx.x] = double(now_ns() - t0) / iters;
}

// Block 0 stores a device-memory flag after a pause; every other block polls
// it (relaxed, gpu scope) with __nanosleep(ns) between polls, as a unit waits
// on scan_cursor, and records how long after the store it saw the flag.
__global__ void wake_latency(uint32_t ns, unsigned long long* flag, double* out) {
  if (threadIdx.x != 0) return;
  if (blockIdx.x == 0) {
    const uint64_t start = now_ns();
    while (now_ns() - start < 200000) {}  // 200 us: every poller is asleep
    const unsigned long long t = now_ns();
    asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" ::"l"(flag), "l"(t) : "memory");
    out[0] = 0;
    return;
  }
  // Staggered, so that the pollers' sleeps are not all in phase with the
  // store (they all start with the kernel, and the store comes after a fixed
  // time): a block-dependent first sleep of up to twice `ns`.
  __nanosleep((blockIdx.x * 2654435761u) % (2 * ns + 1));
  unsigned long long seen = 0;
  for (;;) {
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(seen) : "l"(flag) : "memory");
    if (seen != 0) break;
    __nanosleep(ns);
  }
  out[blockIdx.x] = double(now_ns() - seen);
}

}  // namespace

int main() {
  // Line-buffered: a step killed at its time limit keeps every line printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
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
  // __nanosleep as the consumer's backoff uses it, and how late a unit
  // waiting on device memory sees a store.
  double* out = nullptr;
  double result[1024];
  unsigned long long* flag = nullptr;
  CHECK(cudaMalloc(&out, sizeof(double) * max_blocks));
  CHECK(cudaMalloc(&flag, sizeof(unsigned long long)));
  std::printf("\n__nanosleep(ns) on %d blocks: mean measured sleep (min, max over blocks); "
              "then %d waiting blocks: store seen after (median, max)\n", max_blocks,
              max_blocks - 1);
  for (uint32_t ns : {64u, 128u, 512u, 2048u, 16384u}) {
    sleep_cost<<<max_blocks, 32>>>(ns, 200, out);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(result, out, sizeof(double) * max_blocks, cudaMemcpyDeviceToHost));
    double lo = result[0], hi = result[0], sum = 0;
    for (int i = 0; i < max_blocks; ++i) {
      lo = result[i] < lo ? result[i] : lo;
      hi = result[i] > hi ? result[i] : hi;
      sum += result[i];
    }
    std::printf("  sleep %6u ns: %9.0f ns (%.0f, %.0f)", ns, sum / max_blocks, lo, hi);
    CHECK(cudaMemset(flag, 0, sizeof(unsigned long long)));
    wake_latency<<<max_blocks, 32>>>(ns, flag, out);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(result, out, sizeof(double) * max_blocks, cudaMemcpyDeviceToHost));
    double* w = result + 1;
    const int n = max_blocks - 1;
    for (int i = 1; i < n; ++i)  // insertion sort: n is small
      for (int j = i; j > 0 && w[j - 1] > w[j]; --j) {
        const double tmp = w[j];
        w[j] = w[j - 1];
        w[j - 1] = tmp;
      }
    std::printf("   wake: %9.0f ns, %9.0f ns\n", w[n / 2], w[n - 1]);
  }
  // Completion records over PCIe, with and without a host thread reading
  // them meanwhile (the reaper and waiters do).
  {
    constexpr uint32_t kRecords = 1024;  // a ring's worth, as in the runtime
    uint64_t *records = nullptr, *records_dev = nullptr;
    CHECK(cudaHostAlloc(&records, sizeof(uint64_t) * 2 * kRecords, cudaHostAllocMapped));
    CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&records_dev), records, 0));
    std::printf("\ncompletion records written to host memory, M records/s in total\n");
    std::printf("%-34s", "mode \\ blocks");
    for (int n : blocks) std::printf("%10d", n);
    std::printf("\n");
    for (int reader = 0; reader < 2; ++reader) {
      for (int mode = 0; mode < kRecordModes; ++mode) {
        std::printf("%-26s%8s", kRecordNames[mode], reader ? "+reader" : "");
        for (int n : blocks) {
          std::atomic<bool> stop{false};
          std::thread host_reader;
          if (reader)
            host_reader = std::thread([&] {
              uint64_t acc = 0;
              while (!stop.load(std::memory_order_relaxed))
                for (uint32_t r = 0; r < kRecords; r += 4)
                  acc += reinterpret_cast<volatile uint64_t*>(records)[2 * r + 1];
              if (acc == 42) std::printf(" ");
            });
          const int iters = 2000;
          write_records<<<n, 32>>>(mode, records_dev, kRecords, 10);
          CHECK(cudaGetLastError());
          CHECK(cudaEventRecord(a));
          write_records<<<n, 32>>>(mode, records_dev, kRecords, iters);
          CHECK(cudaGetLastError());
          CHECK(cudaEventRecord(b));
          CHECK(cudaEventSynchronize(b));
          stop.store(true);
          if (host_reader.joinable()) host_reader.join();
          float ms = 0;
          CHECK(cudaEventElapsedTime(&ms, a, b));
          std::printf("%10.2f", double(n) * iters / (ms * 1e-3) / 1e6);
        }
        std::printf("\n");
      }
    }
    CHECK(cudaFreeHost(records));
  }
  CHECK(cudaFree(out));
  CHECK(cudaFree(flag));
  CHECK(cudaFreeHost(host));
  CHECK(cudaFree(dev));
  CHECK(cudaFree(sink));
  return 0;
}
