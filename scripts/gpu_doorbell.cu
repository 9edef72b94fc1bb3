// SPDX-License-Identifier: Apache-2.0
// Can the host ring a doorbell in DEVICE memory, so that the persistent
// kernel polls its own memory instead of reading host memory across PCIe?
// (Issue 14: the only way below the mapped-memory floor. What works here is
// reported, never depended on.)
//
// Every experiment is the same ping-pong: one persistent kernel of one thread
// waits for the doorbell to reach the next sequence number and answers with
// an echo word in pinned, mapped host memory; the host rings, then polls the
// echo. 200 warm-up round trips, then 2000 timed (p50/p99 in µs). Only the
// doorbell's place and the way the host writes it change:
//   1. pinned mapped host memory, a CPU store; the GPU polls across PCIe
//      (the mapped-memory floor the ring lives on today);
//   2. device memory mapped through BAR1 by gdrcopy (/dev/gdrdrv and
//      libgdrapi.so, dlopen'ed), a CPU store + sfence;
//   3. device memory exported as a dma-buf (cuMemGetHandleForAddressRange)
//      and mmap'ed, a CPU store + sfence: does export work, does mmap?
//   4. managed memory preferring the device, accessed by the CPU: a CPU
//      store, the GPU polls (page migration may make it slow);
//   5. device memory written by the copy engine (cudaMemcpyAsync H2D, 8
//      bytes from pinned memory, on a stream of its own);
//   6. device memory written by the GPU front end (cuStreamWriteValue64 on
//      that stream): the other host-initiated path that needs no mapping.
// An experiment that cannot run prints "unsupported: <reason>" (a missing
// feature) or "FAILED: <call>: <error>" (a call that should have worked) and
// the others still run. Nothing can hang: every GPU wait gives up after
// 200 ms (globaltimer) and says so in the echo word, every host wait has a
// bound, and a watchdog thread ends the program if the host side itself
// sticks (a CPU store faulting forever on a mapping) or the whole run nears
// 20 s. Exit status: 0, or 1 when the baseline failed or a kernel outlived
// its bound, 3 when the watchdog fired. No CUDA device: a line, exit 0.
//
// Driver calls go through cudaGetDriverEntryPointByVersion, as in
// src/backends/cuda_backend.cpp, so that libcuda need not be linked.
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_doorbell scripts/gpu_doorbell.cu -ldl
#include <cuda.h>  // types for driver entry points only: libcuda is not linked
#include <cuda/atomic>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using SysRef = cuda::atomic_ref<uint64_t, cuda::thread_scope_system>;

constexpr int kWarmup = 200;
constexpr int kIters = 2000;
constexpr uint64_t kGpuWaitNs = 200'000'000;   // the kernel's bound on one wait
constexpr uint64_t kGpuTimedOut = 1ull << 63;  // echo flag: the kernel gave up
constexpr uint64_t kStop = 1ull << 62;         // doorbell value: the kernel returns
constexpr size_t kGpuPage = 64 << 10;          // BAR1 / gdrcopy granule
constexpr double kEchoWaitMs = 300;            // host bound on one round trip (> the GPU's)
constexpr double kFirstEchoWaitMs = 1000;      // the first also waits for the launch
constexpr double kMeasureBudgetMs = 1500;      // a slow path reports fewer samples
constexpr double kKernelEndWaitMs = 1000;
constexpr double kStageLimitMs = 4500;         // watchdog: one experiment (worst case ~3.2 s)
constexpr double kProgramLimitMs = 18500;      // watchdog: the whole run

// --- the kernel ---------------------------------------------------------

__device__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// One thread, launched once per experiment. Ordering: the doorbell carries no
// payload here, so the poll is a relaxed system-scope load (ld.relaxed.sys:
// a strong load, never served from a stale L1 line, so a store from the CPU,
// a BAR write or a copy is seen once it lands) and the echo a relaxed
// system-scope store (st.relaxed.sys, posted to host memory). A ring's
// consumer would add its acquire after the poll, the same on every path
// (scripts/gpu_order_cost.cu prices it): this measures the transport alone.
__global__ void pong(uint64_t* doorbell, uint64_t* echo) {
  SysRef bell(*doorbell), out(*echo);
  uint64_t expect = 1;
  for (;;) {
    const uint64_t start = global_ns();
    uint64_t v;
    while ((v = bell.load(cuda::std::memory_order_relaxed)) < expect) {
      if (global_ns() - start > kGpuWaitNs) {
        out.store(kGpuTimedOut | expect, cuda::std::memory_order_relaxed);
        return;
      }
    }
    out.store(v, cuda::std::memory_order_relaxed);
    if (v >= kStop) return;
    expect = v + 1;
  }
}

// --- host helpers -------------------------------------------------------

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

const Clock::time_point g_start = Clock::now();

// Watchdog: a CPU store to a device mapping can fault without end, or a
// driver call can block; nothing inside the program could bound that. The
// watchdog names the stage and leaves without clean-up (which could wait on
// the stuck thread).
std::atomic<const char*> g_stage{"CUDA init"};
std::atomic<double> g_stage_deadline_ms{kProgramLimitMs};

void enter_stage(const char* name) {
  g_stage.store(name);
  g_stage_deadline_ms.store(ms_since(g_start) + kStageLimitMs);
}

void start_watchdog() {
  std::thread([] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      const double now = ms_since(g_start);
      if (now > g_stage_deadline_ms.load() || now > kProgramLimitMs) {
        std::printf("\nWATCHDOG: '%s' still running at %.1f s (stuck on the host side?): "
                    "abandoning the run\n", g_stage.load(), now / 1000);
        std::fflush(stdout);
        std::_Exit(3);
      }
    }
  }).detach();
}

inline void store_fence() {
#if defined(__x86_64__) || defined(__i386__)
  asm volatile("sfence" ::: "memory");  // drain the write-combining buffer to the BAR
#else
  __sync_synchronize();
#endif
}

// A store through a CPU mapping of device memory: plain (never a locked
// instruction on a write-combining or uncached mapping), then a store fence
// so that it leaves the core's write-combining buffer now.
inline void mmio_store(uint64_t* p, uint64_t v) {
  *reinterpret_cast<volatile uint64_t*>(p) = v;
  store_fence();
}

// The first store through a new mapping, with SIGSEGV and SIGBUS caught: a
// mapping the kernel handed out may still refuse its first touch. Returns 0
// or the signal.
sigjmp_buf g_fault_jump;
void on_fault(int sig) { siglongjmp(g_fault_jump, sig); }

int guarded_store(uint64_t* p, uint64_t v) {
  struct sigaction sa {}, old_segv{}, old_bus{};
  sa.sa_handler = on_fault;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  const int sig = sigsetjmp(g_fault_jump, 1);
  if (sig == 0) mmio_store(p, v);
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  return sig;
}

template <class F>
F driver_fn(const char* name) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion(name, &fn, 12000, cudaEnableDefault, &found) !=
          cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  return reinterpret_cast<F>(fn);
}

using CuGetErrorName = CUresult (*)(CUresult, const char**);
using CuDeviceGetAttribute = CUresult (*)(int*, CUdevice_attribute, CUdevice);
using CuPointerSetAttribute = CUresult (*)(const void*, CUpointer_attribute, CUdeviceptr);
using CuMemGetHandleForAddressRange = CUresult (*)(void*, CUdeviceptr, size_t,
                                                   CUmemRangeHandleType, unsigned long long);
using CuStreamWriteValue64 = CUresult (*)(CUstream, CUdeviceptr, cuuint64_t, unsigned int);

std::string cu_error(CUresult r) {
  static const auto name = driver_fn<CuGetErrorName>("cuGetErrorName");
  const char* s = nullptr;
  if (name != nullptr && name(r, &s) == CUDA_SUCCESS && s != nullptr) return s;
  return "CUresult " + std::to_string(static_cast<int>(r));
}

int device_attr(CUdevice_attribute a, int dev) {  // -1: unknown
  static const auto get = driver_fn<CuDeviceGetAttribute>("cuDeviceGetAttribute");
  int v = -1;
  if (get == nullptr || get(&v, a, static_cast<CUdevice>(dev)) != CUDA_SUCCESS) return -1;
  return v;
}

int runtime_attr(cudaDeviceAttr a, int dev) {  // -1: unknown
  int v = -1;
  if (cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  return v;
}

std::string errno_text(int e) { return "errno " + std::to_string(e) + " (" + std::strerror(e) + ")"; }

// --- one experiment's outcome, printed as a table row -------------------

struct Outcome {
  std::string status = "ok";  // ok | unsupported: ... | FAILED: ... | TIMEOUT: ...
  std::vector<std::string> notes;
  std::vector<double> us;
  bool ok() const { return status == "ok"; }
};

Outcome unsupported(Outcome o, const std::string& why) {
  o.status = "unsupported: " + why;
  return o;
}

// Any failed CUDA or driver call ends the experiment (never the program).
// What it allocated stays allocated: freeing device memory could wait on a
// kernel still running, and the process is short-lived.
#define TRY(o, x)                                                             \
  do {                                                                        \
    const cudaError_t e_ = (x);                                               \
    if (e_ != cudaSuccess) {                                                  \
      (void)cudaGetLastError();                                               \
      (o).status = std::string("FAILED: ") + #x + ": " + cudaGetErrorName(e_); \
      return (o);                                                             \
    }                                                                         \
  } while (0)
#define TRY_CU(o, x)                                                        \
  do {                                                                      \
    const CUresult r_ = (x);                                                \
    if (r_ != CUDA_SUCCESS) {                                               \
      (o).status = std::string("FAILED: ") + #x + ": " + cu_error(r_);      \
      return (o);                                                           \
    }                                                                       \
  } while (0)

void print_header() {
  std::printf("\n%-40s %-6s %9s %9s %9s %9s %6s\n", "doorbell (round trip, us)", "result", "p50",
              "p99", "min", "max", "n");
}

void print_row(const char* name, const Outcome& o) {
  if (o.us.empty()) {
    std::printf("%-40s %s\n", name, o.status.c_str());
  } else {
    std::vector<double> v = o.us;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    std::printf("%-40s %-6s %9.2f %9.2f %9.2f %9.2f %6zu%s\n", name, o.ok() ? "ok" : "part",
                v[n / 2], v[std::min(n - 1, n * 99 / 100)], v.front(), v.back(), n,
                o.ok() ? "" : "  (samples before the failure)");
    if (!o.ok()) std::printf("%-40s %s\n", "", o.status.c_str());
  }
  for (const auto& note : o.notes) std::printf("%-40s   %s\n", "", note.c_str());
  std::fflush(stdout);
}

// --- the shared ping-pong -----------------------------------------------

struct Shared {
  int dev = 0;
  cudaStream_t kernel_stream = nullptr;  // the persistent kernel's
  cudaStream_t copy_stream = nullptr;    // experiments 5 and 6
  uint64_t* echo = nullptr;              // pinned, mapped: host view
  uint64_t* echo_dev = nullptr;          // its device view
  bool kernel_stuck = false;             // a kernel outlived its bound
};

// Waits for the kernel to return, bounded: it does within 200 ms of its last
// doorbell whatever the host did. cudaStreamQuery's cudaErrorNotReady is
// recorded as the thread's last error (scripts/gpu_probe.cu): cleared.
// cudaErrorNotReady when the bound passed, else how the kernel ended.
cudaError_t kernel_end(Shared& sh) {
  const auto start = Clock::now();
  for (;;) {
    const cudaError_t q = cudaStreamQuery(sh.kernel_stream);
    (void)cudaGetLastError();
    if (q != cudaErrorNotReady || ms_since(start) > kKernelEndWaitMs) return q;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Launches pong on `doorbell_dev` (the kernel's view of the doorbell, which
// holds 0), rings it with `ring(value)` (false: the write itself failed, its
// reason in the outcome), and records each timed round trip: from just
// before the ring to the echo seen.
template <class Ring>
void ping_pong(Shared& sh, uint64_t* doorbell_dev, Ring ring, Outcome& o) {
  SysRef echo(*sh.echo);
  echo.store(0, cuda::std::memory_order_relaxed);  // no kernel runs now
  pong<<<1, 1, 0, sh.kernel_stream>>>(doorbell_dev, sh.echo_dev);
  const cudaError_t launch = cudaGetLastError();
  if (launch != cudaSuccess) {
    o.status = std::string("FAILED: launch: ") + cudaGetErrorName(launch);
    return;
  }
  // Spin on the echo (acquire: on x86 a plain load), bounded.
  const auto await = [&](uint64_t want, double limit_ms) {
    const auto start = Clock::now();
    for (uint32_t spins = 0;; ++spins) {
      const uint64_t e = echo.load(cuda::std::memory_order_acquire);
      if (e == want) return std::string();
      if (e & kGpuTimedOut)
        return "TIMEOUT: the GPU never saw doorbell value " +
               std::to_string(e & ~kGpuTimedOut) + " (waited 200 ms)";
      if ((spins & 63) == 0 && ms_since(start) > limit_ms)
        return "TIMEOUT: no echo of " + std::to_string(want) + " within " +
               std::to_string(static_cast<int>(limit_ms)) + " ms";
    }
  };
  const auto begin = Clock::now();
  bool rung_ok = true;
  for (int i = 1; i <= kWarmup + kIters; ++i) {
    const auto t0 = Clock::now();
    if (!ring(static_cast<uint64_t>(i))) {
      rung_ok = false;
      break;
    }
    const std::string why = await(static_cast<uint64_t>(i), i == 1 ? kFirstEchoWaitMs
                                                                    : kEchoWaitMs);
    if (!why.empty()) {
      o.status = why;
      break;
    }
    if (i > kWarmup)
      o.us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (ms_since(begin) > kMeasureBudgetMs) {
      o.notes.push_back("stopped at the " + std::to_string(static_cast<int>(kMeasureBudgetMs)) +
                        " ms budget after " + std::to_string(i) + " round trips");
      break;
    }
  }
  // Stop it (the kernel also stops by itself within 200 ms), then wait for it.
  if (rung_ok && ring(kStop)) (void)await(kStop, kEchoWaitMs);
  const cudaError_t end = kernel_end(sh);
  if (end == cudaErrorNotReady) {
    sh.kernel_stuck = true;
    o.notes.push_back("the kernel is still running 1 s after its last doorbell: "
                      "later experiments are skipped");
  } else if (end != cudaSuccess) {  // a fault in the kernel: every later call fails too
    o.status = std::string("FAILED: the kernel ended with ") + cudaGetErrorName(end);
  }
}

// --- the experiments ----------------------------------------------------

// 1. The floor: the doorbell in pinned mapped host memory.
Outcome host_mapped(Shared& sh) {
  Outcome o;
  uint64_t *bell = nullptr, *bell_dev = nullptr;
  TRY(o, cudaHostAlloc(&bell, 4096, cudaHostAllocMapped));  // its own page, not the echo's
  TRY(o, cudaHostGetDevicePointer(reinterpret_cast<void**>(&bell_dev), bell, 0));
  SysRef ref(*bell);
  ref.store(0);
  // Release, as a producer publishing a slot would (on x86 a plain store).
  ping_pong(sh, bell_dev, [&](uint64_t v) {
    ref.store(v, cuda::std::memory_order_release);
    return true;
  }, o);
  return o;
}

// 2. gdrcopy: BAR1 mapping of a cudaMalloc'ed page. gdrapi.h's few
// declarations, as of gdrcopy 2.x (gdr_mh_t is a struct of one unsigned
// long, passed by value).
struct gdr;
using gdr_t = gdr*;
struct gdr_mh_t {
  unsigned long h;
};
using GdrOpen = gdr_t (*)();
using GdrClose = int (*)(gdr_t);
using GdrPin = int (*)(gdr_t, unsigned long, size_t, uint64_t, uint32_t, gdr_mh_t*);
using GdrUnpin = int (*)(gdr_t, gdr_mh_t);
using GdrMap = int (*)(gdr_t, gdr_mh_t, void**, size_t);
using GdrUnmap = int (*)(gdr_t, gdr_mh_t, void*, size_t);

Outcome gdrcopy(Shared& sh) {
  Outcome o;
  if (access("/dev/gdrdrv", F_OK) != 0) return unsupported(o, "no gdrdrv (/dev/gdrdrv absent)");
  void* lib = dlopen("libgdrapi.so.2", RTLD_NOW);
  if (lib == nullptr) lib = dlopen("libgdrapi.so", RTLD_NOW);
  if (lib == nullptr) return unsupported(o, std::string("/dev/gdrdrv present, libgdrapi: ") +
                                                dlerror());
  const auto gdr_open = reinterpret_cast<GdrOpen>(dlsym(lib, "gdr_open"));
  const auto gdr_close = reinterpret_cast<GdrClose>(dlsym(lib, "gdr_close"));
  const auto gdr_pin = reinterpret_cast<GdrPin>(dlsym(lib, "gdr_pin_buffer"));
  const auto gdr_unpin = reinterpret_cast<GdrUnpin>(dlsym(lib, "gdr_unpin_buffer"));
  const auto gdr_map = reinterpret_cast<GdrMap>(dlsym(lib, "gdr_map"));
  const auto gdr_unmap = reinterpret_cast<GdrUnmap>(dlsym(lib, "gdr_unmap"));
  if (!gdr_open || !gdr_close || !gdr_pin || !gdr_unpin || !gdr_map || !gdr_unmap)
    return unsupported(o, "libgdrapi lacks gdr_open/pin_buffer/map/...");
  char* raw = nullptr;
  TRY(o, cudaMalloc(&raw, 2 * kGpuPage));
  const auto addr = (reinterpret_cast<uintptr_t>(raw) + kGpuPage - 1) & ~(kGpuPage - 1);
  auto* bell_dev = reinterpret_cast<uint64_t*>(addr);
  TRY(o, cudaMemset(bell_dev, 0, kGpuPage));
  TRY(o, cudaDeviceSynchronize());  // nothing else runs: the memset is done
  // gdrcopy's advice: make every synchronous copy to this range complete
  // before it returns, since the CPU will write it behind CUDA's back.
  if (const auto set = driver_fn<CuPointerSetAttribute>("cuPointerSetAttribute")) {
    const unsigned one = 1;
    TRY_CU(o, set(&one, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, static_cast<CUdeviceptr>(addr)));
  }
  gdr_t g = gdr_open();
  if (g == nullptr) return unsupported(o, "gdr_open failed (gdrdrv not usable)");
  gdr_mh_t mh{};
  if (const int r = gdr_pin(g, addr, kGpuPage, 0, 0, &mh); r != 0) {
    gdr_close(g);
    return unsupported(o, "gdr_pin_buffer returned " + std::to_string(r));
  }
  void* va = nullptr;
  if (const int r = gdr_map(g, mh, &va, kGpuPage); r != 0 || va == nullptr) {
    gdr_unpin(g, mh);
    gdr_close(g);
    return unsupported(o, "gdr_map returned " + std::to_string(r));
  }
  auto* bell = static_cast<uint64_t*>(va);
  if (const int sig = guarded_store(bell, 0); sig != 0) {
    o.status = "FAILED: the first CPU store to the BAR1 mapping raised " +
               std::string(strsignal(sig));
  } else {
    o.notes.push_back("gdr_map ok: CPU stores (+ sfence) into BAR1");
    ping_pong(sh, bell_dev, [&](uint64_t v) {
      mmio_store(bell, v);
      return true;
    }, o);
  }
  if (!sh.kernel_stuck) {  // a kernel still polling the page keeps it pinned and mapped
    gdr_unmap(g, mh, va, kGpuPage);
    gdr_unpin(g, mh);
    gdr_close(g);
  }
  return o;
}

// 3. dma-buf: export a cudaMalloc'ed range, then try to mmap the fd.
Outcome dma_buf(Shared& sh) {
  Outcome o;
  int exported = 0;  // fds handed out
  const int attr = device_attr(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, sh.dev);
  if (attr != 1)
    return unsupported(o, "CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = " + std::to_string(attr));
  const auto get_handle =
      driver_fn<CuMemGetHandleForAddressRange>("cuMemGetHandleForAddressRange");
  if (get_handle == nullptr) return unsupported(o, "no cuMemGetHandleForAddressRange entry point");
  // 2 MiB: cudaMalloc then hands out a range of its own, normally 2 MiB
  // aligned; export the whole of it when it is, else an aligned 64 KiB inside.
  constexpr size_t kBytes = 2 << 20;
  char* raw = nullptr;
  TRY(o, cudaMalloc(&raw, kBytes));
  TRY(o, cudaMemset(raw, 0, kBytes));
  TRY(o, cudaDeviceSynchronize());
  const auto base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t addr = (base + kGpuPage - 1) & ~(kGpuPage - 1);
  const size_t size = addr == base ? kBytes : kGpuPage;
  auto* bell_dev = reinterpret_cast<uint64_t*>(addr);
  struct Try {
    const char* name;
    unsigned long long flags;
  };
  const Try tries[] = {{"flags 0", 0},
                       {"MAPPING_TYPE_PCIE", CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE}};
  uint64_t* bell = nullptr;
  for (const Try& t : tries) {
    int fd = -1;
    const CUresult r = get_handle(&fd, static_cast<CUdeviceptr>(addr), size,
                                  CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, t.flags);
    if (r != CUDA_SUCCESS || fd < 0) {
      o.notes.push_back(std::string("export (") + t.name + "): " + cu_error(r));
      continue;
    }
    ++exported;
    void* p = mmap(nullptr, kGpuPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      o.notes.push_back(std::string("export (") + t.name + "): ok, fd " + std::to_string(fd) +
                        "; mmap: " + errno_text(e));
      ::close(fd);
      continue;
    }
    ::close(fd);  // the mapping holds the dma-buf
    if (const int sig = guarded_store(static_cast<uint64_t*>(p), 0); sig != 0) {
      o.notes.push_back(std::string("export (") + t.name + "): ok; mmap: ok; first store: " +
                        strsignal(sig));
      munmap(p, kGpuPage);  // faulted before any kernel saw it
      continue;
    }
    o.notes.push_back(std::string("export (") + t.name + "): ok; mmap: ok; CPU stores + sfence");
    bell = static_cast<uint64_t*>(p);
    break;
  }
  if (bell == nullptr)
    return unsupported(o, exported ? "dma-buf exported, but no CPU mapping of it"
                                    : "dma-buf export failed");
  ping_pong(sh, bell_dev, [&](uint64_t v) {
    mmio_store(bell, v);
    return true;
  }, o);
  return o;
}

cudaError_t advise(void* p, size_t n, cudaMemoryAdvise a, bool host, int dev) {
#if CUDART_VERSION >= 13000
  cudaMemLocation loc{};
  loc.type = host ? cudaMemLocationTypeHost : cudaMemLocationTypeDevice;
  loc.id = host ? 0 : dev;
  return cudaMemAdvise(p, n, a, loc);
#else
  return cudaMemAdvise(p, n, a, host ? cudaCpuDeviceId : dev);
#endif
}

cudaError_t prefetch_to_device(void* p, size_t n, int dev, cudaStream_t s) {
#if CUDART_VERSION >= 13000
  cudaMemLocation loc{};
  loc.type = cudaMemLocationTypeDevice;
  loc.id = dev;
  return cudaMemPrefetchAsync(p, n, loc, 0, s);
#else
  return cudaMemPrefetchAsync(p, n, dev, s);
#endif
}

// 4. Managed memory preferring the device, mapped for the CPU.
Outcome managed(Shared& sh) {
  Outcome o;
  if (runtime_attr(cudaDevAttrConcurrentManagedAccess, sh.dev) != 1)
    return unsupported(o, "no concurrent managed access (a CPU touch while a kernel runs "
                          "would fault)");
  o.notes.push_back("directManagedMemAccessFromHost = " +
                    std::to_string(runtime_attr(cudaDevAttrDirectManagedMemAccessFromHost,
                                                sh.dev)) +
                    " (1: CPU stores reach device memory without migrating it)");
  constexpr size_t kBytes = kGpuPage;  // small: see the device README on managed memory
  uint64_t* bell = nullptr;
  TRY(o, cudaMallocManaged(&bell, kBytes, cudaMemAttachGlobal));
  TRY(o, advise(bell, kBytes, cudaMemAdviseSetPreferredLocation, false, sh.dev));
  TRY(o, advise(bell, kBytes, cudaMemAdviseSetAccessedBy, true, sh.dev));
  if (const int sig = guarded_store(bell, 0); sig != 0) {
    o.status = std::string("FAILED: the first CPU store raised ") + strsignal(sig);
    return o;
  }
  TRY(o, prefetch_to_device(bell, kBytes, sh.dev, sh.copy_stream));
  TRY(o, cudaStreamSynchronize(sh.copy_stream));
  SysRef ref(*bell);
  ping_pong(sh, bell, [&](uint64_t v) {
    ref.store(v, cuda::std::memory_order_release);
    return true;
  }, o);
  return o;
}

// 5. The copy engine: 8 bytes H2D from pinned memory per ring. A ring of
// source words, so that no copy's source is rewritten while it may be read.
Outcome copy_engine(Shared& sh) {
  Outcome o;
  uint64_t *bell_dev = nullptr, *src = nullptr;
  TRY(o, cudaMalloc(&bell_dev, kGpuPage));
  TRY(o, cudaMemsetAsync(bell_dev, 0, sizeof(uint64_t), sh.copy_stream));
  TRY(o, cudaStreamSynchronize(sh.copy_stream));
  TRY(o, cudaHostAlloc(&src, 64 * sizeof(uint64_t), cudaHostAllocDefault));
  ping_pong(sh, bell_dev, [&](uint64_t v) {
    uint64_t* s = src + (v & 63);
    *s = v;
    const cudaError_t e =
        cudaMemcpyAsync(bell_dev, s, sizeof(uint64_t), cudaMemcpyHostToDevice, sh.copy_stream);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      o.status = std::string("FAILED: cudaMemcpyAsync: ") + cudaGetErrorName(e);
      return false;
    }
    return true;
  }, o);
  return o;
}

// 6. The GPU front end: cuStreamWriteValue64 (a semaphore release the host
// queues; no copy engine, no mapping).
Outcome write_value(Shared& sh) {
  Outcome o;
  if (device_attr(CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS, sh.dev) != 1)
    return unsupported(o, "no 64-bit stream memory operations");
  const auto write = driver_fn<CuStreamWriteValue64>("cuStreamWriteValue64");
  if (write == nullptr) return unsupported(o, "no cuStreamWriteValue64 entry point");
  uint64_t* bell_dev = nullptr;
  TRY(o, cudaMalloc(&bell_dev, kGpuPage));
  TRY(o, cudaMemsetAsync(bell_dev, 0, sizeof(uint64_t), sh.copy_stream));
  TRY(o, cudaStreamSynchronize(sh.copy_stream));
  ping_pong(sh, bell_dev, [&](uint64_t v) {
    const CUresult r = write(reinterpret_cast<CUstream>(sh.copy_stream),
                             reinterpret_cast<CUdeviceptr>(bell_dev), v,
                             CU_STREAM_WRITE_VALUE_DEFAULT);
    if (r != CUDA_SUCCESS) {
      o.status = "FAILED: cuStreamWriteValue64: " + cu_error(r);
      return false;
    }
    return true;
  }, o);
  return o;
}

std::string first_line(const char* path) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return "(unreadable)";
  char buf[256] = {};
  const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
  std::fclose(f);
  std::string s = got ? buf : "(empty)";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

int main() {
  start_watchdog();
  int count = 0;
  const cudaError_t found = cudaGetDeviceCount(&count);
  if (found != cudaSuccess || count == 0) {
    std::printf("gpu_doorbell: no CUDA device (%s): nothing to measure\n",
                found != cudaSuccess ? cudaGetErrorName(found) : "count 0");
    return 0;
  }
  Shared sh;
  cudaDeviceProp prop{};
  int driver = 0, runtime = 0;
  if (cudaSetDevice(sh.dev) != cudaSuccess || cudaFree(nullptr) != cudaSuccess ||
      cudaGetDeviceProperties(&prop, sh.dev) != cudaSuccess ||
      cudaDriverGetVersion(&driver) != cudaSuccess ||
      cudaRuntimeGetVersion(&runtime) != cudaSuccess ||
      cudaStreamCreateWithFlags(&sh.kernel_stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaStreamCreateWithFlags(&sh.copy_stream, cudaStreamNonBlocking) != cudaSuccess ||
      cudaHostAlloc(&sh.echo, 4096, cudaHostAllocMapped) != cudaSuccess ||
      cudaHostGetDevicePointer(reinterpret_cast<void**>(&sh.echo_dev), sh.echo, 0) !=
          cudaSuccess) {
    std::printf("gpu_doorbell: set-up failed: %s\n", cudaGetErrorName(cudaGetLastError()));
    return 1;
  }
  std::printf("gpu_doorbell: %s, driver %d, runtime %d; set-up took %.1f s\n", prop.name, driver,
              runtime, ms_since(g_start) / 1000);
  std::printf("  %s\n", first_line("/proc/driver/nvidia/version").c_str());
  std::printf("  concurrentManagedAccess %d, pageableMemoryAccess %d (host page tables %d), "
              "directManagedMemAccessFromHost %d\n",
              runtime_attr(cudaDevAttrConcurrentManagedAccess, sh.dev),
              runtime_attr(cudaDevAttrPageableMemoryAccess, sh.dev),
              runtime_attr(cudaDevAttrPageableMemoryAccessUsesHostPageTables, sh.dev),
              runtime_attr(cudaDevAttrDirectManagedMemAccessFromHost, sh.dev));
  std::printf("  DMA_BUF_SUPPORTED %d, GPU_DIRECT_RDMA_SUPPORTED %d, "
              "64_BIT_STREAM_MEM_OPS %d; /dev/gdrdrv %s\n",
              device_attr(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, sh.dev),
              device_attr(CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED, sh.dev),
              device_attr(CU_DEVICE_ATTRIBUTE_CAN_USE_64_BIT_STREAM_MEM_OPS, sh.dev),
              access("/dev/gdrdrv", F_OK) == 0 ? "present" : "absent");
  std::printf("one thread polls the doorbell and echoes into pinned host memory; %d warm-up, "
              "%d timed round trips\n", kWarmup, kIters);
  print_header();

  struct Experiment {
    const char* name;
    Outcome (*run)(Shared&);
  };
  const Experiment experiments[] = {
      {"1. pinned host memory (the floor)", host_mapped},
      {"2. gdrcopy BAR1 mapping", gdrcopy},
      {"3. dma-buf of device memory, mmap", dma_buf},
      {"4. managed, preferred on the device", managed},
      {"5. copy engine (cudaMemcpyAsync 8 B)", copy_engine},
      {"6. front end (cuStreamWriteValue64)", write_value},
  };
  bool baseline_ok = false;
  for (const Experiment& e : experiments) {
    if (sh.kernel_stuck) {
      Outcome skipped;
      skipped.status = "skipped: an earlier kernel is still running";
      print_row(e.name, skipped);
      continue;
    }
    enter_stage(e.name);
    const Outcome o = e.run(sh);
    if (&e == &experiments[0]) baseline_ok = o.ok();
    print_row(e.name, o);
  }
  enter_stage("exit");
  std::printf("\ndone in %.1f s\n", ms_since(g_start) / 1000);
  std::fflush(stdout);
  // A kernel still running (or a mapping left in place for it): leave
  // without the runtime's exit-time clean-up, which would wait for it.
  if (sh.kernel_stuck) std::_Exit(1);
  return baseline_ok ? 0 : 1;
}
