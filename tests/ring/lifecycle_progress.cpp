// SPDX-License-Identifier: Apache-2.0
// Lifecycle: a live consumer's signs of progress, read from outside: the
// heartbeat (idle and through a backlog), the fetcher's and completer's
// counters, and DONE_COUNT from the configured initial ticket.

#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

// Unit 0 beats between slots too: a backlog that never leaves it an empty
// slot to poll does not freeze the heartbeat of a healthy consumer.
TEST_P(RingLifecycleTest, HeartbeatAdvancesThroughABacklog) {
  Config cfg = ring_config(512, /*workers=*/1);
  cfg.heartbeat_interval_ns = 1000;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  // 400 ms of back-to-back work for the only unit.
  std::vector<SlotRequest> backlog(400, ops::delay_ns(1'000'000));
  Ticket first;
  MR_ASSERT_OK(rt->publish_batch(backlog.data(), static_cast<uint32_t>(backlog.size()), &first));
  const uint64_t end = first.value + backlog.size();
  auto wait_done_count = [&](uint64_t target) {
    const auto deadline = std::chrono::steady_clock::now() + scaled(seconds(10));
    while (rt->done_count() < target && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    return rt->done_count();
  };
  const uint64_t d1 = wait_done_count(first.value + 5);
  const uint64_t h1 = rt->heartbeat_ns();
  const uint64_t d2 = wait_done_count(d1 + 20);
  const uint64_t h2 = rt->heartbeat_ns();
  ASSERT_GE(d2, d1 + 20) << "the backlog stalled";
  // Still busy: every one of the unit's next slots was already published.
  ASSERT_LT(rt->done_count(), end) << "the backlog ran out before the second look";
  EXPECT_GT(h2, h1) << "heartbeat froze while unit 0 ran " << (d2 - d1) << " slots";
  MR_EXPECT_OK(rt->abort());
}

// Publishes a 100 ms slot and `backlog` NOPs behind it in one batch (all
// of it staged while the slow slot runs), and waits for the last.
void run_backlog_behind_a_slow_slot(Runtime& rt, uint32_t backlog) {
  std::vector<SlotRequest> slots(backlog + 1, ops::nop(7));
  slots[0] = ops::delay_ns(100'000'000);
  Ticket first;
  MR_ASSERT_OK(rt.publish_batch(slots.data(), backlog + 1, &first));
  MR_ASSERT_OK(rt.wait_done(Ticket{first.value + backlog, false}, scaled(seconds(10))));
}

// Config::fetch_warps sets how many bodies a fetch round copies at most:
// 64 a warp (consumer/fetcher.cuh, "The fetch crew"), and under a backlog every
// round is full.
TEST_P(RingLifecycleTest, AFetchRoundCopiesAtMostItsCrewsBodies) {
  constexpr uint32_t kBacklog = 1000;
  for (const uint32_t warps : {1u, 4u}) {
    SCOPED_TRACE("fetch_warps " + std::to_string(warps));
    Config cfg = ring_config(2048, /*workers=*/1);
    cfg.fetch_warps = warps;
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
    megaring::ConsumerCounters before;
    MR_ASSERT_OK(rt->consumer_counters(&before));
    ASSERT_NO_FATAL_FAILURE(run_backlog_behind_a_slow_slot(*rt, kBacklog));
    megaring::ConsumerCounters after;
    MR_ASSERT_OK(rt->consumer_counters(&after));
    const uint64_t rounds = after.fetch_rounds - before.fetch_rounds;
    const uint64_t fetched = after.tickets_fetched - before.tickets_fetched;
    EXPECT_EQ(fetched, kBacklog + 1u);
    const uint64_t cap = 64 * warps;
    EXPECT_GE(rounds * cap, fetched) << rounds << " rounds fetched " << fetched << " tickets";
    // The window's ramp (1, 8, 64 headers: rounds of 1 and 8 bodies), then
    // full rounds but the last (and one round to spare: a ramp that changes
    // by a round is not what this guards).
    EXPECT_LE(rounds, 4 + (kBacklog + cap - 1) / cap)
        << rounds << " rounds fetched " << fetched << " tickets: rounds not full";
    // A round reads the next window while it copies the last bodies of the
    // one before, so the only round without bodies is the one that first
    // saw the batch (and one to spare). Reading headers only when a round
    // is not full made one every window.
    EXPECT_LE(after.header_rounds - before.header_rounds, 2u);
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

// The fetcher's and completer's counters (consumer/fetcher.cuh, consumer/completer.cuh): every
// published ticket is staged exactly once, a backlog in rounds of many
// tickets (one round trip each on a GPU), and the completer writes no record
// for a ticket that completed OK and was not kept, but one for a kept one.
// One executor works through 400 NOPs queued behind a 100 ms slot.
TEST_P(RingLifecycleTest, FetcherStagesEveryTicketOnceAndABacklogInRounds) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(workers_config(1), &rt));
  megaring::ConsumerCounters before;
  MR_ASSERT_OK(rt->consumer_counters(&before));
  EXPECT_EQ(before.tickets_fetched, 0u);
  EXPECT_EQ(before.records_written, 0u);
  MR_EXPECT_RESULT(rt->consumer_counters(nullptr), Result::kInvalidArgument);
  constexpr uint32_t kBacklog = 400;
  ASSERT_NO_FATAL_FAILURE(run_backlog_behind_a_slow_slot(*rt, kBacklog));
  megaring::ConsumerCounters after;
  MR_ASSERT_OK(rt->consumer_counters(&after));
  // Ordered after every count by DONE_COUNT (the fetcher counts before it
  // releases what it staged).
  EXPECT_EQ(after.tickets_fetched, kBacklog + 1) << "a ticket staged twice, or not at all";
  EXPECT_GE(after.fetch_rounds, 1u);
  EXPECT_LE(after.fetch_rounds * 8, kBacklog + 1)
      << after.fetch_rounds << " fetch rounds for " << kBacklog + 1
      << " tickets: the backlog was not fetched in bulk";
  EXPECT_GE(after.flushes, 1u);
  // The completer publishes a run once its oldest ticket waited 1 us
  // (completion_flush_ns), so how many NOPs share a DONE_COUNT store is
  // how many the executor runs in a microsecond: at least 8 in a plain or
  // ASan build, but fewer under ThreadSanitizer (58 stores for 401 tickets
  // in the CI rehearsal of 2026-12-05, once executors noted each slot for
  // dump_state). There, one store a ticket is what would be wrong.
  const uint64_t min_per_flush = built_with_tsan() ? 2 : 8;
  EXPECT_LE(after.flushes * min_per_flush, kBacklog + 1)
      << after.flushes << " DONE_COUNT stores for " << kBacklog + 1 << " tickets";
  EXPECT_EQ(after.records_written, 0u) << "records written for OK tickets nobody kept";
  Completion c;
  MR_ASSERT_OK(rt->call(ops::nop(99), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 99u);
  megaring::ConsumerCounters kept;
  MR_ASSERT_OK(rt->consumer_counters(&kept));
  EXPECT_GE(kept.records_written, 1u) << "a kept ticket's record was not counted";
  std::printf("fetch rounds %" PRIu64 ", tickets fetched %" PRIu64 ", flushes %" PRIu64
              ", records %" PRIu64 ", idle polls %" PRIu64 "\n",
              kept.fetch_rounds, kept.tickets_fetched, kept.flushes, kept.records_written,
              kept.idle_polls);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingLifecycleTest, HeartbeatAdvancesWhileIdle) {
  Config cfg = base_config();
  cfg.heartbeat_interval_ns = 1000;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  // The heartbeat is written by a polling consumer unit, so a loaded 2-core
  // CI machine can delay it by milliseconds: sample ~5 ms apart, but allow a
  // bounded wait for each advance instead of demanding one per sample.
  const auto deadline = Clock::now() + scaled(seconds(5));
  auto next_beat = [&](uint64_t after) {
    uint64_t h = rt->heartbeat_ns();
    while (h <= after && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
      h = rt->heartbeat_ns();
    }
    return h;
  };
  const uint64_t h1 = next_beat(0);
  ASSERT_NE(h1, 0u) << "no heartbeat within the deadline";
  const auto t1 = Clock::now();
  std::this_thread::sleep_for(milliseconds(5));
  const uint64_t h2 = next_beat(h1);
  EXPECT_GT(h2, h1) << "heartbeat did not advance while idle";
  std::this_thread::sleep_for(milliseconds(5));
  const uint64_t h3 = next_beat(h2);
  const uint64_t wall_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<Nanoseconds>(Clock::now() - t1).count());
  EXPECT_GT(h3, h2) << "heartbeat did not advance while idle";
  // On the CPU backend it is the host's steady_clock in nanoseconds: it
  // cannot run ahead of the host's own measurement of the same interval
  // (h1 was written at most a little before t1).
  if (backend() == Backend::kCpu)
    EXPECT_LE(h3 - h1, wall_ns + 50'000'000u * timeout_scale())
        << "heartbeat ran faster than the host clock";
}

TEST_P(RingLifecycleTest, TicketsStartAtInitialTicketNearTheLimit) {
  // The largest accepted initial ticket: 2^40 below the 56-bit limit.
  Config cfg = ring_config(16);
  cfg.initial_ticket = MR_TICKET_MASK - (1ull << 40);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket);
  for (uint64_t i = 0; i < 100; ++i) {
    Completion c;
    ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(i), &c));
    ASSERT_EQ(c.ticket, cfg.initial_ticket + i);
    ASSERT_EQ(c.result, i);
  }
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket + 100);
  expect_every_slot_ok(rt->stats(), 100);
}

}  // namespace
}  // namespace megaring_test
