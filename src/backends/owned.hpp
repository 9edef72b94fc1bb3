// SPDX-License-Identifier: Apache-2.0
// Internal: owners of what the backends allocate. Each is a std::unique_ptr
// with a deleter that frees its kind of memory (or destroys a stream), so it
// is move-only and frees in its destructor; get() is the view handed to the
// consumer (HostRegions, ConsumerParams) and release() leaks on purpose (the
// runtime's wedged-consumer path). RMM's owning/view split is the model: a
// device allocation names the stream it is freed on, and that stream's owner
// must outlive it (declare the stream first).
//
// Every allocation is checked; a failed free in a destructor is ignored, as
// nothing can be done about it, and the CUDA error it left is cleared so that
// a later call does not take it for its own.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "backends/cuda_check.hpp"
#include "megaring/detail/checked.hpp"
#include "megaring/status.hpp"

namespace megaring::detail {

// `count` T as a byte count, or false if that does not fit in memory.
template <class T>
bool bytes_of(uint64_t count, size_t* bytes) {
  uint64_t n = 0;
  if (!checked_mul(sizeof(T), count, &n) || n > SIZE_MAX) return false;
  *bytes = static_cast<size_t>(n);
  return true;
}

// Ordinary host memory on 64-byte lines (the CPU backend's regions and buffers).
struct AlignedHostFree {
  void operator()(void* p) const noexcept { std::free(p); }
};
template <class T>
using HostArray = std::unique_ptr<T, AlignedHostFree>;

// `count` zeroed T (at least one) on 64-byte lines; empty if that size does
// not fit in 64 bits or in memory.
template <class T>
HostArray<T> allocate_host_zeroed(uint64_t count) {
  uint64_t bytes = 0;
  // aligned_alloc wants a multiple of the alignment.
  if (!checked_mul(sizeof(T), count == 0 ? 1 : count, &bytes) ||
      !checked_round_up(bytes, 64, &bytes) || bytes > SIZE_MAX)
    return HostArray<T>();
  void* p = std::aligned_alloc(64, static_cast<size_t>(bytes));
  if (p != nullptr) std::memset(p, 0, static_cast<size_t>(bytes));
  return HostArray<T>(static_cast<T*>(p));
}

// Pinned, host-mapped memory (cudaHostAlloc).
struct PinnedFree {
  void operator()(void* p) const noexcept {
    if (cudaFreeHost(p) != cudaSuccess) (void)cudaGetLastError();
  }
};
template <class T>
using PinnedArray = std::unique_ptr<T, PinnedFree>;

// `count` zeroed T in pinned memory. Mapped: the kernel reads and writes it
// over PCIe. Portable: usable from any context. Cached (not write-combined):
// the host reads it too.
template <class T>
Status allocate_pinned(uint64_t count, PinnedArray<T>* out) {
  size_t bytes = 0;
  if (!bytes_of<T>(count, &bytes))
    return Status(Result::kOutOfMemory, "pinned allocation size overflows");
  void* p = nullptr;
  MR_CUDA_TRY(cudaHostAlloc(&p, bytes, cudaHostAllocMapped | cudaHostAllocPortable));
  std::memset(p, 0, bytes);
  out->reset(static_cast<T*>(p));
  return Status::ok();
}

// A stream (cudaStreamCreateWithFlags). Destroying it does not wait for its
// work: whoever needs that synchronises first (StreamOrderedFree does).
struct StreamDestroy {
  void operator()(cudaStream_t stream) const noexcept {
    if (cudaStreamDestroy(stream) != cudaSuccess) (void)cudaGetLastError();
  }
};
using OwnedStream = std::unique_ptr<CUstream_st, StreamDestroy>;

// A non-blocking stream: never synchronises with the legacy default stream,
// whose work would wait for a persistent kernel.
inline Status create_nonblocking_stream(OwnedStream* out) {
  cudaStream_t stream = nullptr;
  MR_CUDA_TRY(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  out->reset(stream);
  return Status::ok();
}

// Device memory from the stream-ordered allocator, given back on the stream
// it was allocated on (a view: that stream's owner outlives this), after all
// of that stream's earlier work, and waited for there. Never cudaFree: it
// would wait for every kernel on the device, a persistent one forever.
class StreamOrderedFree {
 public:
  StreamOrderedFree() = default;
  explicit StreamOrderedFree(cudaStream_t stream) : stream_(stream) {}
  void operator()(void* p) const noexcept { (void)free_now(p); }
  // The same, with the error reported (ConsumerBackend::free).
  cudaError_t free_now(void* p) const noexcept {
    cudaError_t err = cudaFreeAsync(p, stream_);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream_);
    if (err != cudaSuccess) (void)cudaGetLastError();
    return err;
  }

 private:
  cudaStream_t stream_ = nullptr;
};
using DeviceBytes = std::unique_ptr<uint8_t, StreamOrderedFree>;

// `bytes` (at least one) of device memory, ordered on `stream`. Not zeroed:
// the caller fills it by stream-ordered work of its own.
inline Status allocate_device(uint64_t bytes, cudaStream_t stream, DeviceBytes* out) {
  if (bytes > SIZE_MAX) return Status(Result::kOutOfMemory, "device allocation size overflows");
  void* p = nullptr;
  MR_CUDA_TRY(cudaMallocAsync(&p, bytes == 0 ? 1 : static_cast<size_t>(bytes), stream));
  *out = DeviceBytes(static_cast<uint8_t*>(p), StreamOrderedFree(stream));
  return Status::ok();
}

}  // namespace megaring::detail
