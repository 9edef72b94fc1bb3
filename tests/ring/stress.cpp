// SPDX-License-Identifier: Apache-2.0
// Conservation under stress: producers publish a mixed load (kept NOPs,
// counters, one-shot stores) in random batches, and every ticket is handed
// out once, completes once with its result, and leaves its memory effect.

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ring_fixture.hpp"

namespace megaring_test {
namespace {

// Total slots for the stress tests: MEGARING_STRESS_SLOTS (default 10^6).
uint64_t stress_slots() {
  const uint64_t n = env_u64("MEGARING_STRESS_SLOTS", 1000000);
  return n < 64 ? 64 : n;
}

struct StressSpec {
  uint32_t capacity = 1024;
  uint64_t initial_ticket = 0;
  uint64_t total = 0;
  uint32_t max_batch = 32;
  uint32_t producers = 4;
};

class RingStressTest : public RingTest {
 protected:
  // A runtime with the spec's ring capacity and initial ticket.
  void create_runtime_for(const StressSpec& spec, std::unique_ptr<Runtime>* rt) {
    Config cfg = ring_config(spec.capacity);
    cfg.initial_ticket = spec.initial_ticket;
    create_runtime(cfg, rt);
  }
};

constexpr uint32_t kCountersPerProducer = 8;

struct PendingKept {
  Ticket ticket;
  uint64_t echo;
};

struct ProducerState {
  std::vector<uint64_t> tickets;
  uint64_t counters[kCountersPerProducer] = {};
  uint64_t stores = 0;  // words of this producer's store region used so far
  uint64_t kept_published = 0;
  uint64_t kept_waited = 0;
  uint64_t slots = 0;
  uint64_t errors = 0;
  std::string first_error;
  void error(const std::string& e) {
    if (errors++ == 0) first_error = e;
  }
};

uint64_t echo_for(uint32_t producer, uint64_t seq) { return (uint64_t(producer) << 48) | seq; }
uint32_t store_value_for(uint32_t producer, uint64_t index) {
  uint64_t x = (uint64_t(producer) << 40) ^ (index * 0x9E3779B97F4A7C15ull);
  x ^= x >> 29;
  return static_cast<uint32_t>(x) | 1u;  // never 0: unwritten words read 0
}

void run_stress(Runtime& rt, const StressSpec& spec) {
  const uint32_t P = spec.producers;
  const uint64_t N = spec.total;
  const uint64_t initial = spec.initial_ticket;
  std::printf("[ stress   ] backend=%s capacity=%u initial_ticket=%" PRIu64 " slots=%" PRIu64
              " producers=%u max_batch=%u\n",
              megaring::backend_name(rt.backend()), rt.capacity(), initial, N, P, spec.max_batch);
  ASSERT_EQ(rt.done_count(), initial);

  const uint64_t per_producer_max = N / P + 1;
  BufferHandle counters = 0, words = 0;
  MR_ASSERT_OK(rt.alloc_buffer(8ull * kCountersPerProducer * P, &counters));
  MR_ASSERT_OK(rt.alloc_buffer(4ull * per_producer_max * P, &words));

  // Watcher: DONE_COUNT never decreases and stays within [initial, initial+N].
  std::atomic<bool> stop_watch{false};
  uint64_t watch_samples = 0, watch_decreases = 0, watch_out_of_range = 0;
  std::thread watcher([&] {
    uint64_t last = rt.done_count();
    while (!stop_watch.load(std::memory_order_relaxed)) {
      const uint64_t v = rt.done_count();
      ++watch_samples;
      if (v < last) ++watch_decreases;
      if (v < initial || v > initial + N) ++watch_out_of_range;
      last = v;
      std::this_thread::sleep_for(microseconds(200));
    }
  });

  // Window of unread kept tickets per producer: kept tickets block position
  // reuse, so a producer must never wait for space while holding many.
  const size_t window = std::max<size_t>(1, std::min<size_t>(16, spec.capacity / (4 * P)));
  const Nanoseconds long_timeout = scaled(seconds(20));
  const Nanoseconds short_timeout = microseconds(200);

  std::vector<ProducerState> state(P);
  std::vector<std::thread> producers;
  for (uint32_t p = 0; p < P; ++p) {
    producers.emplace_back([&, p] {
      ProducerState& me = state[p];
      const uint64_t quota = N / P + (p < N % P ? 1 : 0);
      me.tickets.reserve(quota);
      Rng rng(p + 1);
      std::deque<PendingKept> pending;
      std::vector<SlotRequest> reqs(spec.max_batch);
      std::vector<uint64_t> echoes(spec.max_batch);
      auto drain = [&](size_t keep_at_most) {
        while (pending.size() > keep_at_most) {
          const PendingKept k = pending.front();
          pending.pop_front();
          Completion c;
          const Status st = rt.wait(k.ticket, &c, scaled(seconds(20)));
          if (!st) {
            me.error("wait(" + std::to_string(k.ticket.value) + "): " + st.to_string());
            return false;
          }
          ++me.kept_waited;
          if (c.ticket != k.ticket.value || c.status != MR_STATUS_OK || c.result != k.echo)
            me.error("kept ticket " + std::to_string(k.ticket.value) + ": status " +
                     std::to_string(c.status) + " result " + std::to_string(c.result) +
                     " expected echo " + std::to_string(k.echo));
        }
        return true;
      };
      uint64_t seq = 0;
      while (seq < quota && me.errors == 0) {
        const uint32_t b =
            static_cast<uint32_t>(std::min<uint64_t>(1 + rng.below(spec.max_batch), quota - seq));
        const bool kept = rng.below(4) == 0;
        uint64_t store_index = me.stores;
        for (uint32_t i = 0; i < b; ++i) {
          if (kept) {
            echoes[i] = echo_for(p, seq + i);
            reqs[i] = ops::nop(echoes[i]);
            continue;
          }
          switch (rng.below(3)) {
            case 0: {
              const uint32_t k = rng.below(kCountersPerProducer);
              reqs[i] = ops::atomic_add(counters, 8ull * (p * kCountersPerProducer + k), seq + i + 1);
              break;
            }
            case 1: {
              // Every word is stored exactly once: slots run in parallel and
              // out of order, so a second store would make the final value racy.
              reqs[i] = ops::store_u32(words, 4ull * (p * per_producer_max + store_index),
                                       store_value_for(p, store_index));
              ++store_index;
              break;
            }
            default: reqs[i] = ops::nop(seq + i); break;
          }
        }
        PublishOptions opt;
        opt.keep_result = kept;
        opt.on_full = OnFull::kWait;
        Ticket first;
        Status st;
        for (;;) {
          opt.timeout = pending.empty() ? long_timeout : short_timeout;
          st = b == 1 ? rt.publish(reqs[0], &first, opt) : rt.publish_batch(reqs.data(), b, &first, opt);
          if (st.code() == Result::kTimeout && !pending.empty()) {
            if (!drain(0)) break;
            continue;
          }
          break;
        }
        if (!st) {
          me.error("publish of " + std::to_string(b) + " slot(s): " + st.to_string());
          break;
        }
        if (first.kept != kept) me.error("Ticket::kept does not match keep_result");
        for (uint32_t i = 0; i < b; ++i) {
          me.tickets.push_back(first.value + i);
          const SlotRequest& r = reqs[i];
          if (r.opcode == MR_OP_ATOMIC_ADD)
            me.counters[(r.args[1] / 8) % kCountersPerProducer] += r.args[2];
          if (kept) {
            pending.push_back(PendingKept{Ticket{first.value + i, true}, echoes[i]});
            ++me.kept_published;
          }
        }
        me.stores = store_index;
        me.slots += b;
        seq += b;
        if (pending.size() > window && !drain(0)) break;
      }
      drain(0);
    });
  }
  for (auto& t : producers) t.join();

  // Published everything?
  uint64_t kept_published = 0, kept_waited = 0;
  for (uint32_t p = 0; p < P; ++p) {
    EXPECT_EQ(state[p].errors, 0u) << "producer " << p << ": " << state[p].first_error;
    kept_published += state[p].kept_published;
    kept_waited += state[p].kept_waited;
  }
  RuntimeStats before = rt.stats();
  EXPECT_EQ(before.published, N);

  MR_EXPECT_OK(rt.shutdown(scaled(seconds(60))));
  stop_watch.store(true);
  watcher.join();

  // Tickets: unique and exactly [initial, initial + N).
  std::vector<uint64_t> all;
  all.reserve(N);
  for (auto& s : state) all.insert(all.end(), s.tickets.begin(), s.tickets.end());
  ASSERT_EQ(all.size(), N);
  std::sort(all.begin(), all.end());
  uint64_t mismatches = 0;
  for (uint64_t i = 0; i < N; ++i)
    if (all[i] != initial + i && mismatches++ < 5)
      ADD_FAILURE() << "sorted ticket " << i << " is " << all[i] << ", expected " << initial + i;
  EXPECT_EQ(mismatches, 0u) << "tickets are not a permutation of [initial, initial+N)";
  EXPECT_TRUE(std::adjacent_find(all.begin(), all.end()) == all.end()) << "duplicate ticket";

  // Every kept ticket read exactly once, with its echo (checked in drain()).
  EXPECT_GT(kept_published, 0u);
  EXPECT_EQ(kept_waited, kept_published);

  const RuntimeStats s = rt.stats();
  EXPECT_EQ(s.published, N);
  EXPECT_EQ(s.completed_ok, N);
  EXPECT_EQ(s.faulted, 0u);
  EXPECT_EQ(s.aborted, 0u);
  EXPECT_EQ(s.protocol_errors, 0u);
  EXPECT_EQ(s.reaped, N);
  EXPECT_EQ(s.done_count, initial + N);
  EXPECT_EQ(rt.done_count(), initial + N);

  // Memory effects (the consumer has exited: its writes happen before join).
  std::vector<uint64_t> got(kCountersPerProducer * P);
  MR_ASSERT_OK(rt.read_buffer(counters, 0, got.data(), 8ull * got.size()));
  for (uint32_t p = 0; p < P; ++p)
    for (uint32_t k = 0; k < kCountersPerProducer; ++k)
      EXPECT_EQ(got[p * kCountersPerProducer + k], state[p].counters[k])
          << "producer " << p << " counter " << k;
  std::vector<uint32_t> w(per_producer_max * P);
  MR_ASSERT_OK(rt.read_buffer(words, 0, w.data(), 4ull * w.size()));
  uint64_t bad_words = 0, stored_words = 0;
  for (uint32_t p = 0; p < P; ++p) {
    stored_words += state[p].stores;
    for (uint64_t i = 0; i < per_producer_max; ++i) {
      const uint32_t expected = i < state[p].stores ? store_value_for(p, i) : 0u;
      if (w[p * per_producer_max + i] != expected && bad_words++ < 5)
        ADD_FAILURE() << "producer " << p << " word " << i << " = " << w[p * per_producer_max + i]
                      << ", expected " << expected;
    }
  }
  EXPECT_EQ(bad_words, 0u);
  EXPECT_GT(stored_words, 0u);

  EXPECT_GT(watch_samples, 0u);
  EXPECT_EQ(watch_decreases, 0u) << "DONE_COUNT decreased";
  EXPECT_EQ(watch_out_of_range, 0u) << "DONE_COUNT outside [initial, initial + N]";

  // A ticket read once cannot be read again.
  if (!state[0].tickets.empty()) {
    Completion c;
    MR_EXPECT_RESULT(rt.wait(Ticket{all.back(), true}, &c, milliseconds(1)),
                     Result::kInvalidArgument);
  }
  std::printf("[ stress   ] ok: %" PRIu64 " slots, %" PRIu64 " kept, %" PRIu64
              " stores, ring_full_events=%" PRIu64 ", %" PRIu64 " DONE_COUNT samples\n",
              N, kept_published, stored_words, s.ring_full_events, watch_samples);
}

TEST_P(RingStressTest, ConservationRing1024) {
  StressSpec spec;
  spec.capacity = 1024;
  spec.total = stress_slots();
  spec.max_batch = 32;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime_for(spec, &rt));
  run_stress(*rt, spec);
}

TEST_P(RingStressTest, ConservationRing8WrapsConstantly) {
  StressSpec spec;
  spec.capacity = 8;
  // A quarter of MEGARING_STRESS_SLOTS (by default 250k slots, 31k laps of
  // the ring): with 8 positions every lap is a producer/consumer hand-off, so
  // throughput is bound by thread wake-ups, and on a loaded 2-core machine
  // the full count takes minutes (about 3k slots/s with two CPU hogs running).
  spec.total = std::max<uint64_t>(stress_slots() / 4, 64);
  spec.max_batch = 4;  // batches up to half the ring, so they still get in
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime_for(spec, &rt));
  run_stress(*rt, spec);
}

TEST_P(RingStressTest, ConservationTicketsCross2To32) {
  StressSpec spec;
  spec.capacity = 1024;
  spec.total = stress_slots();
  spec.max_batch = 32;
  // Start below 2^32 so that at least half the slots land above it.
  spec.initial_ticket = kTwo32 - std::min<uint64_t>(5000, spec.total / 2);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime_for(spec, &rt));
  ASSERT_LT(spec.initial_ticket, kTwo32);
  ASSERT_GT(spec.initial_ticket + spec.total, kTwo32) << "tickets must cross 2^32";
  run_stress(*rt, spec);
  // The last ticket is above 2^32 and its tag wrapped.
  EXPECT_GE(rt->done_count(), kTwo32 + 1);
}

MEGARING_INSTANTIATE_BACKENDS(RingStressTest);

}  // namespace
}  // namespace megaring_test
