// SPDX-License-Identifier: Apache-2.0
// Tenant quotas and the drain pump: back-pressure at the outstanding cap,
// staging and resident quotas, clones and many threads counting exactly, a
// flooding tenant beside a light one, a stalled pump, and note_drained and
// drain passes that never count or deliver a slot twice.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tenant_fixture.hpp"

namespace megaring_test {
namespace {

class TenantQuotaTest : public TenantTest {};

TEST_P(TenantQuotaTest, BackpressureAtTheCapReopensAfterDrain) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle t = add(tenant_config("capped", 4));
  TenantHandle other = add(tenant_config("other", 4));
  EXPECT_EQ(t.max_outstanding_slots(), 4u);
  hold(gate);
  Ticket ticket;
  for (int i = 0; i < 4; ++i) MR_ASSERT_OK(t.publish_slot(ops::nop(i), &ticket));
  Status st = t.publish_slot(ops::nop(), &ticket);
  EXPECT_EQ(st.code(), Result::kBackpressure);
  EXPECT_EQ(st.value(), 4u) << "outstanding";
  EXPECT_EQ(st.limit(), 4u) << "cap";
  SlotRequest two[2] = {ops::nop(), ops::nop()};
  MR_EXPECT_RESULT(t.publish_batch(two, 2, &ticket), Result::kBackpressure);
  // A bounded wait also ends in back-pressure while the consumer is held.
  TenantPublishOptions brief;
  brief.timeout = milliseconds(20);
  MR_EXPECT_RESULT(t.publish_slot(ops::nop(), &ticket, brief), Result::kBackpressure);
  EXPECT_EQ(t.published_count(), 4u) << "refused publishes leave no trace";
  EXPECT_GE(t.runtime_counters().backpressure_events, 3u);
  // Another tenant's quota is its own.
  MR_EXPECT_OK(other.publish_slot(ops::nop(), &ticket));
  gate.open();
  MR_ASSERT_OK(t.quiesce(scaled(seconds(10))));
  for (int i = 0; i < 4; ++i) MR_EXPECT_OK(t.publish_slot(ops::nop(i), &ticket));
  MR_EXPECT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.drained_count(), 8u);
  SlotRequest five[5] = {};
  MR_EXPECT_RESULT(t.publish_batch(five, 5, &ticket, waiting()), Result::kInvalidArgument)
      << "a batch larger than the quota can never fit";
}

TEST_P(TenantQuotaTest, StagingAndResidentQuotasOvercommitAndUnderflow) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantConfig config = tenant_config("quota");
  config.quotas.staging_bytes = 1000;
  config.quotas.resident_handles = 3;
  TenantHandle t = add(config);
  MR_EXPECT_OK(t.reserve_staging_bytes(600));
  MR_EXPECT_OK(t.reserve_staging_bytes(400));
  Status st = t.reserve_staging_bytes(1);
  EXPECT_EQ(st.code(), Result::kStagingBackpressure);
  EXPECT_EQ(st.value(), 1000u);
  EXPECT_EQ(st.limit(), 1000u);
  MR_EXPECT_RESULT(t.reserve_staging_bytes(~0ull), Result::kStagingBackpressure) << "no overflow";
  MR_EXPECT_OK(t.release_staging_bytes(300));
  MR_EXPECT_RESULT(t.release_staging_bytes(701), Result::kResourceUnderflow);
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 700u) << "a refused release changes nothing";
  MR_EXPECT_OK(t.reserve_staging_bytes(300));

  MR_EXPECT_OK(t.reserve_resident_handles(2));
  BufferHandle buffer = 0;
  MR_ASSERT_OK(t.alloc_buffer(128, &buffer)) << "a buffer holds the third handle";
  BufferHandle refused = 0;
  MR_EXPECT_RESULT(t.alloc_buffer(128, &refused), Result::kResidentBackpressure);
  MR_EXPECT_RESULT(t.reserve_resident_handles(1), Result::kResidentBackpressure);
  EXPECT_EQ(t.quota_counters().resident_handles_in_use, 3u);
  MR_EXPECT_OK(t.free_buffer(buffer));
  MR_EXPECT_RESULT(t.free_buffer(buffer), Result::kInvalidArgument) << "freed already";
  MR_EXPECT_OK(t.release_resident_handles(2));
  MR_EXPECT_RESULT(t.release_resident_handles(1), Result::kResourceUnderflow);
  EXPECT_EQ(t.quota_counters().resident_handles_in_use, 0u);
  MR_EXPECT_RESULT(t.note_drained(1), Result::kResourceUnderflow) << "nothing was published";
}

TEST_P(TenantQuotaTest, ClonesPublishingFromManyThreadsCountExactly) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr int kThreads = 4;
  const uint64_t per_thread = std::max<uint64_t>(500, env_u64("MEGARING_STRESS_SLOTS", 1000000) / 200);
  std::mutex seen_mutex;
  std::set<uint64_t> seen;  // every ticket delivered exactly once
  uint64_t duplicates = 0, not_ok = 0;
  TenantConfig config = tenant_config("clones", 64);
  config.on_completion = [&](const Completion& c) {
    std::lock_guard<std::mutex> lock(seen_mutex);
    if (!seen.insert(c.ticket).second) ++duplicates;
    if (!c.ok()) ++not_ok;
  };
  TenantHandle original = add(config);
  BufferHandle counter = 0;
  MR_ASSERT_OK(original.alloc_buffer(8, &counter));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kThreads; ++i) {
    TenantHandle copy = original;  // each thread publishes through its own copy
    threads.emplace_back([&, copy, i] {
      uint64_t sent = 0;
      while (sent < per_thread) {
        Ticket t;
        if ((sent + i) % 3 == 0 && per_thread - sent >= 4) {
          SlotRequest batch[4];
          for (auto& r : batch) r = ops::atomic_add(counter, 0, 1);
          if (!copy.publish_batch(batch, 4, &t, waiting())) failures.fetch_add(1);
          sent += 4;
        } else {
          if (!copy.publish_slot(ops::atomic_add(counter, 0, 1), &t, waiting())) failures.fetch_add(1);
          sent += 1;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  MR_ASSERT_OK(original.quiesce(scaled(seconds(60))));
  const uint64_t total = per_thread * kThreads;
  EXPECT_EQ(original.published_count(), total);
  EXPECT_EQ(original.drained_count(), total);
  const auto c = original.runtime_counters();
  EXPECT_EQ(c.completed_ok, total);
  EXPECT_EQ(c.device_admitted, total);
  uint64_t value = 0;
  MR_ASSERT_OK(original.read_buffer(counter, 0, &value, 8));
  EXPECT_EQ(value, total) << "every slot ran exactly once";
  std::lock_guard<std::mutex> lock(seen_mutex);
  EXPECT_EQ(seen.size(), total);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(not_ok, 0u);
}

TEST_P(TenantQuotaTest, FloodingTenantNextToALightOneStaysWithinItsQuota) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr uint64_t kFloodCap = 32;
  TenantHandle flood = add(tenant_config("flood", kFloodCap));
  TenantHandle light = add(tenant_config("light", 4));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> flood_sent{0};
  std::vector<std::thread> flooders;
  for (int i = 0; i < 2; ++i) {
    flooders.emplace_back([&] {
      SlotRequest batch[8];
      for (auto& r : batch) r = ops::delay_ns(1500);
      while (!stop.load(std::memory_order_relaxed)) {
        Ticket t;
        // No waiting: hammer the quota as fast as possible.
        if (flood.publish_batch(batch, 8, &t)) flood_sent.fetch_add(8);
      }
    });
  }
  // Let the flood build up before measuring the light tenant.
  while (flood_sent.load() < 4 * kFloodCap) std::this_thread::yield();
  constexpr int kLight = 200;
  uint64_t worst_ahead = 0;
  for (int i = 0; i < kLight; ++i) {
    Ticket t;
    MR_ASSERT_OK(light.publish_slot(ops::nop(i), &t, waiting(true)));
    // Every ticket between DONE_COUNT and ours is an undrained flood slot
    // (drained needs DONE_COUNT past it), so the quota bounds the queue
    // ahead of the light tenant: its wait is bounded, whatever the flood does.
    const uint64_t done = rt_->done_count();
    const uint64_t ahead = t.value > done ? t.value - done : 0;
    worst_ahead = std::max(worst_ahead, ahead);
    Completion c;
    MR_ASSERT_OK(light.wait(t, &c, scaled(seconds(10))));
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c.result, uint64_t(i));
  }
  stop.store(true);
  for (auto& th : flooders) th.join();
  EXPECT_LE(worst_ahead, kFloodCap) << "slots queued ahead of the light tenant";
  MR_EXPECT_OK(flood.quiesce(scaled(seconds(30))));
  MR_EXPECT_OK(light.quiesce(scaled(seconds(30))));
  EXPECT_EQ(light.runtime_counters().completed_ok, uint64_t{kLight});
  EXPECT_EQ(flood.drained_count(), flood_sent.load());
  EXPECT_GT(flood.runtime_counters().backpressure_events, 0u) << "the flood did hit its quota";
}

TEST_P(TenantQuotaTest, StalledPumpIsBackpressureAndNothingIsLost) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual, 0, /*capacity=*/64));
  std::set<uint64_t> delivered;
  uint64_t duplicates = 0;
  TenantConfig config = tenant_config("stalled", 10000);
  config.on_completion = [&](const Completion& c) {
    if (!delivered.insert(c.ticket).second) ++duplicates;
  };
  TenantHandle t = add(config);
  // Nobody pumps: the ring fills and stays full.
  uint64_t accepted = 0;
  Ticket ticket;
  Status st;
  for (int i = 0; i < 1000; ++i) {
    st = t.publish_slot(ops::nop(i), &ticket);
    if (!st) break;
    ++accepted;
  }
  ASSERT_EQ(st.code(), Result::kRingFull) << st.to_string();
  EXPECT_EQ(accepted, 64u) << "exactly a ring's worth";
  EXPECT_EQ(t.published_count(), accepted) << "the refused publish was rolled back";
  EXPECT_EQ(t.runtime_counters().pipeline_errors, 1u);
  EXPECT_TRUE(delivered.empty());
  // Pumping frees positions; a waiting publish pumps by itself in manual mode.
  for (int i = 0; i < 200; ++i) {
    MR_ASSERT_OK(t.publish_slot(ops::nop(i), &ticket, waiting()));
    ++accepted;
  }
  MR_ASSERT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.drained_count(), accepted);
  EXPECT_EQ(delivered.size(), accepted);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(registry_->stats().drained_slots, accepted);
}

TEST_P(TenantQuotaTest, NoteDrainedNeverCountsASlotTwice) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual));
  TenantHandle t = add(tenant_config("noted"));
  Ticket ticket;
  MR_ASSERT_OK(t.publish_slot(ops::nop(), &ticket, waiting()));
  MR_ASSERT_OK(t.publish_slot(ops::nop(), &ticket, waiting()));
  MR_EXPECT_RESULT(t.note_drained(1), Result::kResourceUnderflow) << "nothing delivered yet";
  MR_ASSERT_OK(t.quiesce(scaled(seconds(10))));  // pumps: the pump drains both
  MR_EXPECT_RESULT(t.note_drained(1), Result::kResourceUnderflow) << "the pump already counted them";
  EXPECT_EQ(t.published_count(), 2u);
  EXPECT_EQ(t.drained_count(), 2u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
}

// Regression (issue 15): a drain pass that throws (no host memory to park a
// kept result) commits nothing; its records were once delivered all the
// same, and again by the next pass, which reaps the same tickets.
TEST_P(TenantQuotaTest, ADrainPassThatThrowsDeliversNothingTwice) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual));
  int deliveries = 0;
  TenantConfig config = tenant_config("delivered-once");
  config.on_completion = [&](const Completion&) { ++deliveries; };  // the pump runs on this thread
  TenantHandle t = add(config);
  Ticket tenant_ticket;
  MR_ASSERT_OK(t.publish_slot(ops::nop(5), &tenant_ticket, waiting()));
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket kept;
  MR_ASSERT_OK(rt_->publish(ops::nop(7), &kept, keep));  // after the tenant's: the pass parks it
  MR_ASSERT_OK(rt_->wait_done(kept, scaled(seconds(10))));
  struct Hook {
    uint64_t kept;
    int calls = 0;
  } hook{kept.value};
  RuntimeInternals::set_park_hook(
      *rt_,
      [](void* arg, uint64_t ticket) {
        auto* h = static_cast<Hook*>(arg);
        if (ticket == h->kept && h->calls++ == 0) throw std::bad_alloc();
      },
      &hook);
  EXPECT_EQ(registry_->pump_once(), 0u) << "the pass threw: nothing reaped";
  EXPECT_EQ(deliveries, 0) << "nor delivered";
  EXPECT_EQ(registry_->pump_once(), 2u);
  RuntimeInternals::set_park_hook(*rt_, nullptr, nullptr);
  EXPECT_EQ(hook.calls, 2);
  EXPECT_EQ(deliveries, 1);
  EXPECT_EQ(t.published_count(), 1u);
  EXPECT_EQ(t.drained_count(), 1u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
  Completion c;
  MR_ASSERT_OK(rt_->wait(kept, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 7u) << "parked by the second pass";
}

// Regression (issue 13): buffers' handles and explicit reservations were one
// counter, so release_resident_handles() could hand back a buffer's handle
// and let the tenant hold more buffers than its quota.
TEST_P(TenantQuotaTest, ABuffersResidentHandleCannotBeReleasedAsAReservation) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantConfig config = tenant_config("resident");
  config.quotas.resident_handles = 2;
  TenantHandle t = add(config);
  BufferHandle a = 0, b = 0, c = 0;
  MR_ASSERT_OK(t.alloc_buffer(64, &a));
  MR_ASSERT_OK(t.alloc_buffer(64, &b));
  MR_EXPECT_RESULT(t.release_resident_handles(2), Result::kResourceUnderflow)
      << "nothing was reserved explicitly";
  MR_EXPECT_RESULT(t.release_resident_handles(1), Result::kResourceUnderflow);
  MR_EXPECT_RESULT(t.alloc_buffer(64, &c), Result::kResidentBackpressure) << "two buffers fill it";
  auto q = t.quota_counters();
  EXPECT_EQ(q.resident_handles_in_use, 2u);
  EXPECT_EQ(q.resident_buffers, 2u);
  EXPECT_EQ(q.resident_handles_reserved, 0u);
  MR_EXPECT_OK(t.free_buffer(a));
  MR_EXPECT_OK(t.reserve_resident_handles(1)) << "a freed buffer's handle is free again";
  MR_EXPECT_RESULT(t.alloc_buffer(64, &c), Result::kResidentBackpressure);
  MR_EXPECT_OK(t.release_resident_handles(1));
  MR_EXPECT_OK(t.free_buffer(b));
  MR_EXPECT_RESULT(t.free_buffer(b), Result::kInvalidArgument) << "double free";
  MR_EXPECT_RESULT(t.free_buffer(a), Result::kInvalidArgument) << "stale handle";
  q = t.quota_counters();
  EXPECT_EQ(q.resident_handles_in_use, 0u);
  EXPECT_EQ(q.resident_buffers, 0u);
  EXPECT_EQ(q.resident_handles_reserved, 0u);
}

MEGARING_INSTANTIATE_BACKENDS(TenantQuotaTest);

}  // namespace
}  // namespace megaring_test
