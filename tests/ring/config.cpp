// SPDX-License-Identifier: Apache-2.0
// Config validation: Runtime::create refuses bad configs with a message and
// accepts the edge values.

#include <cstdint>
#include <memory>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

class RingConfigTest : public RingTest {};

TEST_P(RingConfigTest, RejectsBadConfigs) {
  struct Bad {
    const char* what;
    void (*edit)(Config&);
  };
  const Bad bad[] = {
      {"capacity 0", [](Config& c) { c.ring_capacity = 0; }},
      {"capacity 3", [](Config& c) { c.ring_capacity = 3; }},
      {"capacity 1000", [](Config& c) { c.ring_capacity = 1000; }},
      {"capacity 2^25", [](Config& c) { c.ring_capacity = 1u << 25; }},
      {"capacity 2^31", [](Config& c) { c.ring_capacity = 1u << 31; }},
      {"max_buffers 0", [](Config& c) { c.max_buffers = 0; }},
      {"max_buffers 65536", [](Config& c) { c.max_buffers = 65536; }},
      {"initial_ticket past the limit",
       [](Config& c) { c.initial_ticket = MR_TICKET_MASK - (1ull << 40) + 1; }},
      {"initial_ticket 2^56", [](Config& c) { c.initial_ticket = 1ull << 56; }},
      {"backoff min > max",
       [](Config& c) {
         c.poll_backoff_min_ns = 4096;
         c.poll_backoff_max_ns = 64;
       }},
      {"backoff max over 1 s (its doubling would wrap)",
       [](Config& c) { c.poll_backoff_max_ns = 1'000'000'001; }},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    Config cfg = base_config();
    b.edit(cfg);
    std::unique_ptr<Runtime> rt;
    const Status st = Runtime::create(cfg, &rt);
    EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
    EXPECT_FALSE(st.message().empty()) << "errors must say what is wrong";
    EXPECT_EQ(rt, nullptr);
  }
  MR_EXPECT_RESULT(Runtime::create(base_config(), nullptr), Result::kInvalidArgument);
}

TEST_P(RingConfigTest, AcceptsEdgeConfigs) {
  for (uint32_t cap : {1u, 2u, 1u << 16}) {
    Config cfg = ring_config(cap);
    cfg.max_buffers = cap == 2 ? 65535 : 1;
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
    EXPECT_EQ(rt->capacity(), cap);
    EXPECT_GE(rt->consumer_units(), 1u);
    Completion c;
    ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(cap), &c));
    EXPECT_EQ(c.result, cap);
    BufferHandle h1 = 0, h2 = 0;
    MR_ASSERT_OK(rt->alloc_buffer(8, &h1));
    if (cfg.max_buffers == 1)
      MR_EXPECT_RESULT(rt->alloc_buffer(8, &h2), Result::kOutOfMemory) << "table of one entry";
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(workers_config(3), &rt));
  EXPECT_EQ(rt->consumer_units(), 3u);
}

TEST_P(RingConfigTest, RejectsBadDeviceOrdinal) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "the CPU backend has no device ordinal";
  Config cfg = base_config();
  cfg.device = 999;
  std::unique_ptr<Runtime> rt;
  const Status st = Runtime::create(cfg, &rt);
  EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
  EXPECT_EQ(rt, nullptr);
}

MEGARING_INSTANTIATE_BACKENDS(RingConfigTest);

}  // namespace
}  // namespace megaring_test
