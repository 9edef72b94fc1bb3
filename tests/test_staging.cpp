// SPDX-License-Identifier: Apache-2.0
// Staging regions and descriptors (Runtime::create_region, ops::stage_to_buffer,
// ops::buffer_to_staging, ops::axpy_f32): descriptors into immutable and
// append-only regions read exactly what was committed, a mutable region is
// never a descriptor, ranges near 2^64 fault, stale and foreign handles
// fault, and every fault is counted under its own code. Results are checked
// byte for byte on both backends.
#include <cstdint>
#include <vector>

#include "staging_fixture.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::RegionHandle;
using megaring::RegionPolicy;
using megaring::StagingDescriptor;
using megaring::ops::axpy_f32;
using megaring::ops::buffer_to_staging;
using megaring::ops::stage_to_buffer;

constexpr uint64_t kMax = ~0ull;

TEST_P(StagingTest, DescriptorIntoAnImmutableRegionReadsOnlyOnceSealed) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::vector<uint8_t> data = pattern(200, 1);
  RegionHandle r = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kImmutable, data.size(), &r));
  MR_ASSERT_OK(rt_->write_region(r, 0, data.data(), data.size()));
  BufferHandle b = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(256, &b));
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 1}, b, 0)), MR_FAULT_OUT_OF_BOUNDS) << "not sealed yet";
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 0}, b, 0)), MR_FAULT_NONE) << "nothing to read";
  MR_ASSERT_OK(rt_->seal_region(r));
  MR_EXPECT_OK(rt_->seal_region(r)) << "sealing twice changes nothing";
  const megaring::Completion c = call(stage_to_buffer({r, 0, data.size()}, b, 16));
  ASSERT_TRUE(c.ok()) << c.fault;
  EXPECT_EQ(c.result, data.size());
  std::vector<uint8_t> want(256, 0);
  std::copy(data.begin(), data.end(), want.begin() + 16);
  EXPECT_EQ(read_buffer(b, 256), want);
  // Never written again: the host refuses, the bytes stay.
  const std::vector<uint8_t> other = pattern(200, 2);
  MR_EXPECT_RESULT(rt_->write_region(r, 0, other.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->append_region(r, other.data(), 1, nullptr), Result::kInvalidArgument);
  EXPECT_EQ(read_region(r, data.size()), data);
  // ... and so does the consumer: a write into it is a policy fault.
  EXPECT_EQ(fault_of(buffer_to_staging(b, 0, r, 0, 8)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(read_region(r, data.size()), data);
  // A part of it, at an offset.
  ASSERT_TRUE(call(stage_to_buffer({r, 50, 100}, b, 0)).ok());
  const std::vector<uint8_t> got = read_buffer(b, 100);
  EXPECT_EQ(got, std::vector<uint8_t>(data.begin() + 50, data.begin() + 150));
}

TEST_P(StagingTest, DescriptorIntoAnAppendOnlyRegionReadsUpToTheCommittedEnd) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::vector<uint8_t> first = pattern(40, 3), second = pattern(24, 4);
  RegionHandle r = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kAppendOnly, 64, &r));
  BufferHandle b = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &b));
  uint64_t at = 99;
  MR_ASSERT_OK(rt_->append_region(r, first.data(), first.size(), &at));
  EXPECT_EQ(at, 0u);
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 41}, b, 0)), MR_FAULT_OUT_OF_BOUNDS) << "past the committed end";
  EXPECT_EQ(fault_of(stage_to_buffer({r, 40, 1}, b, 0)), MR_FAULT_OUT_OF_BOUNDS);
  ASSERT_TRUE(call(stage_to_buffer({r, 0, 40}, b, 0)).ok());
  EXPECT_EQ(read_buffer(b, 40), first);
  MR_ASSERT_OK(rt_->append_region(r, second.data(), second.size(), &at));
  EXPECT_EQ(at, 40u);
  ASSERT_TRUE(call(stage_to_buffer({r, 0, 64}, b, 0)).ok());
  std::vector<uint8_t> both = first;
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_EQ(read_buffer(b, 64), both);
  // Full: one more byte is refused; nothing below the end is ever rewritten.
  MR_EXPECT_RESULT(rt_->append_region(r, first.data(), 1, nullptr), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->append_region(r, first.data(), kMax, nullptr), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->write_region(r, 0, second.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->seal_region(r), Result::kInvalidArgument);
  EXPECT_EQ(read_region(r, 64), both);
  EXPECT_EQ(fault_of(buffer_to_staging(b, 0, r, 0, 1)), MR_FAULT_REGION_POLICY);
}

TEST_P(StagingTest, AMutableRegionIsNeverADescriptorButTakesResults) {
  ASSERT_NO_FATAL_FAILURE(start());
  RegionHandle r = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kMutable, 100, &r));
  const std::vector<uint8_t> data = pattern(100, 5);
  MR_ASSERT_OK(rt_->write_region(r, 0, data.data(), data.size()));
  BufferHandle b = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(128, &b));
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 1}, b, 0)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 0}, b, 0)), MR_FAULT_REGION_POLICY) << "even empty";
  MR_EXPECT_RESULT(rt_->seal_region(r), Result::kInvalidArgument);
  const std::vector<uint8_t> result = pattern(128, 6);
  MR_ASSERT_OK(rt_->write_buffer(b, 0, result.data(), result.size()));
  const megaring::Completion c = call(buffer_to_staging(b, 28, r, 10, 90));
  ASSERT_TRUE(c.ok()) << c.fault;
  EXPECT_EQ(c.result, 90u);
  std::vector<uint8_t> want = data;
  std::copy(result.begin() + 28, result.begin() + 118, want.begin() + 10);
  EXPECT_EQ(read_region(r, 100), want);
  EXPECT_EQ(fault_of(buffer_to_staging(b, 0, r, 11, 90)), MR_FAULT_OUT_OF_BOUNDS);
}

TEST_P(StagingTest, RangesNearTwoToTheSixtyFourFault) {
  ASSERT_NO_FATAL_FAILURE(start());
  const RegionHandle in = sealed_region(pattern(64, 7));
  RegionHandle out = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kMutable, 64, &out));
  BufferHandle b = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &b));
  const StagingDescriptor bad[] = {{in, kMax, 2},  {in, 1, kMax},   {in, kMax, kMax}, {in, 64, 1},
                                   {in, 0, 65},    {in, 65, 0},     {in, 1ull << 63, 1ull << 63},
                                   {in, 63, kMax - 62}};
  for (const StagingDescriptor& d : bad) {
    EXPECT_EQ(fault_of(stage_to_buffer(d, b, 0)), MR_FAULT_OUT_OF_BOUNDS)
        << "offset " << d.offset << " bytes " << d.bytes;
    EXPECT_EQ(fault_of(buffer_to_staging(b, 0, out, d.offset, d.bytes)), MR_FAULT_OUT_OF_BOUNDS)
        << "write, offset " << d.offset << " bytes " << d.bytes;
  }
  // The buffer's side of a good descriptor.
  EXPECT_EQ(fault_of(stage_to_buffer({in, 0, 2}, b, kMax)), MR_FAULT_OUT_OF_BOUNDS);
  EXPECT_EQ(fault_of(buffer_to_staging(b, kMax - 1, out, 0, 2)), MR_FAULT_OUT_OF_BOUNDS);
  EXPECT_EQ(std::vector<uint8_t>(64, 0), read_buffer(b, 64)) << "nothing was written";
  EXPECT_EQ(std::vector<uint8_t>(64, 0), read_region(out, 64)) << "nothing was written";
  // The host API: the same ranges are refused, sizes near 2^64 too.
  uint8_t byte = 0;
  MR_EXPECT_RESULT(rt_->write_region(out, kMax, &byte, 2), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->read_region(out, 1, &byte, kMax), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->write_region(out, 0, nullptr, 1), Result::kInvalidArgument);
  RegionHandle r = 0;
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, kMax, &r), Result::kOutOfMemory);
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, kMax - 62, &r), Result::kOutOfMemory);
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, kArenaBytes + 1, &r), Result::kOutOfMemory);
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, 0, &r), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->create_region(static_cast<RegionPolicy>(0), 64, &r), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->create_region(static_cast<RegionPolicy>(7), 64, &r), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, 64, nullptr), Result::kInvalidArgument);
}

TEST_P(StagingTest, UnknownStaleAndReusedHandlesFaultBadRegion) {
  ASSERT_NO_FATAL_FAILURE(start(kArenaBytes, /*max_regions=*/1));
  const std::vector<uint8_t> data = pattern(32, 8);
  const RegionHandle r = sealed_region(data);
  BufferHandle b = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(32, &b));
  ASSERT_TRUE(call(stage_to_buffer({r, 0, 32}, b, 0)).ok()) << "registered and used";
  EXPECT_EQ(read_buffer(b, 32), data);
  const uint64_t handles[] = {0, uint64_t{r} ^ 0x10000u, uint64_t{r} | (1ull << 32),
                              uint64_t{r} + 1, kMax};
  for (const uint64_t h : handles)
    EXPECT_EQ(fault_of(megaring::SlotRequest{MR_OP_STAGE_TO_BUFFER, 0, 0, {h, 0, 1, b, 0}}),
              MR_FAULT_BAD_REGION) << "handle " << h;
  MR_ASSERT_OK(rt_->free_region(r));
  MR_EXPECT_RESULT(rt_->free_region(r), Result::kInvalidArgument) << "freed once";
  MR_EXPECT_RESULT(rt_->read_region(r, 0, nullptr, 0), Result::kInvalidArgument);
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 1}, b, 0)), MR_FAULT_BAD_REGION) << "unregistered";
  // The one table entry is reused under a new generation: the old handle
  // still faults, the new one works.
  const std::vector<uint8_t> next = pattern(32, 9);
  const RegionHandle again = sealed_region(next);
  ASSERT_NE(again, 0u);
  EXPECT_EQ(again & MR_BUFFER_INDEX_MASK, r & MR_BUFFER_INDEX_MASK) << "same index";
  EXPECT_NE(again, r);
  EXPECT_EQ(fault_of(stage_to_buffer({r, 0, 1}, b, 0)), MR_FAULT_BAD_REGION) << "stale";
  ASSERT_TRUE(call(stage_to_buffer({again, 0, 32}, b, 0)).ok());
  EXPECT_EQ(read_buffer(b, 32), next);
  RegionHandle full = 0;
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, 8, &full), Result::kOutOfMemory)
      << "the table holds one";
}

// A free while slots are in flight: those published before it still read the
// region (its range stays out of the arena until they completed); those
// published after it fault, though the entry is not yet collected.
TEST_P(StagingTest, SlotsPublishedAfterAFreeFaultWhileEarlierOnesStillRead) {
  ASSERT_NO_FATAL_FAILURE(start());
  const std::vector<uint8_t> data = pattern(64, 13);
  const RegionHandle r = sealed_region(data);
  BufferHandle before = 0, after = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &before));
  MR_ASSERT_OK(rt_->alloc_buffer(64, &after));
  megaring::PublishOptions keep;
  keep.keep_result = true;
  megaring::Ticket hold, early, late;
  // The delay holds ring 0's completions back: the region's cut cannot
  // complete, so the entry is retired, not yet collected, for `late`.
  MR_ASSERT_OK(rt_->publish(megaring::ops::delay_ns(200'000'000), &hold, keep));
  MR_ASSERT_OK(rt_->publish(stage_to_buffer({r, 0, 64}, before, 0), &early, keep));
  MR_ASSERT_OK(rt_->free_region(r));
  MR_ASSERT_OK(rt_->publish(stage_to_buffer({r, 0, 64}, after, 0), &late, keep));
  megaring::Completion c;
  MR_ASSERT_OK(rt_->wait(late, &c, scaled(std::chrono::seconds(30))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_REGION) << "published after the free";
  MR_ASSERT_OK(rt_->wait(early, &c, scaled(std::chrono::seconds(30))));
  EXPECT_TRUE(c.ok()) << "published before the free: fault " << c.fault;
  EXPECT_EQ(read_buffer(before, 64), data);
  EXPECT_EQ(read_buffer(after, 64), std::vector<uint8_t>(64, 0));
  MR_ASSERT_OK(rt_->wait(hold, &c, scaled(std::chrono::seconds(30))));
}

TEST_P(StagingTest, EveryFaultIsCountedUnderItsCode) {
  ASSERT_NO_FATAL_FAILURE(start());
  const RegionHandle in = sealed_region(pattern(16, 10));
  RegionHandle out = 0;
  MR_ASSERT_OK(rt_->create_region(RegionPolicy::kMutable, 16, &out));
  BufferHandle b = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(16, &b));
  const megaring::RuntimeStats before = rt_->stats();
  EXPECT_EQ(fault_of(stage_to_buffer({0, 0, 1}, b, 0)), MR_FAULT_BAD_REGION);
  EXPECT_EQ(fault_of(stage_to_buffer({out, 0, 1}, b, 0)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(fault_of(buffer_to_staging(b, 0, in, 0, 1)), MR_FAULT_REGION_POLICY);
  EXPECT_EQ(fault_of(stage_to_buffer({in, 0, 1}, b + 1, 0)), MR_FAULT_BAD_HANDLE);
  const megaring::RuntimeStats after = rt_->stats();
  EXPECT_EQ(after.faults_by_code[MR_FAULT_BAD_REGION] - before.faults_by_code[MR_FAULT_BAD_REGION], 1u);
  EXPECT_EQ(after.faults_by_code[MR_FAULT_REGION_POLICY] - before.faults_by_code[MR_FAULT_REGION_POLICY], 2u);
  EXPECT_EQ(after.faults_by_code[MR_FAULT_BAD_HANDLE] - before.faults_by_code[MR_FAULT_BAD_HANDLE], 1u);
  EXPECT_EQ(after.faulted - before.faulted, 4u);
}

TEST_P(StagingTest, AxpyComputesFusedAndChecksItsBuffers) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr uint32_t kN = 300;
  std::vector<float> x(kN), y(kN);
  for (uint32_t i = 0; i < kN; ++i) {
    x[i] = 0.1f * static_cast<float>(i) - 7.0f;
    y[i] = 1.0f / static_cast<float>(i + 3);
  }
  BufferHandle bx = 0, by = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(kN * 4 + 8, &bx));
  MR_ASSERT_OK(rt_->alloc_buffer(kN * 4, &by));
  MR_ASSERT_OK(rt_->write_buffer(bx, 4, x.data(), kN * 4));
  MR_ASSERT_OK(rt_->write_buffer(by, 0, y.data(), kN * 4));
  const megaring::Completion c = call(axpy_f32(by, 0, bx, 4, kN, 2.5f));
  ASSERT_TRUE(c.ok()) << c.fault;
  EXPECT_EQ(c.result, kN);
  EXPECT_EQ(read_buffer(by, kN * 4), f32_bytes(axpy_reference(2.5f, x, y)));
  const std::vector<uint8_t> now = read_buffer(by, kN * 4);
  EXPECT_EQ(fault_of(axpy_f32(by, 2, bx, 4, 1, 1.0f)), MR_FAULT_MISALIGNED);
  EXPECT_EQ(fault_of(axpy_f32(by, 4, bx, 4, kN, 1.0f)), MR_FAULT_OUT_OF_BOUNDS);
  EXPECT_EQ(fault_of(axpy_f32(by, 0, bx, kMax - 3, 1, 1.0f)), MR_FAULT_OUT_OF_BOUNDS);
  EXPECT_EQ(fault_of(axpy_f32(by, 0, by, 4, 8, 1.0f)), MR_FAULT_BAD_ARGUMENT) << "shifted overlap";
  EXPECT_EQ(fault_of(axpy_f32(by, 0, 0, 0, 1, 1.0f)), MR_FAULT_BAD_HANDLE);
  EXPECT_EQ(read_buffer(by, kN * 4), now) << "faults wrote nothing";
  // The same range as x and y: y[i] = fmaf(a, y[i], y[i]).
  ASSERT_TRUE(call(axpy_f32(by, 0, by, 0, kN, -0.5f)).ok());
  std::vector<float> cur(kN);
  std::memcpy(cur.data(), now.data(), now.size());
  EXPECT_EQ(read_buffer(by, kN * 4), f32_bytes(axpy_reference(-0.5f, cur, cur)));
}

TEST_P(StagingTest, WithoutAnArenaAndAfterShutdown) {
  ASSERT_NO_FATAL_FAILURE(start(/*arena=*/0));
  RegionHandle r = 0;
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, 64, &r), Result::kOutOfMemory);
  rt_.reset();
  ASSERT_NO_FATAL_FAILURE(start());
  const RegionHandle live = sealed_region(pattern(64, 11));
  MR_ASSERT_OK(rt_->shutdown());
  MR_EXPECT_RESULT(rt_->create_region(RegionPolicy::kMutable, 64, &r), Result::kShutdown);
  std::vector<uint8_t> back(64);
  MR_EXPECT_OK(rt_->read_region(live, 0, back.data(), 64)) << "the arena stays until the runtime goes";
  EXPECT_EQ(back, pattern(64, 11));
  MR_EXPECT_OK(rt_->free_region(live));
  Config c = base_config();
  c.staging_arena_bytes = megaring::kMaxStagingArenaBytes + 1;
  std::unique_ptr<Runtime> refused;
  MR_EXPECT_RESULT(Runtime::create(c, &refused), Result::kInvalidArgument);
  c.staging_arena_bytes = 0;
  c.max_regions = 0;
  MR_EXPECT_RESULT(Runtime::create(c, &refused), Result::kInvalidArgument);
}

MEGARING_INSTANTIATE_BACKENDS(StagingTest);

}  // namespace
}  // namespace megaring_test
