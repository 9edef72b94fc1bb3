// Ring protocol and runtime tests, run on every backend (Cpu/..., Gpu/...).
//
// Every wait has a finite timeout (scaled for sanitizer builds) and every
// test runs under the fixture's watchdog, so a hang is reported as a failure.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <cuda.h>  // driver types for an entry point only: libcuda is not linked
#include <cuda_runtime_api.h>
#include <dirent.h>

#include <megaring/consumer/consumer_core.cuh>
#include <megaring/detail/host_waiter.hpp>

#include "backend_fixture.hpp"
#include "capped_consumer.hpp"
#include "user_kernel.hpp"
#include "runtime/runtime_internal.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::detail::RuntimeInternals;
using megaring::OnFull;
using megaring::PublishOptions;
using megaring::RuntimeStats;
using megaring::SlotRequest;
using megaring::Ticket;
namespace ops = megaring::ops;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::microseconds;
using std::chrono::seconds;

constexpr uint64_t kTwo32 = 1ull << 32;

// Total slots for the stress tests: MEGARING_STRESS_SLOTS (default 10^6).
uint64_t stress_slots() {
  const uint64_t n = env_u64("MEGARING_STRESS_SLOTS", 1000000);
  return n < 64 ? 64 : n;
}

uint64_t ms_since(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<milliseconds>(Clock::now() - start).count());
}

PublishOptions kept_options(Nanoseconds timeout = scaled(seconds(10))) {
  PublishOptions o;
  o.keep_result = true;
  o.timeout = timeout;
  return o;
}
PublishOptions plain_options(Nanoseconds timeout = scaled(seconds(10))) {
  PublishOptions o;
  o.timeout = timeout;
  return o;
}

// Publishes one kept slot and waits for it (finite timeouts).
void call_ok(Runtime& rt, const SlotRequest& r, Completion* c) {
  Ticket t;
  MR_ASSERT_OK(rt.publish(r, &t, kept_options()));
  MR_ASSERT_OK(rt.wait(t, c, scaled(seconds(10))));
  ASSERT_EQ(c->ticket, t.value);
}

// Waits until DONE_COUNT passes everything published so far, so that a
// following stats() reaps every completion.
void quiesce(Runtime& rt) {
  Ticket t;
  MR_ASSERT_OK(rt.publish(ops::nop(), &t, plain_options()));
  MR_ASSERT_OK(rt.wait_done(t, scaled(seconds(10))));
}

void expect_conserved(const RuntimeStats& s) {
  EXPECT_EQ(s.completed_ok + s.faulted + s.aborted, s.published)
      << "ok " << s.completed_ok << " faulted " << s.faulted << " aborted " << s.aborted;
  EXPECT_EQ(s.reaped, s.published);
  EXPECT_EQ(s.protocol_errors, 0u);
  uint64_t by_code = 0;
  for (uint64_t n : s.faults_by_code) by_code += n;
  EXPECT_EQ(by_code, s.faulted);
}

// ===========================================================================
// Conservation stress
// ===========================================================================
class RingStressTest : public BackendTest {};

struct StressSpec {
  uint32_t capacity = 1024;
  uint64_t initial_ticket = 0;
  uint64_t total = 0;
  uint32_t max_batch = 32;
  uint32_t producers = 4;
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
  Config cfg = base_config();
  cfg.ring_capacity = 1024;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  StressSpec spec;
  spec.capacity = 1024;
  spec.total = stress_slots();
  spec.max_batch = 32;
  run_stress(*rt, spec);
}

TEST_P(RingStressTest, ConservationRing8WrapsConstantly) {
  Config cfg = base_config();
  cfg.ring_capacity = 8;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  StressSpec spec;
  spec.capacity = 8;
  // A quarter of MEGARING_STRESS_SLOTS (by default 250k slots, 31k laps of
  // the ring): with 8 positions every lap is a producer/consumer hand-off, so
  // throughput is bound by thread wake-ups, and on a loaded 2-core machine
  // the full count takes minutes (about 3k slots/s with two CPU hogs running).
  spec.total = std::max<uint64_t>(stress_slots() / 4, 64);
  spec.max_batch = 4;  // batches up to half the ring, so they still get in
  run_stress(*rt, spec);
}

TEST_P(RingStressTest, ConservationTicketsCross2To32) {
  StressSpec spec;
  spec.capacity = 1024;
  spec.total = stress_slots();
  spec.max_batch = 32;
  // Start below 2^32 so that at least half the slots land above it.
  spec.initial_ticket = kTwo32 - std::min<uint64_t>(5000, spec.total / 2);
  Config cfg = base_config();
  cfg.ring_capacity = spec.capacity;
  cfg.initial_ticket = spec.initial_ticket;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  ASSERT_LT(spec.initial_ticket, kTwo32);
  ASSERT_GT(spec.initial_ticket + spec.total, kTwo32) << "tickets must cross 2^32";
  run_stress(*rt, spec);
  // The last ticket is above 2^32 and its tag wrapped.
  EXPECT_GE(rt->done_count(), kTwo32 + 1);
}

MEGARING_INSTANTIATE_BACKENDS(RingStressTest);

// ===========================================================================
// Faults
// ===========================================================================
class RingFaultTest : public BackendTest {};

TEST_P(RingFaultTest, EveryFaultHasItsCodeAndTheRingKeepsGoing) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  constexpr uint64_t kBytes = 256;
  BufferHandle buf = 0, other = 0, freed = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &buf));
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &other));
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &freed));
  MR_ASSERT_OK(rt->free_buffer(freed));
  // A recognisable pattern: no faulting slot may change it.
  std::vector<uint8_t> pattern(kBytes);
  for (uint64_t i = 0; i < kBytes; ++i) pattern[i] = static_cast<uint8_t>(i * 7 + 3);
  MR_ASSERT_OK(rt->write_buffer(buf, 0, pattern.data(), kBytes));
  MR_ASSERT_OK(rt->write_buffer(other, 0, pattern.data(), kBytes));

  auto raw = [](uint32_t opcode, std::initializer_list<uint64_t> args, uint32_t flags = 0) {
    SlotRequest r;
    r.opcode = opcode;
    r.flags = flags;
    uint32_t i = 0;
    for (uint64_t a : args) r.args[i++] = a;
    return r;
  };
  const uint64_t wrong_generation = buf ^ (1u << MR_BUFFER_INDEX_BITS);
  struct Case {
    const char* what;
    SlotRequest request;
    uint16_t fault;
  };
  const Case cases[] = {
      {"opcode 0", raw(MR_OP_INVALID, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode BUILTIN_END", raw(MR_OP_BUILTIN_END, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode 200 (system range)", raw(200, {1}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode SYSTEM_END-1", raw(MR_OP_SYSTEM_END - 1, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode USER_BASE+5 (builtin consumer)", raw(MR_OP_USER_BASE + 5, {}), MR_FAULT_UNKNOWN_OPCODE},
      {"opcode below the tenant windows", raw(MR_OP_TENANT_BASE - 1, {}), MR_FAULT_UNKNOWN_OPCODE},
      // A tenant-less slot never runs a tenant-window opcode.
      {"opcode UINT32_MAX", raw(0xFFFFFFFFu, {}), MR_FAULT_OUT_OF_WINDOW},
      {"opcode MR_OP_TENANT_BASE", raw(MR_OP_TENANT_BASE, {}), MR_FAULT_OUT_OF_WINDOW},
      {"reserved flag bit 16", raw(MR_OP_NOP, {1}, 1u << 16), MR_FAULT_RESERVED_FLAGS},
      {"reserved flag bit 31", raw(MR_OP_NOP, {1}, 1u << 31), MR_FAULT_RESERVED_FLAGS},
      {"all reserved flags on a store", raw(MR_OP_STORE_U32, {buf, 0, 1}, MR_SLOT_FLAGS_RESERVED),
       MR_FAULT_RESERVED_FLAGS},
      {"handle 0", ops::store_u32(0, 0, 1), MR_FAULT_BAD_HANDLE},
      {"random handle", ops::store_u32(0x5A5A1234u, 0, 1), MR_FAULT_BAD_HANDLE},
      {"handle index beyond the table", ops::fill(0x0001FFFFu, 0, 1, 1), MR_FAULT_BAD_HANDLE},
      {"handle with the wrong generation", raw(MR_OP_STORE_U32, {wrong_generation, 0, 1}),
       MR_FAULT_BAD_HANDLE},
      {"handle with bits above 32", raw(MR_OP_STORE_U32, {(1ull << 32) | buf, 0, 1}),
       MR_FAULT_BAD_HANDLE},
      {"freed handle", ops::store_u32(freed, 0, 1), MR_FAULT_BAD_HANDLE},
      {"freed handle (copy source)", ops::copy(buf, 0, freed, 0, 8), MR_FAULT_BAD_HANDLE},
      {"store at end", ops::store_u32(buf, kBytes, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"atomic past end", ops::atomic_add(buf, kBytes, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"fill one byte too many", ops::fill(buf, 0, kBytes + 1, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"fill at offset past end", ops::fill(buf, kBytes + 1, 0, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"copy source out of range", ops::copy(buf, 0, other, kBytes - 4, 8), MR_FAULT_OUT_OF_BOUNDS},
      {"copy destination out of range", ops::copy(buf, kBytes - 4, other, 0, 8),
       MR_FAULT_OUT_OF_BOUNDS},
      {"reduce one element too many", ops::reduce_add_u32(buf, 0, kBytes / 4 + 1),
       MR_FAULT_OUT_OF_BOUNDS},
      {"fill offset near 2^64", ops::fill(buf, ~0ull - 7, 16, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"fill offset+len wraps", ops::fill(buf, 8, ~0ull - 3, 0xEE), MR_FAULT_OUT_OF_BOUNDS},
      {"store offset near 2^64", ops::store_u32(buf, ~0ull - 3, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"atomic offset 2^64-8", ops::atomic_add(buf, ~0ull - 7, 1), MR_FAULT_OUT_OF_BOUNDS},
      {"copy len near 2^64", ops::copy(buf, 0, other, 0, ~0ull), MR_FAULT_OUT_OF_BOUNDS},
      {"copy src offset+len wraps", ops::copy(buf, 0, other, 16, ~0ull - 8), MR_FAULT_OUT_OF_BOUNDS},
      {"reduce count*4 wraps", ops::reduce_add_u32(buf, 0, (1ull << 62) + 1), MR_FAULT_OUT_OF_BOUNDS},
      {"reduce count 2^62", ops::reduce_add_u32(buf, 0, 1ull << 62), MR_FAULT_OUT_OF_BOUNDS},
      {"reduce count 2^62-1", ops::reduce_add_u32(buf, 0, (1ull << 62) - 1), MR_FAULT_OUT_OF_BOUNDS},
      {"misaligned store", ops::store_u32(buf, 2, 1), MR_FAULT_MISALIGNED},
      {"misaligned atomic (4)", ops::atomic_add(buf, 4, 1), MR_FAULT_MISALIGNED},
      {"misaligned atomic (1)", ops::atomic_add(buf, 1, 1), MR_FAULT_MISALIGNED},
      {"misaligned reduce", ops::reduce_add_u32(buf, 1, 1), MR_FAULT_MISALIGNED},
      {"store value 2^32", raw(MR_OP_STORE_U32, {buf, 0, kTwo32}), MR_FAULT_BAD_ARGUMENT},
      {"store value 2^64-1", raw(MR_OP_STORE_U32, {buf, 0, ~0ull}), MR_FAULT_BAD_ARGUMENT},
      {"fill byte 256", raw(MR_OP_FILL, {buf, 0, 8, 256}), MR_FAULT_BAD_ARGUMENT},
      {"copy onto itself", ops::copy(buf, 0, buf, 0, 16), MR_FAULT_BAD_ARGUMENT},
      {"copy overlapping forward", ops::copy(buf, 8, buf, 0, 16), MR_FAULT_BAD_ARGUMENT},
      {"copy overlapping backward", ops::copy(buf, 0, buf, 15, 16), MR_FAULT_BAD_ARGUMENT},
      {"delay above max", ops::delay_ns(MR_DELAY_MAX_NS + 1), MR_FAULT_BAD_ARGUMENT},
      {"delay 2^64-1", ops::delay_ns(~0ull), MR_FAULT_BAD_ARGUMENT},
  };

  uint64_t expected_by_code[MR_FAULT_CODE_COUNT] = {};
  uint64_t echo = 1000;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Ticket bad, nop;
    MR_ASSERT_OK(rt->publish(c.request, &bad, kept_options()));
    MR_ASSERT_OK(rt->publish(ops::nop(++echo), &nop, kept_options()));
    Completion cb, cn;
    MR_ASSERT_OK(rt->wait(bad, &cb, scaled(seconds(10))));
    EXPECT_EQ(cb.ticket, bad.value);
    EXPECT_EQ(cb.status, MR_STATUS_FAULT);
    EXPECT_EQ(cb.fault, c.fault);
    EXPECT_EQ(cb.result, 0u) << "a faulted slot reports result 0";
    EXPECT_FALSE(cb.ok());
    MR_ASSERT_OK(rt->wait(nop, &cn, scaled(seconds(10))));
    EXPECT_EQ(cn.status, MR_STATUS_OK) << "the NOP after the fault";
    EXPECT_EQ(cn.fault, MR_FAULT_NONE);
    EXPECT_EQ(cn.result, echo);
    ++expected_by_code[c.fault];
  }

  // Non-reserved flag bits are not faults.
  Completion c;
  SlotRequest low_flags = ops::nop(77);
  low_flags.flags = 0x0000FFFFu;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, low_flags, &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 77u);
  // The maximum delay itself is legal (checked without running it: 0 is too).
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::delay_ns(0), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);

  // No faulting slot touched memory.
  std::vector<uint8_t> got(kBytes);
  MR_ASSERT_OK(rt->read_buffer(buf, 0, got.data(), kBytes));
  EXPECT_EQ(got, pattern) << "a faulting slot wrote to its buffer";
  MR_ASSERT_OK(rt->read_buffer(other, 0, got.data(), kBytes));
  EXPECT_EQ(got, pattern);

  ASSERT_NO_FATAL_FAILURE(quiesce(*rt));
  const RuntimeStats s = rt->stats();
  const uint64_t n_cases = sizeof(cases) / sizeof(cases[0]);
  EXPECT_EQ(s.faulted, n_cases);
  for (uint32_t code = 0; code < MR_FAULT_CODE_COUNT; ++code)
    EXPECT_EQ(s.faults_by_code[code], expected_by_code[code]) << "fault code " << code;
  EXPECT_EQ(s.faults_by_code[MR_FAULT_NONE], 0u);
  EXPECT_EQ(s.aborted, 0u);
  EXPECT_EQ(s.completed_ok, s.published - n_cases);
  expect_conserved(s);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingFaultTest, FaultsInABatchDoNotDisturbNeighbours) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  BufferHandle buf = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &buf));
  std::vector<SlotRequest> batch;
  for (uint32_t i = 0; i < 16; ++i)
    batch.push_back(i % 2 == 0 ? ops::store_u32(buf, 4ull * (i / 2), 100 + i)
                               : ops::store_u32(buf, 3, 1) /* misaligned */);
  Ticket first;
  MR_ASSERT_OK(rt->publish_batch(batch.data(), 16, &first, kept_options()));
  for (uint32_t i = 0; i < 16; ++i) {
    Completion c;
    MR_ASSERT_OK(rt->wait(Ticket{first.value + i, true}, &c, scaled(seconds(10))));
    if (i % 2 == 0) {
      EXPECT_EQ(c.status, MR_STATUS_OK) << i;
      EXPECT_EQ(c.result, 100u + i);
    } else {
      EXPECT_EQ(c.status, MR_STATUS_FAULT) << i;
      EXPECT_EQ(c.fault, MR_FAULT_MISALIGNED) << i;
    }
  }
  uint32_t words[8];
  MR_ASSERT_OK(rt->read_buffer(buf, 0, words, sizeof(words)));
  for (uint32_t k = 0; k < 8; ++k) EXPECT_EQ(words[k], 100u + 2 * k);
  ASSERT_NO_FATAL_FAILURE(quiesce(*rt));
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.faults_by_code[MR_FAULT_MISALIGNED], 8u);
  EXPECT_EQ(s.faulted, 8u);
  expect_conserved(s);
}

MEGARING_INSTANTIATE_BACKENDS(RingFaultTest);

// ===========================================================================
// Op results and buffers
// ===========================================================================
class RingOpsTest : public BackendTest {};

TEST_P(RingOpsTest, BuffersStartZeroAndRoundTrip) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  constexpr uint64_t kBytes = 4096 + 13;
  BufferHandle h = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &h));
  EXPECT_NE(h, 0u);
  std::vector<uint8_t> got(kBytes, 0xCC);
  MR_ASSERT_OK(rt->read_buffer(h, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }))
      << "a fresh buffer must read as zero";

  std::mt19937_64 rng(42);
  std::vector<uint8_t> data(kBytes);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  MR_ASSERT_OK(rt->write_buffer(h, 0, data.data(), kBytes));
  MR_ASSERT_OK(rt->read_buffer(h, 0, got.data(), kBytes));
  EXPECT_EQ(got, data);
  // Partial, unaligned ranges.
  std::vector<uint8_t> part(100, 0x5A);
  MR_ASSERT_OK(rt->write_buffer(h, 1001, part.data(), part.size()));
  std::copy(part.begin(), part.end(), data.begin() + 1001);
  std::vector<uint8_t> window(300);
  MR_ASSERT_OK(rt->read_buffer(h, 950, window.data(), window.size()));
  EXPECT_TRUE(std::equal(window.begin(), window.end(), data.begin() + 950));
  // The last byte and an empty range at the end are in range.
  uint8_t last = 0;
  MR_ASSERT_OK(rt->read_buffer(h, kBytes - 1, &last, 1));
  EXPECT_EQ(last, data[kBytes - 1]);
  MR_EXPECT_OK(rt->read_buffer(h, kBytes, &last, 0));

  // A second buffer is zero too, even after the first was written.
  BufferHandle h2 = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &h2));
  EXPECT_NE(h2, h);
  MR_ASSERT_OK(rt->read_buffer(h2, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));

  // Reused table index: new generation, memory zeroed, old handle dead.
  MR_ASSERT_OK(rt->free_buffer(h2));
  BufferHandle h3 = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &h3));
  EXPECT_NE(h3, h2) << "a reallocated handle must differ from the freed one";
  MR_ASSERT_OK(rt->read_buffer(h3, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  MR_EXPECT_RESULT(rt->read_buffer(h2, 0, got.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->free_buffer(h2), Result::kInvalidArgument) << "double free";
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingOpsTest, BufferAccessOutOfRangeIsInvalidArgument) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  BufferHandle h = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &h));
  std::vector<uint8_t> tmp(128, 0x11);
  MR_EXPECT_RESULT(rt->read_buffer(h, 0, tmp.data(), 65), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 60, tmp.data(), 5), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 65, tmp.data(), 0), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, ~0ull - 2, tmp.data(), 4), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 8, tmp.data(), ~0ull - 4), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, 0, tmp.data(), 65), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, 64, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, ~0ull, tmp.data(), 2), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(h, 1, tmp.data(), ~0ull), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(0, 0, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h ^ (1u << 16), 0, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->write_buffer(0x5A5A1234u, 0, tmp.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->read_buffer(h, 0, nullptr, 8), Result::kInvalidArgument);
  // Nothing was written by the refused calls.
  std::vector<uint8_t> got(64, 0xFF);
  MR_ASSERT_OK(rt->read_buffer(h, 0, got.data(), 64));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  BufferHandle* null_handle = nullptr;
  MR_EXPECT_RESULT(rt->alloc_buffer(8, null_handle), Result::kInvalidArgument);
}

// Every built-in opcode on its edge cases, results and buffer contents
// checked; then the runtime is shut down.
void check_builtin_ops(Runtime& rt) {
  constexpr uint64_t kBytes = 8192;
  BufferHandle a = 0, b = 0;
  MR_ASSERT_OK(rt.alloc_buffer(kBytes, &a));
  MR_ASSERT_OK(rt.alloc_buffer(kBytes, &b));
  std::vector<uint8_t> ha(kBytes, 0), hb(kBytes, 0), got(kBytes);
  Completion c;

  // FILL a sub-range.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::fill(a, 100, 3000, 0xAB), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 3000u);
  std::fill(ha.begin() + 100, ha.begin() + 3100, 0xAB);
  MR_ASSERT_OK(rt.read_buffer(a, 0, got.data(), kBytes));
  EXPECT_EQ(got, ha) << "FILL wrote outside [100, 3100) or missed bytes";
  // FILL with byte 0 and FILL of zero bytes.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::fill(a, 200, 10, 0x00), &c));
  EXPECT_EQ(c.result, 10u);
  std::fill(ha.begin() + 200, ha.begin() + 210, 0x00);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::fill(a, kBytes, 0, 0xFF), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);

  // COPY random data from b into a.
  std::mt19937_64 rng(7);
  for (auto& x : hb) x = static_cast<uint8_t>(rng());
  MR_ASSERT_OK(rt.write_buffer(b, 0, hb.data(), kBytes));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::copy(a, 4000, b, 1, 4001), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 4001u);
  std::copy(hb.begin() + 1, hb.begin() + 4002, ha.begin() + 4000);
  MR_ASSERT_OK(rt.read_buffer(a, 0, got.data(), kBytes));
  EXPECT_EQ(got, ha) << "COPY result differs";
  MR_ASSERT_OK(rt.read_buffer(b, 0, got.data(), kBytes));
  EXPECT_EQ(got, hb) << "COPY modified its source";
  // Adjacent, non-overlapping ranges of one buffer are fine.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::copy(b, 0, b, 16, 16), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 16u);
  std::copy(hb.begin() + 16, hb.begin() + 32, hb.begin());
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::copy(b, 0, a, 0, 0), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);

  // REDUCE_ADD_U32 over random words: the sum exceeds 2^32.
  std::vector<uint32_t> words(kBytes / 4);
  for (auto& w : words) w = static_cast<uint32_t>(rng());
  MR_ASSERT_OK(rt.write_buffer(b, 0, words.data(), kBytes));
  const uint64_t total = std::accumulate(words.begin(), words.end(), uint64_t{0});
  ASSERT_GT(total, kTwo32);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 0, words.size()), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, total);
  const uint64_t part = std::accumulate(words.begin() + 3, words.begin() + 3 + 777, uint64_t{0});
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 12, 777), &c));
  EXPECT_EQ(c.result, part);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 4, 0), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);
  std::vector<uint32_t> maxed(1000, 0xFFFFFFFFu);
  MR_ASSERT_OK(rt.write_buffer(b, 0, maxed.data(), 4000));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::reduce_add_u32(b, 0, 1000), &c));
  EXPECT_EQ(c.result, 1000ull * 0xFFFFFFFFull) << "the sum must be 64-bit";

  // STORE_U32 returns the value and writes exactly four bytes.
  BufferHandle s = 0;
  MR_ASSERT_OK(rt.alloc_buffer(16, &s));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::store_u32(s, 4, 0xFFFFFFFFu), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0xFFFFFFFFull);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::store_u32(s, 12, 0x01020304u), &c));
  EXPECT_EQ(c.result, 0x01020304u);
  uint32_t sw[4] = {1, 1, 1, 1};
  MR_ASSERT_OK(rt.read_buffer(s, 0, sw, 16));
  EXPECT_EQ(sw[0], 0u);
  EXPECT_EQ(sw[1], 0xFFFFFFFFu);
  EXPECT_EQ(sw[2], 0u);
  EXPECT_EQ(sw[3], 0x01020304u);

  // ATOMIC_ADD returns the old value, wraps modulo 2^64.
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt.alloc_buffer(16, &ctr));
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, 5), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 0u);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, 7), &c));
  EXPECT_EQ(c.result, 5u);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, ~0ull), &c));  // -1
  EXPECT_EQ(c.result, 12u);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::atomic_add(ctr, 8, 0), &c));
  EXPECT_EQ(c.result, 11u);
  uint64_t cw[2] = {9, 9};
  MR_ASSERT_OK(rt.read_buffer(ctr, 0, cw, 16));
  EXPECT_EQ(cw[0], 0u);
  EXPECT_EQ(cw[1], 11u);

  // NOP echoes; DELAY returns its argument.
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::nop(~0ull), &c));
  EXPECT_EQ(c.result, ~0ull);
  ASSERT_NO_FATAL_FAILURE(call_ok(rt, ops::delay_ns(1500), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 1500u);

  // call() is publish(keep) + wait.
  MR_ASSERT_OK(rt.call(ops::nop(31337), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 31337u);

  ASSERT_NO_FATAL_FAILURE(quiesce(rt));
  const RuntimeStats st = rt.stats();
  EXPECT_EQ(st.faulted, 0u);
  expect_conserved(st);
  MR_EXPECT_OK(rt.shutdown(scaled(seconds(10))));
}

TEST_P(RingOpsTest, FillCopyReduceStoreAtomic) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  check_builtin_ops(*rt);
}

// make_consumer's block size and register cap: the built-ins in one-warp
// blocks of at most 32 registers (block-wide handlers with one warp; on the
// GPU, the capped kernel).
TEST_P(RingOpsTest, CappedOneWarpConsumerRunsTheBuiltins) {
  const megaring::Consumer& consumer = capped_consumer();
  EXPECT_EQ(consumer.block_threads, kCappedThreads);
  EXPECT_EQ(consumer.max_registers, kCappedRegisters);
  if (backend() == Backend::kCuda) {
    int registers = 0;
    ASSERT_EQ(capped_kernel_registers(&registers), cudaSuccess);
    EXPECT_GT(registers, 0);
    EXPECT_LE(registers, static_cast<int>(kCappedRegisters)) << "__maxnreg__ did not take";
  }
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(base_config(), consumer, &rt));
  ASSERT_EQ(rt->backend(), backend());
  check_builtin_ops(*rt);
}

TEST_P(RingOpsTest, FreedBufferStaysValidForSlotsPublishedBeforeTheFree) {
  // Slots published before free_buffer() still run on the buffer; slots
  // published after it fault BAD_HANDLE. (Regression test: free_buffer once
  // cleared the table entry at once, so earlier slots that had not started
  // yet faulted too.)
  std::unique_ptr<Runtime> rt;
  Config cfg = base_config();
  cfg.workers = 2;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle h = 0;
  MR_ASSERT_OK(rt->alloc_buffer(1 << 16, &h));
  Ticket d1, d2, fill, after;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(20'000'000), &d1, plain_options()));
  MR_ASSERT_OK(rt->publish(ops::delay_ns(20'000'000), &d2, plain_options()));
  MR_ASSERT_OK(rt->publish(ops::fill(h, 0, 1 << 16, 0x7F), &fill, kept_options()));
  MR_ASSERT_OK(rt->free_buffer(h));
  MR_ASSERT_OK(rt->publish(ops::fill(h, 0, 16, 0x7F), &after, kept_options()));
  Completion c;
  MR_ASSERT_OK(rt->wait(fill, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_OK) << "a slot published before free_buffer must still run";
  EXPECT_EQ(c.result, 1u << 16);
  MR_ASSERT_OK(rt->wait(after, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// free_buffer racing producers that name the buffer: every slot either ran
// on live memory (OK) or faulted BAD_HANDLE; none may touch freed memory
// (the ASan run of CI catches a use-after-free here).
TEST_P(RingOpsTest, FreeRacingPublishesNeverTouchesFreedMemory) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  constexpr uint64_t kBytes = 64 * 1024;  // 16 FILLs of 4 KiB, mid-flight when the free lands
  for (int round = 0; round < 40; ++round) {
    BufferHandle b = 0;
    MR_ASSERT_OK(rt->alloc_buffer(kBytes, &b));
    std::vector<Ticket> tickets(16);
    std::atomic<int> published{0};
    std::thread producer([&] {
      // Disjoint ranges: two workers must not write the same bytes at once.
      const uint64_t part = kBytes / tickets.size();
      for (size_t i = 0; i < tickets.size(); ++i) {
        MR_ASSERT_OK(rt->publish(ops::fill(b, i * part, part, 0x5A), &tickets[i], kept_options()));
        published.fetch_add(1);
      }
    });
    while (published.load() < 1 + round % 8) std::this_thread::yield();
    MR_ASSERT_OK(rt->free_buffer(b));
    producer.join();
    for (const Ticket& t : tickets) {
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(10))));
      if (c.status == MR_STATUS_OK) {
        EXPECT_EQ(c.result, kBytes / tickets.size());
      } else {
        EXPECT_EQ(c.status, MR_STATUS_FAULT);
        EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
      }
    }
  }
  ASSERT_NO_FATAL_FAILURE(quiesce(*rt));
  expect_conserved(rt->stats());
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingOpsTest, FreedTableEntryIsRecycledAfterEarlierSlotsComplete) {
  // One table entry: the freed entry must come back (once the slots published
  // before free_buffer completed) under a new handle, with fresh zeroed memory.
  Config cfg = base_config();
  cfg.max_buffers = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  constexpr uint64_t kBytes = 4096;
  BufferHandle old_handle = 0;
  MR_ASSERT_OK(rt->alloc_buffer(kBytes, &old_handle));
  Ticket slow, fill;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(30'000'000), &slow, plain_options()));
  MR_ASSERT_OK(rt->publish(ops::fill(old_handle, 0, kBytes, 0xA5), &fill, kept_options()));
  MR_ASSERT_OK(rt->free_buffer(old_handle));
  uint8_t byte = 0;
  MR_EXPECT_RESULT(rt->read_buffer(old_handle, 0, &byte, 1), Result::kInvalidArgument)
      << "host access to a freed handle fails at once";

  // The entry comes back within a bounded time.
  BufferHandle fresh = 0;
  Status st;
  const auto deadline = Clock::now() + scaled(seconds(5));
  do {
    st = rt->alloc_buffer(kBytes, &fresh);
    if (st.is_ok()) break;
    ASSERT_EQ(st.code(), Result::kOutOfMemory) << st.to_string();
    std::this_thread::sleep_for(milliseconds(1));
  } while (Clock::now() < deadline);
  MR_ASSERT_OK(st) << "the freed table entry was never recycled";
  EXPECT_NE(fresh, old_handle) << "a recycled entry needs a new generation";
  EXPECT_EQ(fresh & MR_BUFFER_INDEX_MASK, old_handle & MR_BUFFER_INDEX_MASK);

  Completion c;
  MR_ASSERT_OK(rt->wait(fill, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_OK) << "the FILL was published before free_buffer";
  EXPECT_EQ(c.result, kBytes);
  // The new buffer does not alias the old memory.
  std::vector<uint8_t> got(kBytes, 0xFF);
  MR_ASSERT_OK(rt->read_buffer(fresh, 0, got.data(), kBytes));
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
  // Old handle faults, new handle works.
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::fill(old_handle, 0, 8, 1), &c));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE);
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::fill(fresh, 0, 8, 1), &c));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

MEGARING_INSTANTIATE_BACKENDS(RingOpsTest);

// ===========================================================================
// FENCE
// ===========================================================================
class RingFenceTest : public BackendTest {};

TEST_P(RingFenceTest, FenceCompletesAfterEveryEarlierTicket) {
  Config cfg = base_config();
  cfg.ring_capacity = 1024;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(64, &ctr));
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    uint64_t before = 0;
    MR_ASSERT_OK(rt->read_buffer(ctr, 0, &before, 8));
    std::vector<Ticket> earlier;
    std::vector<Ticket> kept;
    uint64_t added = 0;
    Rng rng(round + 100);
    for (int i = 0; i < 300; ++i) {
      Ticket t;
      const bool keep = i % 5 == 0;
      SlotRequest r;
      if (i % 3 == 0) {
        r = ops::delay_ns(20'000 + rng.below(200'000));  // 20..220 us
      } else {
        const uint64_t d = 1 + rng.below(1000);
        added += d;
        r = ops::atomic_add(ctr, 0, d);
      }
      MR_ASSERT_OK(rt->publish(r, &t, keep ? kept_options() : plain_options()));
      earlier.push_back(t);
      if (keep) kept.push_back(t);
    }
    // The last slot before the fence is a long one, so the fence really waits.
    Ticket slow;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(5'000'000), &slow, kept_options()));
    earlier.push_back(slow);
    kept.push_back(slow);
    Ticket fence;
    MR_ASSERT_OK(rt->publish(ops::fence(), &fence, kept_options()));
    Completion fc;
    MR_ASSERT_OK(rt->wait(fence, &fc, scaled(seconds(20))));
    const uint64_t done_after_fence = rt->done_count();
    EXPECT_EQ(fc.status, MR_STATUS_OK);
    EXPECT_EQ(fc.result, fence.value) << "FENCE result is the DONE prefix it saw: its own ticket";
    // Every earlier kept ticket already has its final record: a zero-timeout
    // wait must succeed at once.
    for (const Ticket& t : kept) {
      Completion c;
      MR_EXPECT_OK(rt->wait(t, &c, Nanoseconds(0)));
      EXPECT_EQ(c.status, MR_STATUS_OK) << "ticket " << t.value;
    }
    // Every earlier ticket is below DONE_COUNT.
    EXPECT_GE(done_after_fence, fence.value)
        << "DONE_COUNT lags behind tickets the fence waited for";
    for (const Ticket& t : earlier) MR_EXPECT_OK(rt->wait_done(t, scaled(seconds(1))));
    // Every earlier ATOMIC_ADD is visible.
    uint64_t after = 0;
    MR_ASSERT_OK(rt->read_buffer(ctr, 0, &after, 8));
    EXPECT_EQ(after - before, added);
  }
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingFenceTest, FenceAtTheStartCompletesAtOnce) {
  Config cfg = base_config();
  cfg.initial_ticket = 777;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::fence(), &c));
  EXPECT_EQ(c.ticket, 777u);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 777u);
}

MEGARING_INSTANTIATE_BACKENDS(RingFenceTest);

// ===========================================================================
// Back-pressure and kept tickets
// ===========================================================================
class RingBackPressureTest : public BackendTest {};

TEST_P(RingBackPressureTest, FullRingFailsTimesOutAndRecovers) {
  Config cfg = base_config();
  cfg.ring_capacity = 4;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  const uint64_t delay = 200'000'000;  // 200 ms: in flight through the checks below
  std::vector<Ticket> kept(4);
  for (auto& t : kept) MR_ASSERT_OK(rt->publish(ops::delay_ns(delay), &t, kept_options()));

  PublishOptions fail;
  fail.on_full = OnFull::kFail;
  Ticket x;
  const uint64_t full_before = rt->stats().ring_full_events;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, fail), Result::kRingFull);
  // A batch does not fit either.
  SlotRequest two[2] = {ops::nop(), ops::nop()};
  MR_EXPECT_RESULT(rt->publish_batch(two, 2, &x, fail), Result::kRingFull);

  PublishOptions brief;
  brief.on_full = OnFull::kWait;
  brief.timeout = milliseconds(20);
  auto t0 = Clock::now();
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, brief), Result::kTimeout);
  EXPECT_GE(ms_since(t0), 19u) << "kWait must wait for its timeout";

  // All four complete. Their unread kept results do not hold the ring: a
  // producer that needs the positions parks them in host memory.
  for (const Ticket& t : kept) MR_ASSERT_OK(rt->wait_done(t, scaled(seconds(10))));
  EXPECT_EQ(rt->done_count(), kept[3].value + 1);
  EXPECT_GE(rt->stats().ring_full_events, full_before + 3);
  EXPECT_EQ(rt->stats().parked_results, 0u) << "nothing is parked without ring pressure";
  Ticket n[4];
  for (uint32_t i = 0; i < 4; ++i) MR_ASSERT_OK(rt->publish(ops::nop(10 + i), &n[i], fail));
  EXPECT_EQ(n[0].value, kept[3].value + 1);
  EXPECT_EQ(rt->stats().parked_results, 4u);

  // Parked results read back once, with their values.
  Completion c;
  MR_ASSERT_OK(rt->wait(kept[0], &c, scaled(seconds(5))));
  EXPECT_EQ(c.ticket, kept[0].value);
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, delay);
  MR_EXPECT_RESULT(rt->wait(kept[0], &c, milliseconds(1)), Result::kInvalidArgument)
      << "a parked result is read once";

  // release() drops a kept result, parked or not.
  MR_ASSERT_OK(rt->release(kept[1]));
  MR_EXPECT_RESULT(rt->release(kept[1]), Result::kInvalidArgument) << "double release";
  MR_EXPECT_RESULT(rt->wait(kept[1], &c, milliseconds(1)), Result::kInvalidArgument)
      << "a released ticket cannot be read";
  MR_ASSERT_OK(rt->wait(kept[2], &c, scaled(seconds(5))));
  MR_ASSERT_OK(rt->wait(kept[3], &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, delay);
  EXPECT_EQ(rt->stats().parked_results, 0u);
  for (const Ticket& t : n) MR_ASSERT_OK(rt->wait_done(t, scaled(seconds(10))));

  // Now a full-ring batch fits (the two NOPs complete on their own).
  SlotRequest four[4] = {ops::nop(1), ops::nop(2), ops::nop(3), ops::nop(4)};
  Ticket b;
  MR_ASSERT_OK(rt->publish_batch(four, 4, &b, kept_options(scaled(seconds(10)))));
  for (uint32_t i = 0; i < 4; ++i) {
    MR_ASSERT_OK(rt->wait(Ticket{b.value + i, true}, &c, scaled(seconds(10))));
    EXPECT_EQ(c.result, i + 1u);
  }
  // Batches larger than the ring are refused outright.
  SlotRequest five[5] = {ops::nop(), ops::nop(), ops::nop(), ops::nop(), ops::nop()};
  MR_EXPECT_RESULT(rt->publish_batch(five, 5, &b, fail), Result::kInvalidArgument);
  ASSERT_NO_FATAL_FAILURE(quiesce(*rt));
  expect_conserved(rt->stats());
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// A thread that keeps a ticket and then publishes more than a ring's worth
// must not wait on itself: the unread result is parked, not a ring hostage.
TEST_P(RingBackPressureTest, UnreadKeptTicketDoesNotBlockItsOwnProducer) {
  Config cfg = base_config();
  cfg.ring_capacity = 8;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  Ticket kept;
  MR_ASSERT_OK(rt->publish(ops::nop(4242), &kept, kept_options()));
  Ticket last;
  for (int i = 0; i < 64; ++i)
    MR_ASSERT_OK(rt->publish(ops::nop(i), &last, plain_options(scaled(seconds(5)))))
        << "publish " << i << " stalled behind the unread kept ticket";
  MR_ASSERT_OK(rt->wait_done(last, scaled(seconds(10))));
  Completion c;
  MR_ASSERT_OK(rt->wait(kept, &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, 4242u);
  EXPECT_EQ(c.ticket, kept.value);
  ASSERT_NO_FATAL_FAILURE(quiesce(*rt));
  expect_conserved(rt->stats());
  EXPECT_EQ(rt->stats().parked_results, 0u);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

TEST_P(RingBackPressureTest, RingOfOneWorks) {
  Config cfg = base_config();
  cfg.ring_capacity = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  for (uint64_t i = 0; i < 200; ++i) {
    Completion c;
    ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(i * 3), &c));
    ASSERT_EQ(c.result, i * 3);
  }
  Ticket k, x;
  // The one position is busy while its slot runs (a completed but unread kept
  // result would be parked instead, so use a slot that takes a while).
  const uint64_t delay = 50'000'000;  // 50 ms
  MR_ASSERT_OK(rt->publish(ops::delay_ns(delay), &k, kept_options()));
  PublishOptions fail;
  fail.on_full = OnFull::kFail;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, fail), Result::kRingFull);
  Completion c;
  MR_ASSERT_OK(rt->wait(k, &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, delay);
  for (int i = 0; i < 100; ++i) MR_ASSERT_OK(rt->publish(ops::nop(), &x, plain_options()));
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 301u);
  EXPECT_EQ(s.completed_ok, 301u);
  expect_conserved(s);
}

// OnFull::kFail reports a full ring only when it is full: publishers that
// all find every position completed but not yet reaped race to reap, and the
// ones that lose the race must see what the winner freed. (They used to
// return kRingFull after a blocking reap found nothing left to reap, and a
// stale tail_ read before reaped_ made a free ring look full.)
TEST_P(RingBackPressureTest, FailFastPublishersRacingToReapNeverSeeAFullRing) {
  Config cfg = base_config();
  cfg.ring_capacity = 16;
  cfg.workers = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  constexpr int kThreads = 3;  // fewer than the positions a reap frees
  const uint64_t rounds = env_u64("MEGARING_TEST_FAILFAST_ROUNDS", 300);
  uint64_t false_full = 0;
  for (uint64_t round = 0; round < rounds && false_full == 0; ++round) {
    // Every position completed, none reaped.
    (void)rt->stats();  // reaps what an earlier round left
    Ticket last;
    for (uint32_t i = 0; i < cfg.ring_capacity; ++i)
      MR_ASSERT_OK(rt->publish(ops::nop(i), &last, plain_options()));
    MR_ASSERT_OK(rt->wait_done(last, scaled(seconds(10))));
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<uint64_t> full{0};
    std::vector<Ticket> got(kThreads);
    std::vector<Status> status(kThreads);
    std::vector<std::thread> threads;
    for (int p = 0; p < kThreads; ++p) {
      threads.emplace_back([&, p] {
        ready.fetch_add(1);
        while (!go.load()) {
        }
        PublishOptions fail;
        fail.on_full = OnFull::kFail;
        status[p] = rt->publish(ops::nop(), &got[p], fail);
        if (status[p].code() == Result::kRingFull) full.fetch_add(1);
      });
    }
    while (ready.load() < kThreads) std::this_thread::yield();
    go.store(true);
    for (auto& t : threads) t.join();
    false_full += full.load();
    for (int p = 0; p < kThreads; ++p) {
      if (status[p].code() == Result::kRingFull) continue;
      MR_ASSERT_OK(status[p]);
      MR_ASSERT_OK(rt->wait_done(got[p], scaled(seconds(10))));
    }
  }
  EXPECT_EQ(false_full, 0u) << "kRingFull with every position reapable";
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  expect_conserved(rt->stats());
}

MEGARING_INSTANTIATE_BACKENDS(RingBackPressureTest);

// ===========================================================================
// wait() / wait_done() / release() argument checking
// ===========================================================================
class RingWaitTest : public BackendTest {};

TEST_P(RingWaitTest, InvalidWaits) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  c.result = 0xBAD;
  // Not kept.
  Ticket plain;
  MR_ASSERT_OK(rt->publish(ops::nop(1), &plain, plain_options()));
  EXPECT_FALSE(plain.kept);
  MR_EXPECT_RESULT(rt->wait(plain, &c, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait(Ticket{plain.value, true}, &c, milliseconds(100)),
                   Result::kInvalidArgument)
      << "claiming kept for a non-kept ticket";
  MR_EXPECT_RESULT(rt->release(plain), Result::kInvalidArgument);
  MR_EXPECT_OK(rt->wait_done(plain, scaled(seconds(5))));
  EXPECT_EQ(c.result, 0xBADu) << "a failed wait must not write the completion";

  // Kept: exactly one successful wait.
  Ticket k;
  MR_ASSERT_OK(rt->publish(ops::nop(2), &k, kept_options()));
  EXPECT_TRUE(k.kept);
  MR_EXPECT_RESULT(rt->wait(k, nullptr, milliseconds(100)), Result::kInvalidArgument);
  MR_ASSERT_OK(rt->wait(k, &c, scaled(seconds(5))));
  EXPECT_EQ(c.result, 2u);
  c.result = 0xBAD;
  MR_EXPECT_RESULT(rt->wait(k, &c, milliseconds(100)), Result::kInvalidArgument);
  EXPECT_EQ(c.result, 0xBADu);
  MR_EXPECT_RESULT(rt->release(k), Result::kInvalidArgument) << "release after wait";
  MR_EXPECT_OK(rt->wait_done(k, scaled(seconds(5)))) << "wait_done works on any completed ticket";

  // Never published.
  const uint64_t next = k.value + 1;
  MR_EXPECT_RESULT(rt->wait(Ticket{next, true}, &c, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait(Ticket{next + 1000, true}, &c, milliseconds(100)),
                   Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait(Ticket{~0ull, true}, &c, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait_done(Ticket{next, false}, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->wait_done(Ticket{~0ull, true}, milliseconds(100)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->release(Ticket{next, true}), Result::kInvalidArgument);

  // Malformed publishes.
  Ticket t;
  SlotRequest r = ops::nop();
  MR_EXPECT_RESULT(rt->publish_batch(&r, 0, &t), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->publish_batch(nullptr, 1, &t), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt->publish(r, nullptr), Result::kInvalidArgument);
  EXPECT_EQ(rt->stats().published, 2u) << "refused publishes must not consume tickets";
}

// A wait that reaches its deadline asks after the consumer before it reports
// the timeout: a caller that retries short waits would otherwise never hear
// that it died (a waiter checks health on its own only once it sleeps).
TEST_P(RingWaitTest, ATimedOutWaitChecksTheConsumerFirst) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Ticket slow;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(200'000'000), &slow, kept_options()));
  const uint64_t before = RuntimeInternals::health_checks(*rt);
  Completion c;
  MR_EXPECT_RESULT(rt->wait(slow, &c, Nanoseconds(0)), Result::kTimeout);
  EXPECT_EQ(RuntimeInternals::health_checks(*rt), before + 1);
  MR_EXPECT_RESULT(rt->wait_done(slow, Nanoseconds(0)), Result::kTimeout);
  EXPECT_EQ(RuntimeInternals::health_checks(*rt), before + 2);
  MR_ASSERT_OK(rt->wait(slow, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
}

TEST_P(RingWaitTest, TimeoutOnSlowSlotThenSuccess) {
  Config cfg = base_config();
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  const uint64_t delay = 300'000'000;  // 300 ms
  Ticket slow, after;
  const auto t0 = Clock::now();
  MR_ASSERT_OK(rt->publish(ops::delay_ns(delay), &slow, kept_options()));
  MR_ASSERT_OK(rt->publish(ops::nop(4), &after, plain_options()));
  Completion c;
  c.result = 0xBAD;
  MR_EXPECT_RESULT(rt->wait(slow, &c, milliseconds(10)), Result::kTimeout);
  EXPECT_EQ(c.result, 0xBADu);
  MR_EXPECT_RESULT(rt->wait_done(slow, milliseconds(10)), Result::kTimeout);
  // The timed-out wait did not consume the kept ticket.
  MR_ASSERT_OK(rt->wait(slow, &c, scaled(seconds(10))));
  EXPECT_GE(ms_since(t0), 295u) << "DELAY_NS returned early";
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, delay);
  // wait_done waits for DONE_COUNT, which may trail the completion wait()
  // saw by a moment (another unit advances it): not a zero timeout.
  MR_EXPECT_OK(rt->wait_done(slow, scaled(seconds(1))));
  MR_EXPECT_OK(rt->wait_done(after, scaled(seconds(5))));
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// DONE_COUNT waits for the slowest earlier slot, but wait() on a kept ticket
// must not: the completer writes a finished kept ticket's record early when
// an earlier one holds DONE_COUNT back (consumer_core.cuh,
// publish_beyond_gap). Checked by state, not time: when each wait()
// returns, the earlier 1 s slot has still not completed (three calls of a
// few milliseconds each fit in that second).
TEST_P(RingWaitTest, AKeptResultIsNotHeldBackByASlowEarlierSlot) {
  Config cfg = base_config();
  cfg.workers = 2;  // the slow slot holds one executor; the other runs the NOP
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  Ticket slow;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &slow, plain_options()));
  for (int i = 0; i < 3; ++i) {  // and after an early record, a later one
    Completion c;
    MR_ASSERT_OK(rt->call(ops::nop(40 + i), &c, milliseconds(300)));
    EXPECT_EQ(c.status, MR_STATUS_OK);
    EXPECT_EQ(c.result, 40u + i);
    EXPECT_LE(rt->done_count(), slow.value) << "the slow slot completed first: nothing was checked";
  }
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.protocol_errors, 0u);
  MR_EXPECT_OK(rt->abort());  // ends the slow slot (ABORTED) instead of waiting it out
}

TEST_P(RingWaitTest, ConcurrentWaitsOnOneTicketSucceedOnce) {
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  for (int round = 0; round < 20; ++round) {
    Ticket k;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(200'000), &k, kept_options()));
    std::atomic<int> ok{0}, invalid{0}, other{0};
    std::vector<std::thread> waiters;
    for (int w = 0; w < 3; ++w) {
      waiters.emplace_back([&] {
        Completion c;
        const Status st = rt->wait(k, &c, scaled(seconds(10)));
        if (st.is_ok() && c.result == 200'000u)
          ++ok;
        else if (st.code() == Result::kInvalidArgument)
          ++invalid;
        else
          ++other;
      });
    }
    for (auto& w : waiters) w.join();
    EXPECT_EQ(ok.load(), 1) << "round " << round;
    EXPECT_EQ(invalid.load(), 2) << "round " << round;
    EXPECT_EQ(other.load(), 0) << "round " << round;
  }
}

// A reaper that claims an unread kept result for the parked map and then
// fails to store it there (std::bad_alloc) puts it back in place. A wait()
// or release() that saw it being parked must find it in place again, not
// call it "not pending" and leave it behind. A test hook throws in place of
// the allocation, while the wait (or release) is watching.
TEST_P(RingWaitTest, AReaperThatCannotParkAResultLeavesItToItsWaiter) {
  for (const bool release_it : {false, true}) {
    SCOPED_TRACE(release_it ? "release()" : "wait()");
    Config cfg = base_config();
    cfg.ring_capacity = 4;
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
    Ticket kept;
    MR_ASSERT_OK(rt->publish(ops::nop(4242), &kept, kept_options()));
    MR_ASSERT_OK(rt->wait_done(kept, scaled(seconds(10))));  // completed, unread

    struct Scene {
      Runtime* rt;
      Ticket kept;
      bool release_it;
      int parks = 0;  // hook calls for the kept ticket (under the reap lock)
      std::thread taker;
      Status taken;
      Completion completion;
    } scene{rt.get(), kept, release_it};
    RuntimeInternals::set_park_hook(
        *rt,
        [](void* arg, uint64_t ticket) {
          auto* s = static_cast<Scene*>(arg);
          if (ticket != s->kept.value || s->parks++ > 0) return;  // fail the first try only
          s->taker = std::thread([s] {
            s->taken = s->release_it ? s->rt->release(s->kept)
                                     : s->rt->wait(s->kept, &s->completion, scaled(seconds(10)));
          });
          // Fail only once the taker is waiting on the claimed result.
          const auto deadline = Clock::now() + scaled(seconds(10));
          while (RuntimeInternals::parking_waits(*s->rt) == 0 && Clock::now() < deadline)
            std::this_thread::yield();
          throw std::bad_alloc();
        },
        &scene);
    // Three more slots fit; the fourth needs the kept ticket's position, so
    // its producer reaps and tries to park the unread result.
    Ticket t;
    for (int i = 0; i < 3; ++i) MR_ASSERT_OK(rt->publish(ops::nop(i), &t, plain_options()));
    const Status full = rt->publish(ops::nop(3), &t, plain_options());
    if (scene.taker.joinable()) scene.taker.join();
    ASSERT_EQ(scene.parks, 1);
    ASSERT_EQ(RuntimeInternals::parking_waits(*rt), 1u) << "the taker never met the claim";
    RuntimeInternals::set_park_hook(*rt, nullptr, nullptr);
    EXPECT_EQ(full.code(), Result::kOutOfMemory) << full.to_string();
    MR_EXPECT_OK(scene.taken) << "the result was back in place";
    if (!release_it) {
      EXPECT_EQ(scene.completion.ticket, kept.value);
      EXPECT_EQ(scene.completion.result, 4242u);
    }
    // Nothing left behind: the ring runs on, no result stays parked.
    for (int i = 0; i < 8; ++i) MR_ASSERT_OK(rt->publish(ops::nop(i), &t, plain_options()));
    MR_ASSERT_OK(rt->wait_done(t, scaled(seconds(10))));
    ASSERT_NO_FATAL_FAILURE(quiesce(*rt));
    expect_conserved(rt->stats());
    EXPECT_EQ(rt->stats().parked_results, 0u);
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

MEGARING_INSTANTIATE_BACKENDS(RingWaitTest);

// ===========================================================================
// Lifecycle: shutdown, abort, destruction
// ===========================================================================
class RingLifecycleTest : public BackendTest {};

// A drain that finishes within (or exactly at) a tiny timeout is a clean
// shutdown, not a wedged consumer: the units still get time to exit.
TEST_P(RingLifecycleTest, ShutdownWithTinyTimeoutOnIdleRingIsClean) {
  for (Nanoseconds timeout : {Nanoseconds(0), Nanoseconds(100'000)}) {
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
    Completion c;
    call_ok(*rt, ops::nop(1), &c);
    // Idle for real: DONE_COUNT has passed the last slot (it may trail the
    // completion that wait() saw by a moment).
    MR_ASSERT_OK(rt->wait_done(Ticket{c.ticket, false}, scaled(seconds(5))));
    MR_EXPECT_OK(rt->shutdown(timeout)) << "timeout " << timeout.count() << " ns";
    MR_EXPECT_OK(rt->abort()) << "abort after a clean shutdown is a no-op";
    rt.reset();
    // The device (or backend) is free again for a new runtime.
    ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

// A kernel of the user's, never launched before, launched on its own stream
// while the persistent kernel runs. The fixture's device check initialises
// CUDA before Runtime::create could ask for eager loading, so this runs in
// the process's own module-loading mode (lazy unless CUDA_MODULE_LOADING
// says otherwise; lazy is also PyTorch's choice). Were loading a kernel next
// to a resident one to need a context synchronisation, the launch would
// never return: the test reports that instead of hanging on it, and the
// README's advice on module loading rests on its answer.
// The process's module loading mode as the driver latched it at
// initialisation (CUDA_MODULE_LOADING may have been set since).
std::string module_loading_mode() {
  using GetMode = CUresult (*)(CUmoduleLoadingMode*);
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion("cuModuleGetLoadingMode", &fn, 12000, cudaEnableDefault,
                                       &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess) {
    (void)cudaGetLastError();
    return "unknown (no cuModuleGetLoadingMode)";
  }
  CUmoduleLoadingMode mode{};
  if (reinterpret_cast<GetMode>(fn)(&mode) != CUDA_SUCCESS) return "unknown";
  return mode == CU_MODULE_LAZY_LOADING ? "lazy" : mode == CU_MODULE_EAGER_LOADING ? "eager" : "?";
}

// A launch of a user kernel on another thread, beside the running consumer:
// allocate, launch, copy the value back, free. Detached, owning its state,
// so that a launch that blocks cannot hang the test.
class LaunchBeside {
 public:
  using Launch = cudaError_t (*)(int*, int, cudaStream_t);
  explicit LaunchBeside(Launch launch) : probe_(std::make_shared<Probe>()) {
    std::thread([probe = probe_, launch] {
      cudaStream_t stream = nullptr;
      int* device_value = nullptr;
      int value = 0;
      cudaError_t err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      if (err == cudaSuccess)
        err = cudaMallocAsync(reinterpret_cast<void**>(&device_value), sizeof(int), stream);
      if (err == cudaSuccess) err = launch(device_value, 42, stream);
      if (err == cudaSuccess)
        err = cudaMemcpyAsync(&value, device_value, sizeof(int), cudaMemcpyDeviceToHost, stream);
      if (err == cudaSuccess) err = cudaFreeAsync(device_value, stream);
      if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
      if (stream != nullptr) (void)cudaStreamDestroy(stream);
      probe->err = err;
      probe->value = value;
      probe->done.store(true, std::memory_order_release);  // RELEASE: err and value
    }).detach();
  }
  // True once the launch's thread finished, within `limit`.
  bool wait(std::chrono::nanoseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!probe_->done.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(1));
    return probe_->done.load(std::memory_order_acquire);  // ACQUIRE: err and value
  }
  // Once wait() returned true.
  void expect_stored_42() const {
    EXPECT_EQ(probe_->err, cudaSuccess) << cudaGetErrorString(probe_->err);
    EXPECT_EQ(probe_->value, 42);
  }

 private:
  struct Probe {
    std::atomic<bool> done{false};
    cudaError_t err = cudaSuccess;  // written before done's release
    int value = 0;
  };
  std::shared_ptr<Probe> probe_;
};

// What the README tells users to do: load every kernel that may run beside
// the consumer before Runtime::create (or run with CUDA_MODULE_LOADING=EAGER).
TEST_P(RingLifecycleTest, AUserKernelLoadedBeforeTheConsumerStartsRunsBesideIt) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "a CUDA launch beside the persistent kernel";
  ASSERT_EQ(preload_store_value(), cudaSuccess);
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(1), &c));
  LaunchBeside launch(launch_store_value_preloaded);
  if (!launch.wait(seconds(10))) {
    MR_EXPECT_OK(rt->abort());
    FAIL() << "a preloaded user kernel did not complete beside the consumer in 10 s (module "
           << "loading: " << module_loading_mode() << "); after abort it "
           << (launch.wait(seconds(10)) ? "completed" : "still had not");
  }
  launch.expect_stored_42();
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(2), &c));  // the consumer still serves
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// A kernel first launched while the consumer runs. Under lazy loading its
// launch loads it, and the load may wait for the device to go idle, which a
// persistent kernel never does unasked (CUDA programming guide, lazy loading:
// "concurrent execution"); the first H100 run saw it wait until the consumer
// stopped. What the README promises either way: nothing fails, and the
// launch completes once the consumer stops; eager loading never waits.
TEST_P(RingLifecycleTest, ALazilyLoadedUserKernelRunsAtTheLatestOnceTheConsumerStops) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "a CUDA launch beside the persistent kernel";
  static bool launched_before = false;  // a second run in one process finds it loaded
  if (launched_before) GTEST_SKIP() << "the lazy kernel was loaded by an earlier run";
  launched_before = true;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(1), &c));
  const std::string mode = module_loading_mode();
  LaunchBeside launch(launch_store_value_lazily);
  const bool beside = launch.wait(mode == "eager" ? seconds(10) : seconds(3));
  std::printf("module loading: %s; the first launch %s\n", mode.c_str(),
              beside ? "completed beside the consumer" : "waited for the consumer to stop");
  if (mode == "eager") EXPECT_TRUE(beside) << "an eagerly loaded kernel waited";
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(2), &c));  // the consumer still serves
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  ASSERT_TRUE(launch.wait(seconds(10))) << "the launch did not complete after shutdown";
  launch.expect_stored_42();
}

// Another thread's stream capture in the global mode (torch.cuda.graph's
// default) is in progress while the runtime waits, checks its consumer's
// health and allocates, copies and frees a buffer. In that mode CUDA refuses
// "potentially unsafe" calls such as cudaStreamQuery from every other thread
// and invalidates the capture: megaring's calls must do neither, and a
// refusal must never be taken for a dead consumer.
TEST_P(RingLifecycleTest, AGlobalStreamCaptureElsewhereNeitherFailsNorIsBroken) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "CUDA stream capture";
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  cudaStream_t stream = nullptr;
  int* device_word = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaMallocAsync(reinterpret_cast<void**>(&device_word), sizeof(int), stream),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);

  std::atomic<int> phase{0};  // 1: capturing; 2: end the capture
  cudaError_t begin_err = cudaErrorUnknown, end_err = cudaErrorUnknown;
  cudaGraph_t graph = nullptr;
  std::thread capturer([&] {
    begin_err = cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal);
    // A memset node: capturing it loads no kernel.
    if (begin_err == cudaSuccess) (void)cudaMemsetAsync(device_word, 0, sizeof(int), stream);
    phase.store(1, std::memory_order_release);  // RELEASE: begin_err
    while (phase.load(std::memory_order_acquire) != 2)
      std::this_thread::sleep_for(milliseconds(1));
    if (begin_err == cudaSuccess) end_err = cudaStreamEndCapture(stream, &graph);
  });
  while (phase.load(std::memory_order_acquire) != 1) std::this_thread::sleep_for(milliseconds(1));

  // A wait that times out (its health check is certain), one that does not
  // (more checks once it sleeps), then a buffer's life.
  Ticket slow;
  PublishOptions keep;
  keep.keep_result = true;
  Completion c;
  const uint64_t checks_before = RuntimeInternals::health_checks(*rt);
  Status wait_st = rt->publish(ops::delay_ns(50'000'000), &slow, keep);
  Status timeout_st = rt->wait(slow, &c, milliseconds(1));
  const uint64_t checks_after_timeout = RuntimeInternals::health_checks(*rt);
  if (wait_st) wait_st = rt->wait(slow, &c, scaled(seconds(10)));
  BufferHandle buffer = 0;
  const uint64_t written = 0x1234;
  uint64_t read_back = 0;
  Status buffer_st = rt->alloc_buffer(64, &buffer);
  if (buffer_st) buffer_st = rt->write_buffer(buffer, 0, &written, sizeof(written));
  if (buffer_st) buffer_st = rt->read_buffer(buffer, 0, &read_back, sizeof(read_back));
  if (buffer_st) buffer_st = rt->free_buffer(buffer);
  phase.store(2, std::memory_order_release);
  capturer.join();

  MR_EXPECT_RESULT(timeout_st, Result::kTimeout);
  EXPECT_GT(checks_after_timeout, checks_before) << "no health check during the capture";
  MR_EXPECT_OK(wait_st);
  EXPECT_TRUE(c.ok());
  MR_EXPECT_OK(buffer_st);
  EXPECT_EQ(read_back, written);
  EXPECT_EQ(begin_err, cudaSuccess) << cudaGetErrorString(begin_err);
  EXPECT_EQ(end_err, cudaSuccess) << "the capture was invalidated: " << cudaGetErrorString(end_err);
  EXPECT_NE(graph, nullptr);
  if (graph != nullptr) EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(device_word, stream), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// The runtime's health checks query the kernel's stream, and the CUDA
// runtime records the cudaErrorNotReady they get as the thread's last error.
// Neither that nor any other stale error of the calling thread may make a
// later launch look failed (the kernel would run on memory freed under it),
// and megaring must not leave its own NotReady behind for the caller.
TEST_P(RingLifecycleTest, StaleErrorsOfTheCallingThreadNeitherFailNorLeak) {
  for (int round = 0; round < 2; ++round) {
    if (backend() == Backend::kCuda) {
      int count = 0;
      ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
      // A non-sticky error left unread in this thread.
      ASSERT_NE(cudaSetDevice(count), cudaSuccess);
    }
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
    Completion c;
    call_ok(*rt, ops::nop(7), &c);
    EXPECT_EQ(c.result, 7u);
    // A wait that times out: it checks health at least once, before it
    // reports the timeout (and more often while it sleeps).
    Ticket slow;
    PublishOptions keep;
    keep.keep_result = true;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(200'000'000), &slow, keep));
    const uint64_t checks_before = RuntimeInternals::health_checks(*rt);
    MR_EXPECT_RESULT(rt->wait(slow, &c, milliseconds(30)), Result::kTimeout);
    EXPECT_GT(RuntimeInternals::health_checks(*rt), checks_before);
    if (backend() == Backend::kCuda)
      EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "megaring left an error in the caller's thread";
    MR_ASSERT_OK(rt->wait(slow, &c, scaled(seconds(10))));
    EXPECT_TRUE(c.ok());
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
}

// Unit 0 beats between slots too: a backlog that never leaves it an empty
// slot to poll does not freeze the heartbeat of a healthy consumer.
TEST_P(RingLifecycleTest, HeartbeatAdvancesThroughABacklog) {
  Config cfg = base_config();
  cfg.workers = 1;
  cfg.ring_capacity = 512;
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
// 64 a warp (consumer_core.cuh, "The fetch crew"), and under a backlog every
// round is full.
TEST_P(RingLifecycleTest, AFetchRoundCopiesAtMostItsCrewsBodies) {
  constexpr uint32_t kBacklog = 1000;
  for (const uint32_t warps : {1u, 4u}) {
    SCOPED_TRACE("fetch_warps " + std::to_string(warps));
    Config cfg = base_config();
    cfg.workers = 1;
    cfg.ring_capacity = 2048;
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

// The fetcher's and completer's counters (consumer_core.cuh): every
// published ticket is staged exactly once, a backlog in rounds of many
// tickets (one round trip each on a GPU), and the completer writes no record
// for a ticket that completed OK and was not kept, but one for a kept one.
// One executor works through 400 NOPs queued behind a 100 ms slot.
TEST_P(RingLifecycleTest, FetcherStagesEveryTicketOnceAndABacklogInRounds) {
  Config cfg = base_config();
  cfg.workers = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
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
  EXPECT_LE(after.flushes * 8, kBacklog + 1)
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

// The fetcher's adaptive window (consumer_core.cuh, next_fetch_window): it
// widens (x8) while every header it read was READY, up to the crew's cap;
// after a partial find it stays; after none it is the one-header idle poll.
// So a lone call reads eight header lines after its own, not hundreds
// (about 70 ns a line each on the H200 of 2026-12-04), and a batch is
// fetched within three rounds of an idle poll.
TEST(FetchWindow, WidensWhileFullKeepsItsReachAndIdlesAtOne) {
  using megaring::detail::next_fetch_window;
  constexpr uint32_t kCap = 512;  // a crew of four
  EXPECT_EQ(next_fetch_window(1, 1, kCap), 8u);
  EXPECT_EQ(next_fetch_window(8, 0, kCap), 1u) << "a lone call: back to the idle poll";
  EXPECT_EQ(next_fetch_window(1, 0, kCap), 1u);
  EXPECT_EQ(next_fetch_window(8, 8, kCap), 64u);
  EXPECT_EQ(next_fetch_window(64, 64, kCap), kCap);
  EXPECT_EQ(next_fetch_window(64, 64, 128), 128u) << "a crew of one reads 128 at most";
  EXPECT_EQ(next_fetch_window(kCap, kCap, kCap), kCap);
  EXPECT_EQ(next_fetch_window(kCap, 100, kCap), kCap) << "a stream keeps its reach";
  EXPECT_EQ(next_fetch_window(8, 1, kCap), 8u);
  EXPECT_EQ(next_fetch_window(kCap, 0, kCap), 1u);
  uint32_t w = 1, rounds = 0;
  while (w < kCap) w = next_fetch_window(w, w, kCap), ++rounds;
  EXPECT_EQ(rounds, 3u);
}

// The fetch crew (consumer_core.cuh): a crew of W warps copies at most 64 W
// bodies a round and reads at most 128 W headers (what its threads hold in
// registers), and its busiest warp, warp 0, issues a 1/W share of the
// round's loads plus the control words.
TEST(FetchCrew, ShareARoundsLoadsAndCapItsBodies) {
  using megaring::detail::fetch_body_cap;
  using megaring::detail::fetch_warp_loads;
  using megaring::detail::fetch_window_cap;
  EXPECT_EQ(fetch_body_cap(1), 64u) << "a lane holds 8 body pieces, a slot is 4";
  EXPECT_EQ(fetch_body_cap(4), 256u);
  EXPECT_EQ(fetch_body_cap(megaring::kMaxFetchWarps), 448u);
  for (uint32_t w = 1; w <= megaring::kMaxFetchWarps; ++w)
    EXPECT_EQ(fetch_window_cap(w), 2 * fetch_body_cap(w)) << "two rounds' worth of headers";
  EXPECT_EQ(fetch_warp_loads(64, 0, 1), 8u + 1u);
  EXPECT_EQ(fetch_warp_loads(256, 0, 4), 8u + 1u) << "1024 pieces over 128 threads";
  EXPECT_EQ(fetch_warp_loads(128, 0, 4), 4u + 1u);
  EXPECT_EQ(fetch_warp_loads(128, 0, 7), 3u + 1u);
  EXPECT_EQ(fetch_warp_loads(0, 128, 1), 4u + 1u) << "4 groups of 32 headers, one warp";
  EXPECT_EQ(fetch_warp_loads(0, 512, 4), 4u + 1u);
  EXPECT_EQ(fetch_warp_loads(0, 1, 4), 1u + 1u) << "the idle poll: one header, then the control words";
  EXPECT_EQ(fetch_warp_loads(100, 8, 4), 4u + 1u + 1u);
  EXPECT_EQ(fetch_warp_loads(100, 8, 4, /*check_stop=*/true), 4u + 1u + 2u) << "stop_at, every 8th round";
}

// A waiter checks consumer health (a driver call on the GPU) only once it
// has stopped spinning and yielding, then on every 8th sleep.
TEST(HostWaiter, ChecksConsumerHealthOnlyOnceItSleeps) {
  megaring::detail::HostWaiter waiter(/*max_sleep_us=*/1);
  uint32_t checks = 0, first_check = 0;
  for (uint32_t i = 1; i <= 600; ++i) {
    waiter.pause();
    if (waiter.due_for_health_check()) {
      ++checks;
      if (first_check == 0) first_check = i;
    }
  }
  EXPECT_EQ(first_check, 512u);
  EXPECT_EQ(checks, 12u);  // 512, 520, ..., 600
  waiter.reset();
  waiter.pause();
  EXPECT_FALSE(waiter.due_for_health_check());
}

TEST_P(RingLifecycleTest, ShutdownDrainsBacklog) {
  Config cfg = base_config();
  cfg.ring_capacity = 4096;  // the whole backlog fits (kept results stay unread)
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
  struct Entry {
    Ticket t;
    uint64_t expected;  // result, for kept tickets
  };
  std::vector<Entry> entries;
  uint64_t adds = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    Ticket t;
    switch (i % 4) {
      case 0:
        MR_ASSERT_OK(rt->publish(ops::nop(i), &t, kept_options()));
        entries.push_back({t, i});
        break;
      case 1:
        MR_ASSERT_OK(rt->publish(ops::delay_ns(100'000), &t, plain_options()));
        entries.push_back({t, 0});
        break;
      case 2:
        MR_ASSERT_OK(rt->publish(ops::atomic_add(ctr, 0, 1), &t, plain_options()));
        ++adds;
        entries.push_back({t, 0});
        break;
      default:
        MR_ASSERT_OK(rt->publish(ops::delay_ns(1'000 + i), &t, kept_options()));
        entries.push_back({t, 1'000 + i});
        break;
    }
  }
  MR_ASSERT_OK(rt->shutdown(scaled(seconds(60))));
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket + 2000) << "shutdown returned before draining";

  Ticket x;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, plain_options()), Result::kShutdown);
  SlotRequest r = ops::nop();
  MR_EXPECT_RESULT(rt->publish_batch(&r, 1, &x, plain_options()), Result::kShutdown);
  BufferHandle h;
  MR_EXPECT_RESULT(rt->alloc_buffer(8, &h), Result::kShutdown);
  Completion c;
  MR_EXPECT_RESULT(rt->call(ops::nop(), &c, milliseconds(100)), Result::kShutdown);

  for (const Entry& e : entries) {
    if (e.t.kept) {
      MR_ASSERT_OK(rt->wait(e.t, &c, scaled(seconds(1))));
      EXPECT_EQ(c.status, MR_STATUS_OK) << "ticket " << e.t.value;
      EXPECT_EQ(c.result, e.expected) << "ticket " << e.t.value;
    } else {
      MR_EXPECT_OK(rt->wait_done(e.t, scaled(seconds(1))));
    }
  }
  uint64_t v = 0;
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v, 8));
  EXPECT_EQ(v, adds);
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 2000u);
  EXPECT_EQ(s.completed_ok, 2000u);
  EXPECT_EQ(s.faulted, 0u);
  EXPECT_EQ(s.aborted, 0u);
  expect_conserved(s);
  // Idempotent.
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(1))));
  MR_EXPECT_OK(rt->abort());
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, plain_options()), Result::kShutdown);
}

TEST_P(RingLifecycleTest, ShutdownTimeoutAbortsTheRest) {
  Config cfg = base_config();
  cfg.workers = 2;  // 100 x 50 ms cannot drain in 50 ms on two units
  cfg.ring_capacity = 128;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  std::vector<Ticket> tickets;
  for (int i = 0; i < 100; ++i) {
    Ticket t;
    MR_ASSERT_OK(rt->publish(ops::delay_ns(50'000'000), &t,
                             i % 2 == 0 ? kept_options() : plain_options()));
    tickets.push_back(t);
  }
  const auto t0 = Clock::now();
  MR_EXPECT_RESULT(rt->shutdown(milliseconds(50)), Result::kTimeout);
  EXPECT_LT(ms_since(t0), static_cast<uint64_t>(
                              std::chrono::duration_cast<milliseconds>(scaled(seconds(5))).count()))
      << "a timed-out shutdown must stop promptly";

  uint64_t ok = 0, aborted = 0;
  for (const Ticket& t : tickets) {
    if (t.kept) {
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
      EXPECT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED)
          << "ticket " << t.value << " status " << c.status;
      if (c.status == MR_STATUS_OK) {
        EXPECT_EQ(c.result, 50'000'000u);
        ++ok;
      } else {
        EXPECT_EQ(c.result, 0u);
        ++aborted;
      }
    } else {
      const Status st = rt->wait_done(t, scaled(seconds(5)));
      EXPECT_TRUE(st.code() == Result::kSuccess || st.code() == Result::kAborted)
          << "ticket " << t.value << ": " << st.to_string();
    }
  }
  EXPECT_GT(aborted, 0u);
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 100u);
  EXPECT_EQ(s.faulted, 0u);
  EXPECT_GT(s.aborted, 40u) << "most of the 5 s backlog must have been aborted";
  expect_conserved(s);
  Ticket x;
  const Status st = rt->publish(ops::nop(), &x, plain_options());
  EXPECT_TRUE(st.code() == Result::kAborted || st.code() == Result::kShutdown) << st.to_string();
}

// wait_done() must agree with wait() and stats() about aborted tickets, both
// for a slot that abort() interrupted while it ran (a long DELAY_NS) and for
// one still queued: runtime.hpp documents that wait_done "Returns kAborted
// for a ticket that the runtime aborted". (Regression test: wait_done once
// answered OK for a slot the consumer had itself completed as ABORTED.)
TEST_P(RingLifecycleTest, WaitDoneAgreesWithWaitForAbortedTickets) {
  Config cfg = base_config();
  cfg.workers = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(1), &c));  // the consumer is live
  Ticket running, queued;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &running, kept_options()));
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &queued, kept_options()));
  std::this_thread::sleep_for(milliseconds(100));  // the single unit is inside the first delay
  const auto t0 = Clock::now();
  MR_ASSERT_OK(rt->abort());
  EXPECT_LT(ms_since(t0), 900u) << "abort must interrupt a running DELAY_NS";
  for (const Ticket& t : {running, queued}) {
    SCOPED_TRACE(t.value == running.value ? "slot running at abort" : "slot queued at abort");
    MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
    EXPECT_EQ(c.status, MR_STATUS_ABORTED) << "a 1 s delay cannot have completed";
    const Status st = rt->wait_done(t, scaled(seconds(5)));
    EXPECT_EQ(st.code(), Result::kAborted)
        << "wait() reads MR_STATUS_ABORTED but wait_done() says " << st.to_string();
  }
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.completed_ok, 1u);
  EXPECT_EQ(s.aborted, 2u);
  expect_conserved(s);
}

// runtime.hpp: "abort() -> ... the consumer stops after the slot it is
// running; every slot not completed reads ABORTED". Slots that were ready but
// not yet started when abort() was called must therefore read ABORTED, and
// their memory effects must not happen. (Regression test: the consumer once
// checked the abort flag only every 16 slots and kept running ready slots.)
TEST_P(RingLifecycleTest, AbortStopsAfterTheRunningSlot) {
  Config cfg = base_config();
  cfg.workers = 1;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
  Ticket running;
  MR_ASSERT_OK(rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &running, kept_options()));
  std::vector<Ticket> queued(8);
  for (auto& t : queued) MR_ASSERT_OK(rt->publish(ops::atomic_add(ctr, 0, 1), &t, kept_options()));
  std::this_thread::sleep_for(milliseconds(100));  // the only unit is inside the delay
  MR_ASSERT_OK(rt->abort());
  Completion c;
  MR_ASSERT_OK(rt->wait(running, &c, scaled(seconds(5))));
  EXPECT_EQ(c.status, MR_STATUS_ABORTED);
  uint64_t ran = 0;
  for (const Ticket& t : queued) {
    MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
    EXPECT_EQ(c.status, MR_STATUS_ABORTED)
        << "ticket " << t.value << " was queued behind the running slot when abort() was called, "
        << "yet it ran (result " << c.result << ")";
    if (c.status == MR_STATUS_OK) ++ran;
  }
  uint64_t v = 0;
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v, 8));
  EXPECT_EQ(v, ran) << "memory effects must match the OK completions";
  EXPECT_EQ(v, 0u) << "queued ATOMIC_ADDs executed after abort()";
}

TEST_P(RingLifecycleTest, AbortStopsBacklog) {
  Config cfg = base_config();
  cfg.workers = 2;
  cfg.ring_capacity = 1024;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::vector<Ticket>> tickets(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerThread; ++i) {
        Ticket t;
        const Status st = rt->publish(i % 2 ? ops::delay_ns(2'000'000) : ops::atomic_add(ctr, 0, 1),
                                      &t, kept_options());
        if (!st) {
          errors[p] = st.to_string();
          return;
        }
        tickets[p].push_back(t);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int p = 0; p < kThreads; ++p) ASSERT_TRUE(errors[p].empty()) << errors[p];
  std::this_thread::sleep_for(milliseconds(10));
  const auto t0 = Clock::now();
  MR_ASSERT_OK(rt->abort());
  EXPECT_LT(ms_since(t0), static_cast<uint64_t>(
                              std::chrono::duration_cast<milliseconds>(scaled(seconds(5))).count()));
  // Nothing runs once abort() has returned.
  uint64_t v1 = 0, v2 = 0;
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v1, 8));
  std::this_thread::sleep_for(milliseconds(20));
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, &v2, 8));
  EXPECT_EQ(v1, v2) << "an ATOMIC_ADD ran after abort() returned";

  uint64_t ok = 0, aborted = 0, adds_ok = 0;
  for (auto& v : tickets) {
    for (size_t i = 0; i < v.size(); ++i) {
      const Ticket& t = v[i];
      const bool is_delay = i % 2 == 1;
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
      ASSERT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED)
          << "ticket " << t.value << " status " << c.status;
      if (c.status == MR_STATUS_OK) {
        if (is_delay)
          EXPECT_EQ(c.result, 2'000'000u);
        else
          ++adds_ok;
        ++ok;
      } else {
        EXPECT_EQ(c.result, 0u);
        ++aborted;
      }
    }
  }
  EXPECT_GE(aborted, 1u);
  EXPECT_EQ(ok + aborted, uint64_t(kThreads) * kPerThread);
  EXPECT_EQ(v2, adds_ok) << "counter must equal the number of ATOMIC_ADDs that completed OK";
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, uint64_t(kThreads) * kPerThread);
  EXPECT_EQ(s.completed_ok, ok);
  EXPECT_EQ(s.aborted, aborted);
  EXPECT_EQ(s.faulted, 0u);
  expect_conserved(s);
  Ticket x;
  MR_EXPECT_RESULT(rt->publish(ops::nop(), &x, plain_options()), Result::kAborted);
  MR_EXPECT_RESULT(rt->shutdown(scaled(seconds(1))), Result::kSuccess)
      << "shutdown after abort: already stopped";
  MR_EXPECT_OK(rt->abort());
}

TEST_P(RingLifecycleTest, AbortRacingWithProducers) {
  Config cfg = base_config();
  cfg.workers = 2;
  cfg.ring_capacity = 256;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  constexpr int kThreads = 3;
  struct Producer {
    std::vector<Ticket> tickets;
    std::deque<Ticket> unread;  // kept, not yet waited by the producer
    std::vector<std::pair<Ticket, Completion>> read;
    std::string error;
    Result final_result = Result::kSuccess;
  };
  std::vector<Producer> prod(kThreads);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      Producer& me = prod[p];
      Rng rng(p + 17);
      ++started;
      for (uint64_t i = 0;; ++i) {
        const bool keep = rng.below(4) == 0;
        const uint32_t n = 1 + rng.below(8);
        SlotRequest reqs[8];
        for (uint32_t j = 0; j < n; ++j)
          reqs[j] = rng.below(2) ? ops::nop(i) : ops::delay_ns(5'000 + rng.below(50'000));
        PublishOptions o = keep ? kept_options() : plain_options();
        if (!me.unread.empty()) o.timeout = milliseconds(1);
        Ticket first;
        const Status st = rt->publish_batch(reqs, n, &first, o);
        if (st.code() == Result::kTimeout && !me.unread.empty()) {
          // Free our kept positions, then retry.
          while (!me.unread.empty()) {
            Completion c;
            const Status ws = rt->wait(me.unread.front(), &c, scaled(seconds(10)));
            if (!ws) {
              me.error = "wait: " + ws.to_string();
              return;
            }
            me.read.emplace_back(me.unread.front(), c);
            me.unread.pop_front();
          }
          continue;
        }
        if (!st) {
          me.final_result = st.code();
          if (st.code() != Result::kAborted) me.error = "publish: " + st.to_string();
          return;
        }
        for (uint32_t j = 0; j < n; ++j) {
          me.tickets.push_back(Ticket{first.value + j, keep});
          if (keep) me.unread.push_back(Ticket{first.value + j, true});
        }
        if (me.unread.size() > 16) {
          Completion c;
          const Status ws = rt->wait(me.unread.front(), &c, scaled(seconds(10)));
          if (!ws) {
            me.error = "wait: " + ws.to_string();
            return;
          }
          me.read.emplace_back(me.unread.front(), c);
          me.unread.pop_front();
        }
      }
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(30));
  MR_EXPECT_OK(rt->abort());
  for (auto& t : threads) t.join();

  std::vector<uint64_t> all;
  for (int p = 0; p < kThreads; ++p) {
    EXPECT_TRUE(prod[p].error.empty()) << "producer " << p << ": " << prod[p].error;
    EXPECT_EQ(prod[p].final_result, Result::kAborted) << "producer " << p;
    for (const Ticket& t : prod[p].tickets) all.push_back(t.value);
  }
  ASSERT_FALSE(all.empty());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(all[i], cfg.initial_ticket + i) << "tickets handed out are not contiguous/unique";

  // Every ticket answers, finitely: kept ones through wait(), all through wait_done().
  uint64_t ok = 0, aborted = 0;
  for (int p = 0; p < kThreads; ++p) {
    for (const auto& rc : prod[p].read) {
      EXPECT_TRUE(rc.second.status == MR_STATUS_OK || rc.second.status == MR_STATUS_ABORTED);
    }
    for (const Ticket& t : prod[p].unread) {
      Completion c;
      MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
      EXPECT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED)
          << "ticket " << t.value << " status " << c.status;
    }
    for (const Ticket& t : prod[p].tickets) {
      const Status st = rt->wait_done(t, scaled(seconds(5)));
      if (st.is_ok())
        ++ok;
      else if (st.code() == Result::kAborted)
        ++aborted;
      else
        ADD_FAILURE() << "ticket " << t.value << ": " << st.to_string();
    }
  }
  EXPECT_EQ(ok + aborted, all.size());
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, all.size()) << "a ticket was handed out that no producer saw (or vice versa)";
  EXPECT_EQ(s.faulted, 0u);
  expect_conserved(s);
  std::printf("[ abort    ] %zu tickets: %" PRIu64 " ok, %" PRIu64 " aborted (stats)\n", all.size(),
              s.completed_ok, s.aborted);
}

TEST_P(RingLifecycleTest, ShutdownRacingWithProducers) {
  // Publishers racing with shutdown() get kShutdown; every ticket they did
  // get is drained and completes OK.
  Config cfg = base_config();
  cfg.ring_capacity = 64;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  BufferHandle ctr = 0;
  MR_ASSERT_OK(rt->alloc_buffer(8 * 3, &ctr));
  constexpr int kThreads = 3;
  std::vector<std::vector<Ticket>> tickets(kThreads);
  std::vector<uint64_t> adds(kThreads, 0);
  std::vector<std::string> errors(kThreads);
  std::vector<Result> final_result(kThreads, Result::kSuccess);
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kThreads; ++p) {
    threads.emplace_back([&, p] {
      Rng rng(p + 5);
      ++started;
      for (;;) {
        const uint32_t n = 1 + rng.below(8);
        SlotRequest reqs[8];
        for (uint32_t j = 0; j < n; ++j)
          reqs[j] = rng.below(2) ? ops::atomic_add(ctr, 8ull * p, 1) : ops::delay_ns(rng.below(20'000));
        Ticket first;
        const Status st = rt->publish_batch(reqs, n, &first, plain_options());
        if (!st) {
          final_result[p] = st.code();
          if (st.code() != Result::kShutdown) errors[p] = st.to_string();
          return;
        }
        for (uint32_t j = 0; j < n; ++j) {
          tickets[p].push_back(Ticket{first.value + j, false});
          if (reqs[j].opcode == MR_OP_ATOMIC_ADD) ++adds[p];
        }
      }
    });
  }
  while (started.load() < kThreads) std::this_thread::yield();
  std::this_thread::sleep_for(milliseconds(20));
  const Status st = rt->shutdown(scaled(seconds(30)));
  for (auto& t : threads) t.join();
  MR_ASSERT_OK(st);
  uint64_t total = 0;
  for (int p = 0; p < kThreads; ++p) {
    EXPECT_TRUE(errors[p].empty()) << "producer " << p << ": " << errors[p];
    EXPECT_EQ(final_result[p], Result::kShutdown) << "producer " << p;
    for (const Ticket& t : tickets[p]) MR_EXPECT_OK(rt->wait_done(t, scaled(seconds(1))));
    total += tickets[p].size();
  }
  uint64_t got[kThreads] = {};
  MR_ASSERT_OK(rt->read_buffer(ctr, 0, got, sizeof(got)));
  for (int p = 0; p < kThreads; ++p) EXPECT_EQ(got[p], adds[p]) << "producer " << p;
  const RuntimeStats s = rt->stats();
  EXPECT_GT(total, 0u);
  EXPECT_EQ(s.published, total);
  EXPECT_EQ(s.completed_ok, total) << "shutdown must drain every published slot";
  EXPECT_EQ(rt->done_count(), cfg.initial_ticket + total);
  expect_conserved(s);
}

TEST_P(RingLifecycleTest, AbortInterruptsShutdown) {
  Config cfg = base_config();
  cfg.workers = 2;
  cfg.ring_capacity = 128;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  std::vector<Ticket> tickets(60);
  for (auto& t : tickets) MR_ASSERT_OK(rt->publish(ops::delay_ns(50'000'000), &t, kept_options()));
  Status shutdown_status;
  const auto t0 = Clock::now();
  std::thread closer([&] { shutdown_status = rt->shutdown(scaled(seconds(60))); });
  std::this_thread::sleep_for(milliseconds(30));
  const Status abort_status = rt->abort();
  closer.join();
  const uint64_t elapsed = ms_since(t0);
  MR_EXPECT_OK(abort_status);
  EXPECT_TRUE(shutdown_status.code() == Result::kSuccess ||
              shutdown_status.code() == Result::kAborted ||
              shutdown_status.code() == Result::kTimeout)
      << shutdown_status.to_string();
  EXPECT_LT(elapsed, 1500u * timeout_scale()) << "abort() must cut the 1.5 s drain short";
  uint64_t aborted = 0;
  for (const Ticket& t : tickets) {
    Completion c;
    MR_ASSERT_OK(rt->wait(t, &c, scaled(seconds(5))));
    ASSERT_TRUE(c.status == MR_STATUS_OK || c.status == MR_STATUS_ABORTED) << c.status;
    if (c.status == MR_STATUS_ABORTED) ++aborted;
  }
  EXPECT_GT(aborted, 30u);
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 60u);
  EXPECT_EQ(s.aborted, aborted);
  expect_conserved(s);
  Ticket x;
  const Status pub = rt->publish(ops::nop(), &x, plain_options());
  EXPECT_TRUE(pub.code() == Result::kAborted || pub.code() == Result::kShutdown) << pub.to_string();
}

TEST_P(RingLifecycleTest, DestroyWithWorkInFlight) {
  for (int round = 0; round < 3; ++round) {
    Config cfg = base_config();
    cfg.ring_capacity = 512;
    cfg.workers = 2;
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
    BufferHandle h = 0, ctr = 0;
    MR_ASSERT_OK(rt->alloc_buffer(300 * 64, &h));
    MR_ASSERT_OK(rt->alloc_buffer(8, &ctr));
    for (int i = 0; i < 300; ++i) {
      Ticket t;
      // Slots run in parallel: FILLs use disjoint ranges (no racing plain stores).
      const SlotRequest r = i % 3 == 0   ? ops::delay_ns(1'000'000)
                            : i % 3 == 1 ? ops::fill(h, 64ull * i, 64, static_cast<uint8_t>(i))
                                         : ops::atomic_add(ctr, 0, 1);
      MR_ASSERT_OK(rt->publish(r, &t, i % 7 == 0 ? kept_options() : plain_options()));
    }
    if (round == 1) std::this_thread::sleep_for(milliseconds(5));
    const auto t0 = Clock::now();
    rt.reset();  // aborts, joins and frees, with kept results unread
    EXPECT_LT(ms_since(t0), static_cast<uint64_t>(
                                std::chrono::duration_cast<milliseconds>(scaled(seconds(5))).count()))
        << "round " << round;
  }
  // A runtime can still be created afterwards.
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(base_config(), &rt));
  Completion c;
  ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(8), &c));
  EXPECT_EQ(c.result, 8u);
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
  Config cfg = base_config();
  cfg.initial_ticket = MR_TICKET_MASK - (1ull << 40);
  cfg.ring_capacity = 16;
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
  const RuntimeStats s = rt->stats();
  EXPECT_EQ(s.published, 100u);
  EXPECT_EQ(s.completed_ok, 100u);
  expect_conserved(s);
}

MEGARING_INSTANTIATE_BACKENDS(RingLifecycleTest);

// ===========================================================================
// Config validation
// ===========================================================================
class RingConfigTest : public BackendTest {};

TEST_P(RingConfigTest, RejectsBadConfigs) {
  struct Bad {
    const char* what;
    void (*edit)(Config&);
  };
  const Bad bad[] = {
      {"capacity 0", [](Config& c) { c.ring_capacity = 0; }},
      {"capacity 3", [](Config& c) { c.ring_capacity = 3; }},
      {"capacity 1000", [](Config& c) { c.ring_capacity = 1000; }},
      {"capacity 2^25", [](Config& c) { c.ring_capacity = 1u << 25; }},
      {"capacity 2^31", [](Config& c) { c.ring_capacity = 1u << 31; }},
      {"max_buffers 0", [](Config& c) { c.max_buffers = 0; }},
      {"max_buffers 65536", [](Config& c) { c.max_buffers = 65536; }},
      {"initial_ticket past the limit",
       [](Config& c) { c.initial_ticket = MR_TICKET_MASK - (1ull << 40) + 1; }},
      {"initial_ticket 2^56", [](Config& c) { c.initial_ticket = 1ull << 56; }},
      {"backoff min > max",
       [](Config& c) {
         c.poll_backoff_min_ns = 4096;
         c.poll_backoff_max_ns = 64;
       }},
      {"backoff max over 1 s (its doubling would wrap)",
       [](Config& c) { c.poll_backoff_max_ns = 1'000'000'001; }},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.what);
    Config cfg = base_config();
    b.edit(cfg);
    std::unique_ptr<Runtime> rt;
    const Status st = Runtime::create(cfg, &rt);
    EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
    EXPECT_FALSE(st.message().empty()) << "errors must say what is wrong";
    EXPECT_EQ(rt, nullptr);
  }
  MR_EXPECT_RESULT(Runtime::create(base_config(), nullptr), Result::kInvalidArgument);
}

TEST_P(RingConfigTest, AcceptsEdgeConfigs) {
  for (uint32_t cap : {1u, 2u, 1u << 16}) {
    Config cfg = base_config();
    cfg.ring_capacity = cap;
    cfg.max_buffers = cap == 2 ? 65535 : 1;
    std::unique_ptr<Runtime> rt;
    ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
    EXPECT_EQ(rt->capacity(), cap);
    EXPECT_GE(rt->consumer_units(), 1u);
    Completion c;
    ASSERT_NO_FATAL_FAILURE(call_ok(*rt, ops::nop(cap), &c));
    EXPECT_EQ(c.result, cap);
    BufferHandle h1 = 0, h2 = 0;
    MR_ASSERT_OK(rt->alloc_buffer(8, &h1));
    if (cfg.max_buffers == 1)
      MR_EXPECT_RESULT(rt->alloc_buffer(8, &h2), Result::kOutOfMemory) << "table of one entry";
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
  }
  Config cfg = base_config();
  cfg.workers = 3;
  std::unique_ptr<Runtime> rt;
  ASSERT_NO_FATAL_FAILURE(create_runtime(cfg, &rt));
  EXPECT_EQ(rt->consumer_units(), 3u);
}

TEST_P(RingConfigTest, RejectsBadDeviceOrdinal) {
  if (backend() != Backend::kCuda) GTEST_SKIP() << "the CPU backend has no device ordinal";
  Config cfg = base_config();
  cfg.device = 999;
  std::unique_ptr<Runtime> rt;
  const Status st = Runtime::create(cfg, &rt);
  EXPECT_EQ(st.code(), Result::kInvalidArgument) << st.to_string();
  EXPECT_EQ(rt, nullptr);
}

MEGARING_INSTANTIATE_BACKENDS(RingConfigTest);

// Backend selection without a GPU (plain tests: they never name "Gpu").
// Runs in a child process (death-test machinery) so that a crash inside
// create() is reported as this test's failure instead of killing the binary.
// (Regression test: a backend init() failure once crashed in ~Impl, which
// read DONE_COUNT from regions that were never allocated.)
TEST(RuntimeBackendSelection, CudaWithoutDeviceIsNoDevice) {
  if (megaring::cuda_device_available()) GTEST_SKIP() << "a CUDA device is present";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Config cfg;
        cfg.backend = Backend::kCuda;
        std::unique_ptr<Runtime> rt;
        const Status st = Runtime::create(cfg, &rt);
        std::fprintf(stderr, "create -> %s\n", st.to_string().c_str());
        std::_Exit(st.code() == Result::kNoDevice && rt == nullptr ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << "Runtime::create(kCuda) without a device must return kNoDevice (and not crash)";
}

TEST(RuntimeBackendSelection, AutoPicksCpuWithoutDevice) {
  Watchdog dog(current_test_name(), Watchdog::default_limit());
  Config cfg;
  cfg.backend = Backend::kAuto;
  std::unique_ptr<Runtime> rt;
  MR_ASSERT_OK(Runtime::create(cfg, &rt));
  const Backend expected = megaring::cuda_device_available() ? Backend::kCuda : Backend::kCpu;
  EXPECT_EQ(rt->backend(), expected);
  if (expected == Backend::kCpu) {
    EXPECT_STREQ(rt->device_name(), "cpu");
    EXPECT_EQ(rt->consumer_units(), 2u) << "CPU default: two workers";
  } else {
    int sms = 0;
    ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, cfg.device),
              cudaSuccess);
    EXPECT_EQ(rt->consumer_units(),
              std::min(megaring::kDefaultGpuWorkers, static_cast<uint32_t>(sms)))
        << "GPU default: kDefaultGpuWorkers blocks, at most one per SM";
  }
  Completion c;
  MR_ASSERT_OK(rt->call(ops::nop(3), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 3u);
  MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
}

// The CPU workers' thread setup (cpu_backend.cpp): each is named
// megaring-w<unit>, and its timer slack keeps a poll-backoff sleep near the
// configured cap (a quarter of it, from 1 us to Linux's default 50 us)
// instead of the default 50 us overrun. Read back from /proc, as a profiler
// would see them (another thread's slack needs CAP_SYS_NICE to read).
struct WorkerThread {
  std::string name;
  long timer_slack_ns = -1;
};

// The first line of a /proc file, without its newline ("" if unreadable).
std::string read_proc_line(const std::string& path) {
  std::string line;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[128] = {};
    if (std::fgets(buf, sizeof buf, f) != nullptr) line = buf;
    std::fclose(f);
  }
  while (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

// This process's threads named megaring-w*, sorted by name.
std::vector<WorkerThread> megaring_worker_threads() {
  std::vector<WorkerThread> out;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string tid = entry->d_name;
    if (tid.empty() || tid[0] == '.') continue;
    WorkerThread w;
    w.name = read_proc_line("/proc/self/task/" + tid + "/comm");
    if (w.name.rfind("megaring-", 0) != 0) continue;  // executors (-w<unit>) and -io
    // Per-thread slack lives at /proc/<tid>, not under task/.
    const std::string slack = read_proc_line("/proc/" + tid + "/timerslack_ns");
    if (!slack.empty()) w.timer_slack_ns = std::stol(slack);
    out.push_back(w);
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end(),
            [](const WorkerThread& a, const WorkerThread& b) { return a.name < b.name; });
  return out;
}

TEST(CpuBackendWorkers, AreNamedAndSleepNearTheirBackoffCap) {
#if !defined(__linux__)
  GTEST_SKIP() << "thread names and timer slack are set on Linux only";
#endif
  if (read_proc_line("/proc/self/timerslack_ns").empty())
    GTEST_SKIP() << "this kernel has no /proc/<tid>/timerslack_ns (Linux < 4.6)";
  Watchdog dog(current_test_name(), Watchdog::default_limit());
  struct Case {
    uint32_t workers;
    uint32_t poll_backoff_max_ns;
    long expected_slack_ns;
  };
  for (const Case& c : {Case{3, 2048, 1000}, Case{2, 100'000, 25'000}}) {
    SCOPED_TRACE("workers " + std::to_string(c.workers) + ", backoff cap " +
                 std::to_string(c.poll_backoff_max_ns) + " ns");
    // A joined thread can stay listed in /proc for a moment after it exited.
    const auto gone_by = Clock::now() + scaled(seconds(10));
    while (!megaring_worker_threads().empty() && Clock::now() < gone_by)
      std::this_thread::sleep_for(milliseconds(1));
    ASSERT_TRUE(megaring_worker_threads().empty()) << "workers of an earlier runtime still run";
    Config cfg;
    cfg.backend = Backend::kCpu;
    cfg.workers = c.workers;
    cfg.poll_backoff_max_ns = c.poll_backoff_max_ns;
    std::unique_ptr<Runtime> rt;
    MR_ASSERT_OK(Runtime::create(cfg, &rt));
    // Each thread names itself as it starts: wait until all have. The
    // executors and the I/O thread (fetcher and completer), which sorts first.
    std::vector<WorkerThread> workers = megaring_worker_threads();
    const auto deadline = Clock::now() + scaled(seconds(10));
    while (workers.size() < c.workers + 1 && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
      workers = megaring_worker_threads();
    }
    ASSERT_EQ(workers.size(), c.workers + 1);
    EXPECT_EQ(workers[0].name, "megaring-io");
    for (uint32_t u = 0; u < c.workers; ++u)
      EXPECT_EQ(workers[u + 1].name, "megaring-w" + std::to_string(u));
    Completion done;  // and they still run slots
    MR_ASSERT_OK(rt->call(ops::nop(7), &done, scaled(seconds(10))));
    EXPECT_EQ(done.result, 7u);
    MR_EXPECT_OK(rt->shutdown(scaled(seconds(10))));
    rt.reset();
    if (workers[0].timer_slack_ns < 0)
      GTEST_SKIP() << "names checked; the slack is not: reading another thread's "
                      "/proc/<tid>/timerslack_ns needs CAP_SYS_NICE";
    for (const WorkerThread& w : workers) EXPECT_EQ(w.timer_slack_ns, c.expected_slack_ns) << w.name;
  }
}

TEST(RuntimeBackendSelection, NamesAndResultStrings) {
  EXPECT_STREQ(megaring::backend_name(Backend::kAuto), "auto");
  EXPECT_STREQ(megaring::backend_name(Backend::kCuda), "cuda");
  EXPECT_STREQ(megaring::backend_name(Backend::kCpu), "cpu");
  EXPECT_STREQ(megaring::result_string(Result::kRingFull), "ring full");
  const Status st(Result::kTimeout, "ticket 5");
  EXPECT_EQ(st.to_string(), "timeout: ticket 5");
  EXPECT_FALSE(st.is_ok());
  EXPECT_TRUE(Status::ok().is_ok());
  EXPECT_EQ(Status::ok().to_string(), "success");
}

}  // namespace
}  // namespace megaring_test
