// SPDX-License-Identifier: Apache-2.0
// Ring priorities end to end (Runtime::open_producer with a Priority), on
// both backends. Every slot is an ATOMIC_ADD of 1 to one counter with its
// result kept: the result is the slot's place in the order the consumer ran
// them, so the checks count, they never time. With one executor that order
// is the staged order (slot_abi.h, "Priorities": classes order fetching).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <megaring/consumer/consumer_core.cuh>
#include <megaring/producer.hpp>

#include "backend_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::ConsumerCounters;
using megaring::Priority;
using megaring::Producer;
using megaring::PublishOptions;
using megaring::SlotRequest;
using megaring::Ticket;
namespace ops = megaring::ops;

// The gate word (kOpGate, tenant_test_ops.hpp).
uint32_t* gate_word(Backend backend) { return megaring_test::gate_word(backend == Backend::kCuda); }
void set_gate(uint32_t* word, uint32_t value) {
  // RELEASE (system): the gate slot acquires it on the consumer.
  cuda::atomic_ref<uint32_t, cuda::thread_scope_system>(*word).store(value, cuda::std::memory_order_release);
}

PublishOptions kept() {
  PublishOptions o;
  o.keep_result = true;
  return o;
}

class PriorityTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    gate_ = gate_word(backend());
    ASSERT_NE(gate_, nullptr) << "cannot allocate the gate word";
    set_gate(gate_, 0);
  }
  void TearDown() override {
    if (gate_ != nullptr) set_gate(gate_, 1);  // a failed test must not hold the shutdown
    if (rt_) MR_EXPECT_OK(rt_->shutdown(scaled(std::chrono::seconds(30))));
    BackendTest::TearDown();
  }
  // One executor (the order it runs slots in is the staged order), rings of
  // `capacity`, the test consumer (the built-ins and kOpGate).
  void start(uint32_t producer_rings, uint32_t capacity) {
    Config c = base_config();
    c.producer_rings = producer_rings;
    c.ring_capacity = capacity;
    c.workers = 1;
    const Status st = Runtime::create(c, tenant_test_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    MR_ASSERT_OK(rt_->alloc_buffer(64, &counter_));
  }
  SlotRequest order_slot() const { return ops::atomic_add(counter_, 0, 1); }
  // Publishes n order slots (kept) on `p`; returns the first ticket.
  Ticket publish_order(Producer& p, uint32_t n) {
    std::vector<SlotRequest> batch(n, order_slot());
    Ticket first;
    MR_EXPECT_OK(p.publish_batch(batch.data(), n, &first, kept()));
    return first;
  }
  // The run order of tickets [first, first + n) of `p`.
  std::vector<uint64_t> orders(Producer& p, Ticket first, uint32_t n) {
    std::vector<uint64_t> out;
    for (uint32_t i = 0; i < n; ++i) {
      Completion c;
      MR_EXPECT_OK(p.wait(Ticket{first.value + i, true}, &c, scaled(std::chrono::seconds(30))));
      EXPECT_EQ(c.status, MR_STATUS_OK);
      out.push_back(c.result);
    }
    return out;
  }
  void wait_fetched(uint64_t n) {
    ConsumerCounters cc;
    const auto deadline = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(10));
    do {
      MR_ASSERT_OK(rt_->consumer_counters(&cc));
    } while (cc.tickets_fetched < n && std::chrono::steady_clock::now() < deadline);
    ASSERT_GE(cc.tickets_fetched, n) << "the consumer did not fetch";
  }

  std::unique_ptr<Runtime> rt_;
  BufferHandle counter_{};
  uint32_t* gate_ = nullptr;
};

TEST_P(PriorityTest, AProducerHasTheClassItWasOpenedWith) {
  ASSERT_NO_FATAL_FAILURE(start(3, 64));
  std::unique_ptr<Producer> plain, critical, bulk, bad;
  MR_ASSERT_OK(rt_->open_producer(&plain));
  MR_ASSERT_OK(rt_->open_producer(&critical, Priority::kCritical));
  MR_ASSERT_OK(rt_->open_producer(&bulk, Priority::kBulk));
  EXPECT_EQ(plain->priority(), Priority::kNormal);
  EXPECT_EQ(critical->priority(), Priority::kCritical);
  EXPECT_EQ(bulk->priority(), Priority::kBulk);
  const uint32_t ring = critical->ring();
  critical.reset();
  MR_EXPECT_RESULT(rt_->open_producer(&bad, static_cast<Priority>(3)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(rt_->open_producer(&bad, static_cast<Priority>(0xFFFFFFFFu)),
                   Result::kInvalidArgument);
  EXPECT_EQ(bad, nullptr);
  MR_EXPECT_RESULT(rt_->open_producer(nullptr, Priority::kBulk), Result::kInvalidArgument);
  // A refused open took no ring: the freed one is still there, and its
  // next owner has its own class.
  std::unique_ptr<Producer> again;
  MR_ASSERT_OK(rt_->open_producer(&again));
  EXPECT_EQ(again->ring(), ring);
  EXPECT_EQ(again->priority(), Priority::kNormal);
  Completion c;
  MR_ASSERT_OK(again->call(ops::nop(5), &c));
  EXPECT_EQ(c.result, 5u);
}

// A critical ring has been READY (one call); the only executor is held; a
// bulk ring is filled, then the critical one; released, the critical slots
// run before all but the bulk slots staged before they were published: at
// most min(128, capacity / 4) (the bulk slots the staged queue may hold
// while a critical ring was recently READY; the stall keeps it so).
TEST_P(PriorityTest, CriticalSlotsRunBeforeABulkBacklogPublishedFirst) {
  constexpr uint32_t kCap = 64;
  ASSERT_NO_FATAL_FAILURE(start(2, kCap));
  std::unique_ptr<Producer> critical, bulk;
  MR_ASSERT_OK(rt_->open_producer(&critical, Priority::kCritical));
  MR_ASSERT_OK(rt_->open_producer(&bulk, Priority::kBulk));
  Completion warm;
  MR_ASSERT_OK(critical->call(ops::nop(1), &warm));
  SlotRequest gate;
  gate.opcode = kOpGate;
  gate.args[0] = reinterpret_cast<uint64_t>(gate_);
  Ticket gate_ticket;
  MR_ASSERT_OK(rt_->publish(gate, &gate_ticket));
  const Ticket bulk_first = publish_order(*bulk, kCap);
  ASSERT_NO_FATAL_FAILURE(wait_fetched(kCap / 4));  // the gate and 15 bulk slots
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // time to stage more, if it would
  const Ticket critical_first = publish_order(*critical, kCap);
  set_gate(gate_, 1);
  const std::vector<uint64_t> bulk_order = orders(*bulk, bulk_first, kCap);
  const std::vector<uint64_t> critical_order = orders(*critical, critical_first, kCap);
  const uint64_t last_critical = *std::max_element(critical_order.begin(), critical_order.end());
  const auto bulk_before =
      std::count_if(bulk_order.begin(), bulk_order.end(), [&](uint64_t o) { return o < last_critical; });
  EXPECT_LE(bulk_before, long{kCap / 4}) << "bulk slots ran before the last critical one";
  std::set<uint64_t> all(bulk_order.begin(), bulk_order.end());
  all.insert(critical_order.begin(), critical_order.end());
  EXPECT_EQ(all.size(), 2u * kCap) << "each slot ran once";
  EXPECT_EQ(*all.rbegin(), 2u * kCap - 1);
}

// A critical producer keeps its ring full; a bulk producer's slots (all
// published at once, so its ring stays READY) still run while the flood
// lasts, with at most MR_PRIORITY_CREDIT_SLOTS + one turn of other slots
// between two of them (a turn: kRingTurnRounds rounds and a poll round, of
// at most `capacity` slots each).
TEST_P(PriorityTest, ABulkRingIsNotStarvedByACriticalFlood) {
  constexpr uint32_t kCap = 64;
  ASSERT_NO_FATAL_FAILURE(start(2, kCap));
  std::unique_ptr<Producer> critical, bulk;
  MR_ASSERT_OK(rt_->open_producer(&critical, Priority::kCritical));
  MR_ASSERT_OK(rt_->open_producer(&bulk, Priority::kBulk));
  // More than the bound allows for all 64 bulk slots (64 x 577), so that
  // a saturated flood still outlasts them.
  const uint32_t kFlood = built_with_tsan() ? 40'000 : 64'000;
  std::thread flooder([&] {
    std::vector<SlotRequest> batch(32, order_slot());
    Ticket first;
    for (uint32_t sent = 0; sent < kFlood; sent += 32)
      MR_EXPECT_OK(critical->publish_batch(batch.data(), 32, &first));
  });
  ASSERT_NO_FATAL_FAILURE(wait_fetched(4 * kCap));  // the flood is under way
  const Ticket bulk_first = publish_order(*bulk, kCap);
  const std::vector<uint64_t> bulk_order = orders(*bulk, bulk_first, kCap);
  flooder.join();
  MR_EXPECT_OK(critical->wait_done(Ticket{kFlood - 1, false}, scaled(std::chrono::seconds(60))));
  uint64_t widest = bulk_order[0];
  for (uint32_t i = 1; i < kCap; ++i) {
    ASSERT_GT(bulk_order[i], bulk_order[i - 1]) << "a ring's slots run in ticket order";
    widest = std::max(widest, bulk_order[i] - bulk_order[i - 1] - 1);
    EXPECT_LE(bulk_order[i] - bulk_order[i - 1] - 1,
              MR_PRIORITY_CREDIT_SLOTS + (megaring::detail::kRingTurnRounds + 1) * kCap)
        << "critical slots between bulk slots " << i - 1 << " and " << i;
  }
  RecordProperty("widest_gap", std::to_string(widest));  // for the record; the bound is above
  RecordProperty("last_bulk_at", std::to_string(bulk_order.back()));
  EXPECT_LT(bulk_order.back() + 1, uint64_t{kFlood} + kCap - kCap / 2)
      << "the bulk slots ran after the flood: nothing was checked";
}

// Conservation: producers of all three classes and ring 0, at once, through
// a staged queue they share; every slot runs exactly once with its result.
TEST_P(PriorityTest, EverySlotOfEveryClassRunsOnce) {
  constexpr uint32_t kCap = 64;
  const Priority classes[] = {Priority::kCritical, Priority::kCritical, Priority::kNormal,
                              Priority::kBulk, Priority::kBulk};
  constexpr uint32_t kProducers = 5;
  ASSERT_NO_FATAL_FAILURE(start(kProducers, kCap));
  const uint32_t per = built_with_tsan() ? 1024 : 4096;  // batches of 16
  BufferHandle counts;
  MR_ASSERT_OK(rt_->alloc_buffer(8 * (kProducers + 1), &counts));
  std::vector<std::thread> threads;
  for (uint32_t k = 0; k <= kProducers; ++k) {
    threads.emplace_back([&, k] {
      std::unique_ptr<Producer> p;
      if (k < kProducers) MR_ASSERT_OK(rt_->open_producer(&p, classes[k]));
      std::vector<bool> seen(per, false);
      for (uint32_t i = 0; i < per; i += 16) {
        std::vector<SlotRequest> batch(16, ops::atomic_add(counts, 8 * k, 1));
        Ticket first;
        MR_ASSERT_OK(p ? p->publish_batch(batch.data(), 16, &first, kept())
                       : rt_->publish_batch(batch.data(), 16, &first, kept()));
        for (uint32_t j = 0; j < 16; ++j) {
          Completion c;
          MR_ASSERT_OK(p ? p->wait(Ticket{first.value + j, true}, &c)
                         : rt_->wait(Ticket{first.value + j, true}, &c));
          ASSERT_EQ(c.status, MR_STATUS_OK);
          ASSERT_LT(c.result, per) << "producer " << k;
          ASSERT_FALSE(seen[c.result]) << "producer " << k << ": a count ran twice";
          seen[c.result] = true;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<uint64_t> totals(kProducers + 1, 0);
  MR_ASSERT_OK(rt_->read_buffer(counts, 0, totals.data(), 8 * (kProducers + 1)));
  for (uint32_t k = 0; k <= kProducers; ++k) EXPECT_EQ(totals[k], per) << "producer " << k;
}

MEGARING_INSTANTIATE_BACKENDS(PriorityTest);

}  // namespace
}  // namespace megaring_test
