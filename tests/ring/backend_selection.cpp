// SPDX-License-Identifier: Apache-2.0
// Backend selection (Config::backend) and the names and result strings that
// report it. Plain tests: they never name "Gpu", and run with or without one.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <cuda_runtime_api.h>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

// kCuda without a GPU. Runs in a child process (death-test machinery) so that
// a crash inside create() is reported as this test's failure instead of
// killing the binary.
// (Regression test: a backend init() failure once crashed in ~Impl, which
// read DONE_COUNT from regions that were never allocated.)
TEST(RuntimeBackendSelection, CudaWithoutDeviceIsNoDevice) {
  if (megaring::cuda_device_available()) GTEST_SKIP() << "a CUDA device is present";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Config cfg;
        cfg.backend = Backend::kCuda;
        std::unique_ptr<Runtime> rt;
        const Status st = Runtime::create(cfg, &rt);
        std::fprintf(stderr, "create -> %s\n", st.to_string().c_str());
        std::_Exit(st.code() == Result::kNoDevice && rt == nullptr ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << "Runtime::create(kCuda) without a device must return kNoDevice (and not crash)";
}

TEST(RuntimeBackendSelection, AutoPicksCpuWithoutDevice) {
  Watchdog dog(current_test_name(), Watchdog::default_limit());
  Config cfg;
  cfg.backend = Backend::kAuto;
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(cfg, &rt));
  const Backend expected = megaring::cuda_device_available() ? Backend::kCuda : Backend::kCpu;
  EXPECT_EQ(rt->backend(), expected);
  if (expected == Backend::kCpu) {
    EXPECT_STREQ(rt->device_name(), "cpu");
    EXPECT_EQ(rt->consumer_units(), 2u) << "CPU default: two workers";
  } else {
    int sms = 0;
    ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cfg.device),
              cudaSuccess);
    EXPECT_EQ(rt->consumer_units(),
              std::min(megaring::kDefaultGpuWorkers, static_cast<uint32_t>(sms)))
        << "GPU default: kDefaultGpuWorkers blocks, at most one per SM";
  }
  Completion c;
  MR_ASSERT_OK(rt->call(ops::nop(3), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 3u);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST(RuntimeBackendSelection, NamesAndResultStrings) {
  EXPECT_STREQ(megaring::backend_name(Backend::kAuto), "auto");
  EXPECT_STREQ(megaring::backend_name(Backend::kCuda), "cuda");
  EXPECT_STREQ(megaring::backend_name(Backend::kCpu), "cpu");
  EXPECT_STREQ(megaring::result_string(Result::kRingFull), "ring full");
  const Status st(Result::kTimeout, "ticket 5");
  EXPECT_EQ(st.to_string(), "timeout: ticket 5");
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(Status::ok().is_ok());
  EXPECT_EQ(Status::ok().to_string(), "success");
}

}  // namespace
}  // namespace megaring_test
