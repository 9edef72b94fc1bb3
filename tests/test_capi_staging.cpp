// SPDX-License-Identifier: Apache-2.0
// The C API's staging (megaring/megaring_staging.h) on the CPU backend: a
// job end to end (stage inputs, copy to buffers, axpy, copy back, read and
// compare bit for bit), append-only regions, the builders against
// megaring::ops, hostile arguments, and a tenant's regions and quota.
#include "capi_test_util.hpp"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "megaring/runtime.hpp"

namespace megaring_test {
namespace {

mr_runtime_config_t staging_config(uint64_t arena_bytes = 64 * 1024) {
  mr_runtime_config_t c = cpu_config(64);
  c.staging_arena_bytes = arena_bytes;
  return c;
}

// Runs one slot on the runtime and returns its completion.
mr_completion_t run(mr_runtime_t* rt, const mr_slot_request_t& request) {
  mr_completion_t c{};
  EXPECT_MR(mr_runtime_call(rt, &request, kLong, &c), MR_RESULT_SUCCESS);
  return c;
}

mr_slot_request_t stage(uint32_t region, uint64_t offset, uint64_t bytes, uint32_t dst,
                        uint64_t dst_offset) {
  mr_staging_descriptor_t d{};
  d.region = region;
  d.offset = offset;
  d.bytes = bytes;
  mr_slot_request_t r{};
  EXPECT_MR(mr_op_stage_to_buffer(&d, dst, dst_offset, &r), MR_RESULT_SUCCESS);
  return r;
}

TEST(CApiStaging, AJobEndToEnd) {
  CRuntime rt;
  ASSERT_MR(rt.create(staging_config()), MR_RESULT_SUCCESS);
  constexpr uint32_t kN = 1000;
  constexpr uint64_t kBytes = kN * sizeof(float);
  std::vector<float> x(kN), y(kN);
  for (uint32_t i = 0; i < kN; ++i) {
    x[i] = 0.25f * static_cast<float>(i % 97) - 5.0f;
    y[i] = 1.0f / static_cast<float>(i + 3);
  }
  const float alpha = -2.5f;
  uint32_t inputs = 0, results = 0, bx = 0, by = 0;
  ASSERT_MR(mr_region_create(rt.get(), MR_REGION_IMMUTABLE, 2 * kBytes, &inputs), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_region_write(rt.get(), inputs, 0, x.data(), kBytes), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_region_write(rt.get(), inputs, kBytes, y.data(), kBytes), MR_RESULT_SUCCESS);
  // Before the seal a descriptor reads nothing.
  ASSERT_MR(mr_buffer_alloc(rt.get(), kBytes, &bx), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_buffer_alloc(rt.get(), kBytes, &by), MR_RESULT_SUCCESS);
  mr_completion_t c = run(rt.get(), stage(inputs, 0, kBytes, bx, 0));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_BOUNDS);
  ASSERT_MR(mr_region_seal(rt.get(), inputs), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_region_write(rt.get(), inputs, 0, x.data(), 4), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, kBytes, &results), MR_RESULT_SUCCESS);

  mr_slot_request_t steps[4];
  steps[0] = stage(inputs, 0, kBytes, bx, 0);
  steps[1] = stage(inputs, kBytes, kBytes, by, 0);
  ASSERT_MR(mr_op_axpy_f32(by, 0, bx, 0, kN, alpha, &steps[2]), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_op_buffer_to_staging(by, 0, results, 0, kBytes, &steps[3]), MR_RESULT_SUCCESS);
  for (const mr_slot_request_t& step : steps) {
    c = run(rt.get(), step);
    ASSERT_EQ(c.status, MR_STATUS_OK) << "opcode " << step.opcode << " fault " << c.fault;
  }
  EXPECT_EQ(c.result, kBytes);
  std::vector<float> got(kN);
  ASSERT_MR(mr_region_read(rt.get(), results, 0, got.data(), kBytes), MR_RESULT_SUCCESS);
  for (uint32_t i = 0; i < kN; ++i) {
    const float want = std::fmaf(alpha, x[i], y[i]);
    ASSERT_EQ(std::memcmp(&got[i], &want, sizeof want), 0) << "element " << i << ": " << got[i]
                                                           << " != " << want;
  }
  // A descriptor into the mutable region is refused by policy; a freed
  // region's handle faults BAD_REGION and is refused on the host.
  c = run(rt.get(), stage(results, 0, 4, bx, 0));
  EXPECT_EQ(c.fault, MR_FAULT_REGION_POLICY);
  ASSERT_MR(mr_region_free(rt.get(), inputs), MR_RESULT_SUCCESS);
  c = run(rt.get(), stage(inputs, 0, 4, bx, 0));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_REGION);
  EXPECT_MR(mr_region_read(rt.get(), inputs, 0, got.data(), 4), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_region_free(rt.get(), inputs), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_finalize(rt.get(), kLong), MR_RESULT_SUCCESS);
}

TEST(CApiStaging, AppendOnlyRegionsCommitWhatWasAppended) {
  CRuntime rt;
  ASSERT_MR(rt.create(staging_config()), MR_RESULT_SUCCESS);
  uint32_t log = 0, buf = 0;
  ASSERT_MR(mr_region_create(rt.get(), MR_REGION_APPEND_ONLY, 256, &log), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_buffer_alloc(rt.get(), 256, &buf), MR_RESULT_SUCCESS);
  const std::string a = "first record;", b = "second record";
  uint64_t at_a = 99, at_b = 99;
  ASSERT_MR(mr_region_append(rt.get(), log, a.data(), a.size(), &at_a), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_region_append(rt.get(), log, b.data(), b.size(), &at_b), MR_RESULT_SUCCESS);
  EXPECT_EQ(at_a, 0u);
  EXPECT_EQ(at_b, a.size());
  ASSERT_MR(mr_region_append(rt.get(), log, "!", 1, nullptr), MR_RESULT_SUCCESS);  // offset optional
  const uint64_t committed = a.size() + b.size() + 1;
  // Descriptors read below the committed end only.
  mr_completion_t c = run(rt.get(), stage(log, 0, committed + 1, buf, 0));
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_BOUNDS);
  c = run(rt.get(), stage(log, 0, committed, buf, 0));
  ASSERT_EQ(c.status, MR_STATUS_OK);
  std::string got(committed, '\0');
  ASSERT_MR(mr_buffer_read(rt.get(), buf, 0, got.data(), committed), MR_RESULT_SUCCESS);
  EXPECT_EQ(got, a + b + "!");
  ASSERT_MR(mr_region_read(rt.get(), log, a.size(), got.data(), b.size()), MR_RESULT_SUCCESS);
  EXPECT_EQ(got.substr(0, b.size()), b);
  // What an append-only region refuses.
  EXPECT_MR(mr_region_write(rt.get(), log, 0, "x", 1), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_region_seal(rt.get(), log), MR_RESULT_INVALID_ARGUMENT);
  std::vector<char> big(257, 'z');
  EXPECT_NE(mr_region_append(rt.get(), log, big.data(), big.size(), &at_a), MR_RESULT_SUCCESS);
  EXPECT_EQ(at_a, 0u) << "a refused append leaves *offset alone";
}

TEST(CApiStaging, BuildersAreTheCppOnes) {
  auto same = [](const mr_slot_request_t& c, const megaring::SlotRequest& cpp) {
    EXPECT_EQ(c.opcode, cpp.opcode);
    EXPECT_EQ(c.tenant, cpp.tenant);
    EXPECT_EQ(c.flags, cpp.flags);
    EXPECT_EQ(c.reserved, 0u);
    for (uint32_t i = 0; i < MR_SLOT_ARGS; ++i) EXPECT_EQ(c.args[i], cpp.args[i]) << "arg " << i;
  };
  mr_slot_request_t r;
  std::memset(&r, 0xA5, sizeof r);
  mr_staging_descriptor_t d{0x10007u, 0, ~0ull - 3, 1ull << 40};
  ASSERT_MR(mr_op_stage_to_buffer(&d, 9, 1ull << 63, &r), MR_RESULT_SUCCESS);
  same(r, megaring::ops::stage_to_buffer({0x10007u, ~0ull - 3, 1ull << 40}, 9, 1ull << 63));
  EXPECT_EQ(r.opcode, MR_OP_STAGE_TO_BUFFER);
  std::memset(&r, 0xA5, sizeof r);
  ASSERT_MR(mr_op_buffer_to_staging(3, 17, 0x20001u, 5, 99, &r), MR_RESULT_SUCCESS);
  same(r, megaring::ops::buffer_to_staging(3, 17, 0x20001u, 5, 99));
  EXPECT_EQ(r.opcode, MR_OP_BUFFER_TO_STAGING);
  std::memset(&r, 0xA5, sizeof r);
  ASSERT_MR(mr_op_axpy_f32(4, 8, 5, 12, 77, -0.375f, &r), MR_RESULT_SUCCESS);
  same(r, megaring::ops::axpy_f32(4, 8, 5, 12, 77, -0.375f));
  EXPECT_EQ(r.opcode, MR_OP_AXPY_F32);
  EXPECT_EQ(r.args[4] & 0xFFFFFFFFu, 77u);
  // Hostile: NULL pointers, a descriptor's reserved word.
  EXPECT_MR(mr_op_stage_to_buffer(nullptr, 1, 0, &r), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_op_stage_to_buffer(&d, 1, 0, nullptr), MR_RESULT_INVALID_ARGUMENT);
  d.reserved = 1;
  EXPECT_MR(mr_op_stage_to_buffer(&d, 1, 0, &r), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_op_buffer_to_staging(1, 0, 1, 0, 1, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_op_axpy_f32(1, 0, 1, 0, 1, 1.0f, nullptr), MR_RESULT_INVALID_ARGUMENT);
}

TEST(CApiStaging, HostileArguments) {
  CRuntime rt;
  ASSERT_MR(rt.create(staging_config(4096)), MR_RESULT_SUCCESS);
  constexpr mr_result_t kBad = MR_RESULT_INVALID_ARGUMENT;
  uint32_t h = 0;
  char byte = 0;
  uint64_t at = 0;
  // NULL runtime, handle, source, destination.
  EXPECT_MR(mr_region_create(nullptr, MR_REGION_MUTABLE, 64, &h), kBad);
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, nullptr), kBad);
  EXPECT_MR(mr_region_free(nullptr, 1), kBad);
  EXPECT_MR(mr_region_write(nullptr, 1, 0, &byte, 1), kBad);
  EXPECT_MR(mr_region_seal(nullptr, 1), kBad);
  EXPECT_MR(mr_region_append(nullptr, 1, &byte, 1, &at), kBad);
  EXPECT_MR(mr_region_read(nullptr, 1, 0, &byte, 1), kBad);
  // Bad policies and sizes; nothing is created.
  EXPECT_MR(mr_region_create(rt.get(), 0, 64, &h), kBad);
  EXPECT_MR(mr_region_create(rt.get(), 7, 64, &h), kBad);
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 0, &h), kBad);
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, ~0ull, &h), MR_RESULT_OUT_OF_MEMORY);
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 4097, &h), MR_RESULT_OUT_OF_MEMORY);
  EXPECT_EQ(h, 0u);
  ASSERT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, &h), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_region_write(rt.get(), h, 0, nullptr, 1), kBad);
  EXPECT_MR(mr_region_append(rt.get(), h, nullptr, 1, &at), kBad);
  EXPECT_MR(mr_region_read(rt.get(), h, 0, nullptr, 1), kBad);
  // Ranges near 2^64 and past the end, without overflow.
  EXPECT_MR(mr_region_write(rt.get(), h, ~0ull, &byte, 1), kBad);
  EXPECT_MR(mr_region_read(rt.get(), h, ~0ull, &byte, 2), kBad);
  EXPECT_MR(mr_region_read(rt.get(), h, 1, &byte, ~0ull), kBad);
  EXPECT_MR(mr_region_read(rt.get(), h, 64, &byte, 1), kBad);
  EXPECT_MR(mr_region_read(rt.get(), h, 63, &byte, 1), MR_RESULT_SUCCESS);
  // A mutable region is neither sealed nor appended to; unknown handles.
  EXPECT_MR(mr_region_seal(rt.get(), h), kBad);
  EXPECT_MR(mr_region_append(rt.get(), h, &byte, 1, &at), kBad);
  EXPECT_MR(mr_region_read(rt.get(), h + 0x10000u, 0, &byte, 1), kBad);
  EXPECT_MR(mr_region_read(rt.get(), 0, 0, &byte, 1), kBad);
  // After finalize: refused, never a crash.
  ASSERT_MR(mr_runtime_finalize(rt.get(), kLong), MR_RESULT_SUCCESS);
  EXPECT_NE(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, &h), MR_RESULT_SUCCESS);
}

TEST(CApiStaging, ARuntimeWithoutAnArenaHasNoRegions) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config(64)), MR_RESULT_SUCCESS);  // staging_arena_bytes 0
  uint32_t h = 0;
  EXPECT_MR(mr_region_create(rt.get(), MR_REGION_MUTABLE, 64, &h), MR_RESULT_OUT_OF_MEMORY);
  EXPECT_NE(std::string(mr_last_error()).find("no staging arena"), std::string::npos);
  EXPECT_EQ(h, 0u);
}

TEST(CApiStaging, ATenantsRegionsAreChargedAndItsOwn) {
  CRuntime rt;
  ASSERT_MR(rt.create(staging_config()), MR_RESULT_SUCCESS);
  mr_registry_config_t rc;
  ASSERT_MR(mr_registry_config_init(&rc), MR_RESULT_SUCCESS);
  mr_registry_t* reg = nullptr;
  ASSERT_MR(mr_registry_create(rt.get(), &rc, &reg), MR_RESULT_SUCCESS);
  mr_tenant_config_t tc;
  ASSERT_MR(mr_tenant_config_init(&tc), MR_RESULT_SUCCESS);
  tc.staging_bytes = 1024;
  mr_tenant_t *a = nullptr, *b = nullptr;
  ASSERT_MR(mr_tenant_register(reg, &tc, &a), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_register(reg, &tc, &b), MR_RESULT_SUCCESS);

  const std::string data = "staged by tenant a, read by its own slot";
  uint32_t region = 0, extra = 0, buf = 0;
  ASSERT_MR(mr_tenant_region_create(a, MR_REGION_IMMUTABLE, 600, &region), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_region_create(a, MR_REGION_MUTABLE, 385, &extra),
            MR_RESULT_STAGING_BACKPRESSURE);
  uint64_t value = 0, limit = 0;
  mr_last_error_values(&value, &limit);
  EXPECT_EQ(limit, 1024u);
  mr_tenant_counters_t counters{};
  counters.struct_size = sizeof counters;
  ASSERT_MR(mr_tenant_get_counters(a, &counters), MR_RESULT_SUCCESS);
  EXPECT_EQ(counters.staging_region_bytes, 640u);  // 64-byte lines
  EXPECT_EQ(counters.staging_regions, 1u);
  EXPECT_EQ(counters.staging_bytes_in_use, 640u);
  EXPECT_EQ(counters.resident_handles_in_use, 1u);  // the region's

  ASSERT_MR(mr_tenant_region_write(a, region, 0, data.data(), data.size()), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_region_seal(a, region), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_buffer_alloc(a, 64, &buf), MR_RESULT_SUCCESS);
  // a's slot (local opcode MR_OP_STAGE_TO_BUFFER of its window) copies it.
  const mr_slot_request_t r = stage(region, 0, data.size(), buf, 0);
  mr_ticket_t t{};
  mr_completion_t c{};
  ASSERT_MR(mr_tenant_publish(a, &r, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_wait(a, &t, kLong, &c), MR_RESULT_SUCCESS);
  ASSERT_EQ(c.status, MR_STATUS_OK) << "fault " << c.fault;
  std::string got(data.size(), '\0');
  ASSERT_MR(mr_tenant_buffer_read(a, buf, 0, got.data(), got.size()), MR_RESULT_SUCCESS);
  EXPECT_EQ(got, data);
  ASSERT_MR(mr_tenant_region_read(a, region, 0, got.data(), got.size()), MR_RESULT_SUCCESS);
  EXPECT_EQ(got, data);
  // b cannot reach a's region from the host, nor from a slot.
  EXPECT_MR(mr_tenant_region_read(b, region, 0, got.data(), 1), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_region_free(b, region), MR_RESULT_INVALID_ARGUMENT);
  uint32_t bbuf = 0;
  ASSERT_MR(mr_tenant_buffer_alloc(b, 64, &bbuf), MR_RESULT_SUCCESS);
  const mr_slot_request_t rb = stage(region, 0, 8, bbuf, 0);
  ASSERT_MR(mr_tenant_publish(b, &rb, MR_PUBLISH_KEEP_RESULT, kLong, &t), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_wait(b, &t, kLong, &c), MR_RESULT_SUCCESS);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_REGION);
  // Hostile: NULL tenant, handle, source.
  EXPECT_MR(mr_tenant_region_create(nullptr, MR_REGION_MUTABLE, 8, &extra), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_region_create(a, MR_REGION_MUTABLE, 8, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_region_write(a, region, 0, nullptr, 1), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_region_append(nullptr, region, "x", 1, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_region_seal(nullptr, region), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_tenant_region_read(a, region, 0, nullptr, 1), MR_RESULT_INVALID_ARGUMENT);
  // Freeing gives the quota back at once.
  ASSERT_MR(mr_tenant_region_free(a, region), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_tenant_get_counters(a, &counters), MR_RESULT_SUCCESS);
  EXPECT_EQ(counters.staging_region_bytes, 0u);
  EXPECT_EQ(counters.staging_regions, 0u);
  ASSERT_MR(mr_tenant_region_create(a, MR_REGION_APPEND_ONLY, 1024, &extra), MR_RESULT_SUCCESS);
  uint64_t at = 7;
  ASSERT_MR(mr_tenant_region_append(a, extra, "abc", 3, &at), MR_RESULT_SUCCESS);
  EXPECT_EQ(at, 0u);
  // Unregistering frees its regions: the handle is gone.
  ASSERT_MR(mr_tenant_unregister(reg, a), MR_RESULT_SUCCESS);
  EXPECT_NE(mr_tenant_region_read(a, extra, 0, got.data(), 1), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_destroy(a), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_tenant_destroy(b), MR_RESULT_SUCCESS);
  EXPECT_MR(mr_registry_destroy(reg), MR_RESULT_SUCCESS);
}

}  // namespace
}  // namespace megaring_test
