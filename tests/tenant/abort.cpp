// SPDX-License-Identifier: Apache-2.0
// A runtime's abort as tenants see it: every queued slot delivered
// ABORTED, a block-wide handler that polls for the abort leaves together,
// and a producer caught mid-publish credits every slot to its own tenant.

#include <cuda/atomic>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "tenant_fixture.hpp"

namespace megaring_test {
namespace {

class TenantAbortTest : public TenantTest {};

TEST_P(TenantAbortTest, AbortDeliversAbortedCompletionsToTenants) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle t = add(tenant_config("aborted"));
  hold(gate);
  std::vector<Ticket> tickets(6);
  for (auto& ticket : tickets) MR_ASSERT_OK(t.publish_slot(ops::nop(1), &ticket, waiting(true)));
  MR_ASSERT_OK(rt_->abort());
  for (auto& ticket : tickets) {
    Completion c;
    MR_ASSERT_OK(t.wait(ticket, &c, scaled(seconds(10))));
    EXPECT_EQ(c.status, MR_STATUS_ABORTED);
  }
  MR_EXPECT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.runtime_counters().aborted, 6u);
  Ticket late;
  const Status st = t.publish_slot(ops::nop(), &late);
  EXPECT_EQ(st.code(), Result::kAborted);
  EXPECT_EQ(t.published_count(), 6u);
}

// A long user handler that syncs its block every round leaves through the
// collective ctx.abort_requested(): every thread leaves on the same round,
// the slot ends ABORTED and abort() returns without a timeout (on the GPU,
// threads polling the flag on their own could leave on different rounds,
// splitting the block between barriers).
TEST_P(TenantAbortTest, AbortEndsABlockWideHandlerThatPollsCollectively) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  uint64_t* rounds = spin_rounds_word(backend() == Backend::kCuda);
  ASSERT_NE(rounds, nullptr);
  using RoundsRef = cuda::atomic_ref<uint64_t, cuda::thread_scope_system>;
  RoundsRef(*rounds).store(0, cuda::std::memory_order_relaxed);
  SlotRequest spin;
  spin.opcode = kOpSpinUntilAbort;
  spin.args[0] = reinterpret_cast<uint64_t>(rounds);
  spin.args[1] = uint64_t{1} << 40;  // far more rounds than the test lasts
  BufferHandle exits = 0;
  const uint64_t exits_init[2] = {~uint64_t{0}, 0};
  MR_ASSERT_OK(rt_->alloc_buffer(sizeof(exits_init), &exits));
  MR_ASSERT_OK(rt_->write_buffer(exits, 0, exits_init, sizeof(exits_init)));
  spin.args[2] = exits;
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket t;
  MR_ASSERT_OK(rt_->publish(spin, &t, keep));
  // Relaxed: the consumer's progress count; it orders nothing we read.
  const auto deadline = std::chrono::steady_clock::now() + scaled(seconds(20));
  while (RoundsRef(*rounds).load(cuda::std::memory_order_relaxed) < 3 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(1));
  const uint64_t before_abort = RoundsRef(*rounds).load(cuda::std::memory_order_relaxed);
  ASSERT_GE(before_abort, 3u) << "the handler never ran three rounds";
  MR_ASSERT_OK(rt_->abort());
  Completion c;
  MR_ASSERT_OK(rt_->wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_ABORTED);
  // The consumer has stopped: the count no longer moves, and every thread
  // of the block left on the same round, the last one it counted.
  const uint64_t after_abort = RoundsRef(*rounds).load(cuda::std::memory_order_relaxed);
  EXPECT_GE(after_abort, before_abort);
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(RoundsRef(*rounds).load(cuda::std::memory_order_relaxed), after_abort);
  uint64_t exit_rounds[2] = {0, 0};
  MR_ASSERT_OK(rt_->read_buffer(exits, 0, exit_rounds, sizeof(exit_rounds)));
  EXPECT_EQ(exit_rounds[0], exit_rounds[1]) << "threads left on rounds " << exit_rounds[0]
                                            << " to " << exit_rounds[1];
  EXPECT_EQ(exit_rounds[1], after_abort);
}

// A producer caught between reserving its tickets and writing them when the
// runtime aborts. After the abort the host owns every record up to the
// published end, but the pump must not pass those tickets before their
// producer has written them: their positions still carry the last lap's
// origin (another tenant's), and passing them early credited that tenant
// (its outstanding count wrapped) and never this one.
TEST_P(TenantAbortTest, AbortWhileAProducerIsMidPublishCreditsEverySlotToItsOwnTenant) {
  constexpr uint32_t kRing = 16, kBatch = 4;
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual, /*workers=*/1, kRing));
  TenantHandle writer = add(tenant_config("mid-publish"));
  TenantHandle last_lap = add(tenant_config("last-lap"));
  // last_lap's slots take every position once, leaving its origin in each.
  std::vector<SlotRequest> lap(kRing, ops::nop(1));
  Ticket first;
  MR_ASSERT_OK(last_lap.publish_batch(lap.data(), kRing, &first, waiting()));
  MR_ASSERT_OK(last_lap.quiesce(scaled(seconds(10))));

  // The hook holds the writer's publish after its reservation.
  struct Latch {
    std::mutex m;
    std::condition_variable cv;
    bool reserved = false, release = false;
  } latch;
  RuntimeInternals::set_reserve_hook(
      *rt_,
      [](void* arg, uint64_t, uint32_t) {
        auto* l = static_cast<Latch*>(arg);
        std::unique_lock<std::mutex> lock(l->m);
        l->reserved = true;
        l->cv.notify_all();
        l->cv.wait(lock, [l] { return l->release; });
      },
      &latch);
  Status published;
  std::thread producer([&] {
    std::vector<SlotRequest> batch(kBatch, ops::nop(2));
    Ticket t;
    published = writer.publish_batch(batch.data(), kBatch, &t, waiting());
  });
  {
    std::unique_lock<std::mutex> lock(latch.m);
    ASSERT_TRUE(latch.cv.wait_for(lock, scaled(seconds(10)), [&] { return latch.reserved; }));
  }
  MR_ASSERT_OK(rt_->abort());
  for (int i = 0; i < 3; ++i) (void)registry_->pump_once();
  EXPECT_EQ(last_lap.runtime_counters().drained, uint64_t{kRing})
      << "credited a slot it never published";
  EXPECT_EQ(writer.runtime_counters().drained, 0u) << "passed tickets not yet written";

  {
    std::lock_guard<std::mutex> lock(latch.m);
    latch.release = true;
  }
  latch.cv.notify_all();
  producer.join();
  RuntimeInternals::set_reserve_hook(*rt_, nullptr, nullptr);
  MR_EXPECT_OK(published) << "the reservation was made before the abort";
  for (int i = 0; i < 3; ++i) (void)registry_->pump_once();
  MR_EXPECT_OK(writer.quiesce(scaled(seconds(10))));
  MR_EXPECT_OK(last_lap.quiesce(scaled(seconds(10))));
  const auto w = writer.runtime_counters();
  EXPECT_EQ(w.published, uint64_t{kBatch});
  EXPECT_EQ(w.drained, uint64_t{kBatch});
  EXPECT_EQ(w.aborted, uint64_t{kBatch});
  const auto l = last_lap.runtime_counters();
  EXPECT_EQ(l.published, uint64_t{kRing});
  EXPECT_EQ(l.drained, uint64_t{kRing});
}

MEGARING_INSTANTIATE_BACKENDS(TenantAbortTest);

}  // namespace
}  // namespace megaring_test
