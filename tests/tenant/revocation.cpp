// SPDX-License-Identifier: Apache-2.0
// Tenants that end: revocation with slots queued, quiesce, unregistering
// while other threads publish, handles that outlive their registry, one
// registry a runtime, ids never reused while their slots are queued, and a
// runtime destroyed before its registry.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tenant_fixture.hpp"

namespace megaring_test {
namespace {

class TenantRevocationTest : public TenantTest {};

TEST_P(TenantRevocationTest, RevokedPublishFailsAndQueuedSlotsCompleteRevoked) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle a = add(tenant_config("a"));
  TenantHandle b = add(tenant_config("b"));
  ASSERT_TRUE(a.reserve_staging_bytes(1000));
  ASSERT_TRUE(a.reserve_resident_handles(2));
  BufferHandle a_buffer = 0;
  ASSERT_TRUE(a.alloc_buffer(64, &a_buffer));
  hold(gate);
  constexpr int kSlots = 8;
  std::vector<Ticket> ta(kSlots), tb(kSlots);
  for (int i = 0; i < kSlots; ++i) {
    MR_ASSERT_OK(a.publish_slot(ops::nop(100 + i), &ta[i], waiting(true)));
    MR_ASSERT_OK(b.publish_slot(ops::nop(200 + i), &tb[i], waiting(true)));
  }
  MR_ASSERT_OK(registry_->unregister_tenant(a));
  EXPECT_TRUE(a.revoked());
  EXPECT_FALSE(b.revoked());
  Ticket late;
  MR_EXPECT_RESULT(a.publish_slot(ops::nop(), &late), Result::kRevoked);
  MR_EXPECT_RESULT(registry_->unregister_tenant(a), Result::kRevoked);
  MR_EXPECT_RESULT(a.reserve_staging_bytes(1), Result::kRevoked);
  // Quotas released, buffers freed.
  EXPECT_EQ(a.quota_counters().staging_bytes_in_use, 0u);
  EXPECT_EQ(a.quota_counters().resident_handles_in_use, 0u);
  uint8_t byte = 0;
  MR_EXPECT_RESULT(rt_->read_buffer(a_buffer, 0, &byte, 1), Result::kInvalidArgument);
  gate.open();
  for (int i = 0; i < kSlots; ++i) {
    Completion c;
    MR_ASSERT_OK(a.wait(ta[i], &c, scaled(seconds(10))));
    EXPECT_EQ(c.status, MR_STATUS_REVOKED) << "queued slot " << i << " of the revoked tenant";
    EXPECT_EQ(c.result, 0u);
    MR_ASSERT_OK(b.wait(tb[i], &c, scaled(seconds(10))));
    EXPECT_TRUE(c.ok()) << "the other tenant's slot " << i;
    EXPECT_EQ(c.result, 200u + i);
  }
  MR_EXPECT_OK(a.quiesce(scaled(seconds(10)))) << "a revoked tenant still quiesces";
  MR_EXPECT_OK(b.quiesce(scaled(seconds(10))));
  const auto ca = a.runtime_counters();
  EXPECT_EQ(ca.published, uint64_t{kSlots});
  EXPECT_EQ(ca.drained, uint64_t{kSlots});
  EXPECT_EQ(ca.revoked, uint64_t{kSlots});
  EXPECT_EQ(ca.completed_ok, 0u);
  EXPECT_EQ(ca.device_revoked, uint64_t{kSlots}) << "counted on the consumer too";
  EXPECT_EQ(ca.device_admitted, 0u);
  const auto cb = b.runtime_counters();
  EXPECT_EQ(cb.completed_ok, uint64_t{kSlots});
  EXPECT_EQ(cb.revoked, 0u);
  EXPECT_EQ(cb.device_admitted, uint64_t{kSlots});
  EXPECT_EQ(rt_->stats().revoked, uint64_t{kSlots});
}

TEST_P(TenantRevocationTest, QuiesceSucceedsAndTimesOutWithCounters) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle t = add(tenant_config("q"));
  MR_EXPECT_OK(t.quiesce(milliseconds(1))) << "nothing outstanding";
  hold(gate);
  Ticket ticket;
  for (int i = 0; i < 5; ++i) MR_ASSERT_OK(t.publish_slot(ops::nop(i), &ticket, waiting()));
  const Status st = t.quiesce(milliseconds(20));
  EXPECT_EQ(st.code(), Result::kQuiesceTimeout);
  EXPECT_EQ(st.value(), 5u) << "the outstanding count at timeout";
  EXPECT_EQ(t.published_count(), 5u);
  EXPECT_EQ(t.drained_count(), 0u);
  gate.open();
  MR_EXPECT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.published_count(), 5u);
  EXPECT_EQ(t.drained_count(), 5u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
  EXPECT_EQ(t.runtime_counters().completed_ok, 5u);
}

TEST_P(TenantRevocationTest, UnregisterWhileOtherThreadsPublishLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle victim = add(tenant_config("victim", 64));
  TenantHandle bystander = add(tenant_config("bystander", 64));
  std::atomic<uint64_t> accepted{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    TenantHandle copy = victim;
    threads.emplace_back([&, copy] {
      for (;;) {
        Ticket t;
        const Status st = copy.publish_slot(ops::nop(1), &t, waiting());
        if (st.code() == Result::kRevoked) return;
        if (!st) {
          unexpected.fetch_add(1);
          return;
        }
        accepted.fetch_add(1);
      }
    });
  }
  while (accepted.load() < 2000) std::this_thread::yield();
  MR_ASSERT_OK(registry_->unregister_tenant(victim));
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  MR_ASSERT_OK(victim.quiesce(scaled(seconds(30))));
  const auto c = victim.runtime_counters();
  EXPECT_EQ(c.published, accepted.load()) << "every accepted publish, no refused one";
  EXPECT_EQ(c.drained, c.published);
  EXPECT_EQ(c.completed_ok + c.revoked, c.published) << "each ran or was revoked, once";
  EXPECT_EQ(c.faulted + c.aborted, 0u);
  // Its id and window retire once the pump has seen it drained.
  const auto deadline = std::chrono::steady_clock::now() + scaled(seconds(10));
  while (registry_->stats().draining_tenants != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(registry_->stats().draining_tenants, 0u);
  Ticket t;
  Completion done;
  MR_ASSERT_OK(bystander.publish_slot(ops::nop(4), &t, waiting(true)));
  MR_ASSERT_OK(bystander.wait(t, &done, scaled(seconds(10))));
  EXPECT_EQ(done.result, 4u);
}

TEST_P(TenantRevocationTest, HandlesOutliveTheRegistryAsRevoked) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(tenant_config("orphan"));
  Ticket ticket;
  MR_ASSERT_OK(t.publish_slot(ops::nop(), &ticket, waiting()));
  registry_.reset();  // revokes and drains
  EXPECT_TRUE(t.revoked());
  EXPECT_EQ(t.drained_count(), 1u);
  MR_EXPECT_RESULT(t.publish_slot(ops::nop(), &ticket), Result::kRevoked);
  MR_EXPECT_OK(t.quiesce(milliseconds(1)));
  TenantHandle empty;
  MR_EXPECT_RESULT(empty.publish_slot(ops::nop(), &ticket), Result::kInvalidArgument);
  // The runtime reaps by itself again.
  Completion c;
  MR_EXPECT_OK(rt_->call(ops::nop(3), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 3u);
}

TEST_P(TenantRevocationTest, OneRegistryPerRuntime) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<TenantRegistry> second;
  MR_EXPECT_RESULT(TenantRegistry::create(*rt_, {}, &second), Result::kInvalidArgument);
  RegistryConfig bad;
  bad.opcode_begin = MR_OP_USER_BASE;  // would alias tenant-less user opcodes
  registry_.reset();
  MR_EXPECT_RESULT(TenantRegistry::create(*rt_, bad, &second), Result::kInvalidArgument);
}

TEST_P(TenantRevocationTest, ANewRegistryNeverReusesTheIdOfSlotsStillQueued) {
  RegistryConfig rc;
  rc.max_tenants = 1;  // one index: the second registry must reuse it
  rc.close_timeout = milliseconds(50);
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1, 1024, rc));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle old_tenant = add(tenant_config("old"));
  hold(gate);
  std::vector<Ticket> queued(3);
  for (auto& t : queued) MR_ASSERT_OK(old_tenant.publish_slot(ops::nop(1), &t, waiting(true)));
  registry_.reset();  // revokes; its drain times out: the slots sit behind the gate
  Completion c;
  MR_EXPECT_RESULT(old_tenant.wait(queued[0], &c, scaled(seconds(10))), Result::kRevoked)
      << "no pump will deliver it any more";
  MR_EXPECT_RESULT(old_tenant.quiesce(scaled(seconds(10))), Result::kRevoked);

  MR_ASSERT_OK(TenantRegistry::create(*rt_, rc, &registry_));
  TenantHandle next = add(tenant_config("next"));
  ASSERT_TRUE(next.valid());
  EXPECT_EQ(next.id() & MR_TENANT_INDEX_MASK, old_tenant.id() & MR_TENANT_INDEX_MASK);
  EXPECT_NE(next.id(), old_tenant.id()) << "same index, new generation";
  gate.open();
  Ticket t;
  MR_ASSERT_OK(next.publish_slot(ops::nop(8), &t, waiting(true)));
  MR_ASSERT_OK(next.wait(t, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 8u);
  MR_ASSERT_OK(next.quiesce(scaled(seconds(10))));
  const auto counters = next.runtime_counters();
  EXPECT_EQ(counters.published, 1u);
  EXPECT_EQ(counters.drained, 1u) << "the old tenant's slots are not credited to the new one";
  EXPECT_EQ(counters.device_admitted, 1u) << "the old tenant's slots never ran as the new one";
  EXPECT_EQ(registry_->stats().untenanted_slots, 4u) << "3 old slots + the gate";
  EXPECT_EQ(rt_->stats().faults_by_code[MR_FAULT_BAD_TENANT], 3u);
}

// Regression (issue 13): destroying the runtime before its registry used to
// crash (the pump and the handles kept calling into the freed runtime).
TEST_P(TenantRevocationTest, DestroyingTheRuntimeFirstDetachesTheRegistry) {
  ASSERT_NO_FATAL_FAILURE(start());
  Gate gate(backend());
  hold(gate);  // a queued slot and a kept ticket are still pending below
  TenantConfig config = tenant_config("left-behind");
  config.quotas.staging_bytes = 100;
  TenantHandle t = add(config);
  BufferHandle buffer = 0;
  MR_ASSERT_OK(t.alloc_buffer(64, &buffer));
  MR_ASSERT_OK(t.reserve_staging_bytes(10));
  Ticket kept;
  MR_ASSERT_OK(t.publish_slot(ops::nop(1), &kept, waiting(true)));
  rt_.reset();  // aborts; the registry must let go of it first
  EXPECT_TRUE(t.revoked());
  Ticket ticket;
  MR_EXPECT_RESULT(t.publish_slot(ops::nop(), &ticket, waiting()), Result::kRevoked);
  Completion c;
  MR_EXPECT_RESULT(t.wait(kept, &c, milliseconds(1)), Result::kRevoked);
  // That answer was final: the ticket is no longer pending (the API-sequence
  // fuzzer found release() still taking it).
  MR_EXPECT_RESULT(t.wait(kept, &c, milliseconds(1)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(t.release(kept), Result::kInvalidArgument);
  MR_EXPECT_RESULT(t.quiesce(milliseconds(1)), Result::kRevoked) << "its slot never drained";
  BufferHandle another = 0;
  MR_EXPECT_RESULT(t.alloc_buffer(64, &another), Result::kRevoked);
  MR_EXPECT_RESULT(t.free_buffer(buffer), Result::kRevoked);
  uint8_t byte = 0;
  MR_EXPECT_RESULT(t.write_buffer(buffer, 0, &byte, 1), Result::kRevoked);
  MR_EXPECT_RESULT(t.reserve_staging_bytes(1), Result::kRevoked);
  const auto q = t.quota_counters();
  EXPECT_EQ(q.staging_bytes_in_use, 0u);
  EXPECT_EQ(q.resident_handles_in_use, 0u);
  (void)t.runtime_counters();  // frozen counters; must not read the runtime
  EXPECT_EQ(registry_->pump_once(), 0u);
  TenantHandle late;
  const Status st = registry_->register_tenant(tenant_config("late"), &late);
  EXPECT_EQ(st.code(), Result::kRevoked) << st.to_string();
  EXPECT_NE(st.message().find("runtime was destroyed"), std::string::npos) << st.to_string();
  MR_EXPECT_RESULT(registry_->unregister_tenant(t), Result::kRevoked);
  EXPECT_EQ(registry_->stats().live_tenants, 0u);
  registry_.reset();  // after its runtime: no crash, nothing touched
}

MEGARING_INSTANTIATE_BACKENDS(TenantRevocationTest);

}  // namespace
}  // namespace megaring_test
