// SPDX-License-Identifier: Apache-2.0
// Internal: the CPU backend's TableStore (table_writes.hpp), in a header of
// its own so that the tests of the table protocol (test_table_seqlock) race
// the store the backend uses.
#pragma once

#include <cuda/atomic>

#include "megaring/detail/atomic_ref.hpp"
#include "megaring/status.hpp"

namespace megaring::detail {

// The TableStore of table_writes.hpp: atomic word stores into host memory
// the workers read concurrently.
struct AtomicTableStore {
  template <class Word>
  void store(Word* table_word, Word value) {
    // Relaxed: what orders it is a fence below or a slot's header release
    // (table_writes.hpp says which, for each write).
    DevRef<Word>(*table_word).store(value, cuda::std::memory_order_relaxed);
  }
  template <class Word>
  void release_store(Word* table_word, Word value) {
    // RELEASE: this thread's writes before it (a region's bytes) before the
    // word; the consumer ACQUIRES it (load_region).
    DevRef<Word>(*table_word).store(value, cuda::std::memory_order_release);
  }
  void fence() {
    // RELEASE: the stores before it before those after it (table_writes.hpp
    // names them for each write).
    cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_device);
  }
  Status finish() { return Status::ok(); }  // a store has landed when it returns
};

}  // namespace megaring::detail
