// SPDX-License-Identifier: Apache-2.0
// The consumer's reads of a buffer or region entry (load_entry,
// load_region) against the host's rewrites of it (table_writes.hpp), with
// nothing else between them: a slot may name a handle at the moment the
// host issues it (a hostile one can guess an index's next generation), so
// an entry the consumer accepts must be one the host wrote whole, never
// the new handle with the old body.
//
// One host thread reissues one index under handle after handle (the body of
// each a function of its handle), as a reused index is; readers load the
// entry for the handle it holds or for the next one, as a slot that guessed
// it would. Every entry read with a non-zero handle must carry that
// handle's body. A host that rewrites a body under a live handle fails
// every run here; the unguarded read (the handle once, after the body)
// about half the runs of each test: the window is a few loads wide.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <megaring/consumer/exec_context.cuh>

#include "backend_fixture.hpp"
#include "backends/atomic_table_store.hpp"
#include "backends/table_writes.hpp"

namespace megaring_test {
namespace {

using megaring::ConsumerParams;
namespace detail = megaring::detail;
namespace table_writes = megaring::detail::table_writes;

constexpr uint32_t kIndex = 3;
constexpr uint64_t kRewrites = 400'000;

// Handle number n of index kIndex: generation n + 1 (never 0).
uint32_t nth_handle(uint64_t n) {
  return static_cast<uint32_t>((((n % 0xFFFE) + 1) << 16) | kIndex);
}
// The handle the index gets after `handle`: what a hostile slot guesses.
uint32_t next_handle(uint32_t handle) {
  return static_cast<uint32_t>((((handle >> 16) % 0xFFFE + 1) << 16) | kIndex);
}
uint64_t base_of(uint32_t handle) { return uint64_t{handle} * 0x1000; }
uint64_t bytes_of(uint32_t handle) { return uint64_t{handle} ^ 0x5A5A5A5Aull; }
uint32_t owner_of(uint32_t handle) { return handle >> 16; }

// Runs `rewrite(handle)` on this thread, handle after handle, while two
// threads call `check_one(guess)` for the handle the entry holds or the
// next one it will (1: an entry read whole, 2: an entry with
// another handle's body, 0: nothing to judge), until at least kRewrites
// rewrites and reads_per_reader() judged reads a reader; no 2 may come,
// and some 1 must.
// Reads enough to catch a host that rewrites a body under a live handle in
// every run here, and the unguarded read (the handle once, after the body)
// in about half the runs of each test (two cores); fewer under a
// sanitizer's slowdown.
uint64_t reads_per_reader() { return 2'000'000 / timeout_scale(); }
template <class Rewrite, class Check>
void expect_whole_or_refused(const uint32_t& handle_word, Rewrite rewrite, Check check_one) {
  std::atomic<bool> done{false};
  std::atomic<uint32_t> started{0}, satisfied{0};
  std::atomic<uint64_t> bad{0}, good{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      uint64_t my_bad = 0, my_good = 0, reads = 0;
      uint32_t last = nth_handle(0);
      bool enough = false;
      ++started;
      while (!done.load(std::memory_order_relaxed)) {
        // A slot naming the handle the entry holds now, or the next one the
        // host will issue (it may be issuing it right now).
        const uint32_t now = detail::DevRef<uint32_t>(const_cast<uint32_t&>(handle_word))
                                 .load(cuda::std::memory_order_relaxed);
        if (now != 0) last = now;
        const uint32_t guess = (++reads & 1) != 0 ? last : next_handle(last);
        switch (check_one(guess)) {
          case 1: ++my_good; break;
          case 2: ++my_bad; break;
          default: break;
        }
        if (!enough && my_good + my_bad >= reads_per_reader()) {
          enough = true;
          ++satisfied;
        }
      }
      bad += my_bad;
      good += my_good;
    });
  }
  while (started.load() < readers.size()) std::this_thread::yield();
  for (uint64_t n = 0; n < kRewrites || satisfied.load(std::memory_order_relaxed) < readers.size(); ++n)
    rewrite(nth_handle(n));
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u) << "entries accepted with another handle's body (" << good.load()
                            << " read whole)";
  EXPECT_GT(good.load(), 0u) << "the readers never read an entry: the test saw nothing";
}

TEST(TableSeqlock, ABufferEntryIsReadWholeOrNotAtAll) {
  std::vector<mr_buffer_entry> table(8);
  ConsumerParams p{};
  p.buffers = table.data();
  p.max_buffers = static_cast<uint32_t>(table.size());
  detail::AtomicTableStore store;
  expect_whole_or_refused(
      table[kIndex].handle,
      [&](uint32_t handle) {
        mr_buffer_entry e{};
        e.base = base_of(handle);
        e.bytes = bytes_of(handle);
        e.owner = owner_of(handle);
        e.retire_ticket = ~0ull;
        e.handle = handle;
        ASSERT_TRUE(table_writes::write_buffer_entry(store, &table[kIndex], e).is_ok());
      },
      [&](uint32_t guess) -> int {
        const mr_buffer_entry e = detail::load_entry(p, guess);
        if (e.handle != guess) return 0;  // changed while read: refused
        return e.base == base_of(guess) && e.bytes == bytes_of(guess) && e.owner == owner_of(guess)
                   ? 1
                   : 2;
      });
}

TEST(TableSeqlock, ARegionEntryIsReadWholeOrNotAtAll) {
  std::vector<mr_region_entry> table(8);
  ConsumerParams p{};
  p.regions = table.data();
  p.max_regions = static_cast<uint32_t>(table.size());
  detail::AtomicTableStore store;
  expect_whole_or_refused(
      table[kIndex].handle,
      [&](uint32_t handle) {
        mr_region_entry e{};
        e.base = base_of(handle);
        e.bytes = bytes_of(handle);
        e.committed = handle;
        e.owner = owner_of(handle);
        e.policy = handle % 3;
        e.retire_ticket = ~0ull;
        e.handle = handle;
        ASSERT_TRUE(table_writes::write_region_entry(store, &table[kIndex], e).is_ok());
      },
      [&](uint32_t guess) -> int {
        const mr_region_entry e = detail::load_region(p, guess);
        if (e.handle != guess) return 0;
        return e.base == base_of(guess) && e.bytes == bytes_of(guess) && e.committed == guess &&
                       e.owner == owner_of(guess) && e.policy == guess % 3
                   ? 1
                   : 2;
      });
}

}  // namespace
}  // namespace megaring_test
