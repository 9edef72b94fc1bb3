// megaring_bench: raw-CUDA baselines and the GEMM of the interference arm.
// See gpu_arms.hpp for the rules (no device-wide synchronisation, no
// allocation or free while a megaring runtime may be alive).
#include "gpu_arms.hpp"

#include <cuda/atomic>
#include <cuda_bf16.h>
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

constexpr u64 kPingStop = ~0ull;
constexpr size_t kPingBytes = 256;       // h2d word at 0, d2h word at 128: own lines
constexpr size_t kGemmWorkspace = 64u << 20;

__global__ void empty_kernel() {}

// The floor: one thread spins on a host-written word (system-scope acquire:
// a plain or volatile load gives no ordering guarantee across PCIe) and
// release-stores each new value into a host-read word. Every word has one
// writer, as in the megaring ABI (no RMW crosses PCIe).
__global__ void pingpong_kernel(u64* h2d, u64* d2h) {
  cuda::atomic_ref<u64, cuda::thread_scope_system> in(*h2d);
  cuda::atomic_ref<u64, cuda::thread_scope_system> out(*d2h);
  u64 last = 0;
  for (;;) {
    const u64 v = in.load(cuda::std::memory_order_acquire);
    if (v == kPingStop) return;
    if (v != last) {
      out.store(v, cuda::std::memory_order_release);
      last = v;
    }
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
  GA_TRY(cudaFuncGetAttributes(&attr, pingpong_kernel));
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

void teardown() {
  if (g.gemm_pending && g.ev_stop) (void)cudaEventSynchronize(g.ev_stop);
  if (g.gemm_stream) (void)cudaStreamSynchronize(g.gemm_stream);
  if (g.copy_stream) (void)cudaStreamSynchronize(g.copy_stream);
  if (g.stream) (void)cudaStreamSynchronize(g.stream);
#if MEGARING_BENCH_CUBLAS
  if (g.handle) (void)cublasDestroy(g.handle);
  g.handle = nullptr;
#endif
  for (void* p : {g.a, g.b, g.c, g.workspace, g.copy_dev})
    if (p) (void)cudaFree(p);
  if (g.ping_host) (void)cudaFreeHost(g.ping_host);
  if (g.copy_host) (void)cudaFreeHost(g.copy_host);
  if (g.copy_start) (void)cudaEventDestroy(g.copy_start);
  if (g.copy_stop) (void)cudaEventDestroy(g.copy_stop);
  if (g.copy_stream) (void)cudaStreamDestroy(g.copy_stream);
  if (g.one_exec) (void)cudaGraphExecDestroy(g.one_exec);
  if (g.many_exec) (void)cudaGraphExecDestroy(g.many_exec);
  if (g.one_graph) (void)cudaGraphDestroy(g.one_graph);
  if (g.many_graph) (void)cudaGraphDestroy(g.many_graph);
  if (g.ev_start) (void)cudaEventDestroy(g.ev_start);
  if (g.ev_stop) (void)cudaEventDestroy(g.ev_stop);
  if (g.stream) (void)cudaStreamDestroy(g.stream);
  if (g.gemm_stream) (void)cudaStreamDestroy(g.gemm_stream);
  (void)cudaGetLastError();
  g = State{};
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
  if (!g.inited) return not_ready(error, "gpu arms not initialised");
  ns->clear();
  ns->reserve(static_cast<size_t>(iters));
  u64* h2d_word = g.ping_host;       // host writes, kernel reads
  u64* d2h_word = g.ping_host + 16;  // kernel writes, host reads (128 bytes on)
  cuda::atomic_ref<u64, cuda::thread_scope_system> h2d(*h2d_word);
  cuda::atomic_ref<u64, cuda::thread_scope_system> d2h(*d2h_word);
  // The kernel is not running: the host owns both words.
  h2d.store(0, cuda::std::memory_order_relaxed);
  d2h.store(0, cuda::std::memory_order_relaxed);
  u64* dev_h2d = g.ping_dev;
  u64* dev_d2h = g.ping_dev + 16;
  void* args[] = {&dev_h2d, &dev_d2h};
  GA_TRY(cudaLaunchKernel(reinterpret_cast<const void*>(&pingpong_kernel), dim3(1), dim3(1), args,
                          0, g.stream));
  bool ok = true;
  std::string why;
  for (int i = -warmup; i < iters && ok; ++i) {
    const u64 value = static_cast<u64>(i + warmup + 1);
    const auto t0 = Clock::now();
    h2d.store(value, cuda::std::memory_order_release);
    for (uint32_t spins = 1; d2h.load(cuda::std::memory_order_acquire) != value; ++spins) {
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
    if (ok && i >= 0) ns->push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
  }
  h2d.store(kPingStop, cuda::std::memory_order_release);
  GA_TRY(cudaStreamSynchronize(g.stream));
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

bool gemm_start(int reps, std::string* error) {
#if MEGARING_BENCH_CUBLAS
  if (!g.gemm_ok) return not_ready(error, "GEMM not initialised");
  if (g.gemm_pending) return not_ready(error, "GEMM already in flight");
  GA_TRY(cudaEventRecord(g.ev_start, g.gemm_stream));
  for (int i = 0; i < reps; ++i)
    if (!enqueue_gemm(error)) return false;
  GA_TRY(cudaEventRecord(g.ev_stop, g.gemm_stream));
  g.gemm_pending = true;
  return true;
#else
  (void)reps;
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
