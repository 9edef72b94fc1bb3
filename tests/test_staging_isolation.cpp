// SPDX-License-Identifier: Apache-2.0
// Staging isolation: what one tenant's regions may take of what the runtime
// and the other tenants share (the region table, the arena), who frees a
// tenant's objects, and what no slot or region may see of another owner's.
//   * A region freed while a slot published before the free is still queued
//     keeps its bytes (and its arena range) until that slot ran; a slot
//     published after the free faults.
//   * A region holds one resident handle: one tenant cannot take the whole
//     region table.
//   * A region is charged the arena lines it takes: a tenant's arena use is
//     bounded by its staging quota.
//   * The runtime's calls refuse to free a live tenant's regions and buffers
//     (the tenant's quota would keep their charge); the registry still frees
//     what a revoked tenant left.
//   * A reused arena range starts zeroed; a tenant's slot cannot name the
//     runtime's regions.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
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
using megaring::ops::stage_to_buffer;
using std::chrono::seconds;

class StagingIsolationTest : public StagingTest {};

// Suspending the consumer holds the slot queued (published, not yet run)
// across the free and a create of the same size, deterministically on every
// backend and worker count.
TEST_P(StagingIsolationTest, AFreedRegionKeepsItsBytesUntilASlotQueuedBeforeTheFreeRan) {
  ASSERT_NO_FATAL_FAILURE(start(kArenaBytes, /*max_regions=*/4));
  const std::vector<uint8_t> old_bytes = pattern(256, 21), new_bytes = pattern(256, 22);
  const RegionHandle r = sealed_region(old_bytes);
  BufferHandle before = 0, after = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(256, &before));
  MR_ASSERT_OK(rt_->alloc_buffer(256, &after));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket early, late;
  MR_ASSERT_OK(rt_->publish(stage_to_buffer({r, 0, 256}, before, 0), &early, keep));
  MR_ASSERT_OK(rt_->free_region(r));
  MR_ASSERT_OK(rt_->publish(stage_to_buffer({r, 0, 256}, after, 0), &late, keep));
  // A new region of the same size while `early` is queued: it must not be
  // given the freed range (nor may its zeroing or writes touch it).
  const RegionHandle next = sealed_region(new_bytes);
  ASSERT_NE(next, 0u);
  MR_ASSERT_OK(rt_->resume());
  Completion c;
  MR_ASSERT_OK(rt_->wait(early, &c, scaled(seconds(30))));
  EXPECT_TRUE(c.ok()) << "published before the free: fault " << c.fault;
  EXPECT_EQ(read_buffer(before, 256), old_bytes) << "the queued slot read the freed region's bytes";
  MR_ASSERT_OK(rt_->wait(late, &c, scaled(seconds(30))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_REGION) << "published after the free";
  EXPECT_EQ(read_buffer(after, 256), std::vector<uint8_t>(256, 0));
  EXPECT_EQ(read_region(next, 256), new_bytes);
  ASSERT_TRUE(call(stage_to_buffer({next, 0, 256}, after, 0)).ok());
  EXPECT_EQ(read_buffer(after, 256), new_bytes);
}

// The region table (Config::max_regions entries) is shared by the runtime and
// every tenant: each region holds one of its tenant's resident handles, so a
// tenant that creates 1-byte regions stops at its resident quota (64 by
// default, below the table's 128), and another tenant can still create.
TEST_P(StagingIsolationTest, OneTenantCannotTakeTheWholeRegionTable) {
  constexpr uint32_t kTable = 128;
  ASSERT_NO_FATAL_FAILURE(start(kArenaBytes, kTable));
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  TenantHandle greedy, other;
  megaring::TenantConfig cfg;  // default quotas
  ASSERT_LT(cfg.quotas.resident_handles, kTable);
  MR_ASSERT_OK(registry->register_tenant(cfg, &greedy));
  MR_ASSERT_OK(registry->register_tenant(cfg, &other));
  std::vector<RegionHandle> regions;
  Status refusal;
  for (uint32_t i = 0; i <= kTable; ++i) {
    RegionHandle r = 0;
    refusal = greedy.create_region(RegionPolicy::kImmutable, 1, &r);
    if (!refusal.is_ok()) break;
    regions.push_back(r);
  }
  EXPECT_EQ(refusal.code(), Result::kResidentBackpressure) << refusal.to_string();
  EXPECT_EQ(refusal.limit(), cfg.quotas.resident_handles);
  EXPECT_EQ(regions.size(), cfg.quotas.resident_handles);
  megaring::TenantQuotaCounters q = greedy.quota_counters();
  EXPECT_EQ(q.staging_regions, regions.size());
  EXPECT_EQ(q.resident_handles_in_use, regions.size());
  EXPECT_EQ(q.resident_buffers, 0u);
  // Buffers and regions share the quota: no buffer either.
  BufferHandle b = 0;
  MR_EXPECT_RESULT(greedy.alloc_buffer(64, &b), Result::kResidentBackpressure);
  RegionHandle mine = 0;
  MR_EXPECT_OK(other.create_region(RegionPolicy::kImmutable, 64, &mine))
      << "another tenant's first create";
  MR_EXPECT_OK(rt_->create_region(RegionPolicy::kImmutable, 64, &mine)) << "the runtime's";
  // A freed region gives its handle back; a failed create took none.
  MR_ASSERT_OK(greedy.free_region(regions.back()));
  regions.pop_back();
  q = greedy.quota_counters();
  EXPECT_EQ(q.resident_handles_in_use, regions.size());
  MR_EXPECT_RESULT(greedy.create_region(RegionPolicy::kImmutable, 0, &mine),
                   Result::kInvalidArgument);
  EXPECT_EQ(greedy.quota_counters().resident_handles_in_use, regions.size());
  MR_EXPECT_OK(greedy.create_region(RegionPolicy::kImmutable, 1, &mine));
  registry.reset();
}

// The arena gives out 64-byte lines, and the quota is charged the lines: a
// tenant whose staging quota is 1 KiB gets sixteen 1-byte regions (not 1024
// filling a 64 KiB arena), and a tenant with 32 KiB of quota gets its region.
TEST_P(StagingIsolationTest, ATenantsArenaUseIsBoundedByItsStagingQuota) {
  constexpr uint64_t kArena = 64 << 10;
  ASSERT_NO_FATAL_FAILURE(start(kArena, /*max_regions=*/2048));
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  megaring::TenantConfig small;
  small.quotas.staging_bytes = 1024;
  small.quotas.resident_handles = 2048;  // the staging quota is the bound here
  megaring::TenantConfig big;
  big.quotas.staging_bytes = 32 << 10;
  TenantHandle a, b;
  MR_ASSERT_OK(registry->register_tenant(small, &a));
  MR_ASSERT_OK(registry->register_tenant(big, &b));
  uint32_t created = 0;
  Status refusal;
  for (uint32_t i = 0; i < 2048; ++i) {
    RegionHandle r = 0;
    refusal = a.create_region(RegionPolicy::kMutable, 1, &r);
    if (!refusal.is_ok()) break;
    ++created;
  }
  EXPECT_EQ(created, 1024u / 64);
  EXPECT_EQ(refusal.code(), Result::kStagingBackpressure) << refusal.to_string();
  EXPECT_EQ(refusal.value(), 1024u);
  const megaring::TenantQuotaCounters q = a.quota_counters();
  EXPECT_EQ(q.staging_bytes_in_use, 1024u);
  EXPECT_EQ(q.staging_region_bytes, 1024u);
  RegionHandle r = 0;
  MR_EXPECT_OK(b.create_region(RegionPolicy::kMutable, 32 << 10, &r))
      << "a 32 KiB quota within a 64 KiB arena";
  // A size one byte past a line is charged the next line.
  MR_EXPECT_RESULT(b.create_region(RegionPolicy::kMutable, 1, &r), Result::kStagingBackpressure);
  megaring::TenantConfig odd;
  odd.quotas.staging_bytes = 128;
  TenantHandle c;
  MR_ASSERT_OK(registry->register_tenant(odd, &c));
  MR_EXPECT_RESULT(c.create_region(RegionPolicy::kMutable, 129, &r), Result::kStagingBackpressure);
  MR_EXPECT_OK(c.create_region(RegionPolicy::kMutable, 65, &r));
  EXPECT_EQ(c.quota_counters().staging_region_bytes, 128u);
  // A size near 2^64 has no range: refused, nothing charged.
  MR_EXPECT_RESULT(c.create_region(RegionPolicy::kMutable, ~0ull, &r),
                   Result::kStagingBackpressure);
  EXPECT_EQ(c.quota_counters().staging_bytes_in_use, 128u);
  registry.reset();
}

// A tenant's quota counts its regions and buffers, so only its handle frees
// them: the runtime's calls refuse (and change nothing), the tenant's free
// gives the whole charge back, and once the tenant is revoked its registry
// frees what it left (the entries are reusable again).
TEST_P(StagingIsolationTest, TheRuntimesCallsCannotFreeATenantsRegion) {
  ASSERT_NO_FATAL_FAILURE(start(kArenaBytes, /*max_regions=*/2));
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  megaring::TenantConfig cfg;
  cfg.quotas.staging_bytes = 4096;
  TenantHandle t;
  MR_ASSERT_OK(registry->register_tenant(cfg, &t));
  RegionHandle r = 0, spare = 0;
  MR_ASSERT_OK(t.create_region(RegionPolicy::kMutable, 4096, &r));
  const Status st = rt_->free_region(r);
  EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("TenantHandle"), std::string::npos) << st.to_string();
  const std::vector<uint8_t> data = pattern(64, 26);
  MR_EXPECT_OK(t.write_region(r, 0, data.data(), data.size())) << "still the tenant's";
  EXPECT_EQ(t.quota_counters().staging_regions, 1u);
  MR_ASSERT_OK(t.free_region(r));
  EXPECT_EQ(t.quota_counters().staging_regions, 0u);
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 0u);
  EXPECT_EQ(t.quota_counters().resident_handles_in_use, 0u);
  MR_EXPECT_OK(t.create_region(RegionPolicy::kMutable, 4096, &r)) << "the whole quota is back";
  MR_EXPECT_RESULT(t.create_region(RegionPolicy::kMutable, 1, &spare),
                   Result::kStagingBackpressure);
  // Revoked: the registry frees both entries through the runtime.
  RegionHandle second = 0;
  megaring::TenantConfig other_cfg;
  TenantHandle other;
  MR_ASSERT_OK(registry->register_tenant(other_cfg, &other));
  MR_ASSERT_OK(other.create_region(RegionPolicy::kMutable, 64, &second));
  MR_ASSERT_OK(registry->unregister_tenant(t));
  MR_ASSERT_OK(registry->unregister_tenant(other));
  RegionHandle a = 0, b = 0;
  MR_EXPECT_OK(rt_->create_region(RegionPolicy::kMutable, 64, &a)) << "the revoked tenants' entries";
  MR_EXPECT_OK(rt_->create_region(RegionPolicy::kMutable, 64, &b));
  MR_EXPECT_OK(rt_->free_region(a)) << "the runtime's own region";
  registry.reset();
}

TEST_P(StagingIsolationTest, TheRuntimesCallsCannotFreeATenantsBuffer) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  TenantHandle t;
  MR_ASSERT_OK(registry->register_tenant({}, &t));
  BufferHandle owned = 0, registered = 0;
  MR_ASSERT_OK(t.alloc_buffer(64, &owned));
  std::vector<uint8_t> memory(64, 0);
  MR_ASSERT_OK(t.register_buffer(memory.data(), memory.size(), &registered));
  Status st = rt_->free_buffer(owned);
  EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("TenantHandle"), std::string::npos) << st.to_string();
  st = rt_->unregister_buffer(registered, scaled(seconds(30)));
  EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("TenantHandle"), std::string::npos) << st.to_string();
  EXPECT_EQ(t.quota_counters().resident_buffers, 2u);
  const std::vector<uint8_t> data = pattern(64, 27);
  MR_EXPECT_OK(t.write_buffer(owned, 0, data.data(), data.size())) << "still the tenant's";
  MR_EXPECT_OK(t.write_buffer(registered, 0, data.data(), data.size())) << "still registered";
  EXPECT_EQ(memory, data);
  MR_ASSERT_OK(t.free_buffer(owned));
  MR_ASSERT_OK(t.unregister_buffer(registered, scaled(seconds(30))));
  EXPECT_EQ(t.quota_counters().resident_handles_in_use, 0u);
  // The runtime's own buffers: freed as before.
  BufferHandle own = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &own));
  MR_EXPECT_OK(rt_->free_buffer(own));
  registry.reset();
}

// A range that comes back to the arena is zeroed before the next region
// gets it: a tenant's new region never shows what another tenant (or the
// runtime) left there. No other staging test fails when create_region's
// zeroing is removed.
TEST_P(StagingIsolationTest, AReusedArenaRangeStartsZeroedForTheNextTenant) {
  ASSERT_NO_FATAL_FAILURE(start(/*arena=*/4096, /*max_regions=*/4));
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  TenantHandle a, b;
  MR_ASSERT_OK(registry->register_tenant({}, &a));
  MR_ASSERT_OK(registry->register_tenant({}, &b));
  const std::vector<uint8_t> secret = pattern(4096, 23);
  RegionHandle ra = 0;
  MR_ASSERT_OK(a.create_region(RegionPolicy::kMutable, secret.size(), &ra));
  MR_ASSERT_OK(a.write_region(ra, 0, secret.data(), secret.size()));
  MR_ASSERT_OK(a.free_region(ra));  // no slot in flight: the range is back at once
  for (const RegionPolicy policy :
       {RegionPolicy::kMutable, RegionPolicy::kImmutable, RegionPolicy::kAppendOnly}) {
    RegionHandle rb = 0;
    MR_ASSERT_OK(b.create_region(policy, secret.size(), &rb)) << "the whole arena again";
    std::vector<uint8_t> got(secret.size(), 0xEE);
    MR_ASSERT_OK(b.read_region(rb, 0, got.data(), got.size()));
    EXPECT_EQ(got, std::vector<uint8_t>(secret.size(), 0))
        << "policy " << static_cast<uint32_t>(policy) << ": another tenant's bytes";
    if (policy == RegionPolicy::kMutable)  // leave something for the next round
      MR_ASSERT_OK(b.write_region(rb, 0, secret.data(), secret.size()));
    MR_ASSERT_OK(b.free_region(rb));
  }
  registry.reset();
}

// The runtime's own regions (owner 0) are out of every tenant's reach: only
// tenant-less slots may name them. No other staging test names a runtime
// region from a tenant slot (an owner check that let owner 0 through passed
// them all).
TEST_P(StagingIsolationTest, ATenantsSlotCannotNameTheRuntimesRegions) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<megaring::TenantRegistry> registry;
  MR_ASSERT_OK(megaring::TenantRegistry::create(*rt_, {}, &registry));
  TenantHandle t;
  MR_ASSERT_OK(registry->register_tenant({}, &t));
  const std::vector<uint8_t> data = pattern(64, 24);
  const RegionHandle in = sealed_region(data);
  RegionHandle out = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kMutable, 64, &out));
  BufferHandle mine = 0;
  MR_ASSERT_OK(t.alloc_buffer(64, &mine));
  const std::vector<uint8_t> junk = pattern(64, 25);
  MR_ASSERT_OK(t.write_buffer(mine, 0, junk.data(), junk.size()));
  megaring::TenantPublishOptions keep;
  keep.keep_result = true;
  keep.timeout = scaled(seconds(30));
  auto fault = [&](const megaring::SlotRequest& r) {
    Ticket ticket;
    Completion c;
    EXPECT_TRUE(t.publish_slot(r, &ticket, keep).is_ok());
    EXPECT_TRUE(t.wait(ticket, &c, scaled(seconds(30))).is_ok());
    return c.fault;
  };
  EXPECT_EQ(fault(stage_to_buffer({in, 0, 64}, mine, 0)), MR_FAULT_BAD_REGION);
  EXPECT_EQ(fault(megaring::ops::buffer_to_staging(mine, 0, out, 0, 64)), MR_FAULT_BAD_REGION);
  std::vector<uint8_t> got(64);
  MR_ASSERT_OK(t.read_buffer(mine, 0, got.data(), got.size()));
  EXPECT_EQ(got, junk) << "the runtime's bytes reached the tenant's buffer";
  EXPECT_EQ(read_region(out, 64), std::vector<uint8_t>(64, 0)) << "the tenant wrote the runtime's region";
  MR_EXPECT_RESULT(t.read_region(in, 0, got.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(t.free_region(out), Result::kInvalidArgument);
  registry.reset();
}

MEGARING_INSTANTIATE_BACKENDS(StagingIsolationTest);

}  // namespace
}  // namespace megaring_test
