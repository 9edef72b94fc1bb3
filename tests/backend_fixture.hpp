// SPDX-License-Identifier: Apache-2.0
// Shared test scaffolding: a fixture parameterized by megaring::Backend, run
// once per backend (instantiation names `Cpu` and `Gpu`; the CUDA one skips
// itself without a device and gets the ctest `gpu` label), status assertion
// macros, scaled timeouts for sanitizer builds, and a per-test watchdog that
// turns a hang into a failure instead of a stuck CI job.
#pragma once

#include <gtest/gtest.h>

#include <megaring/runtime.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

namespace megaring {
// Readable gtest output for the enums used in assertions.
inline void PrintTo(Result result, std::ostream* os) { *os << result_string(result); }
inline void PrintTo(Backend backend, std::ostream* os) { *os << backend_name(backend); }
inline void PrintTo(const Status& status, std::ostream* os) { *os << status.to_string(); }
}  // namespace megaring

namespace megaring_test {

using megaring::Backend;
using megaring::Config;
using megaring::Result;
using megaring::Runtime;
using megaring::Status;
using Nanoseconds = megaring::Nanoseconds;

// ---------------------------------------------------------------------------
// Status assertions: the failure message carries the Status text.
// ---------------------------------------------------------------------------
// Each accepts a streamed message: MR_EXPECT_OK(rt->shutdown()) << "context";
#define MR_STATUS_CHECK_(expr, check, expected)                               \
  switch (0)                                                                  \
  case 0:                                                                     \
  default:                                                                    \
    if (const auto mr_status_ = (expr); false) {                              \
    } else                                                                    \
      check(mr_status_.code(), (expected)) << #expr << " -> " << mr_status_.to_string() << " "
#define MR_ASSERT_OK(expr) MR_STATUS_CHECK_(expr, ASSERT_EQ, ::megaring::Result::kSuccess)
#define MR_EXPECT_OK(expr) MR_STATUS_CHECK_(expr, EXPECT_EQ, ::megaring::Result::kSuccess)
#define MR_ASSERT_RESULT(expr, expected) MR_STATUS_CHECK_(expr, ASSERT_EQ, expected)
#define MR_EXPECT_RESULT(expr, expected) MR_STATUS_CHECK_(expr, EXPECT_EQ, expected)

// ---------------------------------------------------------------------------
// Environment knobs.
// ---------------------------------------------------------------------------
inline uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long parsed = std::strtoull(v, &end, 10);
  if (end == v || *end != '\0') {
    std::fprintf(stderr, "ignoring %s=%s (not a number)\n", name, v);
    return fallback;
  }
  return parsed;
}

inline bool built_with_tsan() {
#if defined(__SANITIZE_THREAD__)
  return true;
#else
  return false;
#endif
}

// Multiplier for every finite timeout and time bound in the tests:
// MEGARING_TIMEOUT_SCALE, else 10 under ThreadSanitizer, 3 under ASan, 1.
inline uint64_t timeout_scale() {
  uint64_t fallback = 1;
#if defined(__SANITIZE_THREAD__)
  fallback = 10;
#elif defined(__SANITIZE_ADDRESS__)
  fallback = 3;
#endif
  const uint64_t s = env_u64("MEGARING_TIMEOUT_SCALE", fallback);
  return s == 0 ? 1 : s;
}

template <class Rep, class Period>
Nanoseconds scaled(std::chrono::duration<Rep, Period> d) {
  return std::chrono::duration_cast<Nanoseconds>(d) * static_cast<int64_t>(timeout_scale());
}

// ---------------------------------------------------------------------------
// Watchdog: if the guarded scope does not finish in time, report and exit
// the test binary with a failure (a wedged consumer or a lost wakeup must not
// hang CI). Default budget MEGARING_TEST_WATCHDOG_S (120 s) times the scale.
// ---------------------------------------------------------------------------
class Watchdog {
 public:
  Watchdog(std::string what, std::chrono::seconds limit) : what_(std::move(what)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
        std::fprintf(stderr,
                     "\nWATCHDOG: %s did not finish within %lld s: treating the hang as a "
                     "failure and exiting\n",
                     what_.c_str(), static_cast<long long>(limit.count()));
        std::fflush(stderr);
        std::_Exit(3);
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  static std::chrono::seconds default_limit() {
    return std::chrono::seconds(env_u64("MEGARING_TEST_WATCHDOG_S", 120) * timeout_scale());
  }

 private:
  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// xorshift64*: cheap deterministic per-thread randomness.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
};

inline std::string current_test_name() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  if (info == nullptr) return "test";
  return std::string(info->test_suite_name()) + "." + info->name();
}

// ---------------------------------------------------------------------------
// The backend fixture.
// ---------------------------------------------------------------------------
class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    watchdog_ = std::make_unique<Watchdog>(current_test_name(), Watchdog::default_limit());
    if (GetParam() == Backend::kCuda && !megaring::cuda_device_available())
      GTEST_SKIP() << "no usable CUDA device";
  }
  void TearDown() override { watchdog_.reset(); }

  Backend backend() const { return GetParam(); }

  // A config for this backend with the library defaults otherwise.
  // MEGARING_TEST_FETCH_WARPS sets Config::fetch_warps for every test that
  // starts from here (0, unset: the library's default): the GPU session
  // check reruns the stress tests with other crews, and a crew that fails
  // on a GPU can be told from the rest of the consumer.
  Config base_config() const {
    Config c;
    c.backend = GetParam();
    c.fetch_warps = static_cast<uint32_t>(env_u64("MEGARING_TEST_FETCH_WARPS", 0));
    return c;
  }

  // Creates a runtime and asserts success (use ASSERT_NO_FATAL_FAILURE).
  void create_runtime(const Config& config, std::unique_ptr<Runtime>* out) {
    const Status st = Runtime::create(config, out);
    ASSERT_TRUE(st.is_ok()) << "Runtime::create(" << megaring::backend_name(config.backend)
                            << ", capacity " << config.ring_capacity << ") -> " << st.to_string();
    ASSERT_NE(*out, nullptr);
    ASSERT_EQ((*out)->backend(), GetParam());
  }

 private:
  std::unique_ptr<Watchdog> watchdog_;
};

inline std::string backend_param_name(const ::testing::TestParamInfo<Backend>& info) {
  return megaring::backend_name(info.param);
}

}  // namespace megaring_test

// Instantiates a BackendTest-derived suite for both backends: `Cpu/...` and
// `Gpu/...` (the latter carries the ctest `gpu` label and skips without a GPU).
#define MEGARING_INSTANTIATE_BACKENDS(Suite)                                               \
  INSTANTIATE_TEST_SUITE_P(Cpu, Suite, ::testing::Values(::megaring::Backend::kCpu),       \
                           ::megaring_test::backend_param_name);                          \
  INSTANTIATE_TEST_SUITE_P(Gpu, Suite, ::testing::Values(::megaring::Backend::kCuda),      \
                           ::megaring_test::backend_param_name)
