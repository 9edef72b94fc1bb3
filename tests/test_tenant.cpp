// SPDX-License-Identifier: Apache-2.0
// Tenant tests: registry, opcode windows, quotas, the drain pump, consumer
// enforcement and revocation, on every backend (Cpu/..., Gpu/...).
//
// Tests that need slots to stay queued hold the only consumer unit
// (Config::workers = 1) with a gate slot (tenant_test_ops.hpp) and open it
// once the state under test is set up: no timing assumptions.
#include <cuda/atomic>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <megaring/tenant.hpp>

#include "runtime/runtime_internal.hpp"
#include "backend_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::PumpMode;
using megaring::RegistryConfig;
using megaring::SlotRequest;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
using megaring::detail::RuntimeInternals;
namespace ops = megaring::ops;
using std::chrono::milliseconds;
using std::chrono::seconds;

TenantPublishOptions waiting(bool keep = false) {
  TenantPublishOptions o;
  o.keep_result = keep;
  o.timeout = scaled(seconds(20));
  return o;
}

TenantConfig tenant_config(const std::string& label, uint64_t max_outstanding = 256,
                           uint32_t opcode_cap = 16) {
  TenantConfig c;
  c.label = label;
  c.quotas.max_outstanding_slots = max_outstanding;
  c.quotas.opcode_cap = opcode_cap;
  return c;
}

// The host words the test opcodes use, one line per process: the gate word
// (bytes 0-3, host-written) and kOpSpinUntilAbort's round count (bytes 8-15,
// consumer-written). On the GPU the line is pinned and mapped, allocated
// before the first runtime starts (TenantTest's SetUp calls this) and never
// freed: cudaHostAlloc and cudaFreeHost may wait for the device, which a
// running persistent kernel never lets go.
uint8_t* test_words(Backend backend) {
  if (backend == Backend::kCuda) {
    static uint8_t* const pinned = [] {
      void* p = nullptr;
      return cudaHostAlloc(&p, 64, cudaHostAllocMapped | cudaHostAllocPortable) == cudaSuccess
                 ? static_cast<uint8_t*>(p)
                 : nullptr;
    }();
    return pinned;
  }
  alignas(64) static uint8_t host_line[64];
  return host_line;
}
uint32_t* gate_word(Backend backend) { return reinterpret_cast<uint32_t*>(test_words(backend)); }
uint64_t* spin_rounds_word(Backend backend) {
  uint8_t* line = test_words(backend);
  return line == nullptr ? nullptr : reinterpret_cast<uint64_t*>(line + 8);
}

// A tenant-less slot that holds its consumer unit until the gate opens.
class Gate {
 public:
  explicit Gate(Backend backend) : word_(gate_word(backend)) {
    if (word_ != nullptr) store(word_, 0);
  }
  bool ok() const { return word_ != nullptr; }
  SlotRequest slot() const {
    SlotRequest r;
    r.opcode = kOpGate;
    r.args[0] = reinterpret_cast<uint64_t>(word_);
    return r;
  }
  void open() { store(word_, 1); }
  // Opens the gate whatever state a failed test left it in.
  static void open(Backend backend) {
    if (uint32_t* w = gate_word(backend)) store(w, 1);
  }

 private:
  static void store(uint32_t* word, uint32_t value) {
    // RELEASE (system): the gate slot acquires it on the consumer.
    cuda::atomic_ref<uint32_t, cuda::thread_scope_system>(*word).store(
        value, cuda::std::memory_order_release);
  }
  uint32_t* word_ = nullptr;
};

class TenantTest : public BackendTest {
 protected:
  // A runtime with the test consumer, and a registry on it.
  void start(PumpMode pump = PumpMode::kThread, uint32_t workers = 0, uint32_t capacity = 1024,
             RegistryConfig rc = {}) {
    Config c = base_config();
    c.workers = workers;
    c.ring_capacity = capacity;
    const Status st = Runtime::create(c, tenant_test_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    rc.pump = pump;
    MR_ASSERT_OK(TenantRegistry::create(*rt_, rc, &registry_));
  }
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    // The gate word exists before any runtime runs (see gate_word).
    ASSERT_NE(gate_word(backend()), nullptr) << "cannot allocate the gate word";
  }
  void TearDown() override {
    // A test that failed with its gate closed must not hold the shutdown.
    if (rt_) Gate::open(backend());
    registry_.reset();
    if (rt_) MR_EXPECT_OK(rt_->shutdown(scaled(seconds(30))));
    rt_.reset();
    BackendTest::TearDown();
  }
  TenantHandle add(const TenantConfig& config) {
    TenantHandle h;
    const Status st = registry_->register_tenant(config, &h);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return h;
  }
  // Publishes the gate as a tenant-less slot; the single unit then holds it.
  Ticket hold(Gate& gate) {
    Ticket t;
    megaring::PublishOptions o;
    o.timeout = scaled(seconds(10));
    EXPECT_TRUE(rt_->publish(gate.slot(), &t, o).is_ok());
    return t;
  }

  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<TenantRegistry> registry_;
};

// Windows as [begin, end) pairs must be pairwise disjoint and inside the
// tenant range.
void expect_disjoint_windows(const std::vector<TenantHandle>& tenants) {
  std::map<uint64_t, uint64_t> windows;
  for (const TenantHandle& t : tenants) {
    EXPECT_GE(t.base_opcode(), MR_OP_TENANT_BASE);
    EXPECT_LE(static_cast<uint64_t>(t.base_opcode()) + t.opcode_cap(), MR_OP_TENANT_END);
    windows[t.base_opcode()] = static_cast<uint64_t>(t.base_opcode()) + t.opcode_cap();
  }
  ASSERT_EQ(windows.size(), tenants.size()) << "two windows share a base opcode";
  uint64_t previous_end = 0;
  for (const auto& [begin, end] : windows) {
    EXPECT_GE(begin, previous_end) << "window at " << begin << " overlaps the one before";
    previous_end = end;
  }
}

TEST_P(TenantTest, DistinctIdsAndDisjointWindows) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::vector<TenantHandle> tenants;
  std::set<uint32_t> ids;
  for (uint32_t i = 0; i < 20; ++i) {
    tenants.push_back(add(tenant_config("t" + std::to_string(i), 64, 1 + (i * 37) % 300)));
    ASSERT_TRUE(tenants.back().valid());
    EXPECT_NE(tenants.back().id(), 0u);
    EXPECT_NE(tenants.back().id() & MR_TENANT_INDEX_MASK, 0u) << "index 0 is never a tenant";
    EXPECT_TRUE(ids.insert(tenants.back().id()).second) << "duplicate id";
    EXPECT_EQ(tenants.back().label(), "t" + std::to_string(i));
  }
  expect_disjoint_windows(tenants);
  for (const TenantHandle& t : tenants) {
    uint32_t global = 0;
    MR_EXPECT_OK(t.global_opcode(0, &global));
    EXPECT_EQ(global, t.base_opcode());
    MR_EXPECT_OK(t.global_opcode(t.opcode_cap() - 1, &global));
    EXPECT_EQ(global, t.base_opcode() + t.opcode_cap() - 1);
  }
  EXPECT_EQ(registry_->stats().live_tenants, 20u);
}

TEST_P(TenantTest, OutOfRangeLocalOpcodeIsRefusedBeforeAnyCounterMoves) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(tenant_config("small", 8, 10));
  uint32_t global = 12345;
  const Status st = t.global_opcode(10, &global);
  EXPECT_EQ(st.code(), Result::kOpcodeOutOfRange);
  EXPECT_EQ(st.value(), 10u);
  EXPECT_EQ(st.limit(), 10u);
  EXPECT_EQ(global, 12345u) << "untouched on failure";
  Ticket ticket;
  MR_EXPECT_RESULT(t.publish_slot(10, {1, 2}, &ticket), Result::kOpcodeOutOfRange);
  MR_EXPECT_RESULT(t.publish_slot(~0u, {}, &ticket), Result::kOpcodeOutOfRange);
  // A batch with one bad opcode publishes nothing.
  SlotRequest batch[3] = {ops::nop(1), ops::nop(2), ops::nop(3)};
  batch[2].opcode = 10;
  MR_EXPECT_RESULT(t.publish_batch(batch, 3, &ticket), Result::kOpcodeOutOfRange);
  EXPECT_EQ(t.published_count(), 0u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
  MR_EXPECT_RESULT(t.publish_slot(MR_OP_NOP, {1, 2, 3, 4, 5, 6}, &ticket), Result::kInvalidArgument);
}

// A completion record's stamp holds 2 status bits and 6 fault bits
// (slot_abi.h): a handler that reports a status past REVOKED, or a fault
// code past MR_FAULT_MAX, reads as FAULT / BAD_ARGUMENT (result 0), never
// as another outcome; codes in range arrive as reported.
TEST_P(TenantTest, AHandlersOutOfRangeStatusOrFaultReadsAsBadArgument) {
  const Status created = Runtime::create(base_config(), tenant_test_consumer(), &rt_);
  ASSERT_TRUE(created.is_ok()) << created.to_string();
  struct Case {
    uint64_t status, fault;
    uint16_t want_status, want_fault;
    uint64_t want_result;
  };
  const Case cases[] = {
      {MR_STATUS_OK, MR_FAULT_NONE, MR_STATUS_OK, MR_FAULT_NONE, 77},
      {MR_STATUS_FAULT, MR_FAULT_MISALIGNED, MR_STATUS_FAULT, MR_FAULT_MISALIGNED, 77},
      {MR_STATUS_FAULT, MR_FAULT_MAX, MR_STATUS_FAULT, MR_FAULT_MAX, 77},
      {MR_STATUS_FAULT, MR_FAULT_MAX + 1, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 77},
      {MR_STATUS_FAULT, 0xFFFF, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 77},
      {MR_STATUS_REVOKED + 1, MR_FAULT_NONE, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 0},
      {0xFFFF, MR_FAULT_NONE, MR_STATUS_FAULT, MR_FAULT_BAD_ARGUMENT, 0},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE("status " + std::to_string(k.status) + " fault " + std::to_string(k.fault));
    SlotRequest r;
    r.opcode = kOpReport;
    r.args[0] = 77;
    r.args[1] = k.status;
    r.args[2] = k.fault;
    Completion c;
    MR_ASSERT_OK(rt_->call(r, &c, scaled(seconds(10))));
    EXPECT_EQ(c.status, k.want_status);
    EXPECT_EQ(c.fault, k.want_fault);
    EXPECT_EQ(c.result, k.want_result);
  }
}

TEST_P(TenantTest, PublishStampsTenantAndGlobalOpcode) {
  // Manual pump: nothing recycles the positions, so the slots can be read back.
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual));
  TenantHandle a = add(tenant_config("a", 16, 512));
  TenantHandle b = add(tenant_config("b", 16, 16));
  Ticket ta, tb;
  MR_ASSERT_OK(a.publish_slot(ops::nop(41), &ta, waiting(true)));
  MR_ASSERT_OK(b.publish_slot(MR_OP_NOP, {42}, &tb, waiting(true)));
  mr_slot slot{};
  MR_ASSERT_OK(RuntimeInternals::peek_slot(*rt_, ta.value, &slot));
  EXPECT_EQ(slot.tenant, a.id());
  EXPECT_EQ(slot.opcode, a.base_opcode() + MR_OP_NOP);
  EXPECT_EQ(slot.args[0], 41u);
  MR_ASSERT_OK(RuntimeInternals::peek_slot(*rt_, tb.value, &slot));
  EXPECT_EQ(slot.tenant, b.id());
  EXPECT_EQ(slot.opcode, b.base_opcode() + MR_OP_NOP);
  Completion c;
  MR_ASSERT_OK(a.wait(ta, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 41u) << "the consumer ran the local NOP";
  MR_ASSERT_OK(b.wait(tb, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 42u);
  // The handler sees the tenant-local opcode and the tenant id.
  Ticket ti;
  MR_ASSERT_OK(a.publish_slot(kOpIdentify, {}, &ti, waiting(true)));
  MR_ASSERT_OK(a.wait(ti, &c, scaled(seconds(10))));
  ASSERT_TRUE(c.ok()) << "status " << c.status << " fault " << c.fault;
  EXPECT_EQ(c.result, (static_cast<uint64_t>(a.id()) << 32) | kOpIdentify);
  // b's window is too small for user opcodes.
  MR_EXPECT_RESULT(b.publish_slot(kOpIdentify, {}, &ti), Result::kOpcodeOutOfRange);
}

TEST_P(TenantTest, RevokedPublishFailsAndQueuedSlotsCompleteRevoked) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle a = add(tenant_config("a"));
  TenantHandle b = add(tenant_config("b"));
  ASSERT_TRUE(a.reserve_staging_bytes(1000));
  ASSERT_TRUE(a.reserve_resident_handles(2));
  BufferHandle a_buffer = 0;
  ASSERT_TRUE(a.alloc_buffer(64, &a_buffer));
  hold(gate);
  constexpr int kSlots = 8;
  std::vector<Ticket> ta(kSlots), tb(kSlots);
  for (int i = 0; i < kSlots; ++i) {
    MR_ASSERT_OK(a.publish_slot(ops::nop(100 + i), &ta[i], waiting(true)));
    MR_ASSERT_OK(b.publish_slot(ops::nop(200 + i), &tb[i], waiting(true)));
  }
  MR_ASSERT_OK(registry_->unregister_tenant(a));
  EXPECT_TRUE(a.revoked());
  EXPECT_FALSE(b.revoked());
  Ticket late;
  MR_EXPECT_RESULT(a.publish_slot(ops::nop(), &late), Result::kRevoked);
  MR_EXPECT_RESULT(registry_->unregister_tenant(a), Result::kRevoked);
  MR_EXPECT_RESULT(a.reserve_staging_bytes(1), Result::kRevoked);
  // Quotas released, buffers freed.
  EXPECT_EQ(a.quota_counters().staging_bytes_in_use, 0u);
  EXPECT_EQ(a.quota_counters().resident_handles_in_use, 0u);
  uint8_t byte = 0;
  MR_EXPECT_RESULT(rt_->read_buffer(a_buffer, 0, &byte, 1), Result::kInvalidArgument);
  gate.open();
  for (int i = 0; i < kSlots; ++i) {
    Completion c;
    MR_ASSERT_OK(a.wait(ta[i], &c, scaled(seconds(10))));
    EXPECT_EQ(c.status, MR_STATUS_REVOKED) << "queued slot " << i << " of the revoked tenant";
    EXPECT_EQ(c.result, 0u);
    MR_ASSERT_OK(b.wait(tb[i], &c, scaled(seconds(10))));
    EXPECT_TRUE(c.ok()) << "the other tenant's slot " << i;
    EXPECT_EQ(c.result, 200u + i);
  }
  MR_EXPECT_OK(a.quiesce(scaled(seconds(10)))) << "a revoked tenant still quiesces";
  MR_EXPECT_OK(b.quiesce(scaled(seconds(10))));
  const auto ca = a.runtime_counters();
  EXPECT_EQ(ca.published, uint64_t{kSlots});
  EXPECT_EQ(ca.drained, uint64_t{kSlots});
  EXPECT_EQ(ca.revoked, uint64_t{kSlots});
  EXPECT_EQ(ca.completed_ok, 0u);
  EXPECT_EQ(ca.device_revoked, uint64_t{kSlots}) << "counted on the consumer too";
  EXPECT_EQ(ca.device_admitted, 0u);
  const auto cb = b.runtime_counters();
  EXPECT_EQ(cb.completed_ok, uint64_t{kSlots});
  EXPECT_EQ(cb.revoked, 0u);
  EXPECT_EQ(cb.device_admitted, uint64_t{kSlots});
  EXPECT_EQ(rt_->stats().revoked, uint64_t{kSlots});
}

TEST_P(TenantTest, QuiesceSucceedsAndTimesOutWithCounters) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle t = add(tenant_config("q"));
  MR_EXPECT_OK(t.quiesce(milliseconds(1))) << "nothing outstanding";
  hold(gate);
  Ticket ticket;
  for (int i = 0; i < 5; ++i) MR_ASSERT_OK(t.publish_slot(ops::nop(i), &ticket, waiting()));
  const Status st = t.quiesce(milliseconds(20));
  EXPECT_EQ(st.code(), Result::kQuiesceTimeout);
  EXPECT_EQ(st.value(), 5u) << "the outstanding count at timeout";
  EXPECT_EQ(t.published_count(), 5u);
  EXPECT_EQ(t.drained_count(), 0u);
  gate.open();
  MR_EXPECT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.published_count(), 5u);
  EXPECT_EQ(t.drained_count(), 5u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
  EXPECT_EQ(t.runtime_counters().completed_ok, 5u);
}

TEST_P(TenantTest, BackpressureAtTheCapReopensAfterDrain) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle t = add(tenant_config("capped", 4));
  TenantHandle other = add(tenant_config("other", 4));
  EXPECT_EQ(t.max_outstanding_slots(), 4u);
  hold(gate);
  Ticket ticket;
  for (int i = 0; i < 4; ++i) MR_ASSERT_OK(t.publish_slot(ops::nop(i), &ticket));
  Status st = t.publish_slot(ops::nop(), &ticket);
  EXPECT_EQ(st.code(), Result::kBackpressure);
  EXPECT_EQ(st.value(), 4u) << "outstanding";
  EXPECT_EQ(st.limit(), 4u) << "cap";
  SlotRequest two[2] = {ops::nop(), ops::nop()};
  MR_EXPECT_RESULT(t.publish_batch(two, 2, &ticket), Result::kBackpressure);
  // A bounded wait also ends in back-pressure while the consumer is held.
  TenantPublishOptions brief;
  brief.timeout = milliseconds(20);
  MR_EXPECT_RESULT(t.publish_slot(ops::nop(), &ticket, brief), Result::kBackpressure);
  EXPECT_EQ(t.published_count(), 4u) << "refused publishes leave no trace";
  EXPECT_GE(t.runtime_counters().backpressure_events, 3u);
  // Another tenant's quota is its own.
  MR_EXPECT_OK(other.publish_slot(ops::nop(), &ticket));
  gate.open();
  MR_ASSERT_OK(t.quiesce(scaled(seconds(10))));
  for (int i = 0; i < 4; ++i) MR_EXPECT_OK(t.publish_slot(ops::nop(i), &ticket));
  MR_EXPECT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.drained_count(), 8u);
  SlotRequest five[5] = {};
  MR_EXPECT_RESULT(t.publish_batch(five, 5, &ticket, waiting()), Result::kInvalidArgument)
      << "a batch larger than the quota can never fit";
}

TEST_P(TenantTest, StagingAndResidentQuotasOvercommitAndUnderflow) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantConfig config = tenant_config("quota");
  config.quotas.staging_bytes = 1000;
  config.quotas.resident_handles = 3;
  TenantHandle t = add(config);
  MR_EXPECT_OK(t.reserve_staging_bytes(600));
  MR_EXPECT_OK(t.reserve_staging_bytes(400));
  Status st = t.reserve_staging_bytes(1);
  EXPECT_EQ(st.code(), Result::kStagingBackpressure);
  EXPECT_EQ(st.value(), 1000u);
  EXPECT_EQ(st.limit(), 1000u);
  MR_EXPECT_RESULT(t.reserve_staging_bytes(~0ull), Result::kStagingBackpressure) << "no overflow";
  MR_EXPECT_OK(t.release_staging_bytes(300));
  MR_EXPECT_RESULT(t.release_staging_bytes(701), Result::kResourceUnderflow);
  EXPECT_EQ(t.quota_counters().staging_bytes_in_use, 700u) << "a refused release changes nothing";
  MR_EXPECT_OK(t.reserve_staging_bytes(300));

  MR_EXPECT_OK(t.reserve_resident_handles(2));
  BufferHandle buffer = 0;
  MR_ASSERT_OK(t.alloc_buffer(128, &buffer)) << "a buffer holds the third handle";
  BufferHandle refused = 0;
  MR_EXPECT_RESULT(t.alloc_buffer(128, &refused), Result::kResidentBackpressure);
  MR_EXPECT_RESULT(t.reserve_resident_handles(1), Result::kResidentBackpressure);
  EXPECT_EQ(t.quota_counters().resident_handles_in_use, 3u);
  MR_EXPECT_OK(t.free_buffer(buffer));
  MR_EXPECT_RESULT(t.free_buffer(buffer), Result::kInvalidArgument) << "freed already";
  MR_EXPECT_OK(t.release_resident_handles(2));
  MR_EXPECT_RESULT(t.release_resident_handles(1), Result::kResourceUnderflow);
  EXPECT_EQ(t.quota_counters().resident_handles_in_use, 0u);
  MR_EXPECT_RESULT(t.note_drained(1), Result::kResourceUnderflow) << "nothing was published";
}

TEST_P(TenantTest, ThirtyTwoThreadsRegisteringAtOnceGetUniqueIdsAndWindows) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr int kThreads = 32;
  std::vector<TenantHandle> handles(kThreads);
  std::vector<Status> results(kThreads);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < kThreads) std::this_thread::yield();
      results[i] = registry_->register_tenant(tenant_config("r" + std::to_string(i), 8, 3 + i), &handles[i]);
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint32_t> ids;
  for (int i = 0; i < kThreads; ++i) {
    MR_ASSERT_OK(results[i]) << "thread " << i;
    EXPECT_TRUE(ids.insert(handles[i].id()).second) << "duplicate id " << handles[i].id();
    EXPECT_EQ(handles[i].opcode_cap(), 3u + i);
  }
  expect_disjoint_windows(handles);
  // Every one of them is live on the consumer.
  for (int i = 0; i < kThreads; ++i) {
    Ticket t;
    Completion c;
    MR_ASSERT_OK(handles[i].publish_slot(ops::nop(i), &t, waiting(true)));
    MR_ASSERT_OK(handles[i].wait(t, &c, scaled(seconds(10))));
    EXPECT_TRUE(c.ok());
    EXPECT_EQ(c.result, uint64_t(i));
  }
}

TEST_P(TenantTest, ClonesPublishingFromManyThreadsCountExactly) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr int kThreads = 4;
  const uint64_t per_thread = std::max<uint64_t>(500, env_u64("MEGARING_STRESS_SLOTS", 1000000) / 200);
  std::mutex seen_mutex;
  std::set<uint64_t> seen;  // every ticket delivered exactly once
  uint64_t duplicates = 0, not_ok = 0;
  TenantConfig config = tenant_config("clones", 64);
  config.on_completion = [&](const Completion& c) {
    std::lock_guard<std::mutex> lock(seen_mutex);
    if (!seen.insert(c.ticket).second) ++duplicates;
    if (!c.ok()) ++not_ok;
  };
  TenantHandle original = add(config);
  BufferHandle counter = 0;
  MR_ASSERT_OK(original.alloc_buffer(8, &counter));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kThreads; ++i) {
    TenantHandle copy = original;  // each thread publishes through its own copy
    threads.emplace_back([&, copy, i] {
      uint64_t sent = 0;
      while (sent < per_thread) {
        Ticket t;
        if ((sent + i) % 3 == 0 && per_thread - sent >= 4) {
          SlotRequest batch[4];
          for (auto& r : batch) r = ops::atomic_add(counter, 0, 1);
          if (!copy.publish_batch(batch, 4, &t, waiting())) failures.fetch_add(1);
          sent += 4;
        } else {
          if (!copy.publish_slot(ops::atomic_add(counter, 0, 1), &t, waiting())) failures.fetch_add(1);
          sent += 1;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  MR_ASSERT_OK(original.quiesce(scaled(seconds(60))));
  const uint64_t total = per_thread * kThreads;
  EXPECT_EQ(original.published_count(), total);
  EXPECT_EQ(original.drained_count(), total);
  const auto c = original.runtime_counters();
  EXPECT_EQ(c.completed_ok, total);
  EXPECT_EQ(c.device_admitted, total);
  uint64_t value = 0;
  MR_ASSERT_OK(original.read_buffer(counter, 0, &value, 8));
  EXPECT_EQ(value, total) << "every slot ran exactly once";
  std::lock_guard<std::mutex> lock(seen_mutex);
  EXPECT_EQ(seen.size(), total);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(not_ok, 0u);
}

TEST_P(TenantTest, FloodingTenantNextToALightOneStaysWithinItsQuota) {
  ASSERT_NO_FATAL_FAILURE(start());
  constexpr uint64_t kFloodCap = 32;
  TenantHandle flood = add(tenant_config("flood", kFloodCap));
  TenantHandle light = add(tenant_config("light", 4));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> flood_sent{0};
  std::vector<std::thread> flooders;
  for (int i = 0; i < 2; ++i) {
    flooders.emplace_back([&] {
      SlotRequest batch[8];
      for (auto& r : batch) r = ops::delay_ns(1500);
      while (!stop.load(std::memory_order_relaxed)) {
        Ticket t;
        // No waiting: hammer the quota as fast as possible.
        if (flood.publish_batch(batch, 8, &t)) flood_sent.fetch_add(8);
      }
    });
  }
  // Let the flood build up before measuring the light tenant.
  while (flood_sent.load() < 4 * kFloodCap) std::this_thread::yield();
  constexpr int kLight = 200;
  uint64_t worst_ahead = 0;
  for (int i = 0; i < kLight; ++i) {
    Ticket t;
    MR_ASSERT_OK(light.publish_slot(ops::nop(i), &t, waiting(true)));
    // Every ticket between DONE_COUNT and ours is an undrained flood slot
    // (drained needs DONE_COUNT past it), so the quota bounds the queue
    // ahead of the light tenant: its wait is bounded, whatever the flood does.
    const uint64_t done = rt_->done_count();
    const uint64_t ahead = t.value > done ? t.value - done : 0;
    worst_ahead = std::max(worst_ahead, ahead);
    Completion c;
    MR_ASSERT_OK(light.wait(t, &c, scaled(seconds(10))));
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c.result, uint64_t(i));
  }
  stop.store(true);
  for (auto& th : flooders) th.join();
  EXPECT_LE(worst_ahead, kFloodCap) << "slots queued ahead of the light tenant";
  MR_EXPECT_OK(flood.quiesce(scaled(seconds(30))));
  MR_EXPECT_OK(light.quiesce(scaled(seconds(30))));
  EXPECT_EQ(light.runtime_counters().completed_ok, uint64_t{kLight});
  EXPECT_EQ(flood.drained_count(), flood_sent.load());
  EXPECT_GT(flood.runtime_counters().backpressure_events, 0u) << "the flood did hit its quota";
}

TEST_P(TenantTest, OutOfWindowSlotWrittenIntoTheRingFaultsOnTheConsumer) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle a = add(tenant_config("a"));
  TenantHandle b = add(tenant_config("b"));
  auto raw = [&](uint32_t tenant, uint32_t opcode) {
    SlotRequest r = ops::nop(77);
    r.tenant = tenant;
    r.opcode = opcode;
    Completion c;
    const Status st = rt_->call(r, &c, scaled(seconds(10)));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return c;
  };
  Completion c = raw(a.id(), b.base_opcode() + MR_OP_NOP);  // a's id, b's window
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(a.id(), a.base_opcode() + a.opcode_cap());  // one past a's window
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(a.id(), MR_OP_NOP);  // a tenant slot with a tenant-less opcode
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(0, a.base_opcode() + MR_OP_NOP);  // tenant-less slot inside a window
  EXPECT_EQ(c.fault, MR_FAULT_OUT_OF_WINDOW);
  c = raw(0xFFFF, MR_OP_TENANT_BASE);  // index beyond the table
  EXPECT_EQ(c.fault, MR_FAULT_BAD_TENANT);
  c = raw(a.id() + (1u << MR_TENANT_INDEX_BITS), a.base_opcode() + MR_OP_NOP);  // wrong generation
  EXPECT_EQ(c.fault, MR_FAULT_BAD_TENANT);
  c = raw(a.id(), a.base_opcode() + MR_OP_NOP);  // the right window runs
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 77u);
  const auto ca = a.runtime_counters();
  EXPECT_EQ(ca.device_out_of_window, 3u);
  EXPECT_EQ(ca.device_admitted, 1u);
  EXPECT_EQ(ca.published, 0u) << "raw slots are not the tenant's own publishes";
  const auto cb = b.runtime_counters();
  EXPECT_EQ(cb.device_out_of_window + cb.device_admitted + cb.device_revoked, 0u);
  // The consumer kept running: a normal tenant slot still works.
  Ticket t;
  MR_ASSERT_OK(b.publish_slot(ops::nop(5), &t, waiting(true)));
  MR_ASSERT_OK(b.wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 5u);
  const auto stats = rt_->stats();
  EXPECT_EQ(stats.faults_by_code[MR_FAULT_OUT_OF_WINDOW], 4u);
  EXPECT_EQ(stats.faults_by_code[MR_FAULT_BAD_TENANT], 2u);
  EXPECT_EQ(registry_->stats().untenanted_slots, 7u);
}

TEST_P(TenantTest, TenantSlotsMayNameOnlyTheirOwnBuffers) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle a = add(tenant_config("a"));
  TenantHandle b = add(tenant_config("b"));
  BufferHandle a_buf = 0;
  MR_ASSERT_OK(a.alloc_buffer(256, &a_buf));
  Ticket t;
  Completion c;
  MR_ASSERT_OK(b.publish_slot(ops::fill(a_buf, 0, 256, 0xEE), &t, waiting(true)));
  MR_ASSERT_OK(b.wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_FAULT);
  EXPECT_EQ(c.fault, MR_FAULT_BAD_HANDLE) << "b may not write a's buffer";
  MR_ASSERT_OK(a.publish_slot(ops::fill(a_buf, 0, 256, 0x11), &t, waiting(true)));
  MR_ASSERT_OK(a.wait(t, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
  std::vector<uint8_t> bytes(256);
  MR_ASSERT_OK(a.read_buffer(a_buf, 0, bytes.data(), bytes.size()));
  EXPECT_EQ(std::count(bytes.begin(), bytes.end(), 0x11), 256);
  MR_EXPECT_RESULT(b.read_buffer(a_buf, 0, bytes.data(), 1), Result::kInvalidArgument);
  MR_EXPECT_RESULT(b.free_buffer(a_buf), Result::kInvalidArgument);
  // The runtime itself (tenant-less) may still use it.
  MR_ASSERT_OK(rt_->call(ops::store_u32(a_buf, 0, 7), &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
}

TEST_P(TenantTest, RegistryFullAtTheTableAndInTheOpcodeSpace) {
  RegistryConfig rc;
  rc.max_tenants = 3;
  rc.opcode_end = MR_OP_TENANT_BASE + 100;
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, 0, 1024, rc));
  TenantHandle t1 = add(tenant_config("1", 8, 40));
  TenantHandle t2 = add(tenant_config("2", 8, 40));
  TenantHandle t3;
  Status st = registry_->register_tenant(tenant_config("3", 8, 40), &t3);
  EXPECT_EQ(st.code(), Result::kRegistryFull) << "only 20 opcodes left: " << st.to_string();
  MR_ASSERT_OK(registry_->register_tenant(tenant_config("3", 8, 20), &t3));
  TenantHandle t4;
  st = registry_->register_tenant(tenant_config("4", 8, 1), &t4);
  EXPECT_EQ(st.code(), Result::kRegistryFull) << "three tenants fill the table: " << st.to_string();
  EXPECT_FALSE(t4.valid());
  expect_disjoint_windows({t1, t2, t3});
  // A revoked tenant's id and window come back once it drained, under a new
  // generation: its old id never names the new tenant.
  const uint32_t old_id = t2.id();
  MR_ASSERT_OK(registry_->unregister_tenant(t2));
  MR_ASSERT_OK(t2.quiesce(scaled(seconds(10))));
  MR_ASSERT_OK(registry_->register_tenant(tenant_config("5", 8, 40), &t4));
  EXPECT_EQ(t4.id() & MR_TENANT_INDEX_MASK, old_id & MR_TENANT_INDEX_MASK);
  EXPECT_NE(t4.id(), old_id);
  expect_disjoint_windows({t1, t3, t4});
  Ticket t;
  Completion c;
  MR_ASSERT_OK(t4.publish_slot(ops::nop(9), &t, waiting(true)));
  MR_ASSERT_OK(t4.wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 9u);
  SlotRequest stale = ops::nop();
  stale.tenant = old_id;
  stale.opcode = t4.base_opcode() + MR_OP_NOP;
  MR_ASSERT_OK(rt_->call(stale, &c, scaled(seconds(10))));
  EXPECT_EQ(c.fault, MR_FAULT_BAD_TENANT) << "the old generation is dead";
}

TEST_P(TenantTest, StalledPumpIsBackpressureAndNothingIsLost) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual, 0, /*capacity=*/64));
  std::set<uint64_t> delivered;
  uint64_t duplicates = 0;
  TenantConfig config = tenant_config("stalled", 10000);
  config.on_completion = [&](const Completion& c) {
    if (!delivered.insert(c.ticket).second) ++duplicates;
  };
  TenantHandle t = add(config);
  // Nobody pumps: the ring fills and stays full.
  uint64_t accepted = 0;
  Ticket ticket;
  Status st;
  for (int i = 0; i < 1000; ++i) {
    st = t.publish_slot(ops::nop(i), &ticket);
    if (!st) break;
    ++accepted;
  }
  ASSERT_EQ(st.code(), Result::kRingFull) << st.to_string();
  EXPECT_EQ(accepted, 64u) << "exactly a ring's worth";
  EXPECT_EQ(t.published_count(), accepted) << "the refused publish was rolled back";
  EXPECT_EQ(t.runtime_counters().pipeline_errors, 1u);
  EXPECT_TRUE(delivered.empty());
  // Pumping frees positions; a waiting publish pumps by itself in manual mode.
  for (int i = 0; i < 200; ++i) {
    MR_ASSERT_OK(t.publish_slot(ops::nop(i), &ticket, waiting()));
    ++accepted;
  }
  MR_ASSERT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.drained_count(), accepted);
  EXPECT_EQ(delivered.size(), accepted);
  EXPECT_EQ(duplicates, 0u);
  EXPECT_EQ(registry_->stats().drained_slots, accepted);
}

TEST_P(TenantTest, AbortDeliversAbortedCompletionsToTenants) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle t = add(tenant_config("aborted"));
  hold(gate);
  std::vector<Ticket> tickets(6);
  for (auto& ticket : tickets) MR_ASSERT_OK(t.publish_slot(ops::nop(1), &ticket, waiting(true)));
  MR_ASSERT_OK(rt_->abort());
  for (auto& ticket : tickets) {
    Completion c;
    MR_ASSERT_OK(t.wait(ticket, &c, scaled(seconds(10))));
    EXPECT_EQ(c.status, MR_STATUS_ABORTED);
  }
  MR_EXPECT_OK(t.quiesce(scaled(seconds(10))));
  EXPECT_EQ(t.runtime_counters().aborted, 6u);
  Ticket late;
  const Status st = t.publish_slot(ops::nop(), &late);
  EXPECT_EQ(st.code(), Result::kAborted);
  EXPECT_EQ(t.published_count(), 6u);
}

// A long user handler that syncs its block every round leaves through the
// collective ctx.abort_requested(): every thread leaves on the same round,
// the slot ends ABORTED and abort() returns without a timeout (on the GPU,
// threads polling the flag on their own could leave on different rounds,
// splitting the block between barriers).
TEST_P(TenantTest, AbortEndsABlockWideHandlerThatPollsCollectively) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1));
  uint64_t* rounds = spin_rounds_word(backend());
  ASSERT_NE(rounds, nullptr);
  using RoundsRef = cuda::atomic_ref<uint64_t, cuda::thread_scope_system>;
  RoundsRef(*rounds).store(0, cuda::std::memory_order_relaxed);
  SlotRequest spin;
  spin.opcode = kOpSpinUntilAbort;
  spin.args[0] = reinterpret_cast<uint64_t>(rounds);
  spin.args[1] = uint64_t{1} << 40;  // far more rounds than the test lasts
  BufferHandle exits = 0;
  const uint64_t exits_init[2] = {~uint64_t{0}, 0};
  MR_ASSERT_OK(rt_->alloc_buffer(sizeof(exits_init), &exits));
  MR_ASSERT_OK(rt_->write_buffer(exits, 0, exits_init, sizeof(exits_init)));
  spin.args[2] = exits;
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket t;
  MR_ASSERT_OK(rt_->publish(spin, &t, keep));
  // Relaxed: the consumer's progress count; it orders nothing we read.
  const auto deadline = std::chrono::steady_clock::now() + scaled(seconds(20));
  while (RoundsRef(*rounds).load(cuda::std::memory_order_relaxed) < 3 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(1));
  const uint64_t before_abort = RoundsRef(*rounds).load(cuda::std::memory_order_relaxed);
  ASSERT_GE(before_abort, 3u) << "the handler never ran three rounds";
  MR_ASSERT_OK(rt_->abort());
  Completion c;
  MR_ASSERT_OK(rt_->wait(t, &c, scaled(seconds(10))));
  EXPECT_EQ(c.status, MR_STATUS_ABORTED);
  // The consumer has stopped: the count no longer moves, and every thread
  // of the block left on the same round, the last one it counted.
  const uint64_t after_abort = RoundsRef(*rounds).load(cuda::std::memory_order_relaxed);
  EXPECT_GE(after_abort, before_abort);
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(RoundsRef(*rounds).load(cuda::std::memory_order_relaxed), after_abort);
  uint64_t exit_rounds[2] = {0, 0};
  MR_ASSERT_OK(rt_->read_buffer(exits, 0, exit_rounds, sizeof(exit_rounds)));
  EXPECT_EQ(exit_rounds[0], exit_rounds[1]) << "threads left on rounds " << exit_rounds[0]
                                            << " to " << exit_rounds[1];
  EXPECT_EQ(exit_rounds[1], after_abort);
}

// A producer caught between reserving its tickets and writing them when the
// runtime aborts. After the abort the host owns every record up to the
// published end, but the pump must not pass those tickets before their
// producer has written them: their positions still carry the last lap's
// origin (another tenant's), and passing them early credited that tenant
// (its outstanding count wrapped) and never this one.
TEST_P(TenantTest, AbortWhileAProducerIsMidPublishCreditsEverySlotToItsOwnTenant) {
  constexpr uint32_t kRing = 16, kBatch = 4;
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual, /*workers=*/1, kRing));
  TenantHandle writer = add(tenant_config("mid-publish"));
  TenantHandle last_lap = add(tenant_config("last-lap"));
  // last_lap's slots take every position once, leaving its origin in each.
  std::vector<SlotRequest> lap(kRing, ops::nop(1));
  Ticket first;
  MR_ASSERT_OK(last_lap.publish_batch(lap.data(), kRing, &first, waiting()));
  MR_ASSERT_OK(last_lap.quiesce(scaled(seconds(10))));

  // The hook holds the writer's publish after its reservation.
  struct Latch {
    std::mutex m;
    std::condition_variable cv;
    bool reserved = false, release = false;
  } latch;
  RuntimeInternals::set_reserve_hook(
      *rt_,
      [](void* arg, uint64_t, uint32_t) {
        auto* l = static_cast<Latch*>(arg);
        std::unique_lock<std::mutex> lock(l->m);
        l->reserved = true;
        l->cv.notify_all();
        l->cv.wait(lock, [l] { return l->release; });
      },
      &latch);
  Status published;
  std::thread producer([&] {
    std::vector<SlotRequest> batch(kBatch, ops::nop(2));
    Ticket t;
    published = writer.publish_batch(batch.data(), kBatch, &t, waiting());
  });
  {
    std::unique_lock<std::mutex> lock(latch.m);
    ASSERT_TRUE(latch.cv.wait_for(lock, scaled(seconds(10)), [&] { return latch.reserved; }));
  }
  MR_ASSERT_OK(rt_->abort());
  for (int i = 0; i < 3; ++i) (void)registry_->pump_once();
  EXPECT_EQ(last_lap.runtime_counters().drained, uint64_t{kRing})
      << "credited a slot it never published";
  EXPECT_EQ(writer.runtime_counters().drained, 0u) << "passed tickets not yet written";

  {
    std::lock_guard<std::mutex> lock(latch.m);
    latch.release = true;
  }
  latch.cv.notify_all();
  producer.join();
  RuntimeInternals::set_reserve_hook(*rt_, nullptr, nullptr);
  MR_EXPECT_OK(published) << "the reservation was made before the abort";
  for (int i = 0; i < 3; ++i) (void)registry_->pump_once();
  MR_EXPECT_OK(writer.quiesce(scaled(seconds(10))));
  MR_EXPECT_OK(last_lap.quiesce(scaled(seconds(10))));
  const auto w = writer.runtime_counters();
  EXPECT_EQ(w.published, uint64_t{kBatch});
  EXPECT_EQ(w.drained, uint64_t{kBatch});
  EXPECT_EQ(w.aborted, uint64_t{kBatch});
  const auto l = last_lap.runtime_counters();
  EXPECT_EQ(l.published, uint64_t{kRing});
  EXPECT_EQ(l.drained, uint64_t{kRing});
}

TEST_P(TenantTest, HandlesOutliveTheRegistryAsRevoked) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(tenant_config("orphan"));
  Ticket ticket;
  MR_ASSERT_OK(t.publish_slot(ops::nop(), &ticket, waiting()));
  registry_.reset();  // revokes and drains
  EXPECT_TRUE(t.revoked());
  EXPECT_EQ(t.drained_count(), 1u);
  MR_EXPECT_RESULT(t.publish_slot(ops::nop(), &ticket), Result::kRevoked);
  MR_EXPECT_OK(t.quiesce(milliseconds(1)));
  TenantHandle empty;
  MR_EXPECT_RESULT(empty.publish_slot(ops::nop(), &ticket), Result::kInvalidArgument);
  // The runtime reaps by itself again.
  Completion c;
  MR_EXPECT_OK(rt_->call(ops::nop(3), &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 3u);
}

TEST_P(TenantTest, OneRegistryPerRuntime) {
  ASSERT_NO_FATAL_FAILURE(start());
  std::unique_ptr<TenantRegistry> second;
  MR_EXPECT_RESULT(TenantRegistry::create(*rt_, {}, &second), Result::kInvalidArgument);
  RegistryConfig bad;
  bad.opcode_begin = MR_OP_USER_BASE;  // would alias tenant-less user opcodes
  registry_.reset();
  MR_EXPECT_RESULT(TenantRegistry::create(*rt_, bad, &second), Result::kInvalidArgument);
}

TEST_P(TenantTest, ANewRegistryNeverReusesTheIdOfSlotsStillQueued) {
  RegistryConfig rc;
  rc.max_tenants = 1;  // one index: the second registry must reuse it
  rc.close_timeout = milliseconds(50);
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kThread, /*workers=*/1, 1024, rc));
  Gate gate(backend());
  ASSERT_TRUE(gate.ok());
  TenantHandle old_tenant = add(tenant_config("old"));
  hold(gate);
  std::vector<Ticket> queued(3);
  for (auto& t : queued) MR_ASSERT_OK(old_tenant.publish_slot(ops::nop(1), &t, waiting(true)));
  registry_.reset();  // revokes; its drain times out: the slots sit behind the gate
  Completion c;
  MR_EXPECT_RESULT(old_tenant.wait(queued[0], &c, scaled(seconds(10))), Result::kRevoked)
      << "no pump will deliver it any more";
  MR_EXPECT_RESULT(old_tenant.quiesce(scaled(seconds(10))), Result::kRevoked);

  MR_ASSERT_OK(TenantRegistry::create(*rt_, rc, &registry_));
  TenantHandle next = add(tenant_config("next"));
  ASSERT_TRUE(next.valid());
  EXPECT_EQ(next.id() & MR_TENANT_INDEX_MASK, old_tenant.id() & MR_TENANT_INDEX_MASK);
  EXPECT_NE(next.id(), old_tenant.id()) << "same index, new generation";
  gate.open();
  Ticket t;
  MR_ASSERT_OK(next.publish_slot(ops::nop(8), &t, waiting(true)));
  MR_ASSERT_OK(next.wait(t, &c, scaled(seconds(10))));
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.result, 8u);
  MR_ASSERT_OK(next.quiesce(scaled(seconds(10))));
  const auto counters = next.runtime_counters();
  EXPECT_EQ(counters.published, 1u);
  EXPECT_EQ(counters.drained, 1u) << "the old tenant's slots are not credited to the new one";
  EXPECT_EQ(counters.device_admitted, 1u) << "the old tenant's slots never ran as the new one";
  EXPECT_EQ(registry_->stats().untenanted_slots, 4u) << "3 old slots + the gate";
  EXPECT_EQ(rt_->stats().faults_by_code[MR_FAULT_BAD_TENANT], 3u);
}

TEST_P(TenantTest, UnregisterWhileOtherThreadsPublishLosesNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle victim = add(tenant_config("victim", 64));
  TenantHandle bystander = add(tenant_config("bystander", 64));
  std::atomic<uint64_t> accepted{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    TenantHandle copy = victim;
    threads.emplace_back([&, copy] {
      for (;;) {
        Ticket t;
        const Status st = copy.publish_slot(ops::nop(1), &t, waiting());
        if (st.code() == Result::kRevoked) return;
        if (!st) {
          unexpected.fetch_add(1);
          return;
        }
        accepted.fetch_add(1);
      }
    });
  }
  while (accepted.load() < 2000) std::this_thread::yield();
  MR_ASSERT_OK(registry_->unregister_tenant(victim));
  for (auto& th : threads) th.join();
  EXPECT_EQ(unexpected.load(), 0);
  MR_ASSERT_OK(victim.quiesce(scaled(seconds(30))));
  const auto c = victim.runtime_counters();
  EXPECT_EQ(c.published, accepted.load()) << "every accepted publish, no refused one";
  EXPECT_EQ(c.drained, c.published);
  EXPECT_EQ(c.completed_ok + c.revoked, c.published) << "each ran or was revoked, once";
  EXPECT_EQ(c.faulted + c.aborted, 0u);
  // Its id and window retire once the pump has seen it drained.
  const auto deadline = std::chrono::steady_clock::now() + scaled(seconds(10));
  while (registry_->stats().draining_tenants != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(1));
  EXPECT_EQ(registry_->stats().draining_tenants, 0u);
  Ticket t;
  Completion done;
  MR_ASSERT_OK(bystander.publish_slot(ops::nop(4), &t, waiting(true)));
  MR_ASSERT_OK(bystander.wait(t, &done, scaled(seconds(10))));
  EXPECT_EQ(done.result, 4u);
}

TEST_P(TenantTest, NoteDrainedNeverCountsASlotTwice) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual));
  TenantHandle t = add(tenant_config("noted"));
  Ticket ticket;
  MR_ASSERT_OK(t.publish_slot(ops::nop(), &ticket, waiting()));
  MR_ASSERT_OK(t.publish_slot(ops::nop(), &ticket, waiting()));
  MR_EXPECT_RESULT(t.note_drained(1), Result::kResourceUnderflow) << "nothing delivered yet";
  MR_ASSERT_OK(t.quiesce(scaled(seconds(10))));  // pumps: the pump drains both
  MR_EXPECT_RESULT(t.note_drained(1), Result::kResourceUnderflow) << "the pump already counted them";
  EXPECT_EQ(t.published_count(), 2u);
  EXPECT_EQ(t.drained_count(), 2u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
}

// Regression (issue 15): a drain pass that throws (no host memory to park a
// kept result) commits nothing; its records were once delivered all the
// same, and again by the next pass, which reaps the same tickets.
TEST_P(TenantTest, ADrainPassThatThrowsDeliversNothingTwice) {
  ASSERT_NO_FATAL_FAILURE(start(PumpMode::kManual));
  int deliveries = 0;
  TenantConfig config = tenant_config("delivered-once");
  config.on_completion = [&](const Completion&) { ++deliveries; };  // the pump runs on this thread
  TenantHandle t = add(config);
  Ticket tenant_ticket;
  MR_ASSERT_OK(t.publish_slot(ops::nop(5), &tenant_ticket, waiting()));
  megaring::PublishOptions keep;
  keep.keep_result = true;
  Ticket kept;
  MR_ASSERT_OK(rt_->publish(ops::nop(7), &kept, keep));  // after the tenant's: the pass parks it
  MR_ASSERT_OK(rt_->wait_done(kept, scaled(seconds(10))));
  struct Hook {
    uint64_t kept;
    int calls = 0;
  } hook{kept.value};
  RuntimeInternals::set_park_hook(
      *rt_,
      [](void* arg, uint64_t ticket) {
        auto* h = static_cast<Hook*>(arg);
        if (ticket == h->kept && h->calls++ == 0) throw std::bad_alloc();
      },
      &hook);
  EXPECT_EQ(registry_->pump_once(), 0u) << "the pass threw: nothing reaped";
  EXPECT_EQ(deliveries, 0) << "nor delivered";
  EXPECT_EQ(registry_->pump_once(), 2u);
  RuntimeInternals::set_park_hook(*rt_, nullptr, nullptr);
  EXPECT_EQ(hook.calls, 2);
  EXPECT_EQ(deliveries, 1);
  EXPECT_EQ(t.published_count(), 1u);
  EXPECT_EQ(t.drained_count(), 1u);
  EXPECT_EQ(t.quota_counters().outstanding_slots, 0u);
  Completion c;
  MR_ASSERT_OK(rt_->wait(kept, &c, scaled(seconds(10))));
  EXPECT_EQ(c.result, 7u) << "parked by the second pass";
}

// Regression (issue 13): buffers' handles and explicit reservations were one
// counter, so release_resident_handles() could hand back a buffer's handle
// and let the tenant hold more buffers than its quota.
TEST_P(TenantTest, ABuffersResidentHandleCannotBeReleasedAsAReservation) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantConfig config = tenant_config("resident");
  config.quotas.resident_handles = 2;
  TenantHandle t = add(config);
  BufferHandle a = 0, b = 0, c = 0;
  MR_ASSERT_OK(t.alloc_buffer(64, &a));
  MR_ASSERT_OK(t.alloc_buffer(64, &b));
  MR_EXPECT_RESULT(t.release_resident_handles(2), Result::kResourceUnderflow)
      << "nothing was reserved explicitly";
  MR_EXPECT_RESULT(t.release_resident_handles(1), Result::kResourceUnderflow);
  MR_EXPECT_RESULT(t.alloc_buffer(64, &c), Result::kResidentBackpressure) << "two buffers fill it";
  auto q = t.quota_counters();
  EXPECT_EQ(q.resident_handles_in_use, 2u);
  EXPECT_EQ(q.resident_buffers, 2u);
  EXPECT_EQ(q.resident_handles_reserved, 0u);
  MR_EXPECT_OK(t.free_buffer(a));
  MR_EXPECT_OK(t.reserve_resident_handles(1)) << "a freed buffer's handle is free again";
  MR_EXPECT_RESULT(t.alloc_buffer(64, &c), Result::kResidentBackpressure);
  MR_EXPECT_OK(t.release_resident_handles(1));
  MR_EXPECT_OK(t.free_buffer(b));
  MR_EXPECT_RESULT(t.free_buffer(b), Result::kInvalidArgument) << "double free";
  MR_EXPECT_RESULT(t.free_buffer(a), Result::kInvalidArgument) << "stale handle";
  q = t.quota_counters();
  EXPECT_EQ(q.resident_handles_in_use, 0u);
  EXPECT_EQ(q.resident_buffers, 0u);
  EXPECT_EQ(q.resident_handles_reserved, 0u);
}

// Regression (issue 13): destroying the runtime before its registry used to
// crash (the pump and the handles kept calling into the freed runtime).
TEST_P(TenantTest, DestroyingTheRuntimeFirstDetachesTheRegistry) {
  ASSERT_NO_FATAL_FAILURE(start());
  Gate gate(backend());
  hold(gate);  // a queued slot and a kept ticket are still pending below
  TenantConfig config = tenant_config("left-behind");
  config.quotas.staging_bytes = 100;
  TenantHandle t = add(config);
  BufferHandle buffer = 0;
  MR_ASSERT_OK(t.alloc_buffer(64, &buffer));
  MR_ASSERT_OK(t.reserve_staging_bytes(10));
  Ticket kept;
  MR_ASSERT_OK(t.publish_slot(ops::nop(1), &kept, waiting(true)));
  rt_.reset();  // aborts; the registry must let go of it first
  EXPECT_TRUE(t.revoked());
  Ticket ticket;
  MR_EXPECT_RESULT(t.publish_slot(ops::nop(), &ticket, waiting()), Result::kRevoked);
  Completion c;
  MR_EXPECT_RESULT(t.wait(kept, &c, milliseconds(1)), Result::kRevoked);
  // That answer was final: the ticket is no longer pending (the API-sequence
  // fuzzer found release() still taking it).
  MR_EXPECT_RESULT(t.wait(kept, &c, milliseconds(1)), Result::kInvalidArgument);
  MR_EXPECT_RESULT(t.release(kept), Result::kInvalidArgument);
  MR_EXPECT_RESULT(t.quiesce(milliseconds(1)), Result::kRevoked) << "its slot never drained";
  BufferHandle another = 0;
  MR_EXPECT_RESULT(t.alloc_buffer(64, &another), Result::kRevoked);
  MR_EXPECT_RESULT(t.free_buffer(buffer), Result::kRevoked);
  uint8_t byte = 0;
  MR_EXPECT_RESULT(t.write_buffer(buffer, 0, &byte, 1), Result::kRevoked);
  MR_EXPECT_RESULT(t.reserve_staging_bytes(1), Result::kRevoked);
  const auto q = t.quota_counters();
  EXPECT_EQ(q.staging_bytes_in_use, 0u);
  EXPECT_EQ(q.resident_handles_in_use, 0u);
  (void)t.runtime_counters();  // frozen counters; must not read the runtime
  EXPECT_EQ(registry_->pump_once(), 0u);
  TenantHandle late;
  const Status st = registry_->register_tenant(tenant_config("late"), &late);
  EXPECT_EQ(st.code(), Result::kRevoked) << st.to_string();
  EXPECT_NE(st.message().find("runtime was destroyed"), std::string::npos) << st.to_string();
  MR_EXPECT_RESULT(registry_->unregister_tenant(t), Result::kRevoked);
  EXPECT_EQ(registry_->stats().live_tenants, 0u);
  registry_.reset();  // after its runtime: no crash, nothing touched
}

// Quota refusals carry what there is and what was asked (status.hpp);
// an error the runtime returns through a tenant call is that error itself,
// with no amounts.
TEST_P(TenantTest, RefusalsCarryTheirValueAndLimit) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantConfig config = tenant_config("amounts");
  config.quotas.staging_bytes = 100;
  TenantHandle t = add(config);
  MR_ASSERT_OK(t.reserve_staging_bytes(10));
  const Status under = t.release_staging_bytes(11);
  EXPECT_EQ(under.code(), Result::kResourceUnderflow) << under.to_string();
  EXPECT_EQ(under.value(), 10u) << "reserved";
  EXPECT_EQ(under.limit(), 11u) << "asked back";
  const Status over = t.reserve_staging_bytes(91);
  EXPECT_EQ(over.code(), Result::kStagingBackpressure) << over.to_string();
  EXPECT_EQ(over.value(), 10u) << "in use";
  EXPECT_EQ(over.limit(), 100u) << "quota";
  const Status copy = over;  // a copy keeps them
  EXPECT_EQ(copy.value(), 10u);
  EXPECT_EQ(copy.limit(), 100u);
  BufferHandle buffer = 0;
  MR_ASSERT_OK(t.alloc_buffer(8, &buffer));
  uint8_t bytes[16] = {};
  const Status range = t.write_buffer(buffer, 4, bytes, sizeof bytes);
  EXPECT_EQ(range.code(), Result::kInvalidArgument) << "the runtime's own code";
  EXPECT_EQ(range.value(), 0u);
  EXPECT_EQ(range.limit(), 0u);
}

MEGARING_INSTANTIATE_BACKENDS(TenantTest);

// One result type for the whole API: every code, the tenant ones included,
// has a name of its own; a value past the last one reads as unknown.
TEST(ResultTest, EveryResultHasItsOwnName) {
  constexpr int kLast = static_cast<int>(Result::kInUse);
  std::set<std::string> names;
  for (int r = 0; r <= kLast; ++r) {
    const std::string name = megaring::result_string(static_cast<Result>(r));
    EXPECT_EQ(name.find("unknown"), std::string::npos) << "result " << r;
    EXPECT_TRUE(names.insert(name).second) << "result " << r << " repeats \"" << name << "\"";
  }
  EXPECT_STREQ(megaring::result_string(static_cast<Result>(kLast + 1)), "unknown result")
      << "a code past kInUse: name it and extend this test";
  const Status st(Result::kBackpressure, "4 slots outstanding", 4, 8);
  EXPECT_EQ(st.to_string(), "backpressure: 4 slots outstanding");
  EXPECT_EQ(st.value(), 4u);
  EXPECT_EQ(st.limit(), 8u);
  EXPECT_EQ(Status().value(), 0u);
  EXPECT_EQ(Status(Result::kTimeout, "late").limit(), 0u);
}

}  // namespace
}  // namespace megaring_test
