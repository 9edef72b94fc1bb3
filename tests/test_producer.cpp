// SPDX-License-Identifier: Apache-2.0
// Producers with rings of their own (megaring/producer.hpp): one behaviour
// per test, on both backends.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <megaring/consumer/consumer_core.cuh>
#include <megaring/producer.hpp>

#include "backend_fixture.hpp"
#include "runtime/runtime_internal.hpp"

namespace megaring_test {
namespace {

using megaring::Completion;
using megaring::ConsumerCounters;
using megaring::OnFull;
using megaring::Producer;
using megaring::PublishOptions;
using megaring::SlotRequest;
using megaring::Ticket;
namespace ops = megaring::ops;

class ProducerTest : public BackendTest {
 protected:
  Config producer_config(uint32_t rings, uint32_t capacity = 1024) const {
    Config c = base_config();
    c.producer_rings = rings;
    c.ring_capacity = capacity;
    return c;
  }
};

PublishOptions kept() {
  PublishOptions o;
  o.keep_result = true;
  return o;
}

TEST_P(ProducerTest, CallsOnItsOwnRingAndCountsItsOwnTickets) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(2), &rt));
  std::unique_ptr<Producer> a, b;
  MR_ASSERT_OK(rt->open_producer(&a));
  MR_ASSERT_OK(rt->open_producer(&b));
  EXPECT_NE(a->ring(), b->ring());
  EXPECT_GE(a->ring(), 1u);
  EXPECT_LE(a->ring(), 2u);
  for (uint64_t i = 0; i < 100; ++i) {
    Completion c;
    MR_ASSERT_OK(a->call(ops::nop(1000 + i), &c));
    EXPECT_EQ(c.status, MR_STATUS_OK);
    EXPECT_EQ(c.result, 1000 + i);
    EXPECT_EQ(c.ticket, i) << "each ring counts its own tickets from the first";
  }
  EXPECT_EQ(a->done_count(), 100u);
  EXPECT_EQ(b->done_count(), 0u) << "b published nothing";
  EXPECT_EQ(rt->done_count(), 0u) << "nor did ring 0";
  Completion c;
  MR_ASSERT_OK(b->call(ops::nop(7), &c));
  EXPECT_EQ(c.ticket, 0u);
  EXPECT_EQ(c.result, 7u);
  MR_EXPECT_OK(rt->shutdown());
}

// Every slot of eight producers' rings and two threads on ring 0 completes
// exactly once with its own result, through a ring and a staged queue of 64
// positions that nine rings fill together (the staged queue's back-pressure).
TEST_P(ProducerTest, EightProducersAndRingZeroConserveEverySlot) {
  constexpr uint32_t kProducers = 8;
  constexpr uint32_t kRingZeroThreads = 2;
  constexpr uint32_t kThreads = kProducers + kRingZeroThreads;
  const uint64_t per_thread = built_with_tsan() ? 1500 : 6000;
  Config cfg = producer_config(kProducers, 64);
  cfg.initial_ticket = (1ull << 32) - 100;  // every ring crosses 2^32
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  megaring::BufferHandle counters = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8 * kThreads, &counters));

  std::vector<std::unique_ptr<Producer>> producers(kProducers);
  for (auto& p : producers) MR_ASSERT_OK(rt->open_producer(&p));
  std::unique_ptr<Producer> extra;
  MR_EXPECT_RESULT(rt->open_producer(&extra), Result::kRingFull) << "all eight rings are taken";

  std::vector<uint64_t> adds(kThreads, 0), errors(kThreads, 0), last(kThreads, 0);
  std::vector<std::string> first_error(kThreads);
  std::vector<std::thread> threads;
  for (uint32_t id = 0; id < kThreads; ++id) {
    threads.emplace_back([&, id] {
      Producer* producer = id < kProducers ? producers[id].get() : nullptr;
      Rng rng(id + 1);
      const auto fail = [&](const std::string& what) {
        if (errors[id]++ == 0) first_error[id] = what;
      };
      std::vector<SlotRequest> batch;
      std::vector<std::pair<Ticket, uint64_t>> to_wait;  // kept NOPs and their echo
      uint64_t sent = 0;
      while (sent < per_thread) {
        const uint32_t n = static_cast<uint32_t>(
            std::min<uint64_t>(1 + rng.below(24), per_thread - sent));
        const bool keep = rng.below(4) == 0;
        batch.clear();
        for (uint32_t i = 0; i < n; ++i) {
          if (rng.below(2) == 0) {
            batch.push_back(ops::atomic_add(counters, 8 * id, 1));
            ++adds[id];
          } else {
            batch.push_back(ops::nop((uint64_t{id} << 40) | (sent + i)));
          }
        }
        PublishOptions o;
        o.keep_result = keep;
        Ticket first;
        const Status st = producer != nullptr ? producer->publish_batch(batch.data(), n, &first, o)
                                              : rt->publish_batch(batch.data(), n, &first, o);
        if (!st) return fail(st.to_string());
        for (uint32_t i = 0; keep && i < n; ++i)
          to_wait.push_back({Ticket{first.value + i, true}, batch[i].opcode == MR_OP_NOP
                                                                  ? batch[i].args[0]
                                                                  : ~0ull});
        last[id] = first.value + n - 1;
        sent += n;
        // Wait for some kept tickets now and then, the rest at the end
        // (parked by then, many of them: the ring is 64 slots).
        while (to_wait.size() > 48) {
          Completion c;
          const auto [t, echo] = to_wait.front();
          to_wait.erase(to_wait.begin());
          const Status w = producer != nullptr ? producer->wait(t, &c) : rt->wait(t, &c);
          if (!w) return fail(w.to_string());
          if (c.status != MR_STATUS_OK) fail("status " + std::to_string(c.status));
          if (echo != ~0ull && c.result != echo) fail("wrong echo on ticket " + std::to_string(t.value));
        }
      }
      for (const auto& [t, echo] : to_wait) {
        Completion c;
        const Status w = producer != nullptr ? producer->wait(t, &c) : rt->wait(t, &c);
        if (!w) return fail(w.to_string());
        if (c.status != MR_STATUS_OK) fail("status " + std::to_string(c.status));
        if (echo != ~0ull && c.result != echo) fail("wrong echo on ticket " + std::to_string(t.value));
      }
      const Status d = producer != nullptr ? producer->wait_done(Ticket{last[id], false})
                                           : rt->wait_done(Ticket{last[id], false});
      if (!d) fail(d.to_string());
    });
  }
  for (auto& t : threads) t.join();
  for (uint32_t id = 0; id < kThreads; ++id) EXPECT_EQ(errors[id], 0u) << id << ": " << first_error[id];

  // Exactly once: each ring's DONE_COUNT is its published end, and every
  // ATOMIC_ADD ran once.
  for (uint32_t i = 0; i < kProducers; ++i)
    EXPECT_EQ(producers[i]->done_count(), cfg.initial_ticket + per_thread) << "producer " << i;
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket + kRingZeroThreads * per_thread);
  std::vector<uint64_t> counted(kThreads, 0);
  MR_ASSERT_OK(rt->read_buffer(counters, 0, counted.data(), 8 * kThreads));
  for (uint32_t id = 0; id < kThreads; ++id) EXPECT_EQ(counted[id], adds[id]) << "thread " << id;
  ConsumerCounters cc;
  MR_ASSERT_OK(rt->consumer_counters(&cc));
  EXPECT_EQ(cc.tickets_fetched, uint64_t{kThreads} * per_thread) << "each slot staged once";
  producers.clear();
  MR_EXPECT_OK(rt->shutdown());
}

// A FENCE on a producer's ring completes after a slot that ring 0 handed the
// consumer before it: FENCE orders by the consumer's sequence, across rings.
TEST_P(ProducerTest, AFenceWaitsForEarlierSlotsOfOtherRings) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(1), &rt));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt->open_producer(&producer));
  const auto delay = std::chrono::milliseconds(50);
  Ticket slow;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(std::chrono::nanoseconds(delay).count()), &slow));
  // Wait until the consumer has staged the slow slot, so the fence is after it.
  ConsumerCounters cc;
  const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(10));
  do {
    MR_ASSERT_OK(rt->consumer_counters(&cc));
  } while (cc.tickets_fetched < 1 && std::chrono::steady_clock::now() < deadline);
  ASSERT_GE(cc.tickets_fetched, 1u);
  Completion fence;
  MR_ASSERT_OK(producer->call(ops::fence(), &fence));
  EXPECT_EQ(fence.status, MR_STATUS_OK);
  EXPECT_EQ(fence.result, 0u) << "a FENCE's result is its own ticket";
  EXPECT_GT(rt->done_count(), slow.value) << "the fence completed before ring 0's earlier slot";
  MR_EXPECT_OK(rt->shutdown());
}

// A ring-0 publisher stalled between its reservation and its slot holds up
// every later ring-0 ticket, and no producer: the fetcher serves whichever
// ring is ready.
TEST_P(ProducerTest, AStalledRingZeroPublisherHoldsUpNoProducer) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(1), &rt));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt->open_producer(&producer));
  struct Stall {
    std::atomic<bool> entered{false};
    std::atomic<bool> go{false};
  } stall;
  megaring::detail::RuntimeInternals::set_reserve_hook(
      *rt,
      [](void* arg, uint64_t, uint32_t) {
        auto* s = static_cast<Stall*>(arg);
        s->entered.store(true);
        while (!s->go.load()) std::this_thread::yield();
      },
      &stall);
  Ticket stalled;
  std::thread publisher([&] { MR_EXPECT_OK(rt->publish(ops::nop(1), &stalled)); });
  while (!stall.entered.load()) std::this_thread::yield();
  megaring::detail::RuntimeInternals::set_reserve_hook(*rt, nullptr, nullptr);  // later ones pass
  Ticket behind;
  MR_ASSERT_OK(rt->publish(ops::nop(2), &behind));
  for (uint64_t i = 0; i < 200; ++i) {
    Completion c;
    MR_ASSERT_OK(producer->call(ops::nop(i), &c, scaled(std::chrono::seconds(10))));
    ASSERT_EQ(c.result, i);
  }
  EXPECT_EQ(rt->done_count(), 0u) << "ring 0 waits for its stalled ticket";
  MR_EXPECT_RESULT(rt->wait_done(behind, std::chrono::milliseconds(1)), Result::kTimeout);
  stall.go.store(true);
  publisher.join();
  MR_EXPECT_OK(rt->wait_done(behind));
  MR_EXPECT_OK(rt->shutdown());
}

// A slot that runs long holds back its own ring's DONE_COUNT and no other
// ring's: once the completer has waited behind it for a while, it counts
// the other rings past it (consumer/completer.cuh, publish_beyond_gap).
TEST_P(ProducerTest, ASlowSlotHoldsBackOnlyItsOwnRing) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(2), &rt));  // two executors
  std::unique_ptr<Producer> slow, fast;
  MR_ASSERT_OK(rt->open_producer(&slow));
  MR_ASSERT_OK(rt->open_producer(&fast));
  Ticket delay;
  MR_ASSERT_OK(slow->publish(ops::delay_ns(MR_DELAY_MAX_NS), &delay));  // 1 s
  // Staged, and claimed alone by an executor before the fast ring's slots
  // exist (a chunk holding both would keep them behind it in one executor).
  ConsumerCounters cc;
  const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(10));
  do {
    MR_ASSERT_OK(rt->consumer_counters(&cc));
  } while (cc.tickets_fetched < 1 && std::chrono::steady_clock::now() < deadline);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<SlotRequest> batch(50, ops::nop(3));
  Ticket first;
  MR_ASSERT_OK(fast->publish_batch(batch.data(), 50, &first));
  MR_ASSERT_OK(fast->wait_done(Ticket{first.value + 49, false}, std::chrono::milliseconds(800)))
      << "the fast ring's DONE_COUNT waited for the slow ring's slot";
  EXPECT_EQ(fast->done_count(), 50u);
  // A kept slot after them: its wait returns (its record goes out early),
  // though DONE_COUNT stops before it until the slow slot ends.
  Completion kept;
  MR_ASSERT_OK(fast->call(ops::nop(4), &kept, std::chrono::milliseconds(800)));
  EXPECT_EQ(kept.result, 4u);
  EXPECT_EQ(slow->done_count(), 0u) << "the slow slot ended first: nothing was checked";
  MR_EXPECT_OK(slow->wait_done(delay));
  MR_EXPECT_OK(rt->shutdown());
}

// A flood on ring 0 does not starve a producer's ring: its slot is staged,
// and with one executor also run, before the end of a flood that lasts far
// longer than a ring's turn. End to end, on both backends. On the CPU
// backend the slow executor keeps the flood's ring full, so its headers run
// dry between refills and a fetcher without turns would pass too; on a GPU
// the fetcher can be the bottleneck. The turn policy itself:
// FetchRings.ARingWithABacklogDoesNotStarveAnother.
TEST_P(ProducerTest, AFloodOnRingZeroDoesNotStarveAProducer) {
  Config cfg = producer_config(1, 64);
  cfg.workers = 1;  // slots complete in the order the fetcher staged them
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt->open_producer(&producer));
  constexpr uint32_t kFlood = 3000;  // 10 us each: 30 ms of the executor's time
  constexpr uint32_t kBatch = 32;
  Ticket flood_last;
  std::thread flooder([&] {
    std::vector<SlotRequest> batch(kBatch, ops::delay_ns(10'000));
    for (uint32_t sent = 0; sent < kFlood; sent += kBatch) {
      if (sent + kBatch >= kFlood) batch.back() = SlotRequest{MR_OP_READ_CLOCK};
      Ticket first;
      MR_ASSERT_OK(rt->publish_batch(batch.data(), kBatch, &first,
                                     sent + kBatch >= kFlood ? kept() : PublishOptions{}));
      flood_last = Ticket{first.value + kBatch - 1, sent + kBatch >= kFlood};
    }
  });
  // Once the flood is under way (its ring full, the executor busy)...
  const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(10));
  while (rt->done_count() < 4 * kBatch && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  Completion mine;
  MR_ASSERT_OK(producer->call(SlotRequest{MR_OP_READ_CLOCK}, &mine));
  const uint64_t flood_done_then = rt->done_count();
  flooder.join();
  Completion theirs;
  MR_ASSERT_OK(rt->wait(flood_last, &theirs));
  EXPECT_LT(mine.result, theirs.result) << "the producer's slot ran after the whole flood";
  EXPECT_LT(flood_done_then, uint64_t{kFlood}) << "the flood had ended: nothing was checked";
  MR_EXPECT_OK(rt->shutdown());
}

// shutdown() completes everything producers published before it, then
// refuses new publishes on every ring.
TEST_P(ProducerTest, ShutdownDrainsEveryProducersRing) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(3, 256), &rt));
  std::vector<std::unique_ptr<Producer>> producers(3);
  std::vector<Ticket> last(3);
  for (uint32_t i = 0; i < 3; ++i) {
    MR_ASSERT_OK(rt->open_producer(&producers[i]));
    // A slow slot first, so that the rest is still queued when shutdown starts.
    MR_ASSERT_OK(producers[i]->publish(ops::delay_ns(2'000'000), &last[i]));
    std::vector<SlotRequest> batch(200, ops::nop(i));
    MR_ASSERT_OK(producers[i]->publish_batch(batch.data(), 200, &last[i]));
    last[i].value += 199;
  }
  MR_ASSERT_OK(rt->shutdown(scaled(std::chrono::seconds(30))));
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(producers[i]->done_count(), 201u) << "producer " << i;
    MR_EXPECT_OK(producers[i]->wait_done(last[i], std::chrono::seconds(0)));
    Ticket t;
    MR_EXPECT_RESULT(producers[i]->publish(ops::nop(0), &t), Result::kShutdown);
  }
  std::unique_ptr<Producer> late;
  MR_EXPECT_RESULT(rt->open_producer(&late), Result::kShutdown);
}

// After abort() every ticket of a producer's ring answers: OK if it ran,
// ABORTED if not; none is lost and none waits forever.
TEST_P(ProducerTest, AbortAnswersEveryProducerTicket) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(1, 64), &rt));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt->open_producer(&producer));
  std::vector<Ticket> tickets;
  for (uint32_t i = 0; i < 40; ++i) {
    Ticket t;
    MR_ASSERT_OK(producer->publish(i % 8 == 0 ? ops::delay_ns(1'000'000) : ops::nop(i), &t, kept()));
    tickets.push_back(t);
  }
  MR_ASSERT_OK(rt->abort());
  uint64_t ok = 0, aborted = 0;
  for (const Ticket& t : tickets) {
    Completion c;
    MR_ASSERT_OK(producer->wait(t, &c, std::chrono::seconds(0)));
    EXPECT_EQ(c.ticket, t.value);
    if (c.status == MR_STATUS_OK)
      ++ok;
    else if (c.status == MR_STATUS_ABORTED)
      ++aborted;
    else
      ADD_FAILURE() << "ticket " << t.value << " status " << c.status;
  }
  EXPECT_EQ(ok + aborted, tickets.size());
  EXPECT_GT(aborted, 0u) << "the abort came after every slot had run: nothing was checked";
  // A ticket after the last that ran answers kAborted to wait_done too.
  MR_EXPECT_RESULT(producer->wait_done(tickets.back(), std::chrono::seconds(0)), Result::kAborted);
}

// A kept result stays readable after the ring wrapped many times over it
// (parked), and a ring given back continues its tickets for the next owner.
TEST_P(ProducerTest, KeptResultsSurviveLapsAndARingChangesHands) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(1, 16), &rt));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt->open_producer(&producer));
  Ticket first;
  MR_ASSERT_OK(producer->publish(ops::nop(42), &first, kept()));
  for (uint32_t i = 0; i < 10; ++i) {
    std::vector<SlotRequest> batch(16, ops::nop(i));
    Ticket t;
    MR_ASSERT_OK(producer->publish_batch(batch.data(), 16, &t));
  }
  Completion c;
  MR_ASSERT_OK(producer->wait(first, &c));
  EXPECT_EQ(c.result, 42u);
  MR_EXPECT_RESULT(producer->wait(first, &c), Result::kInvalidArgument) << "read once";
  Ticket dropped;
  MR_ASSERT_OK(producer->publish(ops::nop(5), &dropped, kept()));
  const uint32_t ring = producer->ring();
  producer.reset();  // gives the ring back, dropping the unread result
  std::unique_ptr<Producer> next;
  MR_ASSERT_OK(rt->open_producer(&next));
  EXPECT_EQ(next->ring(), ring);
  MR_EXPECT_RESULT(next->wait(dropped, &c), Result::kInvalidArgument) << "dropped with its owner";
  MR_ASSERT_OK(next->call(ops::nop(9), &c));
  EXPECT_EQ(c.ticket, dropped.value + 1) << "the ring's tickets continue";
  EXPECT_EQ(c.result, 9u);
  MR_EXPECT_OK(rt->shutdown());
}

// A slot on a producer's ring that names a buffer published after
// free_buffer() returned faults BAD_HANDLE; one that ran before used it.
TEST_P(ProducerTest, FreeBufferRetiresItForProducersRings) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(1), &rt));
  std::unique_ptr<Producer> producer;
  MR_ASSERT_OK(rt->open_producer(&producer));
  megaring::BufferHandle buffer = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &buffer));
  Completion c;
  MR_ASSERT_OK(producer->call(ops::fill(buffer, 0, 64, 0xAB), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  // Slow work ahead of a fill that names the buffer: the fill cannot have
  // run when the buffer goes, and faults rather than touch freed memory
  // (AddressSanitizer would see the write otherwise).
  Ticket slow, pending;
  MR_ASSERT_OK(producer->publish(ops::delay_ns(20'000'000), &slow));
  MR_ASSERT_OK(producer->publish(ops::fill(buffer, 0, 64, 0xCD), &pending, kept()));
  MR_ASSERT_OK(rt->free_buffer(buffer));
  MR_ASSERT_OK(producer->wait(pending, &c));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  MR_ASSERT_OK(producer->call(ops::fill(buffer, 0, 64, 0xEF), &c));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  MR_EXPECT_OK(rt->shutdown());
}

TEST_P(ProducerTest, RefusesBadCallsWithClearErrors) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(1, 8), &rt));
  std::unique_ptr<Producer> producer;
  MR_EXPECT_RESULT(rt->open_producer(nullptr), Result::kInvalidArgument);
  MR_ASSERT_OK(rt->open_producer(&producer));
  Ticket t;
  Completion c;
  MR_EXPECT_RESULT(producer->publish_batch(nullptr, 1, &t), Result::kInvalidArgument);
  SlotRequest nine[9];
  for (auto& r : nine) r = ops::nop(0);
  MR_EXPECT_RESULT(producer->publish_batch(nine, 0, &t), Result::kInvalidArgument);
  MR_EXPECT_RESULT(producer->publish_batch(nine, 9, &t), Result::kInvalidArgument) << "over capacity";
  PublishOptions negative;
  negative.timeout = Nanoseconds(-1);
  MR_EXPECT_RESULT(producer->publish(ops::nop(0), &t, negative), Result::kInvalidArgument);
  MR_EXPECT_RESULT(producer->wait(Ticket{0, true}, &c), Result::kInvalidArgument) << "never published";
  MR_EXPECT_RESULT(producer->wait(Ticket{~0ull, true}, &c), Result::kInvalidArgument);
  MR_ASSERT_OK(producer->publish(ops::nop(3), &t));
  MR_EXPECT_RESULT(producer->wait(t, &c), Result::kInvalidArgument) << "not kept";
  MR_EXPECT_RESULT(producer->wait(Ticket{t.value, true}, &c), Result::kInvalidArgument);
  MR_EXPECT_RESULT(producer->release(Ticket{t.value, true}), Result::kInvalidArgument);
  MR_EXPECT_RESULT(producer->wait(t, nullptr), Result::kInvalidArgument);
  MR_EXPECT_OK(producer->wait_done(t));
  // A full ring with OnFull::kFail: eight kept slots that nobody reads are
  // parked, not blocking; a stalled consumer (a long slot) fills the ring.
  Ticket slow;
  MR_ASSERT_OK(producer->publish(ops::delay_ns(30'000'000), &slow));
  PublishOptions fail_fast;
  fail_fast.on_full = OnFull::kFail;
  Status st;
  for (int i = 0; i < 9 && st.is_ok(); ++i) st = producer->publish(ops::nop(0), &t, fail_fast);
  EXPECT_EQ(st.code(), Result::kRingFull) << st.to_string();
  MR_EXPECT_OK(rt->shutdown());
  // The runtime gone: kShutdown, not a crash.
  rt.reset();
  MR_EXPECT_RESULT(producer->publish(ops::nop(0), &t), Result::kShutdown);
  MR_EXPECT_RESULT(producer->wait(slow, &c), Result::kShutdown);
  EXPECT_EQ(producer->done_count(), 0u);
}

TEST_P(ProducerTest, ConfigBoundsTheRings) {
  std::unique_ptr<Runtime> rt;
  Config c = producer_config(MR_MAX_RINGS);
  MR_EXPECT_RESULT(Runtime::create(c, &rt), Result::kInvalidArgument);
  c = producer_config(1);
  c.timeline_capacity = 2 * c.ring_capacity;
  MR_EXPECT_RESULT(Runtime::create(c, &rt), Result::kInvalidArgument) << "timeline: ring 0 alone";
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(0), &rt));
  std::unique_ptr<Producer> producer;
  MR_EXPECT_RESULT(rt->open_producer(&producer), Result::kInvalidArgument) << "no producer rings";
  MR_EXPECT_OK(rt->shutdown());
  ASSERT_NO_FATAL_FAILURE(create_runtime(producer_config(MR_MAX_RINGS - 1, 8), &rt));
  std::vector<std::unique_ptr<Producer>> all(MR_MAX_RINGS - 1);
  for (auto& p : all) MR_ASSERT_OK(rt->open_producer(&p));
  for (auto& p : all) {
    Completion done;
    MR_ASSERT_OK(p->call(ops::nop(p->ring()), &done));
    EXPECT_EQ(done.result, p->ring());
  }
  all.clear();
  MR_EXPECT_OK(rt->shutdown());
}

MEGARING_INSTANTIATE_BACKENDS(ProducerTest);

// The fetcher alone (consumer/fetcher.cuh, fetch_round, as the CPU backend's
// I/O thread runs it), on rings filled by hand: what it stages, in what order.
class FetchRings : public ::testing::Test {
 protected:
  void SetUp() override {
    slots_.assign(uint64_t{kRings} * kCapacity, mr_slot{});
    staged_.assign(kCapacity, mr_slot{});
    submission_ = mr_submission_control{};
    submission_.stop_at = ~0ull;
    control_ = mr_completion_control{};
    priv_ = megaring::detail::initial_private(0);
    p_.slots = slots_.data();
    p_.submission = &submission_;
    p_.completion_control = &control_;
    p_.priv = &priv_;
    p_.staged = staged_.data();
    p_.capacity = kCapacity;
    p_.mask = kCapacity - 1;
    p_.rings = kRings;
    p_.heartbeat_interval_ns = 1'000'000'000;
    p_.fetch_warps = 4;
    megaring::detail::init_fetch_state(p_, st_, cursors_);
    st_.crew_warps = 4;  // rounds of up to 256 bodies
  }
  // Publishes tickets [first, first + n) of `ring` (the body says which),
  // in the ring layout of p_ (a test may shrink p_.capacity).
  void publish(uint32_t ring, uint64_t first, uint64_t n) {
    for (uint64_t t = first; t < first + n; ++t) {
      mr_slot& s = *megaring::detail::ring_slot(p_, ring, t);
      s.opcode = MR_OP_NOP;
      s.args[0] = (uint64_t{ring} << 32) | t;
      s.header = mr_make_header(t, MR_SLOT_READY);
    }
  }
  // Runs `rounds` fetch rounds; returns the staged slots' (ring, ticket) in
  // sequence order, checking each copy against its slot.
  std::vector<std::pair<uint32_t, uint64_t>> fetch(int rounds) {
    std::vector<std::pair<uint32_t, uint64_t>> order;
    for (int i = 0; i < rounds; ++i) {
      const uint64_t before = st_.seq;
      EXPECT_NE(megaring::detail::fetch_round(p_, st_), megaring::detail::Progress::kExit);
      for (uint64_t q = before; q < st_.seq; ++q) {
        mr_slot copy = staged_[q & (kCapacity - 1)];
        const megaring::detail::SlotOrigin origin = megaring::detail::unstage(copy);
        EXPECT_EQ(copy.args[0], (uint64_t{origin.ring} << 32) | origin.ticket) << "seq " << q;
        EXPECT_EQ(copy.reserved, 0u);
        order.emplace_back(origin.ring, origin.ticket);
      }
    }
    return order;
  }

  static constexpr uint32_t kRings = 3;
  static constexpr uint32_t kCapacity = 4096;
  std::vector<mr_slot> slots_, staged_;
  mr_submission_control submission_{};
  mr_completion_control control_{};
  megaring::detail::ConsumerPrivate priv_{};
  megaring::ConsumerParams p_{};
  megaring::detail::FetchRingCursors cursors_{};
  megaring::detail::FetchState st_;
};

// Ring 0 has 4000 slots ready, ring 2 one: ring 2's is staged within a few
// rounds (a ring's turn is kRingTurnRounds rounds), not after ring 0's 4000.
// Each ring's slots are staged once each, in ticket order.
TEST_F(FetchRings, ARingWithABacklogDoesNotStarveAnother) {
  publish(0, 0, 4000);
  publish(2, 0, 1);
  const auto order = fetch(60);
  ASSERT_EQ(order.size(), 4001u) << "everything staged in 60 rounds";
  uint64_t next[kRings] = {};
  size_t ring2_at = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const auto [ring, ticket] = order[i];
    ASSERT_LT(ring, kRings);
    EXPECT_EQ(ticket, next[ring]++) << "ring " << ring << " out of order at seq " << i;
    if (ring == 2) ring2_at = i;
  }
  EXPECT_EQ(next[0], 4000u);
  EXPECT_EQ(next[1], 0u);
  EXPECT_EQ(next[2], 1u);
  // kRingTurnRounds rounds of ring 0 at up to 256 bodies, then the poll of
  // all rings finds ring 2.
  EXPECT_LE(ring2_at, (megaring::detail::kRingTurnRounds + 2) * 256u)
      << "ring 2 waited for ring 0's backlog";
}

// A ring's turn ends after kRingTurnRounds rounds even while the staged
// queue's room keeps its validated backlog from being copied (the executors
// are the bottleneck): the other rings' slots are staged in turn, not after
// that backlog.
TEST_F(FetchRings, ATurnEndsWhileTheStagedQueueIsFull) {
  p_.capacity = 64;  // the staged queue and each ring
  p_.mask = 63;
  for (uint32_t r = 0; r < kRings; ++r) publish(r, 0, r == 2 ? 1 : 60);  // rings 0 and 1 busy
  // The completer passes 4 slots a round: the room stays small.
  int64_t ring2_at = -1;
  for (int round = 0; round < 100 && ring2_at < 0; ++round) {
    const uint64_t before = st_.seq;
    (void)megaring::detail::fetch_round(p_, st_);
    for (uint64_t q = before; q < st_.seq; ++q)
      if ((staged_[q & 63].reserved & (MR_MAX_RINGS - 1)) == 2) ring2_at = static_cast<int64_t>(q);
    priv_.done_cursor = std::min<uint64_t>(st_.seq, priv_.done_cursor + 4);
  }
  // Ring 0 goes first and, the queue being empty, is staged whole (60);
  // ring 1's turn then meets the full queue; ring 2 comes after that turn,
  // not after ring 1's last slot (seq 120).
  ASSERT_GE(ring2_at, 0) << "ring 2's slot was never staged";
  EXPECT_LT(ring2_at, 100) << "ring 2 waited for ring 1's backlog to drain";
}

// The completer, stalled behind ring 1's slot, counts each other ring past
// it up to that ring's own first unfinished slot, never beyond
// or its first slot with a record (publish_beyond_gap): the sequence is
// ring 1 (running), ring 2 (done), ring 2 (running), ring 2 (done), ring 3
// (done), ring 1 (done), ring 3 (done, kept), ring 3 (done).
TEST(CompleterRings, ARingIsCountedPastAnotherRingsGapNotPastItsOwn) {
  constexpr uint32_t kCap = 8;
  std::vector<mr_slot> staged(kCap, mr_slot{});
  std::vector<uint64_t> flags(kCap, 0);
  std::vector<mr_completion> outcomes(kCap, mr_completion{}), completions(4 * kCap, mr_completion{});
  std::vector<mr_ring_done> done(4, mr_ring_done{});
  megaring::detail::ConsumerPrivate priv = megaring::detail::initial_private(0);
  megaring::ConsumerParams p{};
  p.staged = staged.data();
  p.done_flags = flags.data();
  p.outcomes = outcomes.data();
  p.completions = completions.data();
  p.ring_done = done.data();
  p.priv = &priv;
  p.capacity = kCap;
  p.mask = kCap - 1;
  p.rings = 4;
  const uint32_t ring_of[8] = {1, 2, 2, 2, 3, 1, 3, 3};
  const bool finished[8] = {false, true, false, true, true, true, true, true};
  for (uint64_t s = 0; s < 8; ++s) {
    staged[s].header = s;  // the ring's ticket (unused here)
    staged[s].reserved = megaring::detail::staged_reserved(ring_of[s], 0);
    if (finished[s]) flags[s] = megaring::detail::done_flag(s, ring_of[s], /*needs_record=*/s == 6);
  }
  outcomes[6].result = 99;  // ring 3's ticket 1, kept
  outcomes[6].stamp = mr_make_stamp(1, MR_STATUS_OK, MR_FAULT_NONE);
  priv.fetched = 8;
  megaring::detail::CompleteState cs;
  megaring::detail::init_complete_state(p, cs);
  megaring::detail::scan_done_flags(p, cs);
  ASSERT_EQ(cs.scanned, 0u) << "slot 0 is the gap";
  const uint64_t t0 = 1'000'000;
  (void)megaring::detail::publish_beyond_gap(p, cs, t0);  // starts the stall's clock
  EXPECT_TRUE(megaring::detail::publish_beyond_gap(p, cs, t0 + megaring::detail::kEarlyRecordNs + 1));
  EXPECT_EQ(done[1].done_count, 0u) << "the ring of the gap, whose later slot is done";
  EXPECT_EQ(done[2].done_count, 1u) << "ring 2: its first slot, not past its own running one";
  EXPECT_EQ(done[3].done_count, 1u)
      << "ring 3: past ring 1's and ring 2's running slots, not past its own kept one";
  EXPECT_EQ(completions[3 * kCap + 1].stamp, mr_make_stamp(1, MR_STATUS_OK, MR_FAULT_NONE))
      << "the kept slot's record went out early";
  EXPECT_EQ(completions[3 * kCap + 1].result, 99u);
  EXPECT_EQ(done[0].done_count, 0u) << "ring 0 has no slot";
}

// With several rings the staged queue has back-pressure of its own: the
// fetcher stages no further than `capacity` past the completer's cursor,
// and goes on once the cursor moves (rings_v4.pml, M6).
TEST_F(FetchRings, TheStagedQueueWaitsForTheCompleter) {
  p_.capacity = 64;  // the staged queue, and each ring (the arrays hold more)
  p_.mask = 63;
  for (uint32_t r = 0; r < kRings; ++r) publish(r, 0, 60);
  for (int i = 0; i < 40; ++i) (void)megaring::detail::fetch_round(p_, st_);
  EXPECT_EQ(st_.seq, 64u) << "staged past the completer's cursor";
  priv_.done_cursor = 100;  // the completer is done with the first 100
  for (int i = 0; i < 40; ++i) (void)megaring::detail::fetch_round(p_, st_);
  EXPECT_EQ(st_.seq, 164u);
  priv_.done_cursor = 180;
  for (int i = 0; i < 40; ++i) (void)megaring::detail::fetch_round(p_, st_);
  EXPECT_EQ(st_.seq, 180u) << "all 180 slots of three rings";
}


}  // namespace
}  // namespace megaring_test
