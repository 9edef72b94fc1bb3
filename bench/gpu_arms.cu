// SPDX-License-Identifier: Apache-2.0
// megaring_bench: raw-CUDA baselines and the GEMM of the interference arm.
// See gpu_arms.hpp for the rules (no device-wide synchronisation, no
// allocation or free while a megaring runtime may be alive).
#include "gpu_arms.hpp"

#include <cuda/atomic>
#include <cuda_bf16.h>
#include <megaring/megakernel.cuh>  // make_consumer; copy_slot_body: the ring's own read
#include <cuda_runtime_api.h>
#if MEGARING_BENCH_CUBLAS
#include <cublas_v2.h>
#endif

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

namespace mrbench::gpu {
namespace {

using Clock = std::chrono::steady_clock;
using u64 = unsigned long long;

using megaring::detail::SysRef;  // megaring/detail/atomic_ref.hpp, through megakernel.cuh

// The ping-pong buffer (pinned, host-mapped): the host -> device message in
// bytes [0, 128), written by the host only; the echo word at byte 256,
// written by the kernel only. No word has two writers, as in the ring ABI.
constexpr size_t kPingBytes = 512;
constexpr size_t kMessageWords = 16;  // 128 bytes: the largest layout
constexpr size_t kEchoWord = 32;      // byte 256: a line of its own
constexpr u64 kPingStop = ~0ull;      // in word 0: the kernel returns
// The kernel echoes message v as v, or as v | kTornEcho when a word of it
// did not hold what the host wrote for v.
constexpr u64 kTornEcho = 1ull << 62;
constexpr size_t kGemmWorkspace = 64u << 20;

// Word i of message v: distinct per message and per word, so a stale or
// misplaced word shows.
__host__ __device__ constexpr u64 message_word(u64 v, u64 i) {
  return (v * 0x9E3779B97F4A7C15ull) ^ ((i + 1) * 0x5851F42D4C957F2Dull);
}
// kFlagged: word i = the message's flag (its low 32 bits) over a 31-bit
// payload. A payload's top bit is clear, so no word equals kPingStop.
__host__ __device__ constexpr u64 flagged_word(u64 v, u64 i) {
  return (u64(uint32_t(v)) << 32) | (message_word(v, i) & 0x7FFFFFFFull);
}

__global__ void empty_kernel() {}

// One 16-byte volatile load (two 8-byte words, each read whole): NCCL's LL
// read. Volatile is a relaxed, system-scope load in the PTX memory model: no
// ordering, so every such load of a message is in flight at once.
__device__ __forceinline__ ulonglong2 load_volatile_16(const u64* p) {
  ulonglong2 v;
  asm volatile("ld.volatile.global.v2.u64 {%0, %1}, [%2];"
               : "=l"(v.x), "=l"(v.y)
               : "l"(__cvta_generic_to_global(p))
               : "memory");
  return v;
}

// Four 16-byte loads of a 64-byte slot, all in flight together (asm, so the
// compiler neither splits nor repeats them); weak loads, ordered after the
// caller's header acquire by program order and the "memory" clobber.
__device__ void read_slot_body(const mr_slot* slot, u64 header, mr_slot* body) {
  ulonglong2 w[4];
  for (int k = 0; k < 4; ++k)
    asm volatile("ld.global.v2.u64 {%0, %1}, [%2];"
                 : "=l"(w[k].x), "=l"(w[k].y)
                 : "l"(__cvta_generic_to_global(reinterpret_cast<const ulonglong2*>(slot) + k))
                 : "memory");
  body->header = header;
  body->opcode = static_cast<uint32_t>(w[0].y);
  body->tenant = static_cast<uint32_t>(w[0].y >> 32);
  body->flags = static_cast<uint32_t>(w[1].x);
  body->reserved = static_cast<uint32_t>(w[1].x >> 32);
  body->args[0] = w[1].y;
  body->args[1] = w[2].x;
  body->args[2] = w[2].y;
  body->args[3] = w[3].x;
  body->args[4] = w[3].y;
}

// One thread waits for each message in turn (1, 2, ...), reads it as
// `Layout` says, checks it, and release-stores its echo (system scope: the
// host acquires it). Spins without backoff: the floor.
template <ReadLayout Layout>
__global__ void pingpong_kernel(u64* msg, u64* echo_word) {
  SysRef<u64> header(msg[0]);
  SysRef<u64> echo(*echo_word);
  for (u64 next = 1;; ++next) {
    bool intact = true;
    if constexpr (Layout == ReadLayout::kFlag) {
      u64 v;
      // ACQUIRE (system): pairs with the host's release of the word.
      while ((v = header.load(cuda::std::memory_order_acquire)) != next)
        if (v == kPingStop) return;
    } else if constexpr (Layout == ReadLayout::kHeaderBody) {
      const u64 ready = mr_make_header(next, MR_SLOT_READY);
      u64 h;
      // C2: ACQUIRE (system) the header; it orders the body reads after it.
      while ((h = header.load(cuda::std::memory_order_acquire)) != ready)
        if (h == kPingStop) return;
      // The body as ABI v2's consumer read it: four 16-byte loads after the
      // header's acquire (into shared memory).
      __shared__ mr_slot body;
      read_slot_body(reinterpret_cast<const mr_slot*>(msg), h, &body);
      const u64 words[7] = {body.opcode | u64(body.tenant) << 32,
                            body.flags | u64(body.reserved) << 32, body.args[0], body.args[1],
                            body.args[2], body.args[3], body.args[4]};
      for (u64 i = 0; i < 7; ++i) intact &= words[i] == message_word(next, i + 1);
    } else {
      const uint32_t flag = uint32_t(next);
      u64 w[kMessageWords];
      for (;;) {
        // Every word at once: a message is whole when every flag is its own
        // (each 8-byte word is written and read whole).
        for (size_t k = 0; k < kMessageWords / 2; ++k) {
          const ulonglong2 pair = load_volatile_16(msg + 2 * k);
          w[2 * k] = pair.x;
          w[2 * k + 1] = pair.y;
        }
        if constexpr (Layout == ReadLayout::kFlaggedAcquire) {
          // ACQUIRE (system), after the others are issued: later reads (of
          // data the host wrote before the message) are ordered after it.
          w[0] = header.load(cuda::std::memory_order_acquire);
        }
        if (w[0] == kPingStop) return;
        bool flagged = true;
        for (size_t k = 0; k < kMessageWords; ++k) flagged &= uint32_t(w[k] >> 32) == flag;
        if (flagged) break;
      }
      for (size_t k = 0; k < kMessageWords; ++k) intact &= w[k] == flagged_word(next, k);
    }
    // RELEASE (system): orders the reads above before the host sees the echo.
    echo.store(intact ? next : next | kTornEcho, cuda::std::memory_order_release);
  }
}

constexpr ReadLayout kReadLayouts[] = {ReadLayout::kFlag, ReadLayout::kHeaderBody,
                                       ReadLayout::kFlagged, ReadLayout::kFlaggedAcquire};

const void* pingpong_entry(ReadLayout layout) {
  switch (layout) {
    case ReadLayout::kFlag:
      return reinterpret_cast<const void*>(&pingpong_kernel<ReadLayout::kFlag>);
    case ReadLayout::kHeaderBody:
      return reinterpret_cast<const void*>(&pingpong_kernel<ReadLayout::kHeaderBody>);
    case ReadLayout::kFlagged:
      return reinterpret_cast<const void*>(&pingpong_kernel<ReadLayout::kFlagged>);
    case ReadLayout::kFlaggedAcquire:
      return reinterpret_cast<const void*>(&pingpong_kernel<ReadLayout::kFlaggedAcquire>);
  }
  return nullptr;
}

// The host's side of one message: write it as `layout` says. Relaxed stores
// of whole words (the kernel may be reading them), then, for the layouts
// that have one, the RELEASE that orders them (or the data before them).
void write_message(ReadLayout layout, u64* msg, u64 v) {
  switch (layout) {
    case ReadLayout::kFlag:
      // RELEASE (system): pairs with the kernel's acquire.
      SysRef<u64>(msg[0]).store(v, cuda::std::memory_order_release);
      return;
    case ReadLayout::kHeaderBody:
      // P2: the body, then P3: the header, RELEASE (system): orders the body
      // before it for a kernel that acquires the header.
      for (u64 i = 1; i < 8; ++i)
        SysRef<u64>(msg[i]).store(message_word(v, i), cuda::std::memory_order_relaxed);
      SysRef<u64>(msg[0]).store(mr_make_header(v, MR_SLOT_READY), cuda::std::memory_order_release);
      return;
    case ReadLayout::kFlagged:
    case ReadLayout::kFlaggedAcquire:
      // RELEASE fence (system): host data written before this message is
      // ordered before every word of it (kFlaggedAcquire's acquire of word 0
      // relies on it); the words themselves need no order among them.
      cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_system);
      for (u64 k = 0; k < kMessageWords; ++k)
        SysRef<u64>(msg[k]).store(flagged_word(v, k), cuda::std::memory_order_relaxed);
      return;
  }
}

// Deterministic pseudo-random BF16 in [-0.5, 0.5]: zero operands would run
// the tensor cores at unrepresentatively low power.
__global__ void fill_bf16(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    p[i] = __float2bfloat16(static_cast<float>(h & 0xFFFFu) / 65535.0f - 0.5f);
  }
}

struct State {
  bool inited = false;
  int device = 0;
  cudaStream_t stream = nullptr;       // launches, graphs, ping-pong
  cudaStream_t gemm_stream = nullptr;  // the GEMM
  cudaGraph_t one_graph = nullptr, many_graph = nullptr;
  cudaGraphExec_t one_exec = nullptr, many_exec = nullptr;
  int many_nodes = 0;
  u64* ping_host = nullptr;
  u64* ping_dev = nullptr;
  // GEMM
  int n = 0;
  bool gemm_ok = false;
  bool gemm_pending = false;
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
  void* workspace = nullptr;
  cudaEvent_t ev_start = nullptr, ev_stop = nullptr;
  // Host-to-device copy (interference on PCIe)
  size_t copy_bytes = 0;
  void* copy_host = nullptr;  // pinned, not mapped
  void* copy_dev = nullptr;
  cudaStream_t copy_stream = nullptr;
  cudaEvent_t copy_start = nullptr, copy_stop = nullptr;
#if MEGARING_BENCH_CUBLAS
  cublasHandle_t handle = nullptr;
#endif
};
State g;

bool fail(std::string* error, const std::string& what, cudaError_t err) {
  if (error) *error = what + ": " + cudaGetErrorString(err);
  (void)cudaGetLastError();
  return false;
}

bool not_ready(std::string* error, const char* why) {
  if (error) *error = why;
  return false;
}

#define GA_TRY(expr)                                  \
  do {                                                \
    const cudaError_t ga_err_ = (expr);               \
    if (ga_err_ != cudaSuccess) return fail(error, #expr, ga_err_); \
  } while (0)

#if MEGARING_BENCH_CUBLAS
#define GA_BLAS(expr)                                                               \
  do {                                                                              \
    const cublasStatus_t ga_st_ = (expr);                                           \
    if (ga_st_ != CUBLAS_STATUS_SUCCESS) {                                          \
      if (error) *error = std::string(#expr) + ": " + cublasGetStatusString(ga_st_); \
      return false;                                                                 \
    }                                                                               \
  } while (0)

bool enqueue_gemm(std::string* error) {
  const float alpha = 1.0f, beta = 0.0f;
  GA_BLAS(cublasGemmEx(g.handle, CUBLAS_OP_N, CUBLAS_OP_N, g.n, g.n, g.n, &alpha, g.a,
                       CUDA_R_16BF, g.n, g.b, CUDA_R_16BF, g.n, &beta, g.c, CUDA_R_16BF, g.n,
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return true;
}
#endif

bool launch_empty(std::string* error) {
  // The explicit launch API, as an application would use it (the kernel has
  // no parameters; the array is never read).
  void* no_args[1] = {nullptr};
  GA_TRY(cudaLaunchKernel(reinterpret_cast<const void*>(&empty_kernel), dim3(1), dim3(1), no_args,
                          0, g.stream));
  return true;
}

bool capture_graph(int nodes, cudaGraph_t* graph, cudaGraphExec_t* exec, std::string* error) {
  GA_TRY(cudaStreamBeginCapture(g.stream, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < nodes; ++i) empty_kernel<<<1, 1, 0, g.stream>>>();
  const cudaError_t launch_err = cudaGetLastError();
  GA_TRY(cudaStreamEndCapture(g.stream, graph));
  GA_TRY(launch_err);
  GA_TRY(cudaGraphInstantiate(exec, *graph, 0));
  GA_TRY(cudaGraphUpload(*exec, g.stream));
  return true;
}

}  // namespace

bool have_cublas() { return MEGARING_BENCH_CUBLAS != 0; }

constexpr unsigned kNarrowThreads = 32, kNarrowRegisters = 32;

const megaring::Consumer& narrow_consumer() {
  static const megaring::Consumer consumer =
      megaring::make_consumer<megaring::NoUserOps, kNarrowThreads, kNarrowRegisters>(
          "builtin-one-warp");
  return consumer;
}

int megakernel_registers(bool narrow) {
  using megaring::NoUserOps;
  using megaring::detail::megakernel_entry;
  // The built-in consumer's instantiation (src/backends/builtin_consumer.cu),
  // compiled again here with the same arguments.
  cudaFuncAttributes attributes{};
  const cudaError_t err = cudaFuncGetAttributes(
      &attributes, narrow ? megakernel_entry<NoUserOps, kNarrowThreads, false, kNarrowRegisters>()
                          : megakernel_entry<NoUserOps, megaring::kDefaultBlockThreads, false, 0>());
  (void)cudaGetLastError();
  return err == cudaSuccess ? attributes.numRegs : -1;
}

DeviceInfo query_device(int device) {
  DeviceInfo info;
  (void)cudaRuntimeGetVersion(&info.runtime_version);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  (void)cudaDriverGetVersion(&info.driver_version);
  if (err != cudaSuccess || count == 0) {
    info.why_not = err != cudaSuccess ? std::string("no GPU (") + cudaGetErrorString(err) + ")"
                                      : std::string("no GPU (0 devices)");
    (void)cudaGetLastError();
    return info;
  }
  if (device < 0 || device >= count) {
    info.why_not = "device " + std::to_string(device) + " out of range";
    return info;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    info.why_not = "cudaGetDeviceProperties failed";
    (void)cudaGetLastError();
    return info;
  }
  info.available = true;
  info.name = prop.name;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  info.sm_count = prop.multiProcessorCount;
  info.total_mem = static_cast<long long>(prop.totalGlobalMem);
  char bus[32] = {};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), device) == cudaSuccess) info.pci_bus_id = bus;
  (void)cudaDeviceGetAttribute(&info.clock_khz, cudaDevAttrClockRate, device);
  (void)cudaDeviceGetAttribute(&info.mem_clock_khz, cudaDevAttrMemoryClockRate, device);
  (void)cudaDeviceGetAttribute(&info.mem_bus_width, cudaDevAttrGlobalMemoryBusWidth, device);
  (void)cudaDeviceGetAttribute(&info.host_native_atomics, cudaDevAttrHostNativeAtomicSupported,
                               device);
  (void)cudaDeviceGetAttribute(&info.cooperative_launch, cudaDevAttrCooperativeLaunch, device);
  (void)cudaGetLastError();
  return info;
}

bool init(const InitOptions& options, std::string* error) {
  if (g.inited) return true;
  g.device = options.device;
  GA_TRY(cudaSetDevice(g.device));
  GA_TRY(cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking));
  GA_TRY(cudaStreamCreateWithFlags(&g.gemm_stream, cudaStreamNonBlocking));
  GA_TRY(cudaEventCreate(&g.ev_start));
  GA_TRY(cudaEventCreate(&g.ev_stop));
  // Load every kernel's module now (CUDA_MODULE_LOADING=EAGER is set by main
  // anyway): lazy loading next to a running persistent kernel can deadlock.
  cudaFuncAttributes attr;
  GA_TRY(cudaFuncGetAttributes(&attr, empty_kernel));
  for (ReadLayout layout : kReadLayouts)
    GA_TRY(cudaFuncGetAttributes(&attr, pingpong_entry(layout)));
  GA_TRY(cudaFuncGetAttributes(&attr, fill_bf16));

  if (!capture_graph(1, &g.one_graph, &g.one_exec, error)) return false;
  g.many_nodes = options.graph_nodes < 1 ? 1 : options.graph_nodes;
  if (!capture_graph(g.many_nodes, &g.many_graph, &g.many_exec, error)) return false;

  void* ping = nullptr;
  GA_TRY(cudaHostAlloc(&ping, kPingBytes, cudaHostAllocMapped | cudaHostAllocPortable));
  std::memset(ping, 0, kPingBytes);
  g.ping_host = static_cast<u64*>(ping);
  void* ping_dev = nullptr;
  GA_TRY(cudaHostGetDevicePointer(&ping_dev, ping, 0));
  g.ping_dev = static_cast<u64*>(ping_dev);

  // Run each path once.
  if (!launch_empty(error)) return false;
  GA_TRY(cudaGraphLaunch(g.one_exec, g.stream));
  GA_TRY(cudaGraphLaunch(g.many_exec, g.stream));
  GA_TRY(cudaStreamSynchronize(g.stream));
  g.inited = true;
  // The ping-pong once (the other layouts' kernels are loaded above; their
  // arms warm up themselves, and a torn read fails only that arm).
  std::vector<double> scratch;
  if (!pingpong_latency(10, 10, &scratch, error)) return false;

#if MEGARING_BENCH_CUBLAS
  if (options.gemm_n > 0) {
    g.n = options.gemm_n;
    const size_t elems = size_t(g.n) * size_t(g.n);
    GA_TRY(cudaMalloc(&g.a, elems * sizeof(__nv_bfloat16)));
    GA_TRY(cudaMalloc(&g.b, elems * sizeof(__nv_bfloat16)));
    GA_TRY(cudaMalloc(&g.c, elems * sizeof(__nv_bfloat16)));
    GA_TRY(cudaMalloc(&g.workspace, kGemmWorkspace));
    fill_bf16<<<1024, 256, 0, g.gemm_stream>>>(static_cast<__nv_bfloat16*>(g.a), elems, 1u);
    fill_bf16<<<1024, 256, 0, g.gemm_stream>>>(static_cast<__nv_bfloat16*>(g.b), elems, 2u);
    GA_TRY(cudaGetLastError());
    GA_BLAS(cublasCreate(&g.handle));
    GA_BLAS(cublasSetStream(g.handle, g.gemm_stream));
    // Our own workspace: cuBLAS must not allocate (cudaMalloc/cudaFree) while
    // a persistent kernel runs.
    GA_BLAS(cublasSetWorkspace(g.handle, g.workspace, kGemmWorkspace));
    for (int i = 0; i < 3; ++i)
      if (!enqueue_gemm(error)) return false;
    GA_TRY(cudaStreamSynchronize(g.gemm_stream));
    g.gemm_ok = true;
  }
#endif
  if (options.copy_bytes > 0) {
    g.copy_bytes = options.copy_bytes;
    GA_TRY(cudaHostAlloc(&g.copy_host, g.copy_bytes, cudaHostAllocPortable));
    std::memset(g.copy_host, 0x5a, g.copy_bytes);  // touch every page
    GA_TRY(cudaMalloc(&g.copy_dev, g.copy_bytes));
    GA_TRY(cudaStreamCreateWithFlags(&g.copy_stream, cudaStreamNonBlocking));
    GA_TRY(cudaEventCreate(&g.copy_start));
    GA_TRY(cudaEventCreate(&g.copy_stop));
    GA_TRY(cudaMemcpyAsync(g.copy_dev, g.copy_host, g.copy_bytes, cudaMemcpyHostToDevice,
                           g.copy_stream));
    GA_TRY(cudaStreamSynchronize(g.copy_stream));
  }
  GA_TRY(cudaStreamSynchronize(g.stream));
  return true;
}

// One sample per iteration: `submit` (a launch on g.stream) plus the sync.
template <class Submit>
static bool submit_sync_latency(int warmup, int iters, std::vector<double>* ns,
                                std::string* error, Submit submit) {
  if (!g.inited) return not_ready(error, "gpu arms not initialised");
  ns->clear();
  ns->reserve(static_cast<size_t>(iters));
  for (int i = -warmup; i < iters; ++i) {
    const auto t0 = Clock::now();
    if (!submit()) return false;
    GA_TRY(cudaStreamSynchronize(g.stream));
    const auto t1 = Clock::now();
    if (i >= 0) ns->push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  return true;
}

bool launch_sync_latency(int warmup, int iters, std::vector<double>* ns, std::string* error) {
  return submit_sync_latency(warmup, iters, ns, error, [error] { return launch_empty(error); });
}

bool graph_sync_latency(int warmup, int iters, std::vector<double>* ns, std::string* error) {
  return submit_sync_latency(warmup, iters, ns, error, [error] {
    GA_TRY(cudaGraphLaunch(g.one_exec, g.stream));
    return true;
  });
}

bool pingpong_latency(int warmup, int iters, std::vector<double>* ns, std::string* error) {
  return read_layout_latency(ReadLayout::kFlag, warmup, iters, ns, error);
}

bool read_layout_latency(ReadLayout layout, int warmup, int iters, std::vector<double>* ns,
                         std::string* error) {
  if (!g.inited) return not_ready(error, "gpu arms not initialised");
  ns->clear();
  ns->reserve(static_cast<size_t>(iters));
  u64* msg = g.ping_host;  // host writes, kernel reads
  SysRef<u64> echo(g.ping_host[kEchoWord]);  // kernel writes, host reads
  // The kernel is not running: the host owns every word.
  for (size_t k = 0; k < kPingBytes / sizeof(u64); ++k)
    SysRef<u64>(g.ping_host[k]).store(0, cuda::std::memory_order_relaxed);
  u64* dev_msg = g.ping_dev;
  u64* dev_echo = g.ping_dev + kEchoWord;
  void* args[] = {&dev_msg, &dev_echo};
  GA_TRY(cudaLaunchKernel(pingpong_entry(layout), dim3(1), dim3(1), args, 0, g.stream));
  bool ok = true;
  std::string why;
  uint64_t torn = 0;
  for (int i = -warmup; i < iters && ok; ++i) {
    const u64 value = static_cast<u64>(i + warmup + 1);  // the kernel expects 1, 2, ...
    const auto t0 = Clock::now();
    write_message(layout, msg, value);
    u64 seen;
    // ACQUIRE (system): pairs with the kernel's release of the echo.
    for (uint32_t spins = 1; (seen = echo.load(cuda::std::memory_order_acquire)) != value &&
                             seen != (value | kTornEcho);
         ++spins) {
      if ((spins & 0xFFFFu) == 0 && Clock::now() - t0 > std::chrono::seconds(5)) {
        const cudaError_t q = cudaStreamQuery(g.stream);
        (void)cudaGetLastError();  // NotReady is recorded as this thread's last error
        why = std::string("ping-pong kernel did not answer in 5 s (stream: ") +
              cudaGetErrorString(q) + ")";
        ok = false;
        break;
      }
    }
    const auto t1 = Clock::now();
    if (!ok) break;
    if (seen != value) ++torn;
    if (i >= 0) ns->push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  // RELEASE: the last message's words are all written before the stop.
  SysRef<u64>(msg[0]).store(kPingStop, cuda::std::memory_order_release);
  GA_TRY(cudaStreamSynchronize(g.stream));
  if (ok && torn != 0) {
    ok = false;
    why = std::to_string(torn) + " of " + std::to_string(warmup + iters) +
          " messages were read torn: this layout is unsafe on this machine";
  }
  if (!ok && error) *error = why;
  return ok;
}

bool launch_throughput(int launches, double* kernels_per_s, std::string* error) {
  if (!g.inited) return not_ready(error, "gpu arms not initialised");
  GA_TRY(cudaStreamSynchronize(g.stream));
  const auto t0 = Clock::now();
  for (int i = 0; i < launches; ++i)
    if (!launch_empty(error)) return false;
  GA_TRY(cudaStreamSynchronize(g.stream));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  *kernels_per_s = launches / s;
  return true;
}

bool graph_throughput(int replays, double* kernels_per_s, std::string* error) {
  if (!g.inited) return not_ready(error, "gpu arms not initialised");
  GA_TRY(cudaStreamSynchronize(g.stream));
  const auto t0 = Clock::now();
  for (int i = 0; i < replays; ++i) GA_TRY(cudaGraphLaunch(g.many_exec, g.stream));
  GA_TRY(cudaStreamSynchronize(g.stream));
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  *kernels_per_s = double(replays) * double(g.many_nodes) / s;
  return true;
}

int graph_nodes() { return g.many_nodes; }

bool gemm_ready() { return g.gemm_ok; }
int gemm_n() { return g.n; }
double gemm_flops() { return 2.0 * double(g.n) * double(g.n) * double(g.n); }

bool gemm_start(int reps, int sm_count_target, std::string* error) {
#if MEGARING_BENCH_CUBLAS
  if (!g.gemm_ok) return not_ready(error, "GEMM not initialised");
  if (g.gemm_pending) return not_ready(error, "GEMM already in flight");
  GA_BLAS(cublasSetSmCountTarget(g.handle, sm_count_target));  // stays set: always set it
  GA_TRY(cudaEventRecord(g.ev_start, g.gemm_stream));
  for (int i = 0; i < reps; ++i)
    if (!enqueue_gemm(error)) return false;
  GA_TRY(cudaEventRecord(g.ev_stop, g.gemm_stream));
  g.gemm_pending = true;
  return true;
#else
  (void)reps;
  (void)sm_count_target;
  if (error) *error = "built without cuBLAS";
  return false;
#endif
}

// Polls `stop` (never a blocking sync: a persistent kernel may hold the
// device) until it completes or `timeout_s` passes (*timed_out = true).
static bool poll_event(cudaEvent_t stop, const char* what, double timeout_s, bool* timed_out,
                       std::string* error) {
  *timed_out = false;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    const cudaError_t q = cudaEventQuery(stop);
    if (q == cudaSuccess) return true;
    if (q != cudaErrorNotReady) return fail(error, std::string("cudaEventQuery(") + what + ")", q);
    (void)cudaGetLastError();  // NotReady is recorded as this thread's last error
    if (Clock::now() > deadline) {
      *timed_out = true;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

bool gemm_wait(double timeout_s, double* ms_total, bool* timed_out, std::string* error) {
  if (!g.gemm_pending) return not_ready(error, "no GEMM in flight");
  if (!poll_event(g.ev_stop, "GEMM stop", timeout_s, timed_out, error)) return false;
  if (*timed_out) return true;
  g.gemm_pending = false;
  float ms = 0;
  GA_TRY(cudaEventElapsedTime(&ms, g.ev_start, g.ev_stop));
  *ms_total = ms;
  return true;
}

bool h2d_ready() { return g.copy_bytes > 0; }

bool h2d_copy_gbps(int reps, double* gbps, std::string* error) {
  if (g.copy_bytes == 0) return not_ready(error, "host-to-device copy not initialised");
  GA_TRY(cudaEventRecord(g.copy_start, g.copy_stream));
  for (int i = 0; i < reps; ++i)
    GA_TRY(cudaMemcpyAsync(g.copy_dev, g.copy_host, g.copy_bytes, cudaMemcpyHostToDevice,
                           g.copy_stream));
  GA_TRY(cudaEventRecord(g.copy_stop, g.copy_stream));
  // The copy engine needs no SM, so nothing beside it can starve it; the
  // timeout only guards against a wedged device.
  bool timed_out = false;
  if (!poll_event(g.copy_stop, "copy stop", 60, &timed_out, error)) return false;
  if (timed_out) return not_ready(error, "host-to-device copies did not finish in 60 s");
  float ms = 0;
  GA_TRY(cudaEventElapsedTime(&ms, g.copy_start, g.copy_stop));
  *gbps = double(reps) * double(g.copy_bytes) / (double(ms) * 1e-3) / 1e9;
  return true;
}

}  // namespace mrbench::gpu
