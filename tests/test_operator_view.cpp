// SPDX-License-Identifier: Apache-2.0
// The operator's view (megaring/health.hpp, megaring/log.hpp): health() of
// running, shut-down and aborted runtimes, heartbeat ages, dump_state()
// with a unit held on a gate slot, the log callback and the dump on a wait
// timeout, and metrics_text() parsed back and compared with the counters
// (test_operator_metrics.cpp has the metrics). Every wait is bounded; no
// assertion depends on how fast anything runs.
#include <cuda/atomic>
#include <cuda_runtime_api.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <megaring/log.hpp>
#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace {

using megaring::AgeSource;
using megaring::BufferHandle;
using megaring::Completion;
using megaring::Health;
using megaring::LogLevel;
using megaring::RegistryConfig;
using megaring::RuntimeState;
using megaring::SlotRequest;
using megaring::StateDump;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
using megaring::UnitView;
namespace ops = megaring::ops;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The gate word (tenant_test_ops.hpp, kOpGate).
uint32_t* gate_word(Backend backend) { return megaring_test::gate_word(backend == Backend::kCuda); }
void set_gate(Backend backend, uint32_t value) {
  megaring_test::set_gate(backend == Backend::kCuda, value);
}

// Collects log messages (set_log_callback); the log is process-wide.
struct LogSink {
  std::mutex mutex;
  std::vector<std::pair<LogLevel, std::string>> lines;
  static void callback(LogLevel level, const char* message, void* user) {
    auto* sink = static_cast<LogSink*>(user);
    std::lock_guard<std::mutex> lock(sink->mutex);
    sink->lines.emplace_back(level, message);
  }
  bool has(const std::string& needle, LogLevel level) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& l : lines)
      if (l.first == level && l.second.find(needle) != std::string::npos) return true;
    return false;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex);
    return lines.size();
  }
};
struct ScopedLogCallback {
  ScopedLogCallback(LogLevel level, LogSink* sink) {
    megaring::set_log_callback(level, &LogSink::callback, sink);
  }
  ~ScopedLogCallback() { megaring::set_log_callback(LogLevel::kNone, nullptr); }
};

class OperatorViewTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_NE(gate_word(backend()), nullptr) << "cannot allocate the gate word";
    set_gate(backend(), 0);
  }
  void TearDown() override {
    if (gate_word(backend()) != nullptr) set_gate(backend(), 1);  // never leave a unit held
    registry_.reset();
    if (rt_) MR_EXPECT_OK(rt_->shutdown(scaled(seconds(30))));
    rt_.reset();
    BackendTest::TearDown();
  }
  // One executor, the test consumer (gate slots).
  void start(Config c) {
    c.workers = 1;
    const Status st = Runtime::create(c, tenant_test_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  SlotRequest gate_slot() const {
    SlotRequest r;
    r.opcode = kOpGate;
    r.args[0] = reinterpret_cast<uint64_t>(gate_word(backend()));
    return r;
  }
  // Polls dump_state until unit 0 runs `ticket` (bounded).
  StateDump wait_unit_busy(uint64_t ticket) {
    const auto deadline = std::chrono::steady_clock::now() + scaled(seconds(20));
    StateDump d;
    for (;;) {
      EXPECT_TRUE(rt_->dump_state(&d).is_ok());
      if (!d.units.empty() && d.units[0].busy && d.units[0].ticket == ticket) return d;
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "unit 0 never ran ticket " << ticket;
        return d;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<TenantRegistry> registry_;
};

// The drain pump's thread carries a name (top -H, debuggers, nsys rows):
// "megaring-pump", beside the CPU backend's "megaring-io" and
// "megaring-wN"; it goes with its registry.
std::vector<std::string> thread_names() {
  std::vector<std::string> names;
#if defined(__linux__)
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
#endif
  return names;
}
size_t count_named(const std::string& name) {
  const std::vector<std::string> names = thread_names();
  return static_cast<size_t>(std::count(names.begin(), names.end(), name));
}

TEST_P(OperatorViewTest, ThePumpThreadIsNamed) {
#if !defined(__linux__)
  GTEST_SKIP() << "thread names are read from /proc";
#endif
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  EXPECT_EQ(count_named("megaring-pump"), 0u);
  MR_ASSERT_OK(TenantRegistry::create(*rt_, RegistryConfig{}, &registry_));
  // Each thread names itself as it starts.
  const bool cpu = backend() == Backend::kCpu;
  const auto all_named = [&] {
    return count_named("megaring-pump") == 1 &&
           (!cpu || (count_named("megaring-io") == 1 && count_named("megaring-w0") == 1));
  };
  const auto until = std::chrono::steady_clock::now() + scaled(seconds(10));
  while (!all_named() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(count_named("megaring-pump"), 1u);
  if (cpu) {
    EXPECT_EQ(count_named("megaring-io"), 1u);
    EXPECT_EQ(count_named("megaring-w0"), 1u);
  }
  registry_.reset();
  EXPECT_EQ(count_named("megaring-pump"), 0u);
}

TEST_P(OperatorViewTest, HealthOfARunningRuntime) {
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  Completion c;
  MR_ASSERT_OK(rt_->call(ops::nop(1), &c, scaled(seconds(10))));  // the consumer has polled
  Health h;
  MR_ASSERT_OK(rt_->health(&h));
  EXPECT_EQ(h.state, RuntimeState::kRunning);
  EXPECT_TRUE(h.consumer_alive);
  EXPECT_NE(h.heartbeat_ns, 0u);
  EXPECT_GE(h.heartbeat_age_ns, 0);
  EXPECT_EQ(h.heartbeat_age_source,
            backend() == Backend::kCpu ? AgeSource::kSameClock : AgeSource::kObserved);
  EXPECT_TRUE(h.last_error.is_ok()) << h.last_error.to_string();
  EXPECT_EQ(h.last_error_age_ns, -1);
  MR_EXPECT_RESULT(rt_->health(nullptr), Result::kInvalidArgument);
}

// Shut down, the consumer stamps no more: its last stamp only ages. On
// the CPU backend the age is exact (same clock), so a sleep of 50 ms adds
// at least 50 ms; elsewhere a later look never reports less.
TEST_P(OperatorViewTest, HealthOfAShutDownRuntimeAndItsAgingHeartbeat) {
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  Health before, after;
  MR_ASSERT_OK(rt_->health(&before));
  std::this_thread::sleep_for(milliseconds(50));
  MR_ASSERT_OK(rt_->health(&after));
  EXPECT_EQ(after.state, RuntimeState::kStopped);
  EXPECT_FALSE(after.consumer_alive);
  EXPECT_TRUE(after.last_error.is_ok()) << after.last_error.to_string();
  ASSERT_EQ(before.heartbeat_ns, after.heartbeat_ns) << "a stopped consumer stamped";
  EXPECT_GE(after.heartbeat_age_ns, before.heartbeat_age_ns);
  if (backend() == Backend::kCpu)
    EXPECT_GE(after.heartbeat_age_ns - before.heartbeat_age_ns, 50'000'000);
}

TEST_P(OperatorViewTest, HealthOfAnAbortedRuntime) {
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  Ticket t;
  MR_ASSERT_OK(rt_->publish(gate_slot(), &t));
  MR_ASSERT_OK(rt_->abort());
  Health h;
  MR_ASSERT_OK(rt_->health(&h));
  EXPECT_EQ(h.state, RuntimeState::kAborted);
  EXPECT_FALSE(h.consumer_alive);
  EXPECT_EQ(h.last_error.code(), Result::kAborted) << h.last_error.to_string();
  EXPECT_GE(h.last_error_age_ns, 0);
  std::string text;
  MR_ASSERT_OK(rt_->dump_state(&text));
  EXPECT_NE(text.find("megaring state: aborted"), std::string::npos) << text;
}

// While the runtime runs: with a heartbeat interval of 4 s, two looks
// 50 ms apart usually see the same stamp, whose age then grew by the sleep.
TEST_P(OperatorViewTest, HeartbeatAgeGrowsWhileTheStampStands) {
  Config c = base_config();
  c.heartbeat_interval_ns = 4'000'000'000u;
  ASSERT_NO_FATAL_FAILURE(start(c));
  for (int attempt = 0; attempt < 20; ++attempt) {
    Health before, after;
    MR_ASSERT_OK(rt_->health(&before));
    std::this_thread::sleep_for(milliseconds(50));
    MR_ASSERT_OK(rt_->health(&after));
    EXPECT_TRUE(after.consumer_alive);
    if (before.heartbeat_ns != after.heartbeat_ns || before.heartbeat_ns == 0) continue;  // restamped
    EXPECT_GE(after.heartbeat_age_ns, before.heartbeat_age_ns);
    if (backend() == Backend::kCpu)
      EXPECT_GE(after.heartbeat_age_ns - before.heartbeat_age_ns, 50'000'000);
    else
      EXPECT_GE(after.heartbeat_age_ns - before.heartbeat_age_ns, 0);
    return;
  }
  FAIL() << "the heartbeat changed between every pair of looks";
}

// The only unit held on a tenant's gate slot, a NOP queued behind it: the
// dump names the unit's ticket, tenant and opcode, and the held ticket as
// the oldest outstanding one, whose age only grows while it is held.
TEST_P(OperatorViewTest, DumpStateShowsAHeldSlot) {
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  MR_ASSERT_OK(TenantRegistry::create(*rt_, {}, &registry_));
  TenantConfig cfg;
  cfg.label = "held";
  cfg.quotas.opcode_cap = kOpGate + 16;  // user opcodes: a window past 256
  TenantHandle tenant;
  MR_ASSERT_OK(registry_->register_tenant(cfg, &tenant));
  TenantPublishOptions keep;
  keep.keep_result = true;
  keep.timeout = scaled(seconds(10));
  Ticket held, queued;
  MR_ASSERT_OK(tenant.publish_slot(gate_slot(), &held, keep));
  MR_ASSERT_OK(tenant.publish_slot(ops::nop(5), &queued, keep));

  const StateDump d = wait_unit_busy(held.value);
  ASSERT_EQ(d.units.size(), 1u);
  const UnitView& u = d.units[0];
  EXPECT_TRUE(u.started);
  EXPECT_EQ(u.ring, 0u);
  EXPECT_EQ(u.tenant, tenant.id());
  EXPECT_EQ(u.opcode, tenant.base_opcode() + kOpGate);
  EXPECT_EQ(u.chunk_slots, 1u);
  EXPECT_EQ(d.health.state, RuntimeState::kRunning);
  ASSERT_EQ(d.rings.size(), 1u);
  EXPECT_EQ(d.rings[0].done_count, held.value);
  EXPECT_EQ(d.rings[0].published_end, queued.value + 1);
  EXPECT_EQ(d.completed, held.value);  // with one ring the sequence is ring 0's ticket
  EXPECT_GE(d.claimed, held.value + 1);
  EXPECT_LE(d.claimed, d.fetched);
  ASSERT_TRUE(d.oldest.any);
  EXPECT_EQ(d.oldest.ring, 0u);
  EXPECT_EQ(d.oldest.ticket, held.value);
  EXPECT_EQ(d.oldest.age_source, AgeSource::kObserved);
  std::this_thread::sleep_for(milliseconds(20));
  StateDump later;
  MR_ASSERT_OK(rt_->dump_state(&later));
  ASSERT_TRUE(later.oldest.any);
  EXPECT_EQ(later.oldest.ticket, held.value);
  EXPECT_GE(later.oldest.age_ns, d.oldest.age_ns + 20'000'000);

  std::string text;
  MR_ASSERT_OK(rt_->dump_state(&text));
  EXPECT_NE(text.find("unit 0: running ring 0 ticket " + std::to_string(held.value)),
            std::string::npos) << text;
  EXPECT_NE(text.find("oldest outstanding: ring 0 ticket " + std::to_string(held.value)),
            std::string::npos) << text;

  set_gate(backend(), 1);
  Completion c;
  MR_ASSERT_OK(tenant.wait(queued, &c, scaled(seconds(10))));
  MR_ASSERT_OK(tenant.wait(held, &c, scaled(seconds(10))));
  MR_ASSERT_OK(rt_->wait_done(queued, scaled(seconds(10))));
  StateDump after;
  MR_ASSERT_OK(rt_->dump_state(&after));
  EXPECT_FALSE(after.oldest.any);
  EXPECT_FALSE(after.units[0].busy);
  EXPECT_EQ(after.units[0].ticket, queued.value);  // the last slot it took
}

// Timeline mode records publish times: the held ticket's age is exact.
TEST_P(OperatorViewTest, OldestTicketAgeFromTheTimeline) {
  Config c = base_config();
  c.ring_capacity = 64;
  c.timeline_capacity = 128;
  ASSERT_NO_FATAL_FAILURE(start(c));
  Ticket held;
  MR_ASSERT_OK(rt_->publish(gate_slot(), &held));
  const StateDump d = wait_unit_busy(held.value);
  ASSERT_TRUE(d.oldest.any);
  EXPECT_EQ(d.oldest.ticket, held.value);
  EXPECT_EQ(d.oldest.age_source, AgeSource::kRecorded);
  EXPECT_GE(d.oldest.age_ns, 0);
  if (backend() == Backend::kCuda) {
    Health h;
    MR_ASSERT_OK(rt_->health(&h));
    EXPECT_EQ(h.heartbeat_age_source, AgeSource::kCalibrated);
  }
}

TEST_P(OperatorViewTest, LogCallbackGetsTheLifecycle) {
  LogSink sink;
  {
    ScopedLogCallback scope(LogLevel::kInfo, &sink);
    ASSERT_NO_FATAL_FAILURE(start(base_config()));
    MR_ASSERT_OK(TenantRegistry::create(*rt_, {}, &registry_));
    TenantConfig cfg;
    cfg.label = "line\nbreak";
    TenantHandle t;
    MR_ASSERT_OK(registry_->register_tenant(cfg, &t));
    MR_ASSERT_OK(registry_->unregister_tenant(t));
    registry_.reset();
    MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  }
  EXPECT_TRUE(sink.has(std::string("create: backend ") + megaring::backend_name(backend()), LogLevel::kInfo));
  EXPECT_TRUE(sink.has("tenant registered: id ", LogLevel::kInfo));
  EXPECT_TRUE(sink.has("label \"line\\nbreak\"", LogLevel::kInfo));  // one line, escaped
  EXPECT_TRUE(sink.has("tenant unregistered: id ", LogLevel::kInfo));
  EXPECT_TRUE(sink.has("shutdown: drained", LogLevel::kInfo));
  for (const auto& l : sink.lines) EXPECT_EQ(l.second.find('\n'), std::string::npos) << l.second;

  // Gone: nothing more reaches it.
  const size_t before = sink.count();
  std::unique_ptr<Runtime> other;
  MR_ASSERT_OK(Runtime::create(base_config(), &other));
  MR_ASSERT_OK(other->shutdown(scaled(seconds(30))));
  EXPECT_EQ(sink.count(), before);
}

TEST_P(OperatorViewTest, WarnLevelLeavesInfoOutAndAbortIsAWarning) {
  LogSink sink;
  ScopedLogCallback scope(LogLevel::kWarn, &sink);
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  MR_ASSERT_OK(rt_->abort());
  EXPECT_FALSE(sink.has("create:", LogLevel::kInfo));
  EXPECT_TRUE(sink.has("abort()", LogLevel::kWarn));
}

TEST_P(OperatorViewTest, WaitTimeoutIsLoggedWithTheDumpWhenAsked) {
  LogSink sink;
  ScopedLogCallback scope(LogLevel::kWarn, &sink);
  Config c = base_config();
  c.dump_on_wait_timeout = true;
  ASSERT_NO_FATAL_FAILURE(start(c));
  Ticket held;
  MR_ASSERT_OK(rt_->publish(gate_slot(), &held));
  (void)wait_unit_busy(held.value);
  MR_ASSERT_RESULT(rt_->wait_done(held, milliseconds(1)), Result::kTimeout);
  EXPECT_TRUE(sink.has("wait_done(ticket " + std::to_string(held.value) + ") timed out", LogLevel::kWarn));
  EXPECT_TRUE(sink.has("dump: megaring state: running", LogLevel::kWarn));
  EXPECT_TRUE(sink.has("dump:   unit 0: running ring 0 ticket " + std::to_string(held.value),
                       LogLevel::kWarn));
  Health h;
  MR_ASSERT_OK(rt_->health(&h));
  EXPECT_EQ(h.last_error.code(), Result::kTimeout);
}

TEST_P(OperatorViewTest, WaitTimeoutWithoutTheOptionLogsNoDump) {
  LogSink sink;
  ScopedLogCallback scope(LogLevel::kWarn, &sink);
  ASSERT_NO_FATAL_FAILURE(start(base_config()));
  Ticket held;
  MR_ASSERT_OK(rt_->publish(gate_slot(), &held));
  MR_ASSERT_RESULT(rt_->wait_done(held, milliseconds(1)), Result::kTimeout);
  EXPECT_TRUE(sink.has("timed out", LogLevel::kWarn));
  EXPECT_FALSE(sink.has("dump:", LogLevel::kWarn));
}

// Looks while slots flow on two executors (under ThreadSanitizer in CI: the
// notes and cursors are read while the consumer writes them): every look
// succeeds and names only tickets that were published.
TEST_P(OperatorViewTest, LooksWhileSlotsFlow) {
  Config c = base_config();
  c.workers = 2;
  const Status created = Runtime::create(c, tenant_test_consumer(), &rt_);
  ASSERT_TRUE(created.is_ok()) << created.to_string();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> looks{0}, bad{0};
  std::thread looker([&] {
    while (!done.load()) {
      StateDump d;
      std::string text;
      if (!rt_->dump_state(&d) || !rt_->metrics_text(&text)) {
        bad.fetch_add(1);
        continue;
      }
      for (const UnitView& u : d.units)
        if (u.started && (u.ring != 0 || u.ticket >= d.rings[0].published_end || u.opcode != MR_OP_NOP))
          bad.fetch_add(1);
      looks.fetch_add(1);
    }
  });
  std::vector<SlotRequest> batch(64, ops::nop(1));
  Ticket t;
  for (int i = 0; i < 200; ++i) MR_EXPECT_OK(rt_->publish_batch(batch.data(), 64, &t));
  MR_EXPECT_OK(rt_->wait_done(Ticket{t.value + 63}, scaled(seconds(30))));
  done.store(true);
  looker.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(looks.load(), 0u);
}

MEGARING_INSTANTIATE_BACKENDS(OperatorViewTest);

}  // namespace
}  // namespace megaring_test
