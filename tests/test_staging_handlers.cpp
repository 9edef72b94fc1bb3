// SPDX-License-Identifier: Apache-2.0
// Custom handlers reach staging regions through ctx.resolve_region with the
// checks the built-ins get: a read only from an immutable or append-only
// region, within what is committed; a write only into a mutable one; stale,
// unknown and out-of-range references fault before any byte is touched.
#include <cstdint>
#include <numeric>
#include <vector>

#include "staging_fixture.hpp"
#include "staging_handler_ops.hpp"

namespace megaring_test {
namespace {

using megaring::RegionHandle;
using megaring::RegionPolicy;
using megaring::SlotRequest;

SlotRequest user(uint32_t opcode, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3 = 0) {
  return SlotRequest{opcode, 0, MR_SLOT_FLAG_NONE, {a0, a1, a2, a3, 0}};
}

class StagingHandlerTest : public StagingTest {
 protected:
  void start_with_handlers() {
    Config c = base_config();
    c.staging_arena_bytes = kArenaBytes;
    const Status st = Runtime::create(c, staging_handler_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
};

TEST_P(StagingHandlerTest, AHandlerReadsAndWritesRegionsUnderTheSameChecks) {
  ASSERT_NO_FATAL_FAILURE(start_with_handlers());
  const std::vector<uint8_t> data = pattern(300, 14);
  const uint64_t sum = std::accumulate(data.begin(), data.end(), uint64_t{0});
  const RegionHandle in = sealed_region(data);
  RegionHandle out = 0, log = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kMutable, 64, &out));
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kAppendOnly, 64, &log));
  MR_ASSERT_OK(rt_->append_region(log, data.data(), 10, nullptr));
  megaring::Completion c = call(user(kOpRegionByteSum, in, 0, 300));
  ASSERT_TRUE(c.ok()) << c.fault;
  EXPECT_EQ(c.result, sum);
  c = call(user(kOpRegionByteSum, log, 0, 10));
  ASSERT_TRUE(c.ok()) << c.fault;
  EXPECT_EQ(c.result, std::accumulate(data.begin(), data.begin() + 10, uint64_t{0}));
  EXPECT_EQ(fault_of(user(kOpRegionByteSum, log, 0, 11)), MR_FAULT_OUT_OF_BOUNDS) << "uncommitted";
  EXPECT_EQ(fault_of(user(kOpRegionByteSum, out, 0, 1)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(fault_of(user(kOpRegionByteSum, in, ~0ull, 2)), MR_FAULT_OUT_OF_BOUNDS);
  EXPECT_EQ(fault_of(user(kOpRegionByteSum, 0, 0, 1)), MR_FAULT_BAD_REGION);
  // Writes: the mutable region only.
  c = call(user(kOpRegionFill, out, 8, 48, 0x5A));
  ASSERT_TRUE(c.ok()) << c.fault;
  std::vector<uint8_t> want(64, 0);
  std::fill(want.begin() + 8, want.begin() + 56, 0x5A);
  EXPECT_EQ(read_region(out, 64), want);
  EXPECT_EQ(fault_of(user(kOpRegionFill, in, 0, 1, 1)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(fault_of(user(kOpRegionFill, log, 0, 1, 1)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(fault_of(user(kOpRegionFill, out, 1, ~0ull, 1)), MR_FAULT_OUT_OF_BOUNDS);
  EXPECT_EQ(read_region(in, 300), data) << "refused writes touched nothing";
  EXPECT_EQ(read_region(out, 64), want);
  MR_ASSERT_OK(rt_->free_region(in));
  EXPECT_EQ(fault_of(user(kOpRegionByteSum, in, 0, 1)), MR_FAULT_BAD_REGION) << "stale";
}

MEGARING_INSTANTIATE_BACKENDS(StagingHandlerTest);

}  // namespace
}  // namespace megaring_test
