// SPDX-License-Identifier: Apache-2.0
// NVTX ranges reach a tool. ctest runs this binary with NVTX_INJECTION64_PATH
// pointing at libmegaring_nvtx_recorder.so (tests/nvtx_injection/), the NVTX
// injection library that records every event in memory; the first NVTX call
// loads it, and the tests read the record through its extern "C" functions
// (dlopen of the same path). No nsys needed.
//
//   Nvtx.RecorderSeesProbeRanges: the recorder itself works (ranges this test
//     emits in its own domain and the global one, from several threads).
//   Nvtx.RuntimeEmitsRanges: a CPU-backend runtime emits its ranges in the
//     "megaring" domain, as registered strings, balanced, once per API call.
//   Nvtx.RuntimeMarksRingFullAndTenantBackpressure: and its markers.
// The payloads ranges carry: tests/test_nvtx_payload.cpp (same binary).
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <megaring/producer.hpp>

#include "megaring/tenant.hpp"
#include "nvtx_injection/recorder_client.hpp"

#ifndef MEGARING_TEST_NVTX_ENABLED
#error "tests/CMakeLists.txt passes MEGARING_TEST_NVTX_ENABLED (the MEGARING_NVTX option)"
#endif

namespace {

using megaring::Completion;
using megaring::PublishOptions;
using megaring::SlotRequest;
using megaring::Ticket;
using megaring_test::Config;
using megaring_test::Runtime;
using nvtx_test::kDomain;
using nvtx_test::Nvtx;
using nvtx_test::starts_with;
using nvtx_test::summary;
using nvtx_test::this_tid;

struct ProbeDomain {
  static constexpr const char* name{"megaring_test_probe"};
};

TEST_F(Nvtx, RecorderSeesProbeRanges) {
  const uint64_t me = this_tid();
  {
    static const nvtx3::registered_string_in<ProbeDomain> registered{"probe::registered"};
    nvtx3::scoped_range_in<ProbeDomain> outer{registered};
    nvtx3::scoped_range_in<ProbeDomain> inner{"probe::ascii"};
    nvtx3::mark_in<ProbeDomain>("probe::mark");
    nvtx3::unique_range_in<ProbeDomain> started{"probe::start_end"};
    nvtx3::scoped_range global{"probe::global"};
  }
  EXPECT_EQ(rec_.domain_creates("megaring_test_probe"), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::registered", MR_NVTX_PUSH), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::registered", MR_NVTX_POP), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::ascii", MR_NVTX_PUSH), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::ascii", MR_NVTX_POP), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::mark", MR_NVTX_MARK), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::start_end", MR_NVTX_START), 1u);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::start_end", MR_NVTX_END), 1u);
  EXPECT_EQ(rec_.count("", "probe::global", MR_NVTX_PUSH), 1u);
  EXPECT_EQ(rec_.count("", "probe::global", MR_NVTX_POP), 1u);
  EXPECT_EQ(rec_.count(nullptr, MR_NVTX_UNMATCHED, MR_NVTX_KIND_ANY), 0u);
  EXPECT_EQ(rec_.open_ranges(), 0u);
  const auto events = rec_.events();
  ASSERT_EQ(events.size(), 9u) << summary(events);
  // Order and attribution: pops close the innermost range first.
  EXPECT_EQ(events[0].message, "probe::registered");
  EXPECT_EQ(events[0].message_type, MR_NVTX_MSG_REGISTERED);
  EXPECT_EQ(events[1].message_type, MR_NVTX_MSG_ASCII);
  EXPECT_EQ(events[5].kind, MR_NVTX_POP);
  EXPECT_EQ(events[5].message, "probe::global");
  for (const auto& e : events) EXPECT_EQ(e.tid, me) << e.message;

  // Thread-safe recording, per-thread stacks.
  rec_.reset();
  constexpr int kThreads = 4;
  constexpr int kRanges = 2000;
  std::vector<std::thread> threads;
  std::vector<uint64_t> tids(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([i, &tids] {
      tids[i] = this_tid();
      for (int n = 0; n < kRanges; ++n) {
        nvtx3::scoped_range_in<ProbeDomain> a{"probe::outer"};
        nvtx3::scoped_range_in<ProbeDomain> b{"probe::inner"};
      }
    });
  }
  for (auto& t : threads) t.join();
  const size_t per_name = static_cast<size_t>(kThreads) * kRanges;
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::outer", MR_NVTX_PUSH), per_name);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::outer", MR_NVTX_POP), per_name);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::inner", MR_NVTX_PUSH), per_name);
  EXPECT_EQ(rec_.count("megaring_test_probe", "probe::inner", MR_NVTX_POP), per_name);
  EXPECT_EQ(rec_.open_ranges(), 0u);
  std::map<uint64_t, size_t> per_thread;
  for (const auto& e : rec_.events()) ++per_thread[e.tid];
  for (uint64_t tid : tids) EXPECT_EQ(per_thread[tid], 4u * kRanges) << "thread " << tid;
}

SlotRequest delay(uint64_t ns) { return megaring::ops::delay_ns(ns); }

TEST_F(Nvtx, RuntimeEmitsRanges) {
  Config config;
  config.backend = megaring::Backend::kCpu;
  config.ring_capacity = 256;

  if (!MEGARING_TEST_NVTX_ENABLED) {
    // Compiled out: a runtime must emit nothing in the domain.
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(config, &rt));
    Ticket t;
    MR_ASSERT_OK(rt->publish(megaring::ops::nop(), &t));
    MR_ASSERT_OK(rt->shutdown());
    rt.reset();
    EXPECT_EQ(rec_.count(kDomain, nullptr, MR_NVTX_KIND_ANY), 0u) << summary(rec_.events());
    EXPECT_EQ(rec_.domain_creates(kDomain), 0u);
    GTEST_SKIP() << "megaring was built with MEGARING_NVTX=OFF: its NVTX ranges are compiled "
                    "out (checked that none are emitted); reconfigure with -DMEGARING_NVTX=ON "
                    "to test them";
  }

  const uint64_t main_tid = this_tid();
  // Calls made, per range name.
  std::map<std::string, size_t> expected;

  // Runtime 1: create, publish, publish_batch, kept publish + wait,
  // wait_done, concurrent publishers, shutdown.
  {
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(config, &rt));
    ++expected["megaring::create"];

    Ticket t;
    constexpr int kSingles = 4;
    for (int i = 0; i < kSingles; ++i) {
      MR_ASSERT_OK(rt->publish(megaring::ops::nop(i), &t));
      ++expected["megaring::publish"];
    }
    constexpr int kBatches = 3;
    std::vector<SlotRequest> batch(8, megaring::ops::nop(7));
    Ticket last_of_batch;
    for (int i = 0; i < kBatches; ++i) {
      Ticket first;
      MR_ASSERT_OK(rt->publish_batch(batch.data(), static_cast<uint32_t>(batch.size()), &first));
      ++expected["megaring::publish"];
      last_of_batch.value = first.value + batch.size() - 1;
    }
    PublishOptions keep;
    keep.keep_result = true;
    Ticket kept;
    MR_ASSERT_OK(rt->publish(megaring::ops::nop(42), &kept, keep));
    ++expected["megaring::publish"];
    ASSERT_TRUE(kept.kept);
    Completion c;
    MR_ASSERT_OK(rt->wait(kept, &c, megaring_test::scaled(std::chrono::seconds(30))));
    ++expected["megaring::wait"];
    EXPECT_TRUE(c.ok());
    EXPECT_EQ(c.result, 42u);
    MR_ASSERT_OK(rt->wait_done(last_of_batch, megaring_test::scaled(std::chrono::seconds(30))));
    ++expected["megaring::wait_done"];

    // Publishers on other threads: their ranges carry their thread ids.
    constexpr int kThreads = 2;
    constexpr int kPerThread = 25;
    std::vector<std::thread> threads;
    std::vector<uint64_t> tids(kThreads);
    std::vector<int> failures(kThreads, 0);
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        tids[i] = this_tid();
        for (int n = 0; n < kPerThread; ++n) {
          Ticket tt;
          if (!rt->publish(megaring::ops::nop(n), &tt).is_ok()) ++failures[i];
        }
      });
    }
    for (auto& th : threads) th.join();
    for (int i = 0; i < kThreads; ++i) ASSERT_EQ(failures[i], 0) << "publisher thread " << i;
    expected["megaring::publish"] += kThreads * kPerThread;

    MR_ASSERT_OK(rt->shutdown(megaring_test::scaled(std::chrono::seconds(30))));
    ++expected["megaring::shutdown"];
    rt.reset();  // stopped: the destructor does not abort

    for (int i = 0; i < kThreads; ++i) {
      size_t pushes = 0;
      for (const auto& e : rec_.events())
        if (e.tid == tids[i] && e.message == "megaring::publish" && e.kind == MR_NVTX_PUSH)
          ++pushes;
      EXPECT_EQ(pushes, static_cast<size_t>(kPerThread))
          << "megaring::publish ranges from publisher thread " << i;
    }
  }

  // Runtime 1b: a Producer's calls have ranges of their own (call shows as
  // producer_publish + producer_wait).
  {
    Config with_rings = config;
    with_rings.producer_rings = 1;
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(with_rings, &rt));
    ++expected["megaring::create"];
    std::unique_ptr<megaring::Producer> producer;
    MR_ASSERT_OK(rt->open_producer(&producer));
    std::vector<SlotRequest> batch(8, megaring::ops::nop(7));
    Ticket first;
    MR_ASSERT_OK(producer->publish_batch(batch.data(), static_cast<uint32_t>(batch.size()), &first));
    ++expected["megaring::producer_publish"];
    Completion c;
    MR_ASSERT_OK(producer->call(megaring::ops::nop(5), &c, megaring_test::scaled(std::chrono::seconds(30))));
    ++expected["megaring::producer_publish"];
    ++expected["megaring::producer_wait"];
    EXPECT_EQ(c.result, 5u);
    MR_ASSERT_OK(producer->wait_done(Ticket{first.value + 7, false}));
    ++expected["megaring::producer_wait_done"];
    producer.reset();
    MR_ASSERT_OK(rt->shutdown(megaring_test::scaled(std::chrono::seconds(30))));
    ++expected["megaring::shutdown"];
  }

  // Runtime 2: aborted with slots in flight.
  {
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(config, &rt));
    ++expected["megaring::create"];
    std::vector<SlotRequest> slow(4, delay(2'000'000));
    Ticket first;
    MR_ASSERT_OK(rt->publish_batch(slow.data(), static_cast<uint32_t>(slow.size()), &first));
    ++expected["megaring::publish"];
    MR_ASSERT_OK(rt->abort());
    ++expected["megaring::abort"];
    rt.reset();
  }

  const auto events = rec_.events();
  const std::string recorded = summary(events);

  // The domain exists, created once (nvtx3 caches the handle).
  EXPECT_EQ(rec_.domain_creates(kDomain), 1u) << recorded;
  // Each range, once per call, opened and closed the same number of times.
  for (const auto& [name, calls] : expected) {
    EXPECT_EQ(rec_.opened(kDomain, name.c_str()), calls)
        << name << " ranges opened, for " << calls << " calls\n" << recorded;
    EXPECT_EQ(rec_.closed(kDomain, name.c_str()), rec_.opened(kDomain, name.c_str()))
        << name << " ranges not balanced\n" << recorded;
  }
  EXPECT_EQ(rec_.count(nullptr, MR_NVTX_UNMATCHED, MR_NVTX_KIND_ANY), 0u)
      << "pops/ends without an open range\n" << recorded;
  EXPECT_EQ(rec_.open_ranges(), 0u) << "ranges left open\n" << recorded;

  // Every megaring range: in the megaring domain, named "megaring::...", by a
  // registered string; every range in the domain is balanced, including ones
  // this test does not know (internal ranges such as megaring::reap).
  std::map<std::string, long> balance;
  for (const auto& e : events) {
    const bool ours = starts_with(e.message, "megaring::");
    if (ours) {
      EXPECT_EQ(e.domain, kDomain) << e.message << " emitted outside the megaring domain";
    }
    if (e.domain != kDomain) continue;
    EXPECT_TRUE(ours) << "range in the megaring domain not named megaring::*: '" << e.message
                      << "'";
    if (e.kind == MR_NVTX_PUSH || e.kind == MR_NVTX_START) {
      ++balance[e.message];
      EXPECT_EQ(e.message_type, MR_NVTX_MSG_REGISTERED)
          << e.message << " is not a registered string (MR_NVTX_RANGE registers its names)";
    } else if (e.kind == MR_NVTX_POP || e.kind == MR_NVTX_END) {
      --balance[e.message];
    }
    // The API ranges run on the calling thread (the publisher threads' are
    // checked above).
    if (e.message != "megaring::publish" && expected.count(e.message) != 0) {
      EXPECT_EQ(e.tid, main_tid) << e.message << " recorded on another thread";
    }
  }
  for (const auto& [name, b] : balance) EXPECT_EQ(b, 0) << name << " unbalanced\n" << recorded;
  if (HasFailure()) return;
  std::string names;
  for (const auto& [name, b] : balance) names += (names.empty() ? "" : ", ") + name;
  RecordProperty("megaring_ranges", names);
}

// Markers for the moments a timeline should show: a publish that finds the
// ring full (once per call, whether it then fails or waits) and a tenant
// publish that finds its outstanding-slot quota full.
TEST_F(Nvtx, RuntimeMarksRingFullAndTenantBackpressure) {
  if (!MEGARING_TEST_NVTX_ENABLED) GTEST_SKIP() << "megaring was built with MEGARING_NVTX=OFF";
  const auto long_wait = megaring_test::scaled(std::chrono::seconds(30));
  Config config;
  config.backend = megaring::Backend::kCpu;
  config.ring_capacity = 1;

  // The ring: one slot busy for 200 ms (longer under sanitizers, up to the
  // delay opcode's limit); a fail-fast publish, then a waiting one, both
  // issued at once.
  {
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(config, &rt));
    Ticket busy, t;
    const uint64_t busy_ns = std::min<uint64_t>(
        static_cast<uint64_t>(megaring_test::scaled(std::chrono::milliseconds(200)).count()),
        MR_DELAY_MAX_NS);
    MR_ASSERT_OK(rt->publish(delay(busy_ns), &busy));
    PublishOptions fail_fast;
    fail_fast.on_full = megaring::OnFull::kFail;
    const megaring::Status refused = rt->publish(megaring::ops::nop(1), &t, fail_fast);
    ASSERT_EQ(refused.code(), megaring::Result::kRingFull) << refused.to_string();
    PublishOptions waiting;
    waiting.timeout = long_wait;
    MR_ASSERT_OK(rt->publish(megaring::ops::nop(2), &t, waiting));  // waits out the delay
    MR_ASSERT_OK(rt->wait_done(t, long_wait));
    EXPECT_EQ(rt->stats().faulted, 0u) << "the busy slot must run, not fault";
    EXPECT_EQ(rt->stats().ring_full_events, 2u);
    MR_ASSERT_OK(rt->shutdown(long_wait));
  }
  EXPECT_EQ(rec_.count(kDomain, "megaring::ring_full", MR_NVTX_MARK), 2u)
      << summary(rec_.events());

  // A tenant allowed one outstanding slot, with a manual pump: its second
  // publish finds the quota full until the first is pumped.
  rec_.reset();
  {
    config.ring_capacity = 16;
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(config, &rt));
    megaring::RegistryConfig rc;
    rc.pump = megaring::PumpMode::kManual;
    std::unique_ptr<megaring::TenantRegistry> registry;
    MR_ASSERT_OK(megaring::TenantRegistry::create(*rt, rc, &registry));
    megaring::TenantConfig tc;
    tc.label = "one-at-a-time";
    tc.quotas.max_outstanding_slots = 1;
    megaring::TenantHandle tenant;
    ASSERT_TRUE(registry->register_tenant(tc, &tenant).is_ok());
    Ticket t;
    ASSERT_TRUE(tenant.publish_slot(megaring::ops::nop(1), &t).is_ok());
    const megaring::Status over = tenant.publish_slot(megaring::ops::nop(2), &t);
    EXPECT_EQ(over.code(), megaring::Result::kBackpressure) << over.to_string();
    ASSERT_TRUE(tenant.quiesce(long_wait).is_ok());
    registry.reset();
    MR_ASSERT_OK(rt->shutdown(long_wait));
  }
  EXPECT_EQ(rec_.count(kDomain, "megaring::tenant_backpressure", MR_NVTX_MARK), 1u)
      << summary(rec_.events());

  // Marks are named by registered strings, like the ranges.
  for (const auto& e : rec_.events())
    if (e.domain == kDomain && e.kind == MR_NVTX_MARK)
      EXPECT_EQ(e.message_type, MR_NVTX_MSG_REGISTERED) << e.message;
}

}  // namespace
