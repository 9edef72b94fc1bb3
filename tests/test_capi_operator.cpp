// SPDX-License-Identifier: Apache-2.0
// The C API's operator's view (megaring/megaring.h): mr_runtime_health,
// mr_runtime_dump_state, mr_runtime_metrics_text, mr_registry_metrics_text
// (the text calls' length query and cut) and mr_set_log_callback.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capi_test_util.hpp"

namespace megaring_test {
namespace {

// The whole text: a length query, then reads until it fits (the text moves
// between calls: counters and ages change its length).
std::string text_of(mr_result_t (*fn)(mr_runtime_t*, char*, size_t, size_t*), mr_runtime_t* rt) {
  size_t length = 0;
  if (fn(rt, nullptr, 0, &length) != MR_RESULT_SUCCESS) return "<length query failed>";
  for (int attempt = 0; attempt < 10; ++attempt) {
    std::vector<char> buffer(length + 64, 'x');
    if (fn(rt, buffer.data(), buffer.size(), &length) != MR_RESULT_SUCCESS) return "<read failed>";
    if (length < buffer.size()) {
      if (buffer[length] != '\0') return "<not terminated>";
      return std::string(buffer.data(), length);
    }
  }
  return "<never fitted>";
}

TEST(CApiOperatorView, HealthThroughTheLifecycle) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config()), MR_RESULT_SUCCESS);
  mr_completion_t c;
  const mr_slot_request_t r = nop(3);
  ASSERT_MR(mr_runtime_call(rt.get(), &r, kLong, &c), MR_RESULT_SUCCESS);
  mr_health_t h;
  h.struct_size = sizeof h;
  ASSERT_MR(mr_runtime_health(rt.get(), &h), MR_RESULT_SUCCESS);
  EXPECT_EQ(h.state, MR_RUNTIME_STATE_RUNNING);
  EXPECT_EQ(h.consumer_alive, 1u);
  EXPECT_EQ(h.heartbeat_age_source, MR_AGE_SOURCE_SAME_CLOCK);
  EXPECT_GE(h.heartbeat_age_ns, 0);
  EXPECT_EQ(h.last_error, MR_RESULT_SUCCESS);
  EXPECT_STREQ(h.last_error_message, "");
  ASSERT_MR(mr_runtime_abort(rt.get()), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_runtime_health(rt.get(), &h), MR_RESULT_SUCCESS);
  EXPECT_EQ(h.state, MR_RUNTIME_STATE_ABORTED);
  EXPECT_EQ(h.consumer_alive, 0u);
  EXPECT_EQ(h.last_error, MR_RESULT_ABORTED);
  EXPECT_NE(std::strstr(h.last_error_message, "abort()"), nullptr) << h.last_error_message;
  EXPECT_MR(mr_runtime_health(nullptr, &h), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_health(rt.get(), nullptr), MR_RESULT_INVALID_ARGUMENT);
  h.struct_size = 8;  // older than any version
  EXPECT_MR(mr_runtime_health(rt.get(), &h), MR_RESULT_INVALID_ARGUMENT);
}

TEST(CApiOperatorView, TextCallsQueryTheLengthAndCutToFit) {
  CRuntime rt;
  ASSERT_MR(rt.create(cpu_config()), MR_RESULT_SUCCESS);
  mr_completion_t c;
  const mr_slot_request_t r = nop(1);
  ASSERT_MR(mr_runtime_call(rt.get(), &r, kLong, &c), MR_RESULT_SUCCESS);
  const std::string dump = text_of(&mr_runtime_dump_state, rt.get());
  EXPECT_EQ(dump.rfind("megaring state: running", 0), 0u) << dump;
  const std::string metrics = text_of(&mr_runtime_metrics_text, rt.get());
  EXPECT_NE(metrics.find("\nmegaring_slots_published_total 1\n"), std::string::npos) << metrics;

  char small[10];
  std::memset(small, 'x', sizeof small);
  size_t length = 0;
  ASSERT_MR(mr_runtime_dump_state(rt.get(), small, sizeof small, &length), MR_RESULT_SUCCESS);
  EXPECT_GT(length, sizeof small);
  EXPECT_EQ(small[9], '\0');
  EXPECT_EQ(std::string(small), std::string("megaring ", 9));
  ASSERT_MR(mr_runtime_dump_state(rt.get(), small, 1, nullptr), MR_RESULT_SUCCESS);
  EXPECT_EQ(small[0], '\0');
  EXPECT_MR(mr_runtime_dump_state(rt.get(), nullptr, 5, &length), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_runtime_metrics_text(nullptr, small, sizeof small, &length), MR_RESULT_INVALID_ARGUMENT);

  mr_registry_config_t rc;
  ASSERT_MR(mr_registry_config_init(&rc), MR_RESULT_SUCCESS);
  mr_registry_t* reg = nullptr;
  ASSERT_MR(mr_registry_create(rt.get(), &rc, &reg), MR_RESULT_SUCCESS);
  length = 0;
  ASSERT_MR(mr_registry_metrics_text(reg, nullptr, 0, &length), MR_RESULT_SUCCESS);
  std::vector<char> buffer(length + 1);
  ASSERT_MR(mr_registry_metrics_text(reg, buffer.data(), buffer.size(), &length), MR_RESULT_SUCCESS);
  EXPECT_NE(std::string(buffer.data()).find("megaring_registry_live_tenants 0\n"), std::string::npos);
  EXPECT_MR(mr_registry_metrics_text(nullptr, nullptr, 0, &length), MR_RESULT_INVALID_ARGUMENT);
  ASSERT_MR(mr_registry_destroy(reg), MR_RESULT_SUCCESS);
}

struct CLogLines {
  std::mutex mutex;
  std::vector<std::pair<int32_t, std::string>> lines;
  static void callback(int32_t level, const char* message, void* user) {
    auto* self = static_cast<CLogLines*>(user);
    std::lock_guard<std::mutex> lock(self->mutex);
    self->lines.emplace_back(level, message);
  }
};

TEST(CApiOperatorView, LogCallback) {
  EXPECT_MR(mr_set_log_callback(7, nullptr, nullptr), MR_RESULT_INVALID_ARGUMENT);
  EXPECT_MR(mr_set_log_callback(-1, nullptr, nullptr), MR_RESULT_INVALID_ARGUMENT);
  CLogLines log;
  ASSERT_MR(mr_set_log_callback(MR_LOG_INFO, &CLogLines::callback, &log), MR_RESULT_SUCCESS);
  {
    CRuntime rt;
    ASSERT_MR(rt.create(cpu_config()), MR_RESULT_SUCCESS);
    ASSERT_MR(mr_runtime_finalize(rt.get(), kLong), MR_RESULT_SUCCESS);
  }
  ASSERT_MR(mr_set_log_callback(MR_LOG_NONE, nullptr, nullptr), MR_RESULT_SUCCESS);
  bool created = false;
  for (const auto& l : log.lines)
    created |= l.first == MR_LOG_INFO && l.second.rfind("create: backend cpu", 0) == 0;
  EXPECT_TRUE(created);
  const size_t before = log.lines.size();
  CRuntime other;
  ASSERT_MR(other.create(cpu_config()), MR_RESULT_SUCCESS);
  ASSERT_MR(mr_runtime_finalize(other.get(), kLong), MR_RESULT_SUCCESS);
  EXPECT_EQ(log.lines.size(), before);
}

// In a death test's child: a watchdog that turns a deadlock into exit 3
// after 30 s, and a CPU runtime with a manual-pump registry (exits 4 or 5 if
// either cannot be made).
mr_registry_t* death_test_registry() {
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::seconds(30));
    std::_Exit(3);  // deadlocked
  }).detach();
  mr_runtime_config_t config = cpu_config();
  config.max_tenants = 4;
  mr_runtime_t* rt = nullptr;
  if (mr_runtime_create(&config, &rt) != MR_RESULT_SUCCESS) std::_Exit(4);
  mr_registry_config_t rc;
  (void)mr_registry_config_init(&rc);
  rc.pump = MR_PUMP_MANUAL;
  mr_registry_t* registry = nullptr;
  if (mr_registry_create(rt, &rc, &registry) != MR_RESULT_SUCCESS) std::_Exit(5);
  return registry;
}

// Registers a tenant (labelled `label`, or none) in a death test's child;
// exits 7 if it cannot. The tenant lives until the child exits.
void register_one(mr_registry_t* registry, const char* label) {
  mr_tenant_config_t tc;
  (void)mr_tenant_config_init(&tc);
  tc.label = label;
  mr_tenant_t* tenant = nullptr;
  if (mr_tenant_register(registry, &tc, &tenant) != MR_RESULT_SUCCESS) std::_Exit(7);
}

// A log callback that calls back into the library (found by review: the
// registry logged while holding its mutex, and a callback reading the
// registry's stats deadlocked the registration). This one reads the
// registry's stats, sets itself again, and on the first registration's
// message registers a second tenant, whose own message must follow.
struct LogCallsTheLibrary {
  mr_registry_t* registry = nullptr;
  std::atomic<int> registered_lines{0};
  std::atomic<bool> registered_second{false};
  static void callback(int32_t, const char* message, void* user) {
    auto* self = static_cast<LogCallsTheLibrary*>(user);
    if (self->registry == nullptr) return;
    mr_registry_stats_t stats{};
    stats.struct_size = sizeof stats;
    if (mr_registry_stats(self->registry, &stats) != MR_RESULT_SUCCESS) std::_Exit(10);
    if (mr_set_log_callback(MR_LOG_INFO, &LogCallsTheLibrary::callback, user) != MR_RESULT_SUCCESS)
      std::_Exit(11);
    if (std::strstr(message, "tenant registered") == nullptr) return;
    self->registered_lines.fetch_add(1);
    if (!self->registered_second.exchange(true)) register_one(self->registry, nullptr);
  }
};

// In a child with a watchdog: a deadlock exits 3, not a hung test binary.
TEST(CApiOperatorViewDeathTest, ALogCallbackMayCallTheLibrary) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        mr_registry_t* const registry = death_test_registry();
        static LogCallsTheLibrary target;
        target.registry = registry;
        if (mr_set_log_callback(MR_LOG_INFO, &LogCallsTheLibrary::callback, &target) !=
            MR_RESULT_SUCCESS)
          std::_Exit(6);
        register_one(registry, nullptr);
        // Both registrations' lines, the second logged from inside the callback.
        if (target.registered_lines.load() != 2) std::_Exit(8);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// A callback that turns itself off and then calls the library, which logs:
// the message goes to MEGARING_DEBUG's output (stderr here), after the
// callback returns, not into a deadlock on the log's lock.
struct LogTurnsItselfOff {
  mr_registry_t* registry = nullptr;
  std::atomic<bool> done{false};
  static void callback(int32_t, const char* message, void* user) {
    auto* self = static_cast<LogTurnsItselfOff*>(user);
    if (std::strstr(message, "tenant registered") == nullptr || self->done.exchange(true)) return;
    if (mr_set_log_callback(MR_LOG_NONE, nullptr, nullptr) != MR_RESULT_SUCCESS) std::_Exit(10);
    register_one(self->registry, "after-off");
  }
};

TEST(CApiOperatorViewDeathTest, ALogCallbackThatTurnsItselfOffMayStillCallTheLibrary) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("MEGARING_DEBUG", "INFO", 1);  // read at the child's first message
        mr_registry_t* const registry = death_test_registry();
        static LogTurnsItselfOff target;
        target.registry = registry;
        if (mr_set_log_callback(MR_LOG_INFO, &LogTurnsItselfOff::callback, &target) !=
            MR_RESULT_SUCCESS)
          std::_Exit(6);
        register_one(registry, nullptr);
        if (!target.done.load()) std::_Exit(8);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "INFO tenant registered: id [0-9]+, label \"after-off\"");
}

}  // namespace
}  // namespace megaring_test
