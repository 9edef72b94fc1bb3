// SPDX-License-Identifier: Apache-2.0
// Control operations (runtime.hpp, "Control operations";
// src/runtime/control_barrier.hpp), on every backend (Cpu/..., Gpu/...),
// through the one that changes several table words at once, a tenant's
// grants:
//   - while producer threads publish, no slot sees a change half-applied
//     (kOpReadGrants reads two grant words with a pause between them);
//   - a step that fails is rolled back: the consumer's table, the host's
//     view and the slots after it all show the old grants;
//   - an executor that does not reach a point between slots (held by a
//     gate slot) cancels the operation within Config::control_timeout,
//     naming it, with the tables unchanged; the next operation succeeds;
//   - an abort during an operation ends it with the runtime's status, and
//     one after shutdown is refused;
//   - operations from several threads run one at a time, all applied.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <megaring/producer.hpp>
#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"
#include "gated_runtime_fixture.hpp"
#include "runtime/runtime_internal.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace {

using megaring::Completion;
using megaring::ControlStats;
using megaring::OpcodeGrants;
using megaring::RegistryConfig;
using megaring::Result;
using megaring::detail::RuntimeInternals;
using megaring::SlotRequest;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Two grant sets that differ in grant words 1 and 2 (user opcodes 256 ..
// 383), both holding kOpGate (256, word 1 bit 0) and kOpReadGrants (260,
// word 1 bit 4):
//   A: 256, 260, 262 (word 1 bits 0, 4, 6) and 320 (word 2 bit 0);
//   B: 256, 260, 263 (word 1 bits 0, 4, 7) and 321 (word 2 bit 1).
// What kOpReadGrants returns under each; a mix of the two is neither.
const OpcodeGrants kGrantsA = OpcodeGrants::only({kOpGate, kOpReadGrants, 262, 320});
const OpcodeGrants kGrantsB = OpcodeGrants::only({kOpGate, kOpReadGrants, 263, 321});
constexpr uint64_t kGate = 1ull << (kOpGate - 256);
constexpr uint64_t kReadA = (kGate | 0x50u) | (uint64_t{1} << 32);
constexpr uint64_t kReadB = (kGate | 0x90u) | (uint64_t{2} << 32);

TenantPublishOptions kept() {
  TenantPublishOptions o;
  o.keep_result = true;
  o.timeout = scaled(seconds(30));
  return o;
}

class ControlOpsTest : public GatedRuntimeTest {
 protected:

  void start(uint32_t workers, Nanoseconds control_timeout = seconds(1)) {
    Config c = base_config();
    c.workers = workers;
    c.control_timeout = scaled(control_timeout);
    const Status st = Runtime::create(c, tenant_test_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    MR_ASSERT_OK(TenantRegistry::create(*rt_, RegistryConfig{}, &registry_));
    TenantConfig tc;
    tc.label = "controlled";
    tc.quotas.opcode_cap = 512;
    tc.quotas.max_outstanding_slots = 4096;
    tc.grants = kGrantsA;
    MR_ASSERT_OK(registry_->register_tenant(tc, &tenant_));
  }

  // One kOpReadGrants slot, kept; its completion.
  Completion read_grants(uint64_t pause_ns = 0) {
    SlotRequest r;
    r.opcode = kOpReadGrants;
    r.args[0] = pause_ns;
    Ticket t;
    Completion c;
    c.status = 0xFFFF;
    const Status st = tenant_.publish_slot(r, &t, kept());
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    if (st) MR_EXPECT_OK(tenant_.wait(t, &c, scaled(seconds(30))));
    return c;
  }
  Ticket publish_gate() {
    Ticket t;
    MR_EXPECT_OK(tenant_.publish_slot(gate(), &t, kept()));
    return t;
  }
  // Until the only executor runs `ticket` (dump_state's note).
  void wait_until_running(const Ticket& ticket) { wait_until_held(ticket, /*first_unit_only=*/true); }
  ControlStats control_stats() {
    ControlStats s;
    MR_EXPECT_OK(rt_->control_stats(&s));
    return s;
  }
  bool host_grants_are(const OpcodeGrants& expected) {
    OpcodeGrants g;
    if (!tenant_.grants(&g).is_ok()) return false;
    return !g.all && g.opcodes == expected.opcodes;
  }

};

TEST_P(ControlOpsTest, NoSlotSeesAGrantsChangeHalfApplied) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2));
  constexpr int kThreads = 3;
  constexpr int kSlotsEach = 200;
  std::atomic<int> producers_left{kThreads};
  std::vector<std::vector<Completion>> seen(kThreads);
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kSlotsEach; ++i) seen[t].push_back(read_grants(/*pause_ns=*/20'000));
      producers_left.fetch_sub(1);
    });
  }
  // Flip the grants while they publish (at least 50 times), leaving the
  // executors time to run slots between flips.
  int flips = 0;
  while (producers_left.load() > 0 || flips < 50) {
    MR_ASSERT_OK(tenant_.set_grants(flips % 2 == 0 ? kGrantsB : kGrantsA));
    ++flips;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (auto& p : producers) p.join();
  uint64_t under_a = 0, under_b = 0;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kSlotsEach));
    for (const Completion& c : seen[t]) {
      ASSERT_EQ(c.status, MR_STATUS_OK);
      ASSERT_TRUE(c.result == kReadA || c.result == kReadB)
          << "a slot read grant words " << std::hex << c.result << " (A: " << kReadA
          << ", B: " << kReadB << "): a change half-applied, after " << std::dec << flips
          << " flips";
      (c.result == kReadA ? under_a : under_b) += 1;
    }
  }
  EXPECT_GT(under_a + under_b, 0u);
  const ControlStats s = control_stats();
  EXPECT_EQ(s.operations, static_cast<uint64_t>(flips));
  EXPECT_EQ(s.rolled_back + s.cancelled, 0u);
  EXPECT_GE(s.max_ns, s.last_ns);
  EXPECT_GE(s.total_ns, s.max_ns);
}

TEST_P(ControlOpsTest, AFailedStepIsRolledBackEverywhere) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2));
  EXPECT_EQ(read_grants().result, kReadA);
  RuntimeInternals::inject_control_failure(*rt_, 0);
  const Status st = tenant_.set_grants(kGrantsB);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.to_string().find("rolled back"), std::string::npos) << st.to_string();
  // The host's view, the consumer's table and admission: all still A.
  EXPECT_TRUE(host_grants_are(kGrantsA));
  const Completion c = read_grants();
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, kReadA);
  const ControlStats s = control_stats();
  EXPECT_EQ(s.rolled_back, 1u);
  EXPECT_EQ(s.operations, 0u);
  // The injection was for one operation: the next applies.
  MR_ASSERT_OK(tenant_.set_grants(kGrantsB));
  EXPECT_EQ(read_grants().result, kReadB);
  EXPECT_TRUE(host_grants_are(kGrantsB));
}

TEST_P(ControlOpsTest, AHeldExecutorCancelsTheOperationWithinTheBound) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1, /*control_timeout=*/milliseconds(200)));
  const Ticket gate = publish_gate();
  ASSERT_NO_FATAL_FAILURE(wait_until_running(gate));
  const auto began = std::chrono::steady_clock::now();
  const Status st = tenant_.set_grants(kGrantsB);
  const auto took = std::chrono::steady_clock::now() - began;
  ASSERT_EQ(st.code(), Result::kTimeout) << st.to_string();
  EXPECT_NE(st.to_string().find("unit 0"), std::string::npos) << st.to_string();
  EXPECT_NE(st.to_string().find("ticket " + std::to_string(gate.value)), std::string::npos)
      << st.to_string();
  EXPECT_GE(took, milliseconds(200));
  EXPECT_LT(took, scaled(seconds(10))) << "the bound is 200 ms";
  EXPECT_TRUE(host_grants_are(kGrantsA));
  EXPECT_EQ(control_stats().cancelled, 1u);
  // Open the gate: the held slot, and one after it, run under the old grants.
  set_gate(cuda(), 1);
  Completion c;
  MR_ASSERT_OK(tenant_.wait(gate, &c, scaled(seconds(30))));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(read_grants().result, kReadA);
  // The executor answers the next request (it parks for it, not the
  // cancelled one) and the operation applies.
  MR_ASSERT_OK(tenant_.set_grants(kGrantsB));
  EXPECT_EQ(read_grants().result, kReadB);
  EXPECT_EQ(control_stats().operations, 1u);
}

// While one executor runs a long slot, an operation asks in short
// attempts: the other executor goes on running slots between them, and the
// registry (grants(), the pump) is never held for the operation's bound.
TEST_P(ControlOpsTest, AHeldExecutorHoldsUpTheOthersOnlyBriefly) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*control_timeout=*/seconds(1)));
  const Ticket gate = publish_gate();
  ASSERT_NO_FATAL_FAILURE(wait_until_held(gate));
  std::atomic<bool> op_done{false};
  Status op_status;
  std::thread op([&] {
    op_status = tenant_.set_grants(kGrantsB);
    op_done.store(true);
  });
  uint64_t calls = 0, grants_reads = 0;
  while (!op_done.load()) {
    Completion c;
    if (rt_->call(megaring::ops::nop(calls), &c, scaled(seconds(30))).is_ok() && c.ok() &&
        c.result == calls)
      ++calls;
    OpcodeGrants g;
    if (tenant_.grants(&g).is_ok()) ++grants_reads;
  }
  op.join();
  EXPECT_EQ(op_status.code(), Result::kTimeout) << op_status.to_string();
  // Parked for the whole second, the free executor would run none.
  EXPECT_GE(calls, 10u) << "NOPs run while the operation waited";
  EXPECT_GE(grants_reads, 10u);
  set_gate(cuda(), 1);
}

// An executor that left its loop (a handler abandoned its slot) runs no
// slot any more: operations go on without it.
TEST_P(ControlOpsTest, AnExecutorThatLeftDoesNotBlockOperations) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*control_timeout=*/seconds(10)));
  SlotRequest abandon;
  abandon.opcode = kOpReport;
  abandon.args[1] = MR_STATUS_ABORTED;  // the handler abandons the slot: its executor leaves
  Ticket t;
  MR_ASSERT_OK(rt_->publish(abandon, &t));
  // (The abandoned ticket holds DONE_COUNT back from now on, so the test
  // reads the operations' outcome, not slots'.)
  MR_ASSERT_OK(tenant_.set_grants(kGrantsB));
  MR_ASSERT_OK(tenant_.set_grants(kGrantsA));
  EXPECT_TRUE(host_grants_are(kGrantsA));
  EXPECT_EQ(control_stats().operations, 2u);
  (void)rt_->abort();  // the abandoned slot would hold a drain until its timeout
}

TEST_P(ControlOpsTest, AnAbortEndsAWaitingOperation) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/1, /*control_timeout=*/seconds(60)));
  ASSERT_NO_FATAL_FAILURE(wait_until_running(publish_gate()));
  // The operation waits for the held executor; the abort ends it, long
  // before its 60 s bound.
  std::atomic<bool> returned{false};
  Status op_status;
  std::thread op([&] {
    op_status = tenant_.set_grants(kGrantsB);
    returned.store(true);
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(returned.load()) << op_status.to_string();
  const auto began = std::chrono::steady_clock::now();
  (void)rt_->abort();
  op.join();
  EXPECT_LT(std::chrono::steady_clock::now() - began, scaled(seconds(20)));
  EXPECT_FALSE(op_status.is_ok());
  EXPECT_NE(op_status.code(), Result::kTimeout) << op_status.to_string();
  EXPECT_EQ(control_stats().operations, 0u);
}

TEST_P(ControlOpsTest, AnOperationAfterShutdownIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2));
  MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  // Below the registry (which refuses on its own once the runtime ended).
  const mr_tenant_grants none{};
  const Status st = RuntimeInternals::set_tenant_grants(*rt_, 1, none, none);
  EXPECT_EQ(st.code(), Result::kShutdown) << st.to_string();
  EXPECT_EQ(control_stats().operations, 0u);
}

TEST_P(ControlOpsTest, OperationsFromSeveralThreadsRunOneAtATime) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2));
  constexpr int kThreads = 4;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        if (!tenant_.set_grants((t + i) % 2 == 0 ? kGrantsA : kGrantsB).is_ok()) failures++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(control_stats().operations, static_cast<uint64_t>(kThreads * kEach));
  // Whatever the last one set, the consumer's table and the host agree.
  const Completion c = read_grants();
  EXPECT_EQ(c.result, host_grants_are(kGrantsA) ? kReadA : kReadB);
}

// The topology token: operations from several threads never overlap (each
// step finds no other step running), and one that cannot get the token
// within its bound fails saying so.
TEST_P(ControlOpsTest, TheTopologyTokenLetsOneOperationRunAtATime) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*control_timeout=*/seconds(10)));
  std::atomic<int> inside{0}, overlaps{0}, applied{0};
  const megaring::detail::ControlStep step{[&] {
                                             if (inside.fetch_add(1) != 0) overlaps++;
                                             std::this_thread::sleep_for(milliseconds(1));
                                             inside.fetch_sub(1);
                                             applied++;
                                             return Status::ok();
                                           },
                                           [] { return Status::ok(); }};
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        if (!RuntimeInternals::run_control(*rt_, "test", {step}).is_ok()) failures++;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(overlaps.load(), 0) << "two operations' steps ran at once";
  EXPECT_EQ(applied.load(), 40);
}

TEST_P(ControlOpsTest, AnOperationThatCannotGetTheTokenFailsWithinItsBound) {
  ASSERT_NO_FATAL_FAILURE(start(/*workers=*/2, /*control_timeout=*/milliseconds(100)));
  std::atomic<bool> holding{false}, let_go{false};
  const megaring::detail::ControlStep hold{[&] {
                                             holding.store(true);
                                             while (!let_go.load()) std::this_thread::yield();
                                             return Status::ok();
                                           },
                                           [] { return Status::ok(); }};
  std::thread holder([&] { MR_EXPECT_OK(RuntimeInternals::run_control(*rt_, "holder", {hold})); });
  while (!holding.load()) std::this_thread::yield();
  const Status st = tenant_.set_grants(kGrantsB);
  let_go.store(true);
  holder.join();
  EXPECT_EQ(st.code(), Result::kTimeout) << st.to_string();
  EXPECT_NE(st.to_string().find("topology token"), std::string::npos) << st.to_string();
  EXPECT_TRUE(host_grants_are(kGrantsA));
  MR_ASSERT_OK(tenant_.set_grants(kGrantsB));
  EXPECT_EQ(read_grants().result, kReadB);
}

// A producer ring's class changes as a control operation: applied and
// counted, undone when a step fails, refused for a value that is not a
// Priority and once the runtime has stopped; slots keep flowing throughout.
TEST_P(ControlOpsTest, AProducersPriorityChangesAsAControlOperation) {
  Config c = base_config();
  c.workers = 2;
  c.producer_rings = 1;
  MR_ASSERT_OK(Runtime::create(c, tenant_test_consumer(), &rt_));
  std::unique_ptr<megaring::Producer> p;
  MR_ASSERT_OK(rt_->open_producer(&p, megaring::Priority::kBulk));
  Completion done;
  MR_ASSERT_OK(p->call(megaring::ops::nop(1), &done, scaled(seconds(30))));
  MR_ASSERT_OK(p->set_priority(megaring::Priority::kCritical));
  EXPECT_EQ(p->priority(), megaring::Priority::kCritical);
  EXPECT_EQ(control_stats().operations, 1u);
  MR_ASSERT_OK(p->call(megaring::ops::nop(2), &done, scaled(seconds(30))));
  EXPECT_EQ(done.result, 2u);
  RuntimeInternals::inject_control_failure(*rt_, 0);
  EXPECT_FALSE(p->set_priority(megaring::Priority::kNormal).is_ok());
  EXPECT_EQ(p->priority(), megaring::Priority::kCritical) << "rolled back";
  EXPECT_EQ(control_stats().rolled_back, 1u);
  EXPECT_EQ(p->set_priority(static_cast<megaring::Priority>(9)).code(), Result::kInvalidArgument);
  EXPECT_EQ(p->priority(), megaring::Priority::kCritical);
  MR_ASSERT_OK(p->set_priority(megaring::Priority::kNormal));
  MR_ASSERT_OK(p->call(megaring::ops::nop(3), &done, scaled(seconds(30))));
  EXPECT_EQ(done.result, 3u);
  MR_ASSERT_OK(rt_->shutdown(scaled(seconds(30))));
  EXPECT_FALSE(p->set_priority(megaring::Priority::kBulk).is_ok());
  EXPECT_EQ(p->priority(), megaring::Priority::kNormal);
  p.reset();
}

// Cpu/ and Gpu/ prefixes: the `gpu` label follows the name (tests/CMakeLists.txt).
MEGARING_INSTANTIATE_BACKENDS(ControlOpsTest);

}  // namespace
}  // namespace megaring_test
