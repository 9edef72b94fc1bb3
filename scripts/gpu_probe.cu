// Driver behaviours the CUDA backend relies on, checked on the machine at
// hand (scripts/gpu_session.sh tests runs it first; about 10 s):
//   1. cudaStreamQuery on a running kernel returns cudaErrorNotReady and
//      records it as the thread's last error (megakernel.cuh clears that
//      before its launch check; cuda_backend.cpp after each query);
//   2. cudaHostAlloc and 3. cudaFreeHost while a kernel runs: do they wait
//      for it? (The runtime never calls them with its kernel running, and the
//      tenant tests allocate their gate word before any runtime starts.)
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_probe scripts/gpu_probe.cu
#include <cuda/atomic>
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace {

__global__ void spin(unsigned* stop) {
  cuda::atomic_ref<unsigned, cuda::thread_scope_system> s(*stop);
  while (s.load(cuda::std::memory_order_relaxed) == 0) __nanosleep(1000);
}

// Runs f on a thread; reports whether it was still running after 2 s (the
// thread is left behind: the spinning kernel is released at the end).
template <class F>
const char* blocks(F f) {
  std::atomic<bool> done{false};
  std::thread t([&done, f] {
    f();
    done = true;
  });
  for (int i = 0; i < 200 && !done; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const bool still_running = !done;
  t.detach();
  return still_running ? "BLOCKS while a kernel runs" : "returns while a kernel runs";
}

}  // namespace

int main() {
  unsigned* stop = nullptr;
  if (cudaHostAlloc(&stop, 64, cudaHostAllocMapped) != cudaSuccess) {
    std::printf("gpu_probe: cudaHostAlloc failed: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  *stop = 0;
  cudaStream_t s = nullptr;
  if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) return 1;
  (void)cudaGetLastError();
  spin<<<1, 1, 0, s>>>(stop);
  if (cudaGetLastError() != cudaSuccess) return 1;
  // Whatever happens below, the kernel is released after 8 s.
  std::thread([stop] {
    std::this_thread::sleep_for(std::chrono::seconds(8));
    cuda::atomic_ref<unsigned, cuda::thread_scope_system>(*stop).store(1);
  }).detach();

  const cudaError_t q = cudaStreamQuery(s);
  const cudaError_t last = cudaGetLastError();
  std::printf("1. cudaStreamQuery -> %s; cudaGetLastError afterwards -> %s\n", cudaGetErrorName(q),
              cudaGetErrorName(last));
  void* p = nullptr;
  std::printf("2. cudaHostAlloc %s\n", blocks([&p] { (void)cudaHostAlloc(&p, 4096, cudaHostAllocMapped); }));
  void* p2 = nullptr;
  (void)cudaHostAlloc(&p2, 4096, cudaHostAllocMapped);  // may itself wait if (2) blocked
  std::printf("3. cudaFreeHost %s\n", blocks([p2] { (void)cudaFreeHost(p2); }));
  cuda::atomic_ref<unsigned, cuda::thread_scope_system>(*stop).store(1);
  const cudaError_t sync = cudaStreamSynchronize(s);
  std::printf("done (%s)\n", cudaGetErrorName(sync));
  return sync == cudaSuccess ? 0 : 1;
}
