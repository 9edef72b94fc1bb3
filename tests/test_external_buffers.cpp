// SPDX-License-Identifier: Apache-2.0
// Registered buffers (Runtime::register_buffer, TenantHandle::register_buffer):
// memory the caller allocated, named by a handle without a copy, never
// freed by megaring, and given back by unregister_buffer only once no slot
// can reach it. On the CPU backend the caller's memory is host memory; on
// the GPU a cudaMalloc'd allocation (the `Gpu/` instances).
#include <cuda_runtime_api.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "backend_fixture.hpp"
#include "megaring/tenant.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::Config;
using megaring::Result;
using megaring::Runtime;
using megaring::Status;
using megaring::Ticket;
using megaring::ops::atomic_add;
using megaring::ops::copy;
using megaring::ops::delay_ns;
using megaring::ops::fill;
using megaring::ops::reduce_add_u32;
using megaring::ops::store_u32;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The caller's memory: host memory for the CPU backend, device memory for
// the GPU. The test owns it, and frees it after the registration is gone: a
// runtime that freed it itself would be a double free (ASan) or a
// cudaFree error. On the GPU every call is stream-ordered on a non-blocking
// stream of its own, as an application beside a persistent kernel must:
// cudaMalloc, cudaMemset and cudaMemcpy on the legacy stream, and cudaFree
// above all (it synchronizes the device), would wait for the megakernel,
// which lives until the fixture's TearDown, after this object is gone.
class CallerMemory {
 public:
  CallerMemory(megaring::Backend backend, size_t bytes) : gpu_(backend == megaring::Backend::kCuda), bytes_(bytes) {
    if (gpu_) {
      if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
        stream_ = nullptr;
        return;
      }
      if (cudaMallocAsync(&ptr_, bytes, stream_) != cudaSuccess) ptr_ = nullptr;
      if (ptr_ != nullptr) (void)cudaMemsetAsync(ptr_, 0, bytes, stream_);
      (void)cudaStreamSynchronize(stream_);
    } else {
      host_.assign(bytes, 0);
      ptr_ = host_.data();
    }
  }
  ~CallerMemory() {
    if (!gpu_ || stream_ == nullptr) return;
    if (ptr_ != nullptr) (void)cudaFreeAsync(ptr_, stream_);
    (void)cudaStreamSynchronize(stream_);
    (void)cudaStreamDestroy(stream_);
  }
  CallerMemory(const CallerMemory&) = delete;
  CallerMemory& operator=(const CallerMemory&) = delete;
  void* get() const { return ptr_; }
  // Zeroes it (the caller's own write, while no registration names it).
  void clear() {
    if (gpu_) {
      (void)cudaMemsetAsync(ptr_, 0, bytes_, stream_);
      (void)cudaStreamSynchronize(stream_);
    } else {
      std::memset(ptr_, 0, bytes_);
    }
  }
  // What the memory holds, read by the caller (not through the runtime).
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out(bytes_);
    if (gpu_) {
      (void)cudaMemcpyAsync(out.data(), ptr_, bytes_, cudaMemcpyDeviceToHost, stream_);
      (void)cudaStreamSynchronize(stream_);
    } else {
      std::memcpy(out.data(), ptr_, bytes_);
    }
    return out;
  }
  uint32_t u32(size_t index) const {
    const std::vector<uint8_t> b = bytes();
    uint32_t v;
    std::memcpy(&v, b.data() + index * 4, 4);
    return v;
  }

 private:
  bool gpu_;
  size_t bytes_;
  std::vector<uint8_t> host_;
  void* ptr_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

class ExternalBufferTest : public BackendTest {
 protected:
  void start(uint32_t workers = 0) {
    Config c = base_config();
    c.workers = workers;
    ASSERT_NO_FATAL_FAILURE(create_runtime(c, &rt_));
  }
  void TearDown() override {
    if (rt_) MR_EXPECT_OK(rt_->shutdown(scaled(seconds(30))));
    rt_.reset();
    BackendTest::TearDown();
  }
  Completion call(const megaring::SlotRequest& r) {
    Completion c;
    EXPECT_TRUE(rt_->call(r, &c, scaled(seconds(30))).is_ok());
    return c;
  }
  std::unique_ptr<Runtime> rt_;
};

TEST_P(ExternalBufferTest, SlotsWorkInTheCallersMemoryInPlace) {
  ASSERT_NO_FATAL_FAILURE(start());
  CallerMemory memory(backend(), 256);
  ASSERT_NE(memory.get(), nullptr);
  BufferHandle ext = 0;
  MR_ASSERT_OK(rt_->register_buffer(memory.get(), 256, &ext));
  ASSERT_NE(ext, 0u);
  EXPECT_TRUE(call(store_u32(ext, 0, 7)).ok());
  EXPECT_TRUE(call(atomic_add(ext, 8, 5)).ok());
  EXPECT_TRUE(call(fill(ext, 64, 16, 0x01)).ok());  // four u32 of 0x01010101
  EXPECT_EQ(memory.u32(0), 7u) << "the slot wrote the caller's memory";
  EXPECT_EQ(memory.u32(2), 5u);
  EXPECT_EQ(memory.u32(16), 0x01010101u);
  const Completion sum = call(reduce_add_u32(ext, 64, 4));
  ASSERT_TRUE(sum.ok());
  EXPECT_EQ(sum.result, 4ull * 0x01010101u);
  // Between an allocated buffer and a registered one, both ways.
  BufferHandle own = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &own));
  EXPECT_TRUE(call(copy(own, 0, ext, 0, 16)).ok());
  EXPECT_TRUE(call(copy(ext, 128, own, 0, 16)).ok());
  EXPECT_EQ(memory.u32(32), 7u);
  // Host copies through the handle, as for any buffer.
  const uint32_t word = 0xABCD;
  MR_ASSERT_OK(rt_->write_buffer(ext, 200, &word, 4));
  EXPECT_EQ(memory.u32(50), 0xABCDu);
  uint32_t back = 0;
  MR_ASSERT_OK(rt_->read_buffer(ext, 8, &back, 4));
  EXPECT_EQ(back, 5u);
  // Bounds are the registered size.
  EXPECT_EQ(call(store_u32(ext, 256, 1)).fault, MR_FAULT_OUT_OF_BOUNDS);
  MR_ASSERT_OK(rt_->unregister_buffer(ext, scaled(seconds(30))));
  EXPECT_EQ(call(store_u32(ext, 0, 1)).fault, MR_FAULT_BAD_HANDLE) << "a stale handle faults";
  EXPECT_EQ(memory.u32(0), 7u) << "the memory is untouched after";
  MR_EXPECT_RESULT(rt_->unregister_buffer(ext), Result::kInvalidArgument) << "twice";
}

// One executor, held by a slow slot: a slot published before the unregister
// still waits to run on the memory, so unregister cannot return yet.
TEST_P(ExternalBufferTest, UnregisterReturnsOnlyOnceNoSlotCanTouchTheMemory) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  CallerMemory memory(backend(), 64);
  BufferHandle ext = 0;
  MR_ASSERT_OK(rt_->register_buffer(memory.get(), 64, &ext));
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket slow, late;
  MR_ASSERT_OK(rt_->publish(delay_ns(300'000'000), &slow, keep));
  MR_ASSERT_OK(rt_->publish(store_u32(ext, 0, 42), &late, keep));
  MR_EXPECT_RESULT(rt_->unregister_buffer(ext, milliseconds(20)), Result::kTimeout)
      << "the store is still queued behind the delay";
  Ticket after;
  MR_ASSERT_OK(rt_->publish(store_u32(ext, 4, 43), &after, keep));  // after the retire
  MR_ASSERT_OK(rt_->unregister_buffer(ext, scaled(seconds(30)))) << "waits on";
  // It returned, so the store published before has run, and ran whole.
  EXPECT_EQ(memory.u32(0), 42u);
  Completion c;
  MR_ASSERT_OK(rt_->wait(late, &c, scaled(seconds(30))));
  EXPECT_TRUE(c.ok());
  MR_ASSERT_OK(rt_->wait(after, &c, scaled(seconds(30))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE) << "published after the retire";
  EXPECT_EQ(memory.u32(1), 0u);
  MR_ASSERT_OK(rt_->wait(slow, &c, scaled(seconds(30))));
}

// The caller's other choice (WhileInUse::kFail): while a slot published
// before is outstanding, unregister refuses with kInUse and the buffer stays
// registered (a slot published after it still runs in the memory); once
// nothing is outstanding it unregisters at once.
TEST_P(ExternalBufferTest, UnregisterCanFailInsteadOfWaiting) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  CallerMemory memory(backend(), 64);
  BufferHandle ext = 0;
  MR_ASSERT_OK(rt_->register_buffer(memory.get(), 64, &ext));
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket slow, late;
  MR_ASSERT_OK(rt_->publish(delay_ns(300'000'000), &slow, keep));
  MR_ASSERT_OK(rt_->publish(store_u32(ext, 0, 42), &late, keep));
  MR_EXPECT_RESULT(rt_->unregister_buffer(ext, scaled(seconds(30)), megaring::WhileInUse::kFail),
                   Result::kInUse)
      << "the store is still queued behind the delay";
  Ticket after;
  MR_ASSERT_OK(rt_->publish(store_u32(ext, 4, 43), &after, keep));
  Completion c;
  MR_ASSERT_OK(rt_->wait(after, &c, scaled(seconds(30))));
  EXPECT_TRUE(c.ok()) << "still registered: fault " << c.fault;
  EXPECT_EQ(memory.u32(0), 42u);
  EXPECT_EQ(memory.u32(1), 43u);
  MR_ASSERT_OK(rt_->unregister_buffer(ext, megaring::Nanoseconds(0), megaring::WhileInUse::kFail))
      << "nothing outstanding now";
  Ticket stale;
  MR_ASSERT_OK(rt_->publish(store_u32(ext, 8, 44), &stale, keep));
  MR_ASSERT_OK(rt_->wait(stale, &c, scaled(seconds(30))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  EXPECT_EQ(memory.u32(2), 0u);
  MR_EXPECT_RESULT(rt_->unregister_buffer(ext, megaring::Nanoseconds(0),
                                          static_cast<megaring::WhileInUse>(7)),
                   Result::kInvalidArgument);
}

// Registrations changing while three threads publish stores into whichever
// buffer is registered now, each storing its handle: a slot runs entirely
// under the registration its handle names (its store lands in that
// registration's memory) or faults BAD_HANDLE (published after the retire,
// or naming an index's earlier generation). After unregister returns, the
// memory holds that registration's stores alone; a store from an earlier
// registration of the same memory or index would show its handle.
TEST_P(ExternalBufferTest, RegistrationsChangingUnderLoadNeverMixTwoRegistrations) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr uint32_t kWords = 256;
  CallerMemory memories[2] = {CallerMemory(backend(), kWords * 4),
                              CallerMemory(backend(), kWords * 4)};
  ASSERT_NE(memories[0].get(), nullptr);
  ASSERT_NE(memories[1].get(), nullptr);
  std::atomic<uint32_t> current{0};  // the handle registered now; 0: none yet
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ran{0}, faulted{0}, wrong{0};
  std::vector<std::thread> producers;
  for (uint64_t t = 0; t < 3; ++t) {
    producers.emplace_back([&, t] {
      Rng rng(t + 1);
      while (!stop.load()) {
        const uint32_t h = current.load();
        if (h == 0) {
          std::this_thread::yield();
          continue;
        }
        Completion c;
        const Status st = rt_->call(store_u32(h, 4 * rng.below(kWords), h), &c, scaled(seconds(30)));
        if (st && c.ok())
          ran++;
        else if (st && c.fault == MR_FAULT_BAD_HANDLE)
          faulted++;
        else
          wrong++;
      }
    });
  }
  for (int round = 0; round < 40 && !HasFailure(); ++round) {
    CallerMemory& memory = memories[round % 2];
    memory.clear();
    BufferHandle h = 0;
    MR_ASSERT_OK(rt_->register_buffer(memory.get(), kWords * 4, &h));
    current.store(h);
    const uint64_t ran_before = ran.load();
    const auto until = std::chrono::steady_clock::now() + scaled(seconds(10));
    while (ran.load() < ran_before + 20 && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    // Unregister while the threads still publish with h: some of their
    // slots come before the retire and run, the rest fault.
    MR_ASSERT_OK(rt_->unregister_buffer(h, scaled(seconds(30))));
    const std::vector<uint8_t> bytes = memory.bytes();
    for (uint32_t w = 0; w < kWords; ++w) {
      uint32_t v;
      std::memcpy(&v, bytes.data() + 4 * w, 4);
      ASSERT_TRUE(v == 0 || v == h) << "round " << round << ", word " << w << " holds " << v
                                    << ", registered as " << h;
    }
  }
  stop.store(true);
  for (auto& p : producers) p.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(ran.load(), 0u);
  EXPECT_GT(faulted.load(), 0u) << "no slot raced a retire";
}

TEST_P(ExternalBufferTest, RefusesBadRegistrationsWithClearErrors) {
  ASSERT_NO_FATAL_FAILURE(start());
  CallerMemory memory(backend(), 64);
  BufferHandle h = 0;
  MR_EXPECT_RESULT(rt_->register_buffer(nullptr, 64, &h), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->register_buffer(memory.get(), 64, nullptr), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->register_buffer(memory.get(), megaring::kMaxBufferBytes + 1, &h),
                   Result::kInvalidArgument);
  // A range that wraps the address space (its size passes the size check).
  void* near_top = reinterpret_cast<void*>(~uint64_t{0} - 15);
  MR_EXPECT_RESULT(rt_->register_buffer(near_top, 64, &h), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->unregister_buffer(0), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->unregister_buffer(12345), Result::kInvalidArgument);
  BufferHandle own = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &own));
  MR_EXPECT_RESULT(rt_->unregister_buffer(own), Result::kInvalidArgument) << "free_buffer frees it";
  MR_ASSERT_OK(rt_->register_buffer(memory.get(), 64, &h));
  MR_EXPECT_RESULT(rt_->unregister_buffer(h, megaring::Nanoseconds(-1)), Result::kInvalidArgument);
  // free_buffer retires a registered buffer without waiting; with no slot
  // in flight the handle is given back at once, and is then unknown.
  MR_ASSERT_OK(rt_->free_buffer(h));
  MR_EXPECT_RESULT(rt_->unregister_buffer(h, scaled(seconds(30))), Result::kInvalidArgument);
  MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  MR_EXPECT_RESULT(rt_->register_buffer(memory.get(), 64, &h), Result::kShutdown);
}

// The runtime ends with a registered buffer still in its table: it frees
// its own memory, never the caller's (CallerMemory frees that after).
TEST_P(ExternalBufferTest, ARuntimeThatEndsLeavesTheCallersMemoryAlone) {
  CallerMemory memory(backend(), 64);
  ASSERT_NO_FATAL_FAILURE(start());
  BufferHandle ext = 0;
  MR_ASSERT_OK(rt_->register_buffer(memory.get(), 64, &ext));
  EXPECT_TRUE(call(store_u32(ext, 0, 9)).ok());
  rt_.reset();
  EXPECT_EQ(memory.u32(0), 9u);
}

TEST_P(ExternalBufferTest, ATenantsRegisteredBufferHoldsAResidentHandleAndIsItsAlone) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  megaring::TenantConfig one;
  one.label = "owner";
  one.quotas.resident_handles = 1;
  megaring::TenantHandle a, b;
  MR_ASSERT_OK(registry->register_tenant(one, &a));
  MR_ASSERT_OK(registry->register_tenant({}, &b));
  CallerMemory memory(backend(), 64), more(backend(), 64);
  BufferHandle ext = 0, second = 0;
  MR_ASSERT_OK(a.register_buffer(memory.get(), 64, &ext));
  EXPECT_EQ(a.quota_counters().resident_buffers, 1u);
  MR_EXPECT_RESULT(a.register_buffer(more.get(), 64, &second), Result::kResidentBackpressure);
  megaring::TenantPublishOptions keep;
  keep.keep_result = true;
  keep.timeout = scaled(seconds(30));
  Ticket t;
  Completion c;
  MR_ASSERT_OK(b.publish_slot(store_u32(ext, 0, 1), &t, keep));
  MR_ASSERT_OK(b.wait(t, &c, scaled(seconds(30))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE) << "another tenant's slot";
  MR_ASSERT_OK(a.publish_slot(store_u32(ext, 0, 2), &t, keep));
  MR_ASSERT_OK(a.wait(t, &c, scaled(seconds(30))));
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(memory.u32(0), 2u);
  MR_EXPECT_RESULT(b.unregister_buffer(ext), Result::kInvalidArgument) << "not b's";
  MR_ASSERT_OK(a.unregister_buffer(ext, scaled(seconds(30))));
  EXPECT_EQ(a.quota_counters().resident_buffers, 0u) << "the handle is back";
  MR_EXPECT_OK(a.register_buffer(more.get(), 64, &second));
  registry.reset();
}

// An unregister the runtime refuses (WhileInUse::kFail while a slot is
// outstanding) holds the tenant's resident handle until it returns: a
// registration racing it never takes the tenant past its quota of one.
TEST_P(ExternalBufferTest, ARefusedUnregisterKeepsTheQuotaWhileItRuns) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  megaring::TenantConfig one;
  one.label = "one handle";
  one.quotas.resident_handles = 1;
  megaring::TenantHandle a;
  MR_ASSERT_OK(registry->register_tenant(one, &a));
  CallerMemory memory(backend(), 64), more(backend(), 64);
  BufferHandle ext = 0;
  MR_ASSERT_OK(a.register_buffer(memory.get(), 64, &ext));
  // Outstanding for 2 s (two 1 s delays, MR_DELAY_MAX_NS each, on the one
  // executor): longer than the race below.
  Ticket slow;
  MR_ASSERT_OK(rt_->publish(delay_ns(1'000'000'000), &slow));
  MR_ASSERT_OK(rt_->publish(delay_ns(1'000'000'000), &slow));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> refusals{0};
  std::thread unregistering([&] {
    while (!stop.load()) {
      const Status st = a.unregister_buffer(ext, megaring::Nanoseconds(0), megaring::WhileInUse::kFail);
      if (st.code() != Result::kInUse) break;  // the delay finished (it should not have)
      refusals++;
    }
  });
  // Race them for 1 s of the 2 (the window is a few instructions wide).
  uint64_t over_quota = 0;
  const auto race_until = std::chrono::steady_clock::now() + milliseconds(1000);
  while (std::chrono::steady_clock::now() < race_until) {
    BufferHandle second = 0;
    if (a.register_buffer(more.get(), 64, &second).is_ok()) {
      ++over_quota;
      (void)a.free_buffer(second);
    }
  }
  stop.store(true);
  unregistering.join();
  EXPECT_EQ(over_quota, 0u) << "a second buffer registered while the first stayed: quota 1";
  EXPECT_GT(refusals.load(), 0u) << "the delay ended before the race ran";
  registry.reset();
}

MEGARING_INSTANTIATE_BACKENDS(ExternalBufferTest);

}  // namespace
}  // namespace megaring_test
