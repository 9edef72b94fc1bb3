// SPDX-License-Identifier: Apache-2.0
// The operator's view, metrics and pieces: Runtime::metrics_text and
// TenantRegistry::metrics_text parsed back (tests/metrics_parser.hpp) and
// compared with the counters they expose, tenant labels with hostile bytes
// included; MEGARING_DEBUG's parsing, the observed ages (operator_watch.hpp)
// and the exposition escapes, without a runtime.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <megaring/log.hpp>
#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"
#include "metrics_parser.hpp"
#include "runtime/operator_watch.hpp"
#include "support/prometheus_text.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::LogLevel;
using megaring::SlotRequest;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
namespace ops = megaring::ops;
using std::chrono::seconds;

class OperatorMetricsTest : public BackendTest {
 protected:
  void TearDown() override {
    registry_.reset();
    if (rt_) MR_EXPECT_OK(rt_->shutdown(scaled(seconds(30))));
    rt_.reset();
    BackendTest::TearDown();
  }
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<TenantRegistry> registry_;
};

TEST_P(OperatorMetricsTest, RuntimeMetricsParseAndEqualTheCounters) {
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt_));
  BufferHandle buf;
  MR_ASSERT_OK(rt_->alloc_buffer(64, &buf));
  Ticket t;
  for (int i = 0; i < 5; ++i) MR_ASSERT_OK(rt_->publish(ops::nop(i), &t));
  MR_ASSERT_OK(rt_->publish(ops::store_u32(buf, 1, 7), &t));   // MISALIGNED
  MR_ASSERT_OK(rt_->publish(ops::store_u32(buf, 64, 7), &t));  // OUT_OF_BOUNDS
  MR_ASSERT_OK(rt_->wait_done(t, scaled(seconds(10))));
  std::string text;
  MR_ASSERT_OK(rt_->metrics_text(&text));
  Metrics m;
  ASSERT_TRUE(parse_metrics(text, &m)) << m.error << "\n" << text;
  const megaring::RuntimeStats s = rt_->stats();
  megaring::ConsumerCounters cc;
  MR_ASSERT_OK(rt_->consumer_counters(&cc));
  EXPECT_EQ(m.value("megaring_slots_published_total", ""), 7.0);
  EXPECT_EQ(m.value("megaring_slots_reaped_total", "status=ok"), 5.0);
  EXPECT_EQ(m.value("megaring_slots_reaped_total", "status=fault"), 2.0);
  EXPECT_EQ(m.value("megaring_slot_faults_total", "code=" + std::to_string(MR_FAULT_MISALIGNED)), 1.0);
  EXPECT_EQ(m.value("megaring_slot_faults_total", "code=" + std::to_string(MR_FAULT_OUT_OF_BOUNDS)), 1.0);
  EXPECT_EQ(m.value("megaring_slot_faults_total", "code=" + std::to_string(MR_FAULT_BAD_HANDLE)), 0.0);
  EXPECT_EQ(m.value("megaring_ring_done_count", "ring=0"), static_cast<double>(s.done_count));
  EXPECT_EQ(m.value("megaring_ring_published_end", "ring=0"), static_cast<double>(t.value + 1));
  EXPECT_EQ(m.value("megaring_consumer_tickets_fetched_total", ""), static_cast<double>(cc.tickets_fetched));
  EXPECT_EQ(m.value("megaring_consumer_alive", ""), 1.0);
  EXPECT_EQ(m.value("megaring_runtime_state", "state=running"), 1.0);
  EXPECT_EQ(m.value("megaring_runtime_state", "state=stopped"), 0.0);
  EXPECT_EQ(m.type("megaring_slots_published_total"), "counter");
  EXPECT_EQ(m.type("megaring_consumer_alive"), "gauge");
  MR_EXPECT_RESULT(rt_->metrics_text(nullptr), Result::kInvalidArgument);
}

TEST_P(OperatorMetricsTest, TenantMetricsCarryEscapedLabelsAndTheCounters) {
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt_));
  MR_ASSERT_OK(TenantRegistry::create(*rt_, {}, &registry_));
  const std::string hostile = std::string("a\"b\\c\nd}e,f=\"g\xff") + '\0' + "h";
  TenantConfig cfg;
  cfg.label = hostile;
  cfg.quotas.max_outstanding_slots = 32;
  TenantHandle a, b;
  MR_ASSERT_OK(registry_->register_tenant(cfg, &a));
  cfg.label = "plain";
  MR_ASSERT_OK(registry_->register_tenant(cfg, &b));
  TenantPublishOptions keep;
  keep.keep_result = true;
  keep.timeout = scaled(seconds(10));
  Ticket t;
  Completion c;
  for (int i = 0; i < 3; ++i) {
    MR_ASSERT_OK(a.publish_slot(ops::nop(i), &t, keep));
    MR_ASSERT_OK(a.wait(t, &c, scaled(seconds(10))));
  }
  SlotRequest bad = ops::nop();
  bad.opcode = 15;  // local opcode 15: not a built-in, UNKNOWN_OPCODE
  MR_ASSERT_OK(b.publish_slot(bad, &t, keep));
  MR_ASSERT_OK(b.wait(t, &c, scaled(seconds(10))));
  ASSERT_EQ(c.fault, MR_FAULT_UNKNOWN_OPCODE);
  MR_ASSERT_OK(b.quiesce(scaled(seconds(10))));
  MR_ASSERT_OK(a.quiesce(scaled(seconds(10))));

  std::string text;
  MR_ASSERT_OK(registry_->metrics_text(&text));
  Metrics m;
  ASSERT_TRUE(parse_metrics(text, &m)) << m.error << "\n" << text;
  // The parser unescapes; invalid UTF-8 came out as U+FFFD.
  const std::string expected = std::string("a\"b\\c\nd}e,f=\"g\xEF\xBF\xBD") + '\0' + "h";
  const std::string la = "tenant=" + std::to_string(a.id()) + ",label=" + expected;
  const std::string lb = "tenant=" + std::to_string(b.id()) + ",label=plain";
  const megaring::TenantRuntimeCounters ra = a.runtime_counters(), rb = b.runtime_counters();
  EXPECT_EQ(m.value("megaring_tenant_published_total", la), static_cast<double>(ra.published));
  EXPECT_EQ(ra.published, 3u);
  EXPECT_EQ(m.value("megaring_tenant_completed_ok_total", la), 3.0);
  EXPECT_EQ(m.value("megaring_tenant_drained_total", la), static_cast<double>(ra.drained));
  EXPECT_EQ(m.value("megaring_tenant_device_admitted_total", la), static_cast<double>(ra.device_admitted));
  EXPECT_EQ(m.value("megaring_tenant_faulted_total", lb), 1.0);
  EXPECT_EQ(m.value("megaring_tenant_faults_total",
                    lb + ",code=" + std::to_string(MR_FAULT_UNKNOWN_OPCODE)),
            static_cast<double>(rb.faults_by_code[MR_FAULT_UNKNOWN_OPCODE]));
  EXPECT_EQ(m.value("megaring_tenant_max_outstanding_slots", lb), 32.0);
  EXPECT_EQ(m.value("megaring_registry_live_tenants", ""), 2.0);
  EXPECT_EQ(m.samples_of("megaring_tenant_published_total"), 2u);
  // The raw text: the label's bytes escaped, one sample a line.
  EXPECT_NE(text.find("label=\"a\\\"b\\\\c\\nd}e,f=\\\"g\xEF\xBF\xBD"), std::string::npos) << text;
}

MEGARING_INSTANTIATE_BACKENDS(OperatorMetricsTest);

// ---------------------------------------------------------------------------
// Without a runtime.
// ---------------------------------------------------------------------------
TEST(LogLevels, ParseLikeNcclDebug) {
  bool known = false;
  EXPECT_EQ(megaring::parse_log_level(nullptr, &known), LogLevel::kNone);
  EXPECT_TRUE(known);
  EXPECT_EQ(megaring::parse_log_level("", &known), LogLevel::kNone);
  EXPECT_EQ(megaring::parse_log_level("NONE", &known), LogLevel::kNone);
  EXPECT_EQ(megaring::parse_log_level("WARN", &known), LogLevel::kWarn);
  EXPECT_EQ(megaring::parse_log_level("info", &known), LogLevel::kInfo);
  EXPECT_EQ(megaring::parse_log_level("Trace", &known), LogLevel::kTrace);
  EXPECT_TRUE(known);
  EXPECT_EQ(megaring::parse_log_level("verbose", &known), LogLevel::kWarn);
  EXPECT_FALSE(known);
  EXPECT_EQ(megaring::parse_log_level("INFOX", &known), LogLevel::kWarn);
  EXPECT_FALSE(known);
  EXPECT_STREQ(megaring::log_level_name(LogLevel::kTrace), "TRACE");
}

// The observed ages (AgeSource::kObserved): from the first look that saw
// a value, restarted by a new value, and for DONE_COUNT by an idle look.
TEST(OperatorWatch, ObservedAgesCountFromTheFirstLook) {
  megaring::detail::OperatorWatch w;
  EXPECT_EQ(w.observe_heartbeat(5, 100), 0);
  EXPECT_EQ(w.observe_heartbeat(5, 250), 150);
  EXPECT_EQ(w.observe_heartbeat(6, 300), 0);
  EXPECT_EQ(w.observe_heartbeat(6, 400), 100);
  EXPECT_EQ(w.observe_done(0, 10, true, 1000), 0);
  EXPECT_EQ(w.observe_done(0, 10, true, 1500), 500);
  EXPECT_EQ(w.observe_done(0, 11, true, 1600), 0);
  EXPECT_EQ(w.observe_done(0, 11, false, 1700), -1);
  EXPECT_EQ(w.observe_done(0, 11, true, 1800), 0);  // idle in between: counts from here
  EXPECT_EQ(w.observe_done(3, 11, true, 1900), 0);  // each ring its own
  EXPECT_EQ(w.observe_done(0, 11, true, 2000), 200);
  EXPECT_EQ(w.observe_done(MR_MAX_RINGS, 1, true, 1), -1);  // no such ring
  int64_t age = 0;
  EXPECT_TRUE(w.last_error(10, &age).is_ok());
  EXPECT_EQ(age, -1);
  w.note_error(Status::ok(), 20);  // not an error
  EXPECT_TRUE(w.last_error(30, &age).is_ok());
  w.note_error(Status(Result::kTimeout, "first"), 40);
  w.note_error(Status(Result::kCudaError, "second"), 50);
  const Status last = w.last_error(80, &age);
  EXPECT_EQ(last.code(), Result::kCudaError);
  EXPECT_EQ(last.message(), "second");
  EXPECT_EQ(age, 30);
}

TEST(PrometheusEscape, TheThreeEscapesAndValidUtf8) {
  using megaring::detail::prometheus_escape;
  EXPECT_EQ(prometheus_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(prometheus_escape("say \"hi\"\n", false), "say \"hi\"\\n");  // HELP keeps quotes
  const std::string bad = "\xEF\xBF\xBD";
  EXPECT_EQ(prometheus_escape("\xff"), bad);
  EXPECT_EQ(prometheus_escape("\xc0\x80"), bad + bad);             // overlong NUL
  EXPECT_EQ(prometheus_escape("\xed\xa0\x80"), bad + bad + bad);  // a surrogate
  EXPECT_EQ(prometheus_escape("\xe2\x82"), bad + bad);             // cut short
  EXPECT_EQ(prometheus_escape("\xf4\x90\x80\x80"), bad + bad + bad + bad);  // past U+10FFFF
  EXPECT_EQ(prometheus_escape("\xe2\x82\xac \xf0\x9f\x98\x80"), "\xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(prometheus_escape(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(MetricsParser, RefusesWhatIsNotExposition) {
  Metrics m;
  EXPECT_FALSE(parse_metrics("x 1\n", &m));                                 // no TYPE first
  EXPECT_FALSE(parse_metrics("# HELP x h\n# TYPE x counter\nx{a=\"b} 1\n", &m));  // unterminated
  EXPECT_FALSE(parse_metrics("# HELP x h\n# TYPE x counter\nx{a=\"\\q\"} 1\n", &m));  // bad escape
  EXPECT_FALSE(parse_metrics("# HELP x h\n# TYPE x counter\nx 1\n# HELP y h\n# TYPE y gauge\ny 2\nx 3\n", &m));
  EXPECT_FALSE(parse_metrics("# HELP x h\n# TYPE x counter\nx one\n", &m));
  EXPECT_TRUE(parse_metrics("# HELP x h\n# TYPE x counter\nx{a=\"\\\"\\\\\\n\"} 1\n", &m)) << m.error;
  EXPECT_EQ(m.value("x", "a=\"\\\n"), 1.0);
}

}  // namespace
}  // namespace megaring_test
