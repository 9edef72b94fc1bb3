// SPDX-License-Identifier: Apache-2.0
// Timeline mode: per-slot records (unit, claim and completion times), the
// host-side publish times and reap passes, and the Chrome trace writer.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend_fixture.hpp"

namespace megaring_test {
namespace {

using megaring::Completion;
using megaring::PublishOptions;
using megaring::SlotRequest;
using megaring::Ticket;
using megaring::Timeline;
namespace ops = megaring::ops;
using std::chrono::seconds;

class TimelineTest : public BackendTest {
 protected:
  Config timeline_config(uint32_t capacity) const {
    Config c = base_config();
    c.timeline_capacity = capacity;
    c.workers = 2;
    return c;
  }
};

TEST_P(TimelineTest, OffByDefaultAndRejectsBadCapacity) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Timeline t;
  MR_EXPECT_RESULT(rt->timeline(&t), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_timeline_trace("/dev/null"), Result::kInvalidArgument);
  std::unique_ptr<Runtime> rt2;
  Config bad = timeline_config(1000);  // not a power of two
  MR_EXPECT_RESULT(Runtime::create(bad, &rt2), Result::kInvalidArgument);
  bad = timeline_config(1024);  // less than twice the ring
  bad.ring_capacity = 1024;
  MR_EXPECT_RESULT(Runtime::create(bad, &rt2), Result::kInvalidArgument);
}

// Regression (issue 13): stats() counted the 32 clock-calibration slots of
// timeline mode as the caller's.
TEST_P(TimelineTest, StatsCountOnlyTheCallersSlots) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(timeline_config(2048), &rt));
  megaring::RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 0u);
  EXPECT_EQ(s.reaped, 0u);
  EXPECT_EQ(s.completed_ok, 0u);
  Ticket last{};
  for (int i = 0; i < 5; ++i) MR_ASSERT_OK(rt->publish(ops::nop(i), &last));
  MR_ASSERT_OK(rt->wait_done(last, scaled(seconds(10))));
  s = rt->stats();
  EXPECT_EQ(s.published, 5u);
  EXPECT_EQ(s.reaped, 5u);
  EXPECT_EQ(s.completed_ok, 5u);
  EXPECT_EQ(s.done_count, last.value + 1) << "DONE_COUNT stays an absolute ticket";
}

// Every completed ticket in the window has one record with the right opcode,
// a valid unit and ordered times; DELAY slots last at least their delay.
TEST_P(TimelineTest, RecordsEverySlotWithOrderedTimes) {
  std::unique_ptr<Runtime> rt;
  Config config = timeline_config(2048);
  config.ring_capacity = 1024;
  ASSERT_NO_FATAL_FAILURE(create_runtime(config, &rt));
  std::map<uint64_t, uint32_t> opcode_of;  // ticket -> opcode published
  constexpr uint64_t kDelayNs = 200'000;
  Ticket last{};
  for (int i = 0; i < 300; ++i) {
    const SlotRequest r = (i % 50 == 7) ? ops::delay_ns(kDelayNs) : ops::nop(i);
    PublishOptions o;
    o.timeout = scaled(seconds(10));
    MR_ASSERT_OK(rt->publish(r, &last, o));
    opcode_of[last.value] = r.opcode;
  }
  MR_ASSERT_OK(rt->wait_done(last, scaled(seconds(10))));
  rt->stats();  // reap, so that reap passes are recorded

  Timeline t;
  MR_ASSERT_OK(rt->timeline(&t));
  EXPECT_EQ(t.units, rt->consumer_units());
  EXPECT_GE(t.clock_uncertainty_ns, 0);
  // The 32 calibration READ_CLOCK slots come first; all fit in the window.
  ASSERT_EQ(t.slots.size(), 32u + opcode_of.size());
  // ns: the calibration's error bound, plus the GPU clock's tick (%globaltimer
  // may advance in steps of up to a microsecond) once for the calibration
  // and once for the stamp.
  const int64_t slack = t.clock_uncertainty_ns + 2000;
  uint64_t delays = 0;
  for (size_t i = 0; i < t.slots.size(); ++i) {
    const auto& s = t.slots[i];
    EXPECT_EQ(s.ticket, t.slots[0].ticket + i) << "tickets are consecutive and unique";
    EXPECT_LT(s.unit, t.units);
    auto it = opcode_of.find(s.ticket);
    const uint32_t expected = it == opcode_of.end() ? MR_OP_READ_CLOCK : it->second;
    EXPECT_EQ(s.opcode, expected) << "ticket " << s.ticket;
    EXPECT_GT(s.publish_ns, 0);
    EXPECT_LE(s.publish_ns, s.claim_ns + slack) << "claimed before it was published?";
    EXPECT_LE(s.claim_ns, s.complete_ns);
    if (s.opcode == MR_OP_DELAY_NS) {
      ++delays;
      EXPECT_GE(s.complete_ns - s.claim_ns, static_cast<int64_t>(kDelayNs));
    }
  }
  EXPECT_EQ(delays, 6u);
  ASSERT_FALSE(t.reaps.empty());
  uint64_t reaped = 0;
  for (const auto& r : t.reaps) {
    EXPECT_LE(r.start_ns, r.end_ns);
    reaped += r.count;
  }
  EXPECT_EQ(reaped, 32u + opcode_of.size()) << "every completion passed through a recorded reap";
}

// A window smaller than the traffic keeps only the newest records; a snapshot
// taken while producers run never returns a torn or foreign record.
TEST_P(TimelineTest, SnapshotsDuringTrafficAreConsistent) {
  std::unique_ptr<Runtime> rt;
  Config config = timeline_config(64);
  config.ring_capacity = 32;
  ASSERT_NO_FATAL_FAILURE(create_runtime(config, &rt));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> batches{0};
  std::thread producer([&] {
    SlotRequest batch[16];
    for (auto& r : batch) r = ops::nop(7);
    while (!stop.load()) {
      Ticket t;
      PublishOptions o;
      o.timeout = scaled(seconds(10));
      if (!rt->publish_batch(batch, 16, &t, o)) break;
      batches.fetch_add(1);
    }
  });
  while (batches.load() < 8) std::this_thread::yield();  // traffic is flowing
  uint64_t seen = 0;
  for (int round = 0; round < 200; ++round) {
    Timeline t;
    MR_ASSERT_OK(rt->timeline(&t));
    EXPECT_LE(t.slots.size(), 64u);
    std::set<uint64_t> tickets;
    for (const auto& s : t.slots) {
      if (s.opcode == MR_OP_READ_CLOCK) continue;  // calibration, at the start
      EXPECT_EQ(s.opcode, MR_OP_NOP);
      EXPECT_LT(s.unit, t.units);
      EXPECT_LE(s.claim_ns, s.complete_ns);
      EXPECT_TRUE(tickets.insert(s.ticket).second);
      ++seen;
    }
    if (!t.slots.empty()) {
      // Only the last window of completed tickets can be present.
      EXPECT_LT(t.slots.back().ticket - t.slots.front().ticket, 64u);
    }
  }
  stop.store(true);
  producer.join();
  EXPECT_GT(seen, 0u);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// The trace is JSON with one complete event per slot on its unit's track,
// publish instants, flows and reap passes.
TEST_P(TimelineTest, WritesChromeTrace) {
  std::unique_ptr<Runtime> rt;
  Config config = timeline_config(256);
  config.ring_capacity = 64;
  ASSERT_NO_FATAL_FAILURE(create_runtime(config, &rt));
  Ticket last{};
  for (int i = 0; i < 40; ++i) {
    PublishOptions o;
    o.timeout = scaled(seconds(10));
    MR_ASSERT_OK(rt->publish(ops::nop(i), &last, o));
  }
  MR_ASSERT_OK(rt->wait_done(last, scaled(seconds(10))));
  rt->stats();
  const std::string path = ::testing::TempDir() + "megaring_trace_" +
                           megaring::backend_name(backend()) + ".json";
  MR_ASSERT_OK(rt->write_timeline_trace(path));
  Timeline t;
  MR_ASSERT_OK(rt->timeline(&t));

  std::ifstream in(path);
  ASSERT_TRUE(in.good());
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string json = buffer.str();
  auto count = [&json](const std::string& needle) {
    size_t n = 0;
    for (size_t pos = json.find(needle); pos != std::string::npos; pos = json.find(needle, pos + 1)) ++n;
    return n;
  };
  EXPECT_EQ(json.front(), '{');
  EXPECT_NE(json.find("\"traceEvents\""), std::string::npos);
  EXPECT_EQ(count("\"ph\":\"X\",\"pid\":1"), t.slots.size());
  EXPECT_EQ(count("\"name\":\"NOP\""), 40u);
  EXPECT_EQ(count("\"ph\":\"s\""), t.slots.size());
  EXPECT_EQ(count("\"ph\":\"f\""), t.slots.size());
  EXPECT_GE(count("\"name\":\"reap\""), 1u);
  // A real JSON parser, where one is at hand.
  const std::string check = "python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); "
                            "sys.exit(0 if len(d['traceEvents'])>0 else 1)\" " + path +
                            " 2>/dev/null";
  if (std::system("python3 -c 'import json' 2>/dev/null") == 0) {
    EXPECT_EQ(std::system(check.c_str()), 0) << "trace is not valid JSON: " << path;
  }
  std::remove(path.c_str());
}

MEGARING_INSTANTIATE_BACKENDS(TimelineTest);

}  // namespace
}  // namespace megaring_test
