// SPDX-License-Identifier: Apache-2.0
// The CUDA backend's TableStore (table_writes.hpp): how its table writes
// reach consumer-private device memory while the persistent kernel runs.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "backends/cuda_check.hpp"
#include "megaring/slot_abi.h"
#include "megaring/status.hpp"

namespace megaring::detail {

// The TableStore of table_writes.hpp: table words go to device memory as
// host-to-device copies on the word stream, consecutive words as one
// copy. A fence waits for the copies so far, so that every later word lands
// after them; only our own stream is waited for, never the kernel.
class CopyTableStore {
 public:
  explicit CopyTableStore(cudaStream_t stream) : stream_(stream) {}

  template <class Word>
  void store(Word* table_word, Word value) {
    if (err_ != cudaSuccess) return;
    uint8_t* at = reinterpret_cast<uint8_t*>(table_word);
    if (run_bytes_ != 0 && at != run_start_ + run_bytes_) send_run();
    if (staged_bytes_ + sizeof(Word) > sizeof(staged_)) fence();  // full: waiting only adds order
    if (err_ != cudaSuccess) return;
    if (run_bytes_ == 0) {
      run_start_ = at;
      run_source_ = staged_ + staged_bytes_;
    }
    std::memcpy(staged_ + staged_bytes_, &value, sizeof(Word));
    staged_bytes_ += sizeof(Word);
    run_bytes_ += sizeof(Word);
  }
  template <class Word>
  void release_store(Word* table_word, Word value) {
    // The host's earlier stores (a region's bytes, in pinned memory) are
    // visible to the device before a copy issued after them starts; the
    // fence also orders every table word before this one.
    fence();
    store(table_word, value);
  }
  void fence() {
    send_run();
    if (err_ == cudaSuccess) err_ = cudaStreamSynchronize(stream_);
    staged_bytes_ = 0;  // the copies have read their sources (or failed)
  }
  Status finish() {
    fence();
    return cuda_status(err_, "table write", __FILE__, __LINE__);
  }

 private:
  void send_run() {
    if (err_ == cudaSuccess && run_bytes_ != 0)
      err_ = cudaMemcpyAsync(run_start_, run_source_, run_bytes_, cudaMemcpyHostToDevice, stream_);
    run_bytes_ = 0;
  }

  cudaStream_t stream_;
  cudaError_t err_ = cudaSuccess;  // the first; nothing is stored after it
  // The values, until the next wait: room for the largest write (a tenant
  // entry and its grants, or a region entry) without a wait that only a
  // full buffer asks for.
  static constexpr size_t kLargestWrite =
      std::max(sizeof(mr_tenant_entry) + sizeof(mr_tenant_grants), sizeof(mr_region_entry));
  uint8_t staged_[kLargestWrite];
  size_t staged_bytes_ = 0;
  uint8_t* run_start_ = nullptr;  // the table bytes the pending copy covers
  const uint8_t* run_source_ = nullptr;
  size_t run_bytes_ = 0;
};

}  // namespace megaring::detail
