// SPDX-License-Identifier: Apache-2.0
// Tenant admission: ids and opcode windows (distinct, disjoint, unique under
// 32 registering threads), the registry's limits and the values its
// refusals carry, and what the consumer enforces on a tenant's slot: its
// window, the tenant-local opcode it runs, a handler's out-of-range
// outcome, and only its own buffers.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tenant_fixture.hpp"

namespace megaring_test {
namespace {

class TenantAdmissionTest : public TenantTest {};

TEST_P(TenantAdmissionTest, DistinctIdsAndDisjointWindows) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::vector<TenantHandle> tenants;
  std::set<uint32_t> ids;
  for (uint32_t i = 0; i < 20; ++i) {
    tenants.push_back(add(tenant_config("t" + std::to_string(i), 64, 1 + (i * 37) % 300)));
    ASSERT_TRUE(tenants.back().valid());
    EXPECT_NE(tenants.back().id(), 0u);
    EXPECT_NE(tenants.back().id() & MR_TENANT_INDEX_MASK, 0u) << "index 0 is never a tenant";
    EXPECT_TRUE(ids.insert(tenants.back().id()).second) << "duplicate id";
    EXPECT_EQ(tenants.back().label(), "t" + std::to_string(i));
  }
  expect_disjoint_windows(tenants);
  for (const TenantHandle& t : tenants) {
    uint32_t global = 0;
    MR_EXPECT_OK(t.global_opcode(0, &global));
    EXPECT_EQ(global, t.base_opcode());
    MR_EXPECT_OK(t.global_opcode(t.opcode_cap() - 1, &global));
    EXPECT_EQ(global, t.base_opcode() + t.opcode_cap() - 1);
  }
  EXPECT_EQ(registry_->stats().live_tenants, 20u);
}

TEST_P(TenantAdmissionTest, ThirtyTwoThreadsRegisteringAtOnceGetUniqueIdsAndWindows) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr int kThreads = 32;
  std::vector<TenantHandle> handles(kThreads);
  std::vector<Status> results(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      results[i] = registry_->register_tenant(tenant_config("r" + std::to_string(i), 8, 3 + i), &handles[i]);
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint32_t> ids;
  for (int i = 0; i < kThreads; ++i) {
    MR_ASSERT_OK(results[i]) << "thread " << i;
    EXPECT_TRUE(ids.insert(handles[i].id()).second) << "duplicate id " << handles[i].id();
    EXPECT_EQ(handles[i].opcode_cap(), 3u + i);
  }
  expect_disjoint_windows(handles);
  // Every one of them is live on the consumer.
  for (int i = 0; i < kThreads; ++i) {
    Ticket t;
    Completion c;
    MR_ASSERT_OK(handles[i].publish_slot(ops::nop(i), &t, waiting(true)));
    MR_ASSERT_OK(handles[i].wait(t, &c, scaled(seconds(10))));
    EXPECT_TRUE(c.ok());
    EXPECT_EQ(c.result, uint64_t(i));
  }
}

TEST_P(TenantAdmissionTest, RegistryFullAtTheTableAndInTheOpcodeSpace) {
  RegistryConfig rc;
  rc.max_tenants = 3;
  rc.opcode_end = MR_OP_TENANT_BASE + 100;
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, 0, 1024, rc));
  TenantHandle t1 = add(tenant_config("1", 8, 40));
  TenantHandle t2 = add(tenant_config("2", 8, 40));
  TenantHandle t3;
  Status st = registry_->register_tenant(tenant_config("3", 8, 40), &t3);
  EXPECT_EQ(st.code(), Result::kRegistryFull) << "only 20 opcodes left: " << st.to_string();
  MR_ASSERT_OK(registry_->register_tenant(tenant_config("3", 8, 20), &t3));
  TenantHandle t4;
  st = registry_->register_tenant(tenant_config("4", 8, 1), &t4);
  EXPECT_EQ(st.code(), Result::kRegistryFull) << "three tenants fill the table: " << st.to_string();
  EXPECT_FALSE(t4.valid());
  expect_disjoint_windows({t1, t2, t3});
  // A revoked tenant's id and window come back once it drained, under a new
  // generation: its old id never names the new tenant.
  const uint32_t old_id = t2.id();
  MR_ASSERT_OK(registry_->unregister_tenant(t2));
  MR_ASSERT_OK(t2.quiesce(scaled(seconds(10))));
  MR_ASSERT_OK(registry_->register_tenant(tenant_config("5", 8, 40), &t4));
  EXPECT_EQ(t4.id() & MR_TENANT_INDEX_MASK, old_id & MR_TENANT_INDEX_MASK);
  EXPECT_NE(t4.id(), old_id);
  expect_disjoint_windows({t1, t3, t4});
  Ticket t;
  Completion c;
  MR_ASSERT_OK(t4.publish_slot(ops::nop(9), &t, waiting(true)));
  MR_ASSERT_OK(t4.wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 9u);
  SlotRequest stale = ops::nop();
  stale.tenant = old_id;
  stale.opcode = t4.base_opcode() + MR_OP_NOP;
  MR_ASSERT_OK(rt_->call(stale, &c, scaled(seconds(10))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_TENANT) << "the old generation is dead";
}

// Quota refusals carry what there is and what was asked (status.hpp);
// an error the runtime returns through a tenant call is that error itself,
// with no amounts.
TEST_P(TenantAdmissionTest, RefusalsCarryTheirValueAndLimit) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantConfig config = tenant_config("amounts");
  config.quotas.staging_bytes = 100;
  TenantHandle t = add(config);
  MR_ASSERT_OK(t.reserve_staging_bytes(10));
  const Status under = t.release_staging_bytes(11);
  EXPECT_EQ(under.code(), Result::kResourceUnderflow) << under.to_string();
  EXPECT_EQ(under.value(), 10u) << "reserved";
  EXPECT_EQ(under.limit(), 11u) << "asked back";
  const Status over = t.reserve_staging_bytes(91);
  EXPECT_EQ(over.code(), Result::kStagingBackpressure) << over.to_string();
  EXPECT_EQ(over.value(), 10u) << "in use";
  EXPECT_EQ(over.limit(), 100u) << "quota";
  const Status copy = over;  // a copy keeps them
  EXPECT_EQ(copy.value(), 10u);
  EXPECT_EQ(copy.limit(), 100u);
  BufferHandle buffer = 0;
  MR_ASSERT_OK(t.alloc_buffer(8, &buffer));
  uint8_t bytes[16] = {};
  const Status range = t.write_buffer(buffer, 4, bytes, sizeof bytes);
  EXPECT_EQ(range.code(), Result::kInvalidArgument) << "the runtime's own code";
  EXPECT_EQ(range.value(), 0u);
  EXPECT_EQ(range.limit(), 0u);
}

TEST_P(TenantAdmissionTest, OutOfRangeLocalOpcodeIsRefusedBeforeAnyCounterMoves) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(tenant_config("small", 8, 10));
  uint32_t global = 12345;
  const Status st = t.global_opcode(10, &global);
  EXPECT_EQ(st.code(), Result::kOpcodeOutOfRange);
  EXPECT_EQ(st.value(), 10u);
  EXPECT_EQ(st.limit(), 10u);
  EXPECT_EQ(global, 12345u) << "untouched on failure";
  Ticket ticket;
  MR_EXPECT_RESULT(t.publish_slot(10, {1, 2}, &ticket), Result::kOpcodeOutOfRange);
  MR_EXPECT_RESULT(t.publish_slot(~0u, {}, &ticket), Result::kOpcodeOutOfRange);
  // A batch with one bad opcode publishes nothing.
  SlotRequest batch[3] = {ops::nop(1), ops::nop(2), ops::nop(3)};
  batch[2].opcode = 10;
  MR_EXPECT_RESULT(t.publish_batch(batch, 3, &ticket), Result::kOpcodeOutOfRange);
  EXPECT_EQ(t.published_count(), 0u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
  MR_EXPECT_RESULT(t.publish_slot(MR_OP_NOP, {1, 2, 3, 4, 5, 6}, &ticket), Result::kInvalidArgument);
}

// A completion record's stamp holds 2 status bits and 6 fault bits
// (slot_abi.h): a handler that reports a status past REVOKED, or a fault
// code past MR_FAULT_MAX, reads as FAULT / BAD_ARGUMENT (result 0), never
// as another outcome; codes in range arrive as reported.
TEST_P(TenantAdmissionTest, AHandlersOutOfRangeStatusOrFaultReadsAsBadArgument) {
  const Status created = Runtime::create(base_config(), tenant_test_consumer(), &rt_);
  ASSERT_TRUE(created.is_ok()) << created.to_string();
  struct Case {
    uint64_t status, fault;
    uint16_t want_status, want_fault;
    uint64_t want_result;
  };
  const Case cases[] = {
      {MR_STATUS_OK, MR_FAULT_NONE, MR_STATUS_OK, MR_FAULT_NONE, 77},
      {MR_STATUS_FAULT, MR_FAULT_MISALIGNED, MR_STATUS_FAULT, MR_FAULT_MISALIGNED, 77},
      {MR_STATUS_FAULT, MR_FAULT_MAX, MR_STATUS_FAULT, MR_FAULT_MAX, 77},
      {MR_STATUS_FAULT, MR_FAULT_MAX + 1, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 77},
      {MR_STATUS_FAULT, 0xFFFF, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 77},
      {MR_STATUS_REVOKED + 1, MR_FAULT_NONE, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 0},
      {0xFFFF, MR_FAULT_NONE, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 0},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE("status " + std::to_string(k.status) + " fault " + std::to_string(k.fault));
    SlotRequest r;
    r.opcode = kOpReport;
    r.args[0] = 77;
    r.args[1] = k.status;
    r.args[2] = k.fault;
    Completion c;
    MR_ASSERT_OK(rt_->call(r, &c, scaled(seconds(10))));
    EXPECT_EQ(c.status, k.want_status);
    EXPECT_EQ(c.fault, k.want_fault);
    EXPECT_EQ(c.result, k.want_result);
  }
}

TEST_P(TenantAdmissionTest, PublishStampsTenantAndGlobalOpcode) {
  // Manual pump: nothing recycles the positions, so the slots can be read back.
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual));
  TenantHandle a = add(tenant_config("a", 16, 512));
  TenantHandle b = add(tenant_config("b", 16, 16));
  Ticket ta, tb;
  MR_ASSERT_OK(a.publish_slot(ops::nop(41), &ta, waiting(true)));
  MR_ASSERT_OK(b.publish_slot(MR_OP_NOP, {42}, &tb, waiting(true)));
  mr_slot slot{};
  MR_ASSERT_OK(RuntimeInternals::peek_slot(*rt_, ta.value, &slot));
  EXPECT_EQ(slot.tenant, a.id());
  EXPECT_EQ(slot.opcode, a.base_opcode() + MR_OP_NOP);
  EXPECT_EQ(slot.args[0], 41u);
  MR_ASSERT_OK(RuntimeInternals::peek_slot(*rt_, tb.value, &slot));
  EXPECT_EQ(slot.tenant, b.id());
  EXPECT_EQ(slot.opcode, b.base_opcode() + MR_OP_NOP);
  Completion c;
  MR_ASSERT_OK(a.wait(ta, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 41u) << "the consumer ran the local NOP";
  MR_ASSERT_OK(b.wait(tb, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 42u);
  // The handler sees the tenant-local opcode and the tenant id.
  Ticket ti;
  MR_ASSERT_OK(a.publish_slot(kOpIdentify, {}, &ti, waiting(true)));
  MR_ASSERT_OK(a.wait(ti, &c, scaled(seconds(10))));
  ASSERT_TRUE(c.ok()) << "status " << c.status << " fault " << c.fault;
  EXPECT_EQ(c.result, (static_cast<uint64_t>(a.id()) << 32) | kOpIdentify);
  // b's window is too small for user opcodes.
  MR_EXPECT_RESULT(b.publish_slot(kOpIdentify, {}, &ti), Result::kOpcodeOutOfRange);
}

TEST_P(TenantAdmissionTest, OutOfWindowSlotWrittenIntoTheRingFaultsOnTheConsumer) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle a = add(tenant_config("a"));
  TenantHandle b = add(tenant_config("b"));
  auto raw = [&](uint32_t tenant, uint32_t opcode) {
    SlotRequest r = ops::nop(77);
    r.tenant = tenant;
    r.opcode = opcode;
    Completion c;
    const Status st = rt_->call(r, &c, scaled(seconds(10)));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return c;
  };
  Completion c = raw(a.id(), b.base_opcode() + MR_OP_NOP);  // a's id, b's window
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(a.id(), a.base_opcode() + a.opcode_cap());  // one past a's window
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(a.id(), MR_OP_NOP);  // a tenant slot with a tenant-less opcode
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(0, a.base_opcode() + MR_OP_NOP);  // tenant-less slot inside a window
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(0xFFFF, MR_OP_TENANT_BASE);  // index beyond the table
  EXPECT_EQ(c.fault, MR_FAULT_BAD_TENANT);
  c = raw(a.id() + (1u << MR_TENANT_INDEX_BITS), a.base_opcode() + MR_OP_NOP);  // wrong generation
  EXPECT_EQ(c.fault, MR_FAULT_BAD_TENANT);
  c = raw(a.id(), a.base_opcode() + MR_OP_NOP);  // the right window runs
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 77u);
  const auto ca = a.runtime_counters();
  EXPECT_EQ(ca.device_out_of_window, 3u);
  EXPECT_EQ(ca.device_admitted, 1u);
  EXPECT_EQ(ca.published, 0u) << "raw slots are not the tenant's own publishes";
  const auto cb = b.runtime_counters();
  EXPECT_EQ(cb.device_out_of_window + cb.device_admitted + cb.device_revoked, 0u);
  // The consumer kept running: a normal tenant slot still works.
  Ticket t;
  MR_ASSERT_OK(b.publish_slot(ops::nop(5), &t, waiting(true)));
  MR_ASSERT_OK(b.wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 5u);
  const auto stats = rt_->stats();
  EXPECT_EQ(stats.faults_by_code[MR_FAULT_OUT_OF_WINDOW], 4u);
  EXPECT_EQ(stats.faults_by_code[MR_FAULT_BAD_TENANT], 2u);
  EXPECT_EQ(registry_->stats().untenanted_slots, 7u);
}

TEST_P(TenantAdmissionTest, TenantSlotsMayNameOnlyTheirOwnBuffers) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle a = add(tenant_config("a"));
  TenantHandle b = add(tenant_config("b"));
  BufferHandle a_buf = 0;
  MR_ASSERT_OK(a.alloc_buffer(256, &a_buf));
  Ticket t;
  Completion c;
  MR_ASSERT_OK(b.publish_slot(ops::fill(a_buf, 0, 256, 0xEE), &t, waiting(true)));
  MR_ASSERT_OK(b.wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE) << "b may not write a's buffer";
  MR_ASSERT_OK(a.publish_slot(ops::fill(a_buf, 0, 256, 0x11), &t, waiting(true)));
  MR_ASSERT_OK(a.wait(t, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
  std::vector<uint8_t> bytes(256);
  MR_ASSERT_OK(a.read_buffer(a_buf, 0, bytes.data(), bytes.size()));
  EXPECT_EQ(std::count(bytes.begin(), bytes.end(), 0x11), 256);
  MR_EXPECT_RESULT(b.read_buffer(a_buf, 0, bytes.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(b.free_buffer(a_buf), Result::kInvalidArgument);
  // The runtime itself (tenant-less) may still use it.
  MR_ASSERT_OK(rt_->call(ops::store_u32(a_buf, 0, 7), &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
}

MEGARING_INSTANTIATE_BACKENDS(TenantAdmissionTest);

}  // namespace
}  // namespace megaring_test
