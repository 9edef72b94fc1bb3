// SPDX-License-Identifier: Apache-2.0
// The C API's registries and tenants on the CPU backend: registration,
// publishes with local opcodes (NOP echo, FILL read back), the completion
// callback, quotas with their amounts, tenant buffers, and a stale tenant
// after unregister (REVOKED, never a crash).
#include "capi_test_util.hpp"

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

namespace megaring_test {
namespace {

mr_registry_config_t manual_pump() {
  mr_registry_config_t c;
  (void)mr_registry_config_init(&c);
  c.pump = MR_PUMP_MANUAL;
  return c;
}

void count_completion(void* user_data, const mr_completion_t* completion) {
  auto* seen = static_cast<std::atomic<uint64_t>*>(user_data);
  seen->fetch_add(completion->result, std::memory_order_relaxed);
}

// A registry and a runtime, destroyed in either order the test chooses.
struct TenantSetup {
  CRuntime rt;
  mr_registry_t* registry = nullptr;
  ~TenantSetup() {
    if (registry != nullptr) (void)mr_registry_destroy(registry);
  }
};

TEST(CApiRegistry, ConfigsAndNullArguments) {
  mr_registry_config_t rc;
  ASSERT_MR(mr_registry_config_init(&rc), MR_RESULT_SUCCESS);
  EXPECT_EQ(rc.struct_size, sizeof rc);
  EXPECT_EQ(rc.pump, MR_PUMP_THREAD);
  EXPECT_EQ(rc.opcode_begin, MR_OP_TENANT_BASE);
  EXPECT_MR(mr_registry_config_init(nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_registry_config_init_sized(&rc, 4), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(rc.struct_size, sizeof rc);  // untouched
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  EXPECT_EQ(tc.opcode_cap, 16u);
  EXPECT_EQ(tc.label, nullptr);
  EXPECT_EQ(tc.on_completion, nullptr);
  EXPECT_MR(mr_tenant_config_init_sized(&tc, 4), MR_RESULT_INVALID_ARGUMENT);

  TenantSetup s;
  ASSERT_MR(s.rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_registry_t* reg = nullptr;
  EXPECT_MR(mr_registry_create(nullptr, &rc, &reg), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_registry_create(s.rt.get(), nullptr, &reg), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_registry_create(s.rt.get(), &rc, nullptr), MR_RESULT_INVALID_ARGUMENT);
  mr_registry_config_t bad = rc;
  bad.pump = 5;
  EXPECT_MR(mr_registry_create(s.rt.get(), &bad, &reg), MR_RESULT_INVALID_ARGUMENT);
  bad = rc;
  bad.struct_size = 16;
  EXPECT_MR(mr_registry_create(s.rt.get(), &bad, &reg), MR_RESULT_INVALID_ARGUMENT);
  bad = rc;
  bad.opcode_begin = 5;  // below the tenant opcode space: the C++ check
  EXPECT_MR(mr_registry_create(s.rt.get(), &bad, &reg), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(reg, nullptr);
  EXPECT_MR(mr_registry_destroy(nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_registry_pump(nullptr, nullptr), MR_RESULT_INVALID_ARGUMENT);
  mr_registry_stats_t rs{};
  rs.struct_size = sizeof rs;
  EXPECT_MR(mr_registry_stats(nullptr, &rs), MR_RESULT_INVALID_ARGUMENT);

  ASSERT_MR(mr_registry_create(s.rt.get(), &rc, &s.registry), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_registry_create(s.rt.get(), &rc, &reg), MR_RESULT_INVALID_ARGUMENT);  // one a runtime
  EXPECT_MR(mr_registry_stats(s.registry, nullptr), MR_RESULT_INVALID_ARGUMENT);
  mr_tenant_t* t = nullptr;
  EXPECT_MR(mr_tenant_register(nullptr, &tc, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_register(s.registry, nullptr, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_register(s.registry, &tc, nullptr), MR_RESULT_INVALID_ARGUMENT);
  mr_tenant_config_t badt = tc;
  badt.reserved = 1;
  EXPECT_MR(mr_tenant_register(s.registry, &badt, &t), MR_RESULT_INVALID_ARGUMENT);
  badt = tc;
  badt.struct_version = 0;
  EXPECT_MR(mr_tenant_register(s.registry, &badt, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);

  // Every tenant call with a NULL tenant.
  const mr_result_t kBad = MR_RESULT_INVALID_ARGUMENT;
  mr_slot_request_t req = nop(1);
  mr_ticket_t tk{};
  mr_completion_t c{};
  uint32_t h = 0;
  char byte = 0;
  mr_tenant_info_t info{};
  info.struct_size = sizeof info;
  mr_tenant_counters_t counters{};
  counters.struct_size = sizeof counters;
  EXPECT_MR(mr_tenant_unregister(s.registry, nullptr), kBad);
  EXPECT_MR(mr_tenant_unregister(nullptr, nullptr), kBad);
  EXPECT_MR(mr_tenant_destroy(nullptr), kBad);
  EXPECT_MR(mr_tenant_get_info(nullptr, &info), kBad);
  EXPECT_MR(mr_tenant_get_counters(nullptr, &counters), kBad);
  EXPECT_MR(mr_tenant_publish(nullptr, &req, 0, 0, &tk), kBad);
  EXPECT_MR(mr_tenant_publish_batch(nullptr, &req, 1, 0, 0, &tk), kBad);
  EXPECT_MR(mr_tenant_wait(nullptr, &tk, 0, &c), kBad);
  EXPECT_MR(mr_tenant_release(nullptr, &tk), kBad);
  EXPECT_MR(mr_tenant_quiesce(nullptr, 0), kBad);
  EXPECT_MR(mr_tenant_reserve_staging_bytes(nullptr, 1), kBad);
  EXPECT_MR(mr_tenant_release_staging_bytes(nullptr, 1), kBad);
  EXPECT_MR(mr_tenant_reserve_resident_handles(nullptr, 1), kBad);
  EXPECT_MR(mr_tenant_release_resident_handles(nullptr, 1), kBad);
  EXPECT_MR(mr_tenant_buffer_alloc(nullptr, 8, &h), kBad);
  EXPECT_MR(mr_tenant_buffer_free(nullptr, 1), kBad);
  EXPECT_MR(mr_tenant_buffer_write(nullptr, 1, 0, &byte, 1), kBad);
  EXPECT_MR(mr_tenant_buffer_read(nullptr, 1, 0, &byte, 1), kBad);
  EXPECT_MR(mr_tenant_buffer_register(nullptr, &byte, 1, &h), kBad);
  EXPECT_MR(mr_tenant_buffer_unregister(nullptr, 1, 0), kBad);
}

TEST(CApiTenant, PublishWaitCallbackCountersAndRevocation) {
  TenantSetup s;
  ASSERT_MR(s.rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_registry_config_t rc;
  ASSERT_MR(mr_registry_config_init(&rc), MR_RESULT_SUCCESS);  // pump thread
  ASSERT_MR(mr_registry_create(s.rt.get(), &rc, &s.registry), MR_RESULT_SUCCESS);
  std::atomic<uint64_t> seen{0};
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  tc.label = "model-a";
  tc.on_completion = count_completion;
  tc.user_data = &seen;
  mr_tenant_t* a = nullptr;
  ASSERT_MR(mr_tenant_register(s.registry, &tc, &a), MR_RESULT_SUCCESS);
  mr_tenant_info_t info{};
  info.struct_size = sizeof info;
  ASSERT_MR(mr_tenant_get_info(a, &info), MR_RESULT_SUCCESS);
  EXPECT_NE(info.id, 0u);
  EXPECT_GE(info.base_opcode, MR_OP_TENANT_BASE);
  EXPECT_EQ(info.opcode_cap, 16u);
  EXPECT_EQ(info.revoked, 0u);

  mr_ticket_t t{};
  mr_completion_t c{};
  const mr_slot_request_t echo = nop(7);
  ASSERT_MR(mr_tenant_publish(a, &echo, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_wait(a, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 7u);
  std::vector<mr_slot_request_t> batch;
  for (uint64_t i = 1; i <= 8; ++i) batch.push_back(nop(100 * i));
  mr_ticket_t first{};
  ASSERT_MR(mr_tenant_publish_batch(a, batch.data(), 8, 0, kLong, &first), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_publish(a, &echo, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_release(a, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_quiesce(a, kLong), MR_RESULT_SUCCESS);
  EXPECT_EQ(seen.load(), 7u + 3600u + 7u);  // the callback saw every completion once
  mr_tenant_counters_t k{};
  k.struct_size = sizeof k;
  ASSERT_MR(mr_tenant_get_counters(a, &k), MR_RESULT_SUCCESS);
  EXPECT_EQ(k.published, 10u);
  EXPECT_EQ(k.drained, 10u);
  EXPECT_EQ(k.completed_ok, 10u);
  EXPECT_EQ(k.device_admitted, 10u);
  EXPECT_EQ(k.outstanding_slots, 0u);
  EXPECT_EQ(k.max_outstanding_slots, tc.max_outstanding_slots);
  // Outside the window: refused before publishing, with the amounts.
  const mr_slot_request_t far = slot(16);
  EXPECT_MR(mr_tenant_publish(a, &far, 0, kLong, &t), MR_RESULT_OPCODE_OUT_OF_RANGE);
  uint64_t value = 0, limit = 0;
  mr_last_error_values(&value, &limit);
  EXPECT_EQ(value, 16u);
  EXPECT_EQ(limit, 16u);
  EXPECT_MR(mr_tenant_publish(a, &echo, MR_PUBLISH_FAIL_IF_FULL, kLong, &t),
            MR_RESULT_INVALID_ARGUMENT);  // not a tenant flag
  EXPECT_MR(mr_tenant_publish_batch(a, batch.data(), 65, 0, kLong, &first),
            MR_RESULT_INVALID_ARGUMENT);
  mr_registry_stats_t rs{};
  rs.struct_size = sizeof rs;
  ASSERT_MR(mr_registry_stats(s.registry, &rs), MR_RESULT_SUCCESS);
  EXPECT_EQ(rs.live_tenants, 1u);
  EXPECT_EQ(rs.drained_slots, 10u);

  // Unregistered: a stale tenant answers REVOKED, never crashes.
  ASSERT_MR(mr_tenant_unregister(s.registry, a), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_unregister(s.registry, a), MR_RESULT_REVOKED);
  EXPECT_MR(mr_tenant_publish(a, &echo, 0, kLong, &t), MR_RESULT_REVOKED);
  EXPECT_MR(mr_tenant_publish_batch(a, batch.data(), 8, 0, kLong, &first), MR_RESULT_REVOKED);
  uint32_t h = 0;
  EXPECT_MR(mr_tenant_buffer_alloc(a, 64, &h), MR_RESULT_REVOKED);
  EXPECT_MR(mr_tenant_reserve_staging_bytes(a, 1), MR_RESULT_REVOKED);
  ASSERT_MR(mr_tenant_get_info(a, &info), MR_RESULT_SUCCESS);
  EXPECT_EQ(info.revoked, 1u);
  EXPECT_MR(mr_tenant_quiesce(a, kLong), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_destroy(a), MR_RESULT_SUCCESS);
}

TEST(CApiTenant, BackpressureRingFullAndManualPump) {
  TenantSetup s;
  ASSERT_MR(s.rt.create(cpu_config(4)), MR_RESULT_SUCCESS);
  const mr_registry_config_t rc = manual_pump();
  ASSERT_MR(mr_registry_create(s.rt.get(), &rc, &s.registry), MR_RESULT_SUCCESS);
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  tc.max_outstanding_slots = 1;
  mr_tenant_t* a = nullptr;
  ASSERT_MR(mr_tenant_register(s.registry, &tc, &a), MR_RESULT_SUCCESS);
  mr_ticket_t t{};
  const mr_slot_request_t echo = nop(5);
  ASSERT_MR(mr_tenant_publish(a, &echo, 0, 0, &t), MR_RESULT_SUCCESS);
  // Nothing pumps: the one outstanding slot holds the quota.
  EXPECT_MR(mr_tenant_publish(a, &echo, 0, 0, &t), MR_RESULT_BACKPRESSURE);
  uint64_t value = 0, limit = 0;
  mr_last_error_values(&value, &limit);
  EXPECT_EQ(value, 1u);
  EXPECT_EQ(limit, 1u);
  ASSERT_MR(mr_tenant_quiesce(a, kLong), MR_RESULT_SUCCESS);  // pumps in manual mode
  // Ring 0 fills while nobody pumps: only the registry's pump reaps it.
  std::vector<mr_slot_request_t> four(4, nop(1));
  mr_ticket_t first{};
  ASSERT_MR(mr_runtime_publish_batch(s.rt.get(), four.data(), 4, 0, MR_FOREVER, &first),
            MR_RESULT_SUCCESS);
  // (A bound, not MR_FOREVER: a publish that waited despite the flag would
  // hang here; it fails with TIMEOUT instead.)
  EXPECT_MR(mr_runtime_publish(s.rt.get(), &echo, MR_PUBLISH_FAIL_IF_FULL, 1'000'000'000, &t),
            MR_RESULT_RING_FULL);
  mr_ticket_t last = first;
  last.value += 3;
  ASSERT_MR(mr_runtime_wait_done(s.rt.get(), &last, kLong), MR_RESULT_SUCCESS);
  uint64_t drained = 0;
  ASSERT_MR(mr_registry_pump(s.registry, &drained), MR_RESULT_SUCCESS);
  EXPECT_EQ(drained, 4u);
  ASSERT_MR(mr_registry_pump(s.registry, nullptr), MR_RESULT_SUCCESS);  // NULL: not wanted
  EXPECT_MR(mr_runtime_publish(s.rt.get(), &echo, MR_PUBLISH_FAIL_IF_FULL, MR_FOREVER, &t),
            MR_RESULT_SUCCESS);
  mr_registry_stats_t rs{};
  rs.struct_size = sizeof rs;
  ASSERT_MR(mr_registry_stats(s.registry, &rs), MR_RESULT_SUCCESS);
  EXPECT_EQ(rs.untenanted_slots, 4u);
  EXPECT_MR(mr_tenant_destroy(a), MR_RESULT_SUCCESS);
}

TEST(CApiTenant, QuotasAndBuffers) {
  TenantSetup s;
  ASSERT_MR(s.rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  const mr_registry_config_t rc = manual_pump();
  ASSERT_MR(mr_registry_create(s.rt.get(), &rc, &s.registry), MR_RESULT_SUCCESS);
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  tc.staging_bytes = 1000;
  tc.resident_handles = 3;
  mr_tenant_t* a = nullptr;
  mr_tenant_t* b = nullptr;
  ASSERT_MR(mr_tenant_register(s.registry, &tc, &a), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_register(s.registry, &tc, &b), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_reserve_staging_bytes(a, 600), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_reserve_staging_bytes(a, 401), MR_RESULT_STAGING_BACKPRESSURE);
  EXPECT_MR(mr_tenant_release_staging_bytes(a, 601), MR_RESULT_RESOURCE_UNDERFLOW);
  ASSERT_MR(mr_tenant_release_staging_bytes(a, 600), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_reserve_resident_handles(a, 1), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_release_resident_handles(a, 2), MR_RESULT_RESOURCE_UNDERFLOW);

  uint32_t buf = 0;
  ASSERT_MR(mr_tenant_buffer_alloc(a, 128, &buf), MR_RESULT_SUCCESS);
  mr_ticket_t t{};
  mr_completion_t c{};
  const mr_slot_request_t fill = slot(MR_OP_FILL, buf, 8, 32, 0x3C);
  ASSERT_MR(mr_tenant_publish(a, &fill, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_wait(a, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  std::vector<unsigned char> host(128, 0xEE);
  ASSERT_MR(mr_tenant_buffer_read(a, buf, 0, host.data(), 128), MR_RESULT_SUCCESS);
  for (size_t i = 0; i < 128; ++i) ASSERT_EQ(host[i], i >= 8 && i < 40 ? 0x3C : 0) << i;
  const uint64_t word = 0x1122334455667788ull;
  ASSERT_MR(mr_tenant_buffer_write(a, buf, 120, &word, 8), MR_RESULT_SUCCESS);
  uint64_t back = 0;
  ASSERT_MR(mr_tenant_buffer_read(a, buf, 120, &back, 8), MR_RESULT_SUCCESS);
  EXPECT_EQ(back, word);
  EXPECT_MR(mr_tenant_buffer_read(a, buf, 121, &back, 8), MR_RESULT_INVALID_ARGUMENT);  // range
  EXPECT_MR(mr_tenant_buffer_read(b, buf, 0, &back, 8), MR_RESULT_INVALID_ARGUMENT);  // not b's
  EXPECT_MR(mr_tenant_buffer_write(a, buf, 0, nullptr, 8), MR_RESULT_INVALID_ARGUMENT);
  // b's slot naming a's buffer faults; a's bytes are untouched.
  const mr_slot_request_t steal = slot(MR_OP_FILL, buf, 0, 8, 0x99);
  ASSERT_MR(mr_tenant_publish(b, &steal, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_wait(b, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  ASSERT_MR(mr_tenant_buffer_read(a, buf, 0, host.data(), 8), MR_RESULT_SUCCESS);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(host[i], 0) << i;

  std::vector<uint64_t> mine(4, 0);
  uint32_t ext = 0;
  ASSERT_MR(mr_tenant_buffer_register(a, mine.data(), 32, &ext), MR_RESULT_SUCCESS);
  uint32_t third = 0;  // 1 reserved + 2 buffers = the quota of 3
  EXPECT_MR(mr_tenant_buffer_alloc(a, 8, &third), MR_RESULT_RESIDENT_BACKPRESSURE);
  const mr_slot_request_t add = slot(MR_OP_ATOMIC_ADD, ext, 16, 41);
  ASSERT_MR(mr_tenant_publish(a, &add, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_wait(a, &t, kLong, &c), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_buffer_unregister(a, ext, kLong), MR_RESULT_SUCCESS);
  EXPECT_EQ(mine[2], 41u);
  EXPECT_MR(mr_tenant_buffer_unregister(a, ext, kLong), MR_RESULT_INVALID_ARGUMENT);
  mr_tenant_counters_t k{};
  k.struct_size = sizeof k;
  ASSERT_MR(mr_tenant_get_counters(a, &k), MR_RESULT_SUCCESS);
  EXPECT_EQ(k.resident_buffers, 1u);
  EXPECT_EQ(k.resident_handles_reserved, 1u);
  EXPECT_EQ(k.resident_handles_in_use, 2u);
  ASSERT_MR(mr_tenant_buffer_free(a, buf), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_buffer_free(a, buf), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_destroy(a), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_destroy(b), MR_RESULT_SUCCESS);
}

TEST(CApiTenant, HandlesOutliveTheirRuntime) {
  TenantSetup s;
  ASSERT_MR(s.rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  const mr_registry_config_t rc = manual_pump();
  ASSERT_MR(mr_registry_create(s.rt.get(), &rc, &s.registry), MR_RESULT_SUCCESS);
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  mr_tenant_t* a = nullptr;
  ASSERT_MR(mr_tenant_register(s.registry, &tc, &a), MR_RESULT_SUCCESS);
  ASSERT_MR(s.rt.destroy(), MR_RESULT_SUCCESS);  // the runtime first, then the registry
  mr_ticket_t t{};
  const mr_slot_request_t echo = nop(1);
  EXPECT_MR(mr_tenant_publish(a, &echo, 0, 0, &t), MR_RESULT_REVOKED);
  uint64_t drained = 9;
  EXPECT_MR(mr_registry_pump(s.registry, &drained), MR_RESULT_SUCCESS);
  EXPECT_EQ(drained, 0u);
  mr_tenant_t* late = nullptr;
  EXPECT_MR(mr_tenant_register(s.registry, &tc, &late), MR_RESULT_REVOKED);
  EXPECT_MR(mr_registry_destroy(s.registry), MR_RESULT_SUCCESS);
  s.registry = nullptr;
  EXPECT_MR(mr_tenant_publish(a, &echo, 0, 0, &t), MR_RESULT_REVOKED);
  EXPECT_MR(mr_tenant_destroy(a), MR_RESULT_SUCCESS);
}

}  // namespace
}  // namespace megaring_test
