// SPDX-License-Identifier: Apache-2.0
// Staging with tenants and under load: a tenant's regions are its own (its
// slots and host calls alone reach them, MR_OP_COPY included for buffers),
// charged to its staging quota until freed or the tenant goes; and several
// threads that stage, copy, compute and copy back at once each get exactly
// their own bytes back, every slot completing once.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "staging_fixture.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::RegionHandle;
using megaring::RegionPolicy;
using megaring::TenantHandle;
using megaring::Ticket;
using megaring::ops::axpy_f32;
using megaring::ops::buffer_to_staging;
using megaring::ops::copy;
using megaring::ops::stage_to_buffer;
using std::chrono::seconds;

class StagingTenantTest : public StagingTest {
 protected:
  uint16_t tenant_fault(const TenantHandle& t, const megaring::SlotRequest& r) {
    megaring::TenantPublishOptions keep;
    keep.keep_result = true;
    keep.timeout = scaled(seconds(30));
    Ticket ticket;
    Completion c;
    EXPECT_TRUE(t.publish_slot(r, &ticket, keep).is_ok());
    EXPECT_TRUE(t.wait(ticket, &c, scaled(seconds(30))).is_ok());
    return c.fault;
  }
};

TEST_P(StagingTenantTest, ATenantsRegionsAndBuffersAreItsAlone) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  TenantHandle a, b;
  MR_ASSERT_OK(registry->register_tenant({}, &a));
  MR_ASSERT_OK(registry->register_tenant({}, &b));
  const std::vector<uint8_t> data = pattern(48, 12);
  RegionHandle ra = 0, rb = 0;
  MR_ASSERT_OK(a.create_region(RegionPolicy::kImmutable, data.size(), &ra));
  MR_ASSERT_OK(a.write_region(ra, 0, data.data(), data.size()));
  MR_ASSERT_OK(a.seal_region(ra));
  MR_ASSERT_OK(b.create_region(RegionPolicy::kMutable, 48, &rb));
  BufferHandle ba = 0, bb = 0;
  MR_ASSERT_OK(a.alloc_buffer(48, &ba));
  MR_ASSERT_OK(b.alloc_buffer(48, &bb));
  // b's slots cannot reach a's region or a's buffer, whatever the opcode.
  EXPECT_EQ(tenant_fault(b, stage_to_buffer({ra, 0, 48}, bb, 0)), MR_FAULT_BAD_REGION);
  EXPECT_EQ(tenant_fault(b, buffer_to_staging(bb, 0, ra, 0, 1)), MR_FAULT_BAD_REGION);
  EXPECT_EQ(tenant_fault(a, buffer_to_staging(ba, 0, rb, 0, 1)), MR_FAULT_BAD_REGION);
  EXPECT_EQ(tenant_fault(b, copy(bb, 0, ba, 0, 48)), MR_FAULT_BAD_HANDLE);
  EXPECT_EQ(tenant_fault(b, axpy_f32(bb, 0, ba, 0, 4, 1.0f)), MR_FAULT_BAD_HANDLE);
  std::vector<uint8_t> got(48);
  MR_ASSERT_OK(b.read_buffer(bb, 0, got.data(), 48));
  EXPECT_EQ(got, std::vector<uint8_t>(48, 0)) << "nothing of a's reached b";
  // Nor can b's host calls.
  MR_EXPECT_RESULT(b.read_region(ra, 0, got.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(b.write_region(ra, 0, got.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(b.free_region(ra), Result::kInvalidArgument);
  // a's own slots can; so can a tenant-less one (the runtime's).
  EXPECT_EQ(tenant_fault(a, stage_to_buffer({ra, 0, 48}, ba, 0)), MR_FAULT_NONE);
  MR_ASSERT_OK(a.read_buffer(ba, 0, got.data(), 48));
  EXPECT_EQ(got, data);
  EXPECT_EQ(fault_of(stage_to_buffer({ra, 0, 48}, bb, 0)), MR_FAULT_NONE);
  MR_ASSERT_OK(b.read_buffer(bb, 0, got.data(), 48));
  EXPECT_EQ(got, data);
  // Unregistering a frees its regions: the handle is gone at once.
  MR_ASSERT_OK(registry->unregister_tenant(a));
  MR_EXPECT_RESULT(rt_->read_region(ra, 0, got.data(), 1), Result::kInvalidArgument);
  EXPECT_EQ(fault_of(stage_to_buffer({ra, 0, 1}, bb, 0)), MR_FAULT_BAD_REGION);
  MR_EXPECT_OK(b.read_region(rb, 0, got.data(), 48)) << "b keeps its own";
  registry.reset();
}

TEST_P(StagingTenantTest, RegionsAreChargedToTheStagingQuota) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  megaring::TenantConfig cfg;
  cfg.quotas.staging_bytes = 1024;
  TenantHandle t;
  MR_ASSERT_OK(registry->register_tenant(cfg, &t));
  RegionHandle r1 = 0, r2 = 0;
  // Charged the arena's 64-byte lines: 600 bytes take 640.
  MR_ASSERT_OK(t.create_region(RegionPolicy::kMutable, 600, &r1));
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 640u);
  EXPECT_EQ(t.quota_counters().staging_regions, 1u);
  const Status over = t.create_region(RegionPolicy::kMutable, 385, &r2);
  EXPECT_EQ(over.code(), Result::kStagingBackpressure) << over.to_string();
  EXPECT_EQ(over.value(), 640u);
  EXPECT_EQ(over.limit(), 1024u);
  MR_EXPECT_RESULT(t.create_region(RegionPolicy::kMutable, ~0ull, &r2), Result::kStagingBackpressure);
  MR_ASSERT_OK(t.reserve_staging_bytes(384));
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 1024u);
  MR_EXPECT_RESULT(t.reserve_staging_bytes(1), Result::kStagingBackpressure);
  MR_EXPECT_RESULT(t.release_staging_bytes(385), Result::kResourceUnderflow)
      << "a region's bytes go back with free_region only";
  MR_ASSERT_OK(t.release_staging_bytes(384));
  // A refusal of the runtime's (a zero size) changes nothing.
  MR_EXPECT_RESULT(t.create_region(RegionPolicy::kMutable, 0, &r2), Result::kInvalidArgument);
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 640u);
  MR_ASSERT_OK(t.free_region(r1));
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 0u);
  MR_EXPECT_RESULT(t.free_region(r1), Result::kInvalidArgument);
  MR_ASSERT_OK(t.create_region(RegionPolicy::kMutable, 1024, &r2)) << "the whole quota is back";
  EXPECT_EQ(t.quota_counters().staging_region_bytes, 1024u);
  MR_ASSERT_OK(registry->unregister_tenant(t));
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 0u);
  RegionHandle r3 = 0;
  MR_EXPECT_RESULT(t.create_region(RegionPolicy::kMutable, 8, &r3), Result::kRevoked);
  registry.reset();
}

// Each thread, over and over: a fresh immutable region of inputs (x, y),
// staged into its buffers, y = a*x + y, copied back to its mutable region,
// checked byte for byte; the input region freed again (the arena is reused).
TEST_P(StagingTenantTest, ThreadsStageComputeAndCopyBackConcurrently) {
  ASSERT_NO_FATAL_FAILURE(start(kArenaBytes, /*max_regions=*/64));
  constexpr uint32_t kThreads = 4, kRounds = 60, kN = 96;
  std::atomic<uint64_t> slots{0};
  std::atomic<uint32_t> failures{0};
  auto worker = [&](uint32_t id) {
    BufferHandle bx = 0, by = 0;
    RegionHandle out = 0;
    if (!rt_->alloc_buffer(kN * 4, &bx).is_ok() || !rt_->alloc_buffer(kN * 4, &by).is_ok() ||
        !rt_->create_region(RegionPolicy::kMutable, kN * 4, &out).is_ok()) {
      ++failures;
      return;
    }
    for (uint32_t round = 0; round < kRounds; ++round) {
      std::vector<float> x(kN), y(kN);
      for (uint32_t i = 0; i < kN; ++i) {
        x[i] = static_cast<float>(id * 1000 + round * 7 + i) * 0.25f;
        y[i] = static_cast<float>(i) - static_cast<float>(round);
      }
      const float alpha = 0.5f + static_cast<float>(id);
      std::vector<uint8_t> in = f32_bytes(x), ys = f32_bytes(y);
      in.insert(in.end(), ys.begin(), ys.end());
      RegionHandle r = 0;
      if (!rt_->create_region(RegionPolicy::kImmutable, in.size(), &r).is_ok() ||
          !rt_->write_region(r, 0, in.data(), in.size()).is_ok() || !rt_->seal_region(r).is_ok()) {
        ++failures;
        return;
      }
      megaring::PublishOptions keep;
      keep.keep_result = true;
      Ticket tx, ty, tz, tb;
      Completion cx, cy, cz, cb;
      const Nanoseconds limit = scaled(seconds(60));
      const bool ok =
          rt_->publish(stage_to_buffer({r, 0, kN * 4}, bx, 0), &tx, keep).is_ok() &&
          rt_->publish(stage_to_buffer({r, kN * 4, kN * 4}, by, 0), &ty, keep).is_ok() &&
          rt_->wait(tx, &cx, limit).is_ok() && rt_->wait(ty, &cy, limit).is_ok() && cx.ok() &&
          cy.ok() && rt_->publish(axpy_f32(by, 0, bx, 0, kN, alpha), &tz, keep).is_ok() &&
          rt_->wait(tz, &cz, limit).is_ok() && cz.ok() &&
          rt_->publish(buffer_to_staging(by, 0, out, 0, kN * 4), &tb, keep).is_ok() &&
          rt_->wait(tb, &cb, limit).is_ok() && cb.ok();
      slots += 4;
      std::vector<uint8_t> back(kN * 4);
      if (!ok || !rt_->read_region(out, 0, back.data(), back.size()).is_ok() ||
          back != f32_bytes(axpy_reference(alpha, x, y)) || !rt_->free_region(r).is_ok()) {
        ++failures;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0u);
  EXPECT_EQ(slots.load(), uint64_t{kThreads} * kRounds * 4);
  MR_ASSERT_OK(rt_->shutdown());
  const megaring::RuntimeStats s = rt_->stats();
  EXPECT_EQ(s.published, slots.load()) << "every slot published once";
  EXPECT_EQ(s.completed_ok, slots.load()) << "and completed once, OK";
  EXPECT_EQ(s.faulted + s.aborted + s.revoked, 0u);
}

MEGARING_INSTANTIATE_BACKENDS(StagingTenantTest);

}  // namespace
}  // namespace megaring_test
