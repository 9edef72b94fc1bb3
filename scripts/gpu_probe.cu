// SPDX-License-Identifier: Apache-2.0
// Driver behaviours the CUDA backend relies on, checked on the machine at
// hand (scripts/gpu_session.sh tests runs it first; about 10 s):
//   1. cudaStreamQuery on a running kernel returns cudaErrorNotReady and
//      records it as the thread's last error (megakernel.cuh clears that
//      before its launch check; cuda_backend.cpp after each query);
//   2. cudaHostAlloc and 3. cudaFreeHost while a kernel runs (each beside a
//      launch of its own): do they wait for it? (The runtime never calls them
//      with its kernel running, and the tenant tests allocate their gate word
//      before any runtime starts.)
// Build: nvcc -std=c++17 -arch=sm_90 -o gpu_probe scripts/gpu_probe.cu
#include <cuda/atomic>
#include <cuda_runtime.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

namespace {

__global__ void spin(unsigned* stop) {
  cuda::atomic_ref<unsigned, cuda::thread_scope_system> s(*stop);
  while (s.load(cuda::std::memory_order_relaxed) == 0) __nanosleep(1000);
}

// A CUDA call on a thread of its own, which may not return while the kernel
// runs (or at all): the thread is detached, and all it touches is its own
// copy of the call and the heap-owned flag it shares, never this frame.
class Call {
 public:
  template <class F>
  explicit Call(F f) : done_(std::make_shared<std::atomic<bool>>(false)) {
    std::thread([done = done_, f] {
      f();
      done->store(true);
    }).detach();
  }
  bool returned_within(std::chrono::milliseconds limit) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done_->load() && std::chrono::steady_clock::now() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return done_->load();
  }

 private:
  std::shared_ptr<std::atomic<bool>> done_;
};

const char* verdict(const Call& c) {
  return c.returned_within(std::chrono::seconds(2)) ? "returns while a kernel runs"
                                                    : "BLOCKS while a kernel runs";
}

// A probe's thread may still be inside a CUDA call: leave without the CUDA
// runtime's exit-time clean-up, which could wait for it or crash under it.
// Exit status 0 when the kernel was released and every probe answered.
[[noreturn]] void finish(cudaError_t sync, bool answered) {
  std::printf("done (%s)\n", cudaGetErrorName(sync));
  std::fflush(stdout);
  std::_Exit(sync == cudaSuccess && answered ? 0 : 1);
}

}  // namespace

int main() {
  // Line-buffered: a step killed at its time limit keeps every line printed.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // Probe 3's buffer too, before any launch: if (2) shows that an allocation
  // waits for a running kernel, allocating it later would wait for the kernel
  // to be released, and (3) would time cudaFreeHost with no kernel running.
  unsigned* stop = nullptr;
  void* to_free = nullptr;
  if (cudaHostAlloc(&stop, 64, cudaHostAllocMapped) != cudaSuccess ||
      cudaHostAlloc(&to_free, 4096, cudaHostAllocMapped) != cudaSuccess) {
    std::printf("gpu_probe: cudaHostAlloc failed: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  cudaStream_t s = nullptr;
  if (cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess) return 1;
  (void)cudaGetLastError();
  const cuda::atomic_ref<unsigned, cuda::thread_scope_system> stop_ref(*stop);
  const auto launch = [&] {
    stop_ref.store(0);
    spin<<<1, 1, 0, s>>>(stop);
    return cudaGetLastError();
  };
  const auto release = [&] {
    stop_ref.store(1);
    return cudaStreamSynchronize(s);
  };

  cudaError_t err = launch();
  if (err != cudaSuccess) {
    std::printf("gpu_probe: launch: %s\n", cudaGetErrorName(err));
    return 1;
  }
  const cudaError_t q = cudaStreamQuery(s);
  const cudaError_t last = cudaGetLastError();
  std::printf("1. cudaStreamQuery -> %s; cudaGetLastError afterwards -> %s\n", cudaGetErrorName(q),
              cudaGetErrorName(last));
  const Call alloc([] {
    void* p = nullptr;
    (void)cudaHostAlloc(&p, 4096, cudaHostAllocMapped);
  });
  std::printf("2. cudaHostAlloc %s\n", verdict(alloc));
  // (3) beside a launch of its own, once (2)'s call has returned: a call
  // still blocked could hold cudaFreeHost up for a reason of its own (a lock
  // in the driver) rather than the kernel's.
  err = release();
  if (err != cudaSuccess) finish(err, false);
  if (!alloc.returned_within(std::chrono::seconds(5))) {
    std::printf("3. cudaFreeHost not probed: cudaHostAlloc still waits 5 s after the kernel "
                "ended\n");
    finish(err, false);
  }
  err = launch();
  if (err != cudaSuccess) {
    std::printf("3. cudaFreeHost not probed: relaunch: %s\n", cudaGetErrorName(err));
    finish(err, false);
  }
  const Call free_host([to_free] { (void)cudaFreeHost(to_free); });
  std::printf("3. cudaFreeHost %s\n", verdict(free_host));
  const cudaError_t released = release();
  const bool freed = free_host.returned_within(std::chrono::seconds(5));
  if (!freed) std::printf("3. cudaFreeHost still waits 5 s after the kernel ended\n");
  finish(released, freed);
}
