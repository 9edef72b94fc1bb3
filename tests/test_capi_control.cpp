// SPDX-License-Identifier: Apache-2.0
// The C API's newer surface on the CPU backend: mr_runtime_config_t
// version 2 (and version-1 callers unchanged), control statistics, opcode
// grants (at registration, set, get) and unregistering a buffer that a
// slot in flight may still use (MR_UNREGISTER_FAIL_IF_IN_USE).
#include "capi_test_util.hpp"

#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "megaring/runtime.hpp"

namespace megaring_test {
namespace {

constexpr uint32_t kConfigV1Size = 80;
constexpr uint32_t kTenantConfigV1Size = offsetof(mr_tenant_config_t, grants_mode);

TEST(CApiConfigV2, InitFillsTheNewDefaults) {
  mr_runtime_config_t c;
  std::memset(&c, 0xA5, sizeof c);
  ASSERT_MR(mr_runtime_config_init(&c), MR_RESULT_SUCCESS);
  const megaring::Config d;
  EXPECT_EQ(c.struct_version, 2u);
  EXPECT_EQ(c.staging_arena_bytes, d.staging_arena_bytes);
  EXPECT_EQ(c.max_regions, d.max_regions);
  EXPECT_EQ(c.dump_on_wait_timeout, 0u);
  EXPECT_EQ(c.control_timeout_ns, d.control_timeout.count());
  // A version-1 caller's 80 bytes: version 1, and nothing written past them.
  std::memset(&c, 0xA5, sizeof c);
  ASSERT_MR(mr_runtime_config_init_sized(&c, kConfigV1Size), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.struct_size, kConfigV1Size);
  EXPECT_EQ(c.struct_version, 1u);
  EXPECT_EQ(c.ring_capacity, d.ring_capacity);
  const auto* bytes = reinterpret_cast<const unsigned char*>(&c);
  for (size_t i = kConfigV1Size; i < sizeof c; ++i) ASSERT_EQ(bytes[i], 0xA5) << "byte " << i;
}

TEST(CApiConfigV2, AVersion1CallerGetsTheDefaults) {
  // Version 1 as an old binary passes it: 80 bytes, then whatever memory.
  mr_runtime_config_t c;
  std::memset(&c, 0xA5, sizeof c);
  ASSERT_MR(mr_runtime_config_init_sized(&c, kConfigV1Size), MR_RESULT_SUCCESS);
  c.backend = MR_BACKEND_CPU;
  c.ring_capacity = 64;
  CRuntime rt;
  ASSERT_MR(rt.create(c), MR_RESULT_SUCCESS);
  uint32_t h = 0;  // no staging arena: the default
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, &h), MR_RESULT_OUT_OF_MEMORY);
  mr_completion_t done{};
  const mr_slot_request_t r = nop(5);
  ASSERT_MR(mr_runtime_call(rt.get(), &r, kLong, &done), MR_RESULT_SUCCESS);
  EXPECT_EQ(done.result, 5u);
}

TEST(CApiConfigV2, CreateChecksTheNewFields) {
  mr_runtime_t* rt = nullptr;
  const mr_runtime_config_t good = cpu_config(64);
  mr_runtime_config_t c = good;
  c.struct_size = kConfigV1Size;  // version 2 claimed, version 1's size
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_NE(std::string(mr_last_error()).find("needs struct_size >= 104"), std::string::npos)
      << mr_last_error();
  c = good;
  c.struct_version = 1;  // version 1 with a version-2 field set
  c.staging_arena_bytes = 4096;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.dump_on_wait_timeout = 2;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.control_timeout_ns = -1;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.control_timeout_ns = 3601ll * 1000 * 1000 * 1000;  // past kMaxControlTimeout
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.staging_arena_bytes = (1ull << 40) + 1;  // past kMaxStagingArenaBytes
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  c = good;
  c.max_regions = 0xFFFFFFFFu;
  EXPECT_MR(mr_runtime_create(&c, &rt), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(rt, nullptr);
  // Zero is the default for max_regions and control_timeout_ns.
  c = good;
  c.max_regions = 0;
  c.control_timeout_ns = 0;
  ASSERT_MR(mr_runtime_create(&c, &rt), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_runtime_destroy(rt), MR_RESULT_SUCCESS);
}

TEST(CApiConfigV2, TheNewFieldsReachTheRuntime) {
  // max_regions = 1 and an arena: one region, then the table is full.
  mr_runtime_config_t c = cpu_config(64);
  c.staging_arena_bytes = 4096;
  c.max_regions = 1;
  CRuntime rt;
  ASSERT_MR(rt.create(c), MR_RESULT_SUCCESS);
  uint32_t a = 0, b = 0;
  ASSERT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, &a), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, &b), MR_RESULT_OUT_OF_MEMORY);
}

struct LogCapture {
  std::mutex mutex;
  std::vector<std::string> messages;
  bool has(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const std::string& m : messages)
      if (m.find(text) != std::string::npos) return true;
    return false;
  }
};

void capture_log(int32_t, const char* message, void* user) {
  auto* log = static_cast<LogCapture*>(user);
  std::lock_guard<std::mutex> lock(log->mutex);
  log->messages.emplace_back(message);
}

TEST(CApiConfigV2, DumpOnWaitTimeoutLogsTheState) {
  for (uint32_t dump : {0u, 1u}) {
    LogCapture log;
    ASSERT_MR(mr_set_log_callback(MR_LOG_WARN, &capture_log, &log), MR_RESULT_SUCCESS);
    mr_runtime_config_t c = cpu_config(64);
    c.workers = 1;
    c.dump_on_wait_timeout = dump;
    CRuntime rt;
    ASSERT_MR(rt.create(c), MR_RESULT_SUCCESS);
    const mr_slot_request_t hold = slot(MR_OP_DELAY_NS, MR_DELAY_MAX_NS);
    mr_ticket_t t{};
    ASSERT_MR(mr_runtime_publish(rt.get(), &hold, 0, kLong, &t), MR_RESULT_SUCCESS);
    EXPECT_MR(mr_runtime_wait_done(rt.get(), &t, 0), MR_RESULT_TIMEOUT);
    EXPECT_EQ(log.has("dump: megaring state"), dump == 1) << "dump_on_wait_timeout " << dump;
    EXPECT_MR(mr_runtime_wait_done(rt.get(), &t, kLong), MR_RESULT_SUCCESS);
    EXPECT_MR(rt.destroy(), MR_RESULT_SUCCESS);
    ASSERT_MR(mr_set_log_callback(MR_LOG_NONE, nullptr, nullptr), MR_RESULT_SUCCESS);
  }
}

// A runtime, a registry and one tenant, destroyed in reverse.
struct TenantSetup {
  CRuntime rt;
  mr_registry_t* registry = nullptr;
  mr_tenant_t* tenant = nullptr;
  ~TenantSetup() {
    if (tenant != nullptr) (void)mr_tenant_destroy(tenant);
    if (registry != nullptr) (void)mr_registry_destroy(registry);
  }
  mr_result_t start(const mr_tenant_config_t& tc, uint32_t workers = 2) {
    mr_runtime_config_t c = cpu_config(64);
    c.workers = workers;
    mr_result_t r = rt.create(c);
    if (r != MR_RESULT_SUCCESS) return r;
    mr_registry_config_t rc;
    (void)mr_registry_config_init(&rc);
    if ((r = mr_registry_create(rt.get(), &rc, &registry)) != MR_RESULT_SUCCESS) return r;
    return mr_tenant_register(registry, &tc, &tenant);
  }
  // The fault of one tenant slot (0: it completed OK).
  uint16_t fault_of(const mr_slot_request_t& r) {
    mr_ticket_t t{};
    mr_completion_t c{};
    EXPECT_MR(mr_tenant_publish(tenant, &r, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
    EXPECT_MR(mr_tenant_wait(tenant, &t, kLong, &c), MR_RESULT_SUCCESS);
    return c.fault;
  }
};

mr_control_stats_t control_stats(mr_runtime_t* rt) {
  mr_control_stats_t s{};
  s.struct_size = sizeof s;
  EXPECT_MR(mr_runtime_control_stats(rt, &s), MR_RESULT_SUCCESS);
  return s;
}

TEST(CApiGrants, AtRegistrationSetAndGet) {
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  EXPECT_EQ(tc.struct_version, 2u);
  EXPECT_EQ(tc.grants_mode, MR_GRANTS_ALL);
  const uint32_t only_nop[] = {MR_OP_NOP};
  tc.grants_mode = MR_GRANTS_ONLY;
  tc.grant_count = 1;
  tc.grant_opcodes = only_nop;
  TenantSetup s;
  ASSERT_MR(s.start(tc), MR_RESULT_SUCCESS);
  uint32_t buf = 0;
  ASSERT_MR(mr_tenant_buffer_alloc(s.tenant, 64, &buf), MR_RESULT_SUCCESS);
  const mr_slot_request_t store = slot(MR_OP_STORE_U32, buf, 0, 7);
  EXPECT_EQ(s.fault_of(nop(1)), MR_FAULT_NONE);
  EXPECT_EQ(s.fault_of(store), MR_FAULT_NOT_GRANTED);
  uint32_t word = 1;
  ASSERT_MR(mr_tenant_buffer_read(s.tenant, buf, 0, &word, 4), MR_RESULT_SUCCESS);
  EXPECT_EQ(word, 0u) << "a slot that was not granted wrote nothing";
  mr_tenant_counters_t counters{};
  counters.struct_size = sizeof counters;
  ASSERT_MR(mr_tenant_get_counters(s.tenant, &counters), MR_RESULT_SUCCESS);
  EXPECT_EQ(counters.device_not_granted, 1u);
  uint32_t mode = 99, count = 99, list[4] = {};
  ASSERT_MR(mr_tenant_get_grants(s.tenant, &mode, list, 4, &count), MR_RESULT_SUCCESS);
  EXPECT_EQ(mode, MR_GRANTS_ONLY);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(list[0], MR_OP_NOP);

  // Set: everything, then a list (sorted, duplicates gone), each a control
  // operation the runtime counts.
  const uint64_t ops_before = control_stats(s.rt.get()).operations;
  ASSERT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ALL, nullptr, 0), MR_RESULT_SUCCESS);
  EXPECT_EQ(s.fault_of(store), MR_FAULT_NONE);
  ASSERT_MR(mr_tenant_buffer_read(s.tenant, buf, 0, &word, 4), MR_RESULT_SUCCESS);
  EXPECT_EQ(word, 7u);
  ASSERT_MR(mr_tenant_get_grants(s.tenant, &mode, nullptr, 0, &count), MR_RESULT_SUCCESS);
  EXPECT_EQ(mode, MR_GRANTS_ALL);
  EXPECT_EQ(count, 0u);
  const uint32_t several[] = {MR_OP_STORE_U32, MR_OP_DELAY_NS, MR_OP_STORE_U32};
  ASSERT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ONLY, several, 3), MR_RESULT_SUCCESS);
  EXPECT_EQ(s.fault_of(nop(2)), MR_FAULT_NOT_GRANTED);
  EXPECT_EQ(s.fault_of(store), MR_FAULT_NONE);
  std::memset(list, 0, sizeof list);
  ASSERT_MR(mr_tenant_get_grants(s.tenant, &mode, list, 1, &count), MR_RESULT_SUCCESS);
  EXPECT_EQ(count, 2u) << "the whole count, though only one fitted";
  EXPECT_EQ(list[0], MR_OP_STORE_U32);
  EXPECT_EQ(list[1], 0u) << "nothing written past capacity";
  const mr_control_stats_t cs = control_stats(s.rt.get());
  EXPECT_EQ(cs.operations, ops_before + 2);
  EXPECT_LE(cs.last_ns, cs.max_ns);
  EXPECT_LE(cs.max_ns, cs.total_ns);
  EXPECT_EQ(cs.rolled_back + cs.cancelled, 0u);

  // Hostile: refused, the grants unchanged.
  constexpr mr_result_t kBad = MR_RESULT_INVALID_ARGUMENT;
  EXPECT_MR(mr_tenant_set_grants(nullptr, MR_GRANTS_ALL, nullptr, 0), kBad);
  EXPECT_MR(mr_tenant_set_grants(s.tenant, 7, nullptr, 0), kBad);
  EXPECT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ALL, several, 1), kBad);
  EXPECT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ONLY, nullptr, 2), kBad);
  EXPECT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ONLY, several, MR_GRANTS_MAX_LIST + 1), kBad);
  const uint32_t outside[] = {16};  // the window is 16 wide
  EXPECT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ONLY, outside, 1),
            MR_RESULT_OPCODE_OUT_OF_RANGE);
  EXPECT_MR(mr_tenant_get_grants(nullptr, &mode, list, 4, &count), kBad);
  EXPECT_MR(mr_tenant_get_grants(s.tenant, nullptr, list, 4, &count), kBad);
  EXPECT_MR(mr_tenant_get_grants(s.tenant, &mode, nullptr, 4, &count), kBad);
  EXPECT_MR(mr_tenant_get_grants(s.tenant, &mode, list, 4, nullptr), kBad);
  ASSERT_MR(mr_tenant_get_grants(s.tenant, &mode, list, 4, &count), MR_RESULT_SUCCESS);
  EXPECT_EQ(mode, MR_GRANTS_ONLY);
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(control_stats(s.rt.get()).operations, ops_before + 2) << "refusals ran nothing";

  // Revoked: set refused, get still answers.
  ASSERT_MR(mr_tenant_unregister(s.registry, s.tenant), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_set_grants(s.tenant, MR_GRANTS_ALL, nullptr, 0), MR_RESULT_REVOKED);
  ASSERT_MR(mr_tenant_get_grants(s.tenant, &mode, list, 4, &count), MR_RESULT_SUCCESS);
  EXPECT_EQ(count, 2u);
}

TEST(CApiGrants, RegistrationChecksTheGrantsAndTheVersion) {
  TenantSetup s;
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  ASSERT_MR(s.start(tc), MR_RESULT_SUCCESS);
  mr_tenant_t* t = nullptr;
  mr_tenant_config_t bad = tc;
  bad.grants_mode = 3;
  EXPECT_MR(mr_tenant_register(s.registry, &bad, &t), MR_RESULT_INVALID_ARGUMENT);
  bad = tc;
  bad.grants_mode = MR_GRANTS_ONLY;
  bad.grant_count = 2;  // and no list
  EXPECT_MR(mr_tenant_register(s.registry, &bad, &t), MR_RESULT_INVALID_ARGUMENT);
  const uint32_t outside[] = {40};
  bad.grant_count = 1;
  bad.grant_opcodes = outside;
  EXPECT_MR(mr_tenant_register(s.registry, &bad, &t), MR_RESULT_OPCODE_OUT_OF_RANGE);
  bad = tc;
  bad.struct_size = kTenantConfigV1Size;  // version 2 claimed, version 1's size
  EXPECT_MR(mr_tenant_register(s.registry, &bad, &t), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);
  mr_registry_stats_t rs{};
  rs.struct_size = sizeof rs;
  ASSERT_MR(mr_registry_stats(s.registry, &rs), MR_RESULT_SUCCESS);
  EXPECT_EQ(rs.live_tenants, 1u) << "no refused registration left a tenant";

  // A version-1 caller (its struct ends before the grants): everything granted.
  mr_tenant_config_t v1;
  std::memset(&v1, 0xA5, sizeof v1);
  ASSERT_MR(mr_tenant_config_init_sized(&v1, kTenantConfigV1Size), MR_RESULT_SUCCESS);
  EXPECT_EQ(v1.struct_version, 1u);
  ASSERT_MR(mr_tenant_register(s.registry, &v1, &t), MR_RESULT_SUCCESS);
  uint32_t mode = 99, count = 99;
  ASSERT_MR(mr_tenant_get_grants(t, &mode, nullptr, 0, &count), MR_RESULT_SUCCESS);
  EXPECT_EQ(mode, MR_GRANTS_ALL);
  EXPECT_MR(mr_tenant_destroy(t), MR_RESULT_SUCCESS);
}

TEST(CApiControl, StatsStructChecks) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);
  mr_control_stats_t s{};
  s.struct_size = sizeof s;
  EXPECT_MR(mr_runtime_control_stats(nullptr, &s), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_control_stats(rt.get(), nullptr), MR_RESULT_INVALID_ARGUMENT);
  s.struct_size = 8;
  EXPECT_MR(mr_runtime_control_stats(rt.get(), &s), MR_RESULT_INVALID_ARGUMENT);
  Grown<mr_control_stats_t> g;
  std::memset(&g, 0xA5, sizeof g);
  g.known.struct_size = sizeof g;
  ASSERT_MR(mr_runtime_control_stats(rt.get(), &g.known), MR_RESULT_SUCCESS);
  EXPECT_EQ(g.known.operations, 0u);
  EXPECT_EQ(g.known.total_ns, 0u);
  for (unsigned char b : g.tail) EXPECT_EQ(b, 0);
}

// Holds the only worker with DELAY slots (1 s each), so unregistering with
// MR_UNREGISTER_FAIL_IF_IN_USE right after must find them outstanding.
template <class Publish, class Unregister, class Call>
void expect_in_use_refusal(uint32_t* memory, uint32_t handle, Publish publish,
                           Unregister unregister_ex, Call call) {
  (void)publish(2);
  EXPECT_MR(unregister_ex(handle, MR_UNREGISTER_FAIL_IF_IN_USE), MR_RESULT_IN_USE);
  EXPECT_MR(unregister_ex(handle, 2u), MR_RESULT_INVALID_ARGUMENT);  // unknown flag
  // Still registered: a slot still writes the caller's memory.
  ASSERT_EQ(call(slot(MR_OP_STORE_U32, handle, 4, 0xC0FFEE)), MR_FAULT_NONE);
  EXPECT_EQ(memory[1], 0xC0FFEEu);
  // Nothing outstanding now: it unregisters at once, and slots fault.
  ASSERT_MR(unregister_ex(handle, MR_UNREGISTER_FAIL_IF_IN_USE), MR_RESULT_SUCCESS);
  EXPECT_EQ(call(slot(MR_OP_STORE_U32, handle, 8, 1)), MR_FAULT_BAD_HANDLE);
  EXPECT_EQ(memory[2], 0u);
}

TEST(CApiControl, UnregisterFailsWhileASlotMayUseTheBuffer) {
  mr_runtime_config_t c = cpu_config(64);
  c.workers = 1;
  CRuntime rt;
  ASSERT_MR(rt.create(c), MR_RESULT_SUCCESS);
  std::vector<uint32_t> memory(16, 0);
  uint32_t handle = 0;
  ASSERT_MR(mr_buffer_register(rt.get(), memory.data(), 64, &handle), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_buffer_unregister_ex(nullptr, handle, kLong, 0), MR_RESULT_INVALID_ARGUMENT);
  expect_in_use_refusal(
      memory.data(), handle,
      [&](int n) {
        mr_ticket_t t{};
        const mr_slot_request_t hold = slot(MR_OP_DELAY_NS, MR_DELAY_MAX_NS);
        for (int i = 0; i < n; ++i)
          EXPECT_MR(mr_runtime_publish(rt.get(), &hold, 0, kLong, &t), MR_RESULT_SUCCESS);
        return t;
      },
      [&](uint32_t h, uint32_t flags) { return mr_buffer_unregister_ex(rt.get(), h, kLong, flags); },
      [&](const mr_slot_request_t& r) {
        mr_completion_t done{};
        EXPECT_MR(mr_runtime_call(rt.get(), &r, kLong, &done), MR_RESULT_SUCCESS);
        return done.fault;
      });
  // Flags 0 waits, as mr_buffer_unregister does.
  ASSERT_MR(mr_buffer_register(rt.get(), memory.data(), 64, &handle), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_buffer_unregister_ex(rt.get(), handle, kLong, 0), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_buffer_unregister_ex(rt.get(), handle, kLong, 0), MR_RESULT_INVALID_ARGUMENT);
}

TEST(CApiControl, ATenantsUnregisterFailsWhileASlotMayUseTheBuffer) {
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  TenantSetup s;
  ASSERT_MR(s.start(tc, 1), MR_RESULT_SUCCESS);
  std::vector<uint32_t> memory(16, 0);
  uint32_t handle = 0;
  ASSERT_MR(mr_tenant_buffer_register(s.tenant, memory.data(), 64, &handle), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_buffer_unregister_ex(nullptr, handle, kLong, 0), MR_RESULT_INVALID_ARGUMENT);
  expect_in_use_refusal(
      memory.data(), handle,
      [&](int n) {
        mr_ticket_t t{};
        const mr_slot_request_t hold = slot(MR_OP_DELAY_NS, MR_DELAY_MAX_NS);
        for (int i = 0; i < n; ++i)
          EXPECT_MR(mr_tenant_publish(s.tenant, &hold, 0, kLong, &t), MR_RESULT_SUCCESS);
        return t;
      },
      [&](uint32_t h, uint32_t flags) {
        return mr_tenant_buffer_unregister_ex(s.tenant, h, kLong, flags);
      },
      [&](const mr_slot_request_t& r) { return s.fault_of(r); });
}

}  // namespace
}  // namespace megaring_test
