// SPDX-License-Identifier: Apache-2.0
// Runtime::suspend / resume (runtime.hpp, "Suspension"), on every backend
// (Cpu/..., Gpu/...); the lifecycle around them in
// test_suspend_lifecycle.cpp:
//   - idle: suspend, resume, and calls work after; the bad calls give the
//     documented results (resume when live, suspend twice, after shutdown
//     and abort); health, dump_state and metrics report the phase;
//   - conservation under load: threads publish on ring 0, on producer rings
//     and through a tenant while the main thread suspends and resumes at
//     least 30 times; every ticket runs exactly once (a counter word a
//     slot), with its result, and every ring's DONE_COUNT ends at its
//     published end;
//   - while suspended nothing completes, and after resume it does;
//   - what the consumer staged completes before suspend returns: a gate
//     slot holds an executor, suspend(timeout) times out (suspending), and
//     completes once the gate opens; resume() waits for a suspension in
//     progress.
#include <atomic>
#include <vector>

#include "metrics_parser.hpp"
#include "suspend_fixture.hpp"

namespace megaring_test {
namespace suspend_test {

TEST_P(SuspendTest, IdleSuspendAndResumeThenCallsWork) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2));
  EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kLive);
  MR_EXPECT_RESULT(rt_->resume(), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->suspend(Nanoseconds(-1)), Result::kInvalidArgument);
  for (int round = 0; round < 3; ++round) {
    MR_ASSERT_OK(rt_->suspend(scaled(seconds(10))));
    EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kSuspended);
    MR_EXPECT_OK(rt_->suspend()) << "a second suspend is a no-op";
    megaring::Health h;
    MR_ASSERT_OK(rt_->health(&h));
    EXPECT_EQ(h.state, megaring::RuntimeState::kRunning);
    EXPECT_EQ(h.consumer_phase, ConsumerPhase::kSuspended);
    EXPECT_FALSE(h.consumer_alive);
    std::string dump;
    MR_ASSERT_OK(rt_->dump_state(&dump));
    EXPECT_NE(dump.find("megaring state: running, backend"), std::string::npos) << dump;
    EXPECT_NE(dump.find("consumer suspended"), std::string::npos) << dump;
    std::string text;
    MR_ASSERT_OK(rt_->metrics_text(&text));
    Metrics m;
    ASSERT_TRUE(parse_metrics(text, &m)) << m.error << "\n" << text;
    EXPECT_EQ(m.value("megaring_consumer_phase", "phase=suspended"), 1.0);
    EXPECT_EQ(m.value("megaring_consumer_phase", "phase=live"), 0.0);
    EXPECT_EQ(m.value("megaring_runtime_state", "state=running"), 1.0);

    MR_ASSERT_OK(rt_->resume());
    EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kLive);
    MR_EXPECT_RESULT(rt_->resume(), Result::kInvalidArgument);
    Completion c;
    MR_ASSERT_OK(rt_->call(nop(1000 + round), &c, scaled(seconds(30))));
    EXPECT_EQ(c.status, MR_STATUS_OK);
    EXPECT_EQ(c.result, 1000u + round);
    MR_ASSERT_OK(rt_->health(&h));
    EXPECT_EQ(h.consumer_phase, ConsumerPhase::kLive);
    EXPECT_TRUE(h.consumer_alive);
  }
  MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  MR_EXPECT_RESULT(rt_->suspend(), Result::kShutdown);
  MR_EXPECT_RESULT(rt_->resume(), Result::kShutdown);
  EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kLive);

  std::unique_ptr<Runtime> aborted;
  Config c = base_config();
  c.workers = 1;
  ASSERT_NO_FATAL_FAILURE(create_runtime(c, &aborted));
  MR_ASSERT_OK(aborted->abort());
  MR_EXPECT_RESULT(aborted->suspend(), Result::kAborted);
  MR_EXPECT_RESULT(aborted->resume(), Result::kAborted);
}

// Every ticket runs exactly once with its result, through any number of
// suspensions, on every publish path.
TEST_P(SuspendTest, EveryTicketRunsExactlyOnceAcrossSuspensions) {
  // A small ring: publishers hit back-pressure while suspended.
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/2, /*capacity=*/64, /*with_tenant=*/true));
  constexpr uint64_t kPerPath = 1500;  // ring 0, producer 1, producer 2
  constexpr uint64_t kTenantSlots = 300;
  BufferHandle words = 0;
  MR_ASSERT_OK(rt_->alloc_buffer(3 * kPerPath * 8, &words));
  std::unique_ptr<Producer> producers[2];
  MR_ASSERT_OK(rt_->open_producer(&producers[0]));
  MR_ASSERT_OK(rt_->open_producer(&producers[1], Priority::kCritical));

  std::atomic<int> publishers_left{4};
  uint64_t kept_read[3] = {0, 0, 0};
  Ticket last[3];
  // Path p (0: Runtime, 1 and 2: the producers) counts words
  // [p * kPerPath, (p + 1) * kPerPath), one a slot; every fifth slot kept
  // (its result, the old word, must be 0); batches of three every tenth.
  auto publisher = [&](int path) {
    const uint64_t base = path * kPerPath;
    for (uint64_t i = 0; i < kPerPath;) {
      Ticket t;
      if (i % 10 == 0 && i + 3 <= kPerPath) {
        SlotRequest batch[3] = {count_once(words, base + i), count_once(words, base + i + 1),
                                count_once(words, base + i + 2)};
        const Status st = path == 0 ? rt_->publish_batch(batch, 3, &t)
                                    : producers[path - 1]->publish_batch(batch, 3, &t);
        EXPECT_TRUE(st.is_ok()) << st.to_string();
        if (!st) break;
        last[path] = Ticket{t.value + 2, false};
        i += 3;
        continue;
      }
      const PublishOptions o = i % 5 == 0 ? kept() : PublishOptions{};
      const SlotRequest r = count_once(words, base + i);
      const Status st = path == 0 ? rt_->publish(r, &t, o) : producers[path - 1]->publish(r, &t, o);
      EXPECT_TRUE(st.is_ok()) << st.to_string();
      if (!st) break;
      if (t.kept) {  // read at once: an unread kept result holds its ring position
        Completion c;
        c.status = 0xFFFF;
        const Status w = path == 0 ? rt_->wait(t, &c, scaled(seconds(60)))
                                   : producers[path - 1]->wait(t, &c, scaled(seconds(60)));
        EXPECT_TRUE(w.is_ok()) << w.to_string();
        EXPECT_EQ(c.status, MR_STATUS_OK) << "path " << path << " ticket " << t.value;
        EXPECT_EQ(c.result, 0u) << "path " << path << " ticket " << t.value << " ran before";
        ++kept_read[path];
      }
      last[path] = t;
      ++i;
    }
    publishers_left.fetch_sub(1);
  };
  std::vector<Completion> tenant_seen;
  auto tenant_publisher = [&] {
    for (uint64_t i = 0; i < kTenantSlots; ++i) {
      Ticket t;
      const Status st = tenant_.publish_slot(nop(0x7E000000u + i), &t, tenant_kept());
      EXPECT_TRUE(st.is_ok()) << st.to_string();
      if (!st) break;
      Completion c;
      c.status = 0xFFFF;
      EXPECT_TRUE(tenant_.wait(t, &c, scaled(seconds(60))).is_ok());
      tenant_seen.push_back(c);
    }
    publishers_left.fetch_sub(1);
  };
  std::vector<std::thread> threads;
  for (int path = 0; path < 3; ++path) threads.emplace_back(publisher, path);
  threads.emplace_back(tenant_publisher);

  int cycles = 0;
  Rng rng(17);
  bool cycling = true;
  while (cycling && (publishers_left.load() > 0 || cycles < 30)) {
    const Status suspended = rt_->suspend(scaled(seconds(30)));
    EXPECT_TRUE(suspended.is_ok()) << "cycle " << cycles << ": " << suspended.to_string();
    EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kSuspended);
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(1500)));
    const Status resumed = rt_->resume();
    EXPECT_TRUE(resumed.is_ok()) << "cycle " << cycles << ": " << resumed.to_string();
    cycling = suspended.is_ok() && resumed.is_ok();
    std::this_thread::sleep_for(std::chrono::microseconds(rng.below(1500)));
    ++cycles;
  }
  if (!cycling) (void)rt_->abort();  // the publishers and waiters get their answer
  for (auto& t : threads) t.join();
  ASSERT_TRUE(cycling);

  for (int path = 0; path < 3; ++path) {
    EXPECT_GT(kept_read[path], 100u);
    const Status st = path == 0 ? rt_->wait_done(last[path], scaled(seconds(30)))
                                : producers[path - 1]->wait_done(last[path], scaled(seconds(30)));
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  ASSERT_EQ(tenant_seen.size(), kTenantSlots);
  for (uint64_t i = 0; i < kTenantSlots; ++i) {
    ASSERT_EQ(tenant_seen[i].status, MR_STATUS_OK) << "tenant slot " << i;
    ASSERT_EQ(tenant_seen[i].result, 0x7E000000u + i) << "tenant slot " << i;
  }
  std::vector<uint64_t> counts(3 * kPerPath, ~0ull);
  MR_ASSERT_OK(rt_->read_buffer(words, 0, counts.data(), counts.size() * 8));
  for (uint64_t w = 0; w < counts.size(); ++w)
    ASSERT_EQ(counts[w], 1u) << "path " << w / kPerPath << " slot " << w % kPerPath
                             << " ran " << counts[w] << " times, after " << cycles << " cycles";
  // Each ring's DONE_COUNT is its published end: nothing lost, nothing extra.
  megaring::StateDump d;
  MR_ASSERT_OK(rt_->dump_state(&d));
  ASSERT_EQ(d.rings.size(), 3u);
  for (const auto& r : d.rings) EXPECT_EQ(r.done_count, r.published_end) << "ring " << r.ring;
  EXPECT_EQ(producers[0]->done_count(), last[1].value + 1);
  EXPECT_EQ(producers[1]->done_count(), last[2].value + 1);
  EXPECT_GE(cycles, 30);
}

TEST_P(SuspendTest, NothingCompletesWhileSuspended) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*producer_rings=*/1));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt_->open_producer(&producer));
  Completion warm;
  MR_ASSERT_OK(rt_->call(nop(1), &warm, scaled(seconds(30))));
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  const uint64_t done0 = rt_->done_count();
  const uint64_t done1 = producer->done_count();
  Ticket t0, t1;
  MR_ASSERT_OK(rt_->publish(nop(0xA0), &t0, kept()));
  MR_ASSERT_OK(producer->publish(nop(0xA1), &t1, kept()));
  EXPECT_EQ(t0.value, done0);
  // A wait simply waits (no error other than its own timeout).
  MR_EXPECT_RESULT(rt_->wait_done(t0, milliseconds(20)), Result::kTimeout);
  MR_EXPECT_RESULT(producer->wait_done(t1, milliseconds(5)), Result::kTimeout);
  EXPECT_EQ(rt_->done_count(), done0);
  EXPECT_EQ(producer->done_count(), done1);
  MR_ASSERT_OK(rt_->resume());
  const Completion c0 = wait_kept(t0);
  EXPECT_EQ(c0.status, MR_STATUS_OK);
  EXPECT_EQ(c0.result, 0xA0u);
  Completion c1;
  MR_ASSERT_OK(producer->wait(t1, &c1, scaled(seconds(30))));
  EXPECT_EQ(c1.status, MR_STATUS_OK);
  EXPECT_EQ(c1.result, 0xA1u);
  EXPECT_EQ(rt_->done_count(), done0 + 1);
  EXPECT_EQ(producer->done_count(), done1 + 1);
}

// The slots the consumer staged complete before suspend() returns; a slot
// that keeps an executor busy keeps the runtime suspending.
TEST_P(SuspendTest, StagedSlotsCompleteBeforeSuspendReturns) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  Ticket held, behind;
  MR_ASSERT_OK(rt_->publish(gate(), &held, kept()));
  ASSERT_NO_FATAL_FAILURE(wait_until_held(held));
  // Staged behind the held slot, and not yet claimed: the only executor is
  // busy.
  MR_ASSERT_OK(rt_->publish(nop(0xB0), &behind, kept()));
  ASSERT_NO_FATAL_FAILURE(wait_until_fetched(behind));
  MR_EXPECT_RESULT(rt_->suspend(milliseconds(30)), Result::kTimeout);
  EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kSuspending);
  megaring::Health h;
  MR_ASSERT_OK(rt_->health(&h));
  EXPECT_EQ(h.consumer_phase, ConsumerPhase::kSuspending);
  MR_EXPECT_RESULT(rt_->suspend(milliseconds(5)), Result::kTimeout) << "waits again";
  EXPECT_EQ(rt_->done_count(), held.value) << "the held slot has not completed";
  set_gate(cuda(), 1);
  MR_ASSERT_OK(rt_->suspend(scaled(seconds(30))));
  // Both were staged before the request: both completed before suspend
  // returned.
  EXPECT_GE(rt_->done_count(), behind.value + 1);
  const uint64_t frozen = rt_->done_count();
  Ticket late;
  MR_ASSERT_OK(rt_->publish(nop(0xB1), &late, kept()));
  MR_EXPECT_RESULT(rt_->wait_done(late, milliseconds(20)), Result::kTimeout);
  EXPECT_EQ(rt_->done_count(), frozen);
  MR_ASSERT_OK(rt_->resume());
  EXPECT_EQ(wait_kept(held).status, MR_STATUS_OK);
  EXPECT_EQ(wait_kept(behind).result, 0xB0u);
  EXPECT_EQ(wait_kept(late).result, 0xB1u);
}

// resume() during a suspension in progress waits for the consumer's exit,
// then starts it again.
TEST_P(SuspendTest, ResumeWaitsForASuspensionInProgress) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1));
  Ticket held;
  MR_ASSERT_OK(rt_->publish(gate(), &held, kept()));
  ASSERT_NO_FATAL_FAILURE(wait_until_held(held));
  MR_EXPECT_RESULT(rt_->suspend(milliseconds(10)), Result::kTimeout);
  std::thread opener([this] {
    std::this_thread::sleep_for(milliseconds(30));
    set_gate(cuda(), 1);
  });
  MR_EXPECT_OK(rt_->resume());
  opener.join();
  EXPECT_EQ(rt_->consumer_phase(), ConsumerPhase::kLive);
  EXPECT_EQ(wait_kept(held).status, MR_STATUS_OK);
  Completion c;
  MR_ASSERT_OK(rt_->call(nop(0xC0), &c, scaled(seconds(30))));
  EXPECT_EQ(c.result, 0xC0u);
}

MEGARING_INSTANTIATE_BACKENDS(SuspendTest);

}  // namespace suspend_test
}  // namespace megaring_test
