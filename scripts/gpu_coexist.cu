// SPDX-License-Identifier: Apache-2.0
// Life beside an application's own CUDA work (issue 17, item 3): which of
// the application's calls wait for a persistent kernel, depending on where
// that kernel runs, and what CUDA graph capture in the application does to
// a library's host calls. scripts/gpu_session.sh tests runs it (about 20 s).
//
// A "persistent kernel" here is spin(): one thread polling a mapped host
// word, as megaring's consumer does. Each probe launches it in one place,
// runs one application call on a thread of its own (where the runtime API
// uses the device's primary context: the application's, PyTorch's), waits
// up to 2 s for the call, then releases the kernel. A call that waited is
// reported BLOCKS; it returns once the kernel is released.
//
//   A. the kernel in the primary context (today's megaring);
//   B. in a context of its own (cuCtxCreate);
//   C. in a green context (a partition of the SMs, cuGreenCtxCreate);
//   in each: cudaDeviceSynchronize, cudaFree (torch.cuda.empty_cache frees
//   its cached blocks with it), cudaMalloc; and, in B and C, whether a kernel
//   there can write memory cudaMalloc'd in the primary context (a PyTorch
//   tensor registered as an external buffer).
//   D. stream capture: while the application captures a stream (global and
//   thread-local modes), the library's own calls on another thread
//   (cudaMemcpyAsync + cudaStreamSynchronize on its own stream,
//   cudaStreamQuery of the kernel's stream, cudaMalloc), plain and after
//   cudaThreadExchangeStreamCaptureMode(relaxed); and whether the capture
//   survives them.
// The memory probes of B run last: a kernel that faults there may leave an
// error behind in its context.
//
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_coexist scripts/gpu_coexist.cu -lcuda
#include <cuda.h>
#include <cuda/atomic>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace {

__global__ void spin(unsigned* stop) {
  cuda::atomic_ref<unsigned, cuda::thread_scope_system> s(*stop);
  while (s.load(cuda::std::memory_order_relaxed) == 0) __nanosleep(1000);
}

__global__ void add_one(int* p) { *p += 1; }

__global__ void tiny(int* p) { *p = 7; }

const char* cu_name(CUresult r) {
  const char* s = nullptr;
  return cuGetErrorName(r, &s) == CUDA_SUCCESS && s != nullptr ? s : "CUresult?";
}

// A call on a thread of its own, which may not return while the kernel runs:
// detached, sharing only heap-owned words with this frame (gpu_probe.cu).
class Call {
 public:
  explicit Call(std::function<cudaError_t()> f)
      : done_(std::make_shared<std::atomic<bool>>(false)),
        result_(std::make_shared<std::atomic<int>>(0)) {
    std::thread([done = done_, result = result_, f = std::move(f)] {
      result->store(static_cast<int>(f()));
      done->store(true);
    }).detach();
  }
  bool returned_within(std::chrono::milliseconds limit) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done_->load() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done_->load();
  }
  cudaError_t result() const { return static_cast<cudaError_t>(result_->load()); }

 private:
  std::shared_ptr<std::atomic<bool>> done_;
  std::shared_ptr<std::atomic<int>> result_;
};

// The persistent kernel's stop word, shared by every probe (portable: every
// context maps it).
struct Spinner {
  unsigned* stop = nullptr;
  void arm() { cuda::atomic_ref<unsigned, cuda::thread_scope_system>(*stop).store(0); }
  void release() { cuda::atomic_ref<unsigned, cuda::thread_scope_system>(*stop).store(1); }
};

// Runs `call` on its own thread while `launch` has a spinner running; prints
// the verdict, then releases the spinner with `finish` (which syncs it).
void probe(const char* label, Spinner& sp, const std::function<cudaError_t()>& launch,
           const std::function<cudaError_t()>& call, const std::function<cudaError_t()>& finish,
           bool* all_answered) {
  sp.arm();
  const cudaError_t le = launch();
  if (le != cudaSuccess) {
    std::printf("  %-58s not probed: launch %s\n", label, cudaGetErrorName(le));
    return;
  }
  const Call c(call);
  const bool returned = c.returned_within(std::chrono::seconds(2));
  sp.release();
  const cudaError_t fe = finish();
  const bool late = !returned && c.returned_within(std::chrono::seconds(5));
  if (returned)
    std::printf("  %-58s returns while the kernel runs (%s)\n", label, cudaGetErrorName(c.result()));
  else if (late)
    std::printf("  %-58s BLOCKS until the kernel ends (%s)\n", label, cudaGetErrorName(c.result()));
  else {
    std::printf("  %-58s BLOCKS, and still 5 s after the kernel ended\n", label);
    *all_answered = false;
  }
  if (fe != cudaSuccess) std::printf("    (the spinner's sync: %s)\n", cudaGetErrorName(fe));
}

// The application's calls, on the primary context.
cudaError_t app_device_sync() { return cudaDeviceSynchronize(); }
cudaError_t app_malloc_free() {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, 1 << 20);
  if (e != cudaSuccess) return e;
  return cudaFree(p);
}
// cudaFree alone, of a block allocated before the kernel started (what
// empty_cache does with the allocator's cached blocks).
cudaError_t app_free(void* p) { return cudaFree(p); }

// A kernel in context `ctx` on `stream` adds one to primary-context memory.
void probe_memory(const char* label, CUcontext ctx, CUstream stream) {
  int* p = nullptr;
  if (cudaMalloc(&p, sizeof(int)) != cudaSuccess || cudaMemset(p, 0, sizeof(int)) != cudaSuccess ||
      cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("  %-58s not probed: primary allocation failed\n", label);
    return;
  }
  if (const CUresult pushed = cuCtxPushCurrent(ctx); pushed != CUDA_SUCCESS) {
    std::printf("  %-58s not probed: push %s\n", label, cu_name(pushed));
    (void)cudaFree(p);
    return;
  }
  add_one<<<1, 1, 0, reinterpret_cast<cudaStream_t>(stream)>>>(p);
  const cudaError_t le = cudaGetLastError();
  const CUresult se = cuStreamSynchronize(stream);
  CUcontext popped = nullptr;
  cuCtxPopCurrent(&popped);
  int value = -1;
  const cudaError_t ce = cudaMemcpy(&value, p, sizeof(int), cudaMemcpyDeviceToHost);
  std::printf("  %-58s launch %s, sync %s, primary reads %d (%s): %s\n", label,
              cudaGetErrorName(le), cu_name(se), value, cudaGetErrorName(ce),
              le == cudaSuccess && se == CUDA_SUCCESS && value == 1 ? "WORKS" : "FAILS");
  (void)cudaFree(p);
}

// D: what the application's stream capture does to a library thread's calls.
// The library thread shares only heap-owned state with this frame and frees
// nothing while the spinner runs (a cudaFree would wait for it): its
// allocation is freed here, after the release. It gets 5 s; the spinner is
// released whatever happened, so a library call that waits is reported, not
// a hang.
struct LibraryCalls {
  std::string report;  // written before the Call's done flag, read after it
  void* allocated = nullptr;
};

void probe_capture(cudaStreamCaptureMode app_mode, const char* mode_name, bool library_relaxed,
                   Spinner& sp, cudaStream_t kernel_stream, bool* all_answered) {
  cudaStream_t app = nullptr, lib = nullptr;
  int* dev = nullptr;
  uint64_t* host = nullptr;
  if (cudaStreamCreateWithFlags(&app, cudaStreamNonBlocking) != cudaSuccess ||
      cudaStreamCreateWithFlags(&lib, cudaStreamNonBlocking) != cudaSuccess ||
      cudaMalloc(&dev, 64) != cudaSuccess || cudaHostAlloc(&host, 64, cudaHostAllocMapped) != cudaSuccess) {
    std::printf("  capture (%s) not probed: setup\n", mode_name);
    return;
  }
  sp.arm();
  spin<<<1, 1, 0, kernel_stream>>>(sp.stop);
  const cudaError_t launched = cudaGetLastError();
  if (launched != cudaSuccess) {
    std::printf("  capture (%s) not probed: spinner launch %s\n", mode_name, cudaGetErrorName(launched));
    return;
  }
  const cudaError_t begin = cudaStreamBeginCapture(app, app_mode);
  tiny<<<1, 1, 0, app>>>(dev);
  (void)cudaGetLastError();
  // The library's calls, on a thread of its own, while the capture is open.
  const auto calls = std::make_shared<LibraryCalls>();
  const Call library([calls, dev, host, lib, kernel_stream, library_relaxed] {
    cudaStreamCaptureMode mine = cudaStreamCaptureModeRelaxed;
    if (library_relaxed) (void)cudaThreadExchangeStreamCaptureMode(&mine);
    const cudaError_t copy = cudaMemcpyAsync(dev + 4, host, 8, cudaMemcpyHostToDevice, lib);
    const cudaError_t sync = cudaStreamSynchronize(lib);
    const cudaError_t query = cudaStreamQuery(kernel_stream);
    const cudaError_t alloc = cudaMalloc(&calls->allocated, 4096);
    (void)cudaGetLastError();
    calls->report = std::string("memcpyAsync ") + cudaGetErrorName(copy) + ", streamSync " +
                    cudaGetErrorName(sync) + ", streamQuery(kernel) " + cudaGetErrorName(query) +
                    ", malloc " + cudaGetErrorName(alloc);
    return cudaSuccess;
  });
  const bool returned = library.returned_within(std::chrono::seconds(5));
  cudaGraph_t graph = nullptr;
  const cudaError_t end = cudaStreamEndCapture(app, &graph);
  (void)cudaGetLastError();
  sp.release();
  (void)cudaStreamSynchronize(kernel_stream);
  (void)cudaGetLastError();
  const bool late = !returned && library.returned_within(std::chrono::seconds(5));
  std::printf("  app captures (%s), library thread%s: %s; capture begin %s, end %s\n", mode_name,
              library_relaxed ? " in relaxed mode" : "",
              returned ? calls->report.c_str()
              : late   ? ("BLOCKS until the kernel ends, then " + calls->report).c_str()
                       : "BLOCKS, and still 5 s after the kernel ended",
              cudaGetErrorName(begin), cudaGetErrorName(end));
  if (graph != nullptr) (void)cudaGraphDestroy(graph);
  if (!returned && !late) {
    *all_answered = false;
    return;  // the thread may still use the streams and memory: leaked
  }
  if (calls->allocated != nullptr) (void)cudaFree(calls->allocated);
  (void)cudaStreamDestroy(app);
  (void)cudaStreamDestroy(lib);
  (void)cudaFree(dev);
  (void)cudaFreeHost(host);
}

[[noreturn]] void finish(bool ok) {
  std::printf("done (%s)\n", ok ? "every probe answered" : "a call never returned");
  std::fflush(stdout);
  std::_Exit(ok ? 0 : 1);  // a probe's thread may still be inside a CUDA call
}

}  // namespace

int main() {
  // Line-buffered: a step killed at its time limit keeps every line printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  bool answered = true;
  Spinner sp;
  if (cudaSetDevice(0) != cudaSuccess || cudaFree(nullptr) != cudaSuccess ||
      cudaHostAlloc(&sp.stop, 64, cudaHostAllocMapped | cudaHostAllocPortable) != cudaSuccess) {
    std::printf("gpu_coexist: no device or no pinned memory: %s\n",
                cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  // Every kernel loaded now, with nothing running: a kernel first launched
  // beside a persistent one may wait for it under lazy loading (the
  // primary context's; the other contexts load their own at first launch,
  // where the spinner is the first kernel there).
  cudaFuncAttributes attributes{};
  if (cudaFuncGetAttributes(&attributes, spin) != cudaSuccess ||
      cudaFuncGetAttributes(&attributes, tiny) != cudaSuccess ||
      cudaFuncGetAttributes(&attributes, add_one) != cudaSuccess) {
    std::printf("gpu_coexist: loading the kernels failed: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  CUdevice dev = 0;
  if (const CUresult got = cuDeviceGet(&dev, 0); got != CUDA_SUCCESS) {
    std::printf("gpu_coexist: cuDeviceGet: %s\n", cu_name(got));
    return 1;
  }
  void* cached = nullptr;  // an allocator's cached block, freed by the probes of cudaFree
  const auto fresh_cached = [&] { return cudaMalloc(&cached, 1 << 20); };

  std::printf("A. persistent kernel in the primary context (megaring today)\n");
  cudaStream_t s = nullptr;
  if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) return 1;
  const auto launch_primary = [&] {
    spin<<<1, 1, 0, s>>>(sp.stop);
    return cudaGetLastError();
  };
  const auto sync_primary = [&] { return cudaStreamSynchronize(s); };
  probe("cudaDeviceSynchronize", sp, launch_primary, app_device_sync, sync_primary, &answered);
  if (fresh_cached() == cudaSuccess)
    probe("cudaFree", sp, launch_primary, [&] { return app_free(cached); }, sync_primary, &answered);
  probe("cudaMalloc + cudaFree", sp, launch_primary, app_malloc_free, sync_primary, &answered);

  std::printf("B. persistent kernel in a context of its own (cuCtxCreate)\n");
  CUcontext own = nullptr;
  CUstream own_stream = nullptr;
  CUresult r = cuCtxCreate(&own, nullptr, 0, dev);
  if (r == CUDA_SUCCESS) r = cuStreamCreate(&own_stream, CU_STREAM_NON_BLOCKING);
  CUcontext popped = nullptr;
  if (own != nullptr) cuCtxPopCurrent(&popped);  // cuCtxCreate made it current
  if (r != CUDA_SUCCESS) {
    std::printf("  not probed: %s\n", cu_name(r));
  } else {
    const auto launch_own = [&] {
      if (cuCtxPushCurrent(own) != CUDA_SUCCESS) return cudaErrorInvalidResourceHandle;
      spin<<<1, 1, 0, reinterpret_cast<cudaStream_t>(own_stream)>>>(sp.stop);
      const cudaError_t e = cudaGetLastError();
      cuCtxPopCurrent(&popped);
      return e;
    };
    const auto sync_own = [&] {
      return cuStreamSynchronize(own_stream) == CUDA_SUCCESS ? cudaSuccess : cudaErrorUnknown;
    };
    probe("cudaDeviceSynchronize (primary)", sp, launch_own, app_device_sync, sync_own, &answered);
    if (fresh_cached() == cudaSuccess)
      probe("cudaFree (primary)", sp, launch_own, [&] { return app_free(cached); }, sync_own,
            &answered);
    probe("cudaMalloc + cudaFree (primary)", sp, launch_own, app_malloc_free, sync_own, &answered);
  }

  std::printf("C. persistent kernel in a green context (8 SMs)\n");
  CUdevResource sms{}, part{}, rest{};
  unsigned groups = 1;
  CUdevResourceDesc desc = nullptr;
  CUgreenCtx green = nullptr;
  CUcontext green_ctx = nullptr;
  CUstream green_stream = nullptr;
  r = cuDeviceGetDevResource(dev, &sms, CU_DEV_RESOURCE_TYPE_SM);
  if (r == CUDA_SUCCESS) r = cuDevSmResourceSplitByCount(&part, &groups, &sms, &rest, 0, 8);
  if (r == CUDA_SUCCESS) r = cuDevResourceGenerateDesc(&desc, &part, 1);
  if (r == CUDA_SUCCESS) r = cuGreenCtxCreate(&green, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM);
  if (r == CUDA_SUCCESS) r = cuCtxFromGreenCtx(&green_ctx, green);
  if (r == CUDA_SUCCESS) r = cuGreenCtxStreamCreate(&green_stream, green, CU_STREAM_NON_BLOCKING, 0);
  if (r != CUDA_SUCCESS) {
    std::printf("  not probed: %s\n", cu_name(r));
  } else {
    std::printf("  partition: %u SMs of %u\n", part.sm.smCount, sms.sm.smCount);
    const auto launch_green = [&] {
      if (cuCtxPushCurrent(green_ctx) != CUDA_SUCCESS) return cudaErrorInvalidResourceHandle;
      spin<<<1, 1, 0, reinterpret_cast<cudaStream_t>(green_stream)>>>(sp.stop);
      const cudaError_t e = cudaGetLastError();
      cuCtxPopCurrent(&popped);
      return e;
    };
    const auto sync_green = [&] {
      return cuStreamSynchronize(green_stream) == CUDA_SUCCESS ? cudaSuccess : cudaErrorUnknown;
    };
    probe("cudaDeviceSynchronize (primary)", sp, launch_green, app_device_sync, sync_green,
          &answered);
    if (fresh_cached() == cudaSuccess)
      probe("cudaFree (primary)", sp, launch_green, [&] { return app_free(cached); }, sync_green,
            &answered);
    probe("cudaMalloc + cudaFree (primary)", sp, launch_green, app_malloc_free, sync_green,
          &answered);
    probe_memory("green-context kernel writes primary cudaMalloc memory", green_ctx, green_stream);
  }

  std::printf("D. the application's stream capture, beside a persistent kernel (primary)\n");
  probe_capture(cudaStreamCaptureModeGlobal, "global", false, sp, s, &answered);
  probe_capture(cudaStreamCaptureModeGlobal, "global", true, sp, s, &answered);
  probe_capture(cudaStreamCaptureModeThreadLocal, "thread-local", false, sp, s, &answered);

  std::printf("B'. memory across contexts (last: a fault may stay in its context)\n");
  if (own != nullptr && own_stream != nullptr)
    probe_memory("own-context kernel writes primary cudaMalloc memory", own, own_stream);
  finish(answered);
}
