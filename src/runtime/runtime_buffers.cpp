// SPDX-License-Identifier: Apache-2.0
// Runtime::Impl's buffer calls (runtime_impl.hpp): the checks at the API's
// edge before the buffer table (buffer_table.hpp), the unregister wait that
// watches the consumer, and the cut a retired buffer waits for: the tickets,
// on every ring, that may still use it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>

#include "megaring/detail/checked.hpp"
#include "runtime/runtime_impl.hpp"

namespace megaring {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

Status Runtime::Impl::alloc_buffer(uint64_t bytes, uint32_t owner, BufferHandle* handle) {
  if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
  if (bytes > kMaxBufferBytes)
    return Status(Result::kInvalidArgument, "buffer of " + std::to_string(bytes) +
                                                " bytes exceeds kMaxBufferBytes (2^48)");
  if (state_.load() != State::kRunning) return closed_status();
  return buffers_->alloc(bytes, owner, handle);
}

Status Runtime::Impl::free_buffer(BufferHandle handle, bool by_owner) {
  return buffers_->free(handle, by_owner ? nullptr : &tenant_owners_);
}

Status Runtime::Impl::register_buffer(const void* memory, uint64_t bytes, uint32_t owner,
                                      BufferHandle* handle) {
  if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
  if (memory == nullptr) return Status(Result::kInvalidArgument, "memory is null");
  if (bytes > kMaxBufferBytes)
    return Status(Result::kInvalidArgument, "buffer of " + std::to_string(bytes) +
                                                " bytes exceeds kMaxBufferBytes (2^48)");
  const uint64_t address = reinterpret_cast<uint64_t>(memory);
  if (!detail::range_within(address, bytes, ~0ull))
    return Status(Result::kInvalidArgument, "[memory, memory + " + std::to_string(bytes) +
                                                ") wraps around the address space");
  if (state_.load() != State::kRunning) return closed_status();
  return buffers_->register_external(address, bytes, owner, handle);
}

// In slices, with a look at the consumer between them: a consumer that
// died stops the runtime (its slots then never run), and the wait ends.
Status Runtime::Impl::unregister_buffer(BufferHandle handle, Nanoseconds timeout,
                                        WhileInUse while_in_use, bool by_owner) {
  if (!detail::valid_timeout(timeout))
    return Status(Result::kInvalidArgument, "unregister_buffer timeout is negative");
  if (while_in_use != WhileInUse::kWait && while_in_use != WhileInUse::kFail)
    return Status(Result::kInvalidArgument, "unregister_buffer: while_in_use is neither kWait nor kFail");
  bool fail_if_in_use = while_in_use == WhileInUse::kFail;  // the first call decides
  constexpr Nanoseconds kSlice = std::chrono::milliseconds(10);
  const auto deadline = detail::deadline_after(timeout);
  for (;;) {
    const auto now = Clock::now();
    const Nanoseconds left = deadline > now ? Nanoseconds(deadline - now) : Nanoseconds(0);
    Status st = buffers_->unregister_external(handle, std::min(left, kSlice),
                                              by_owner ? nullptr : &tenant_owners_, fail_if_in_use);
    fail_if_in_use = false;  // retired: what is left is the wait
    if (st.code() != Result::kTimeout || left <= kSlice) return st;
    (void)check_consumer();  // a dead consumer finalizes the runtime: the next look ends it
  }
}

// Ring 0: a read-modify-write of the tail after the retire store: every
// later reservation reads from it, so its slot is ordered after the retire
// and faults. Tickets reserved in [retire ticket, cut) may run or fault; the
// memory is freed only after all of them completed.
// The producers' rings, which we cannot reserve on: a SEQ_CST fence after
// the retire store (on the GPU a copy we waited for), then their tails (see
// ProducerRing::tail: each is stored, and fenced, before its slots). A
// ticket at or past the tail read here had its slot written after the
// retire was visible, and faults; the tickets below it may still run with
// the buffer and are waited for.
detail::RingCut Runtime::Impl::retire_cut() {
  detail::RingCut cut{};
  cut[0] = ring_->published_end_rmw();
  std::atomic_thread_fence(std::memory_order_seq_cst);
  for (const auto& ring : producer_rings_)  // relaxed: the fence above orders them
    cut[ring->ring] = ring->tail.load(std::memory_order_relaxed);
  return cut;
}

bool Runtime::Impl::completed(const detail::RingCut& cut) const {
  if (consumer_finalized()) return true;
  if (ring_->done_count() < cut[0]) return false;
  for (const auto& ring : producer_rings_)
    if (ring_done_count(ring->ring) < cut[ring->ring]) return false;
  return true;
}

}  // namespace megaring
