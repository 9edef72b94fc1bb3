// SPDX-License-Identifier: Apache-2.0
// Opcode grants per tenant (tenant.hpp, "Opcode grants"), on every backend
// (Cpu/..., Gpu/...): ungranted built-in and user opcodes fault
// NOT_GRANTED and are counted, granted ones run, the default grants
// everything, hostile grants are refused, and grants that change while
// several producer threads publish leave every slot run entirely under the
// old or entirely under the new grants.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::OpcodeGrants;
using megaring::RegistryConfig;
using megaring::SlotRequest;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
namespace ops = megaring::ops;
using std::chrono::seconds;

constexpr uint32_t kCap = 512;  // a window with user opcodes (MR_OP_USER_BASE = 256)
constexpr int kProducers = 4;

TenantPublishOptions kept() {
  TenantPublishOptions o;
  o.keep_result = true;
  o.timeout = scaled(seconds(30));
  return o;
}

TenantConfig config_with(OpcodeGrants grants, uint32_t cap = kCap) {
  TenantConfig c;
  c.label = "granted";
  c.quotas.opcode_cap = cap;
  c.quotas.max_outstanding_slots = 1024;
  c.grants = std::move(grants);
  return c;
}

class GrantsTest : public BackendTest {
 protected:
  void start(RegistryConfig rc = {}) {
    Config c = base_config();
    const Status st = Runtime::create(c, tenant_test_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    MR_ASSERT_OK(TenantRegistry::create(*rt_, rc, &registry_));
  }
  void TearDown() override {
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
  // Publishes one kept slot with a tenant-local opcode and waits for it.
  static Completion run(const TenantHandle& t, const SlotRequest& local) {
    Ticket ticket;
    Completion c;
    c.status = 0xFFFF;  // neither OK nor FAULT unless the wait fills it in
    const Status st = t.publish_slot(local, &ticket, kept());
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    if (st) MR_EXPECT_OK(t.wait(ticket, &c, scaled(seconds(30))));
    return c;
  }
  static SlotRequest local(uint32_t opcode, uint64_t a0 = 0) {
    SlotRequest r;
    r.opcode = opcode;
    r.args[0] = a0;
    return r;
  }

  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<TenantRegistry> registry_;
};

void expect_not_granted(const Completion& c, const char* what) {
  EXPECT_EQ(c.status, MR_STATUS_FAULT) << what;
  EXPECT_EQ(c.fault, MR_FAULT_NOT_GRANTED) << what;
}

TEST_P(GrantsTest, DefaultGrantsEveryOpcodeOfTheWindow) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(config_with(OpcodeGrants{}, 1024));
  OpcodeGrants g;
  g.all = false;
  MR_ASSERT_OK(t.grants(&g));
  EXPECT_TRUE(g.all);
  EXPECT_TRUE(g.opcodes.empty());
  Completion c = run(t, ops::nop(41));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 41u);
  c = run(t, local(kOpIdentify));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, (static_cast<uint64_t>(t.id()) << 32) | kOpIdentify);
  // Opcodes the bitmap does not name one by one are granted too: they
  // fault as a tenant-less slot would (unknown), not NOT_GRANTED.
  for (uint32_t op : {100u, megaring::kGrantUserEnd, 1023u}) {
    c = run(t, local(op));
    EXPECT_EQ(c.status, MR_STATUS_FAULT) << op;
    EXPECT_EQ(c.fault, MR_FAULT_UNKNOWN_OPCODE) << op;
  }
  EXPECT_EQ(t.runtime_counters().device_not_granted, 0u);
}

TEST_P(GrantsTest, UngrantedBuiltinAndUserOpcodesFaultAndAreCounted) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(config_with(OpcodeGrants::only({MR_OP_NOP, kOpIdentify, MR_OP_NOP})));
  OpcodeGrants g;
  MR_ASSERT_OK(t.grants(&g));
  EXPECT_FALSE(g.all);
  EXPECT_EQ(g.opcodes, (std::vector<uint32_t>{MR_OP_NOP, kOpIdentify})) << "sorted, no duplicates";
  BufferHandle buf;
  MR_ASSERT_OK(t.alloc_buffer(64, &buf));

  Completion c = run(t, ops::nop(5));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, 5u);
  c = run(t, local(kOpIdentify));
  EXPECT_EQ(c.status, MR_STATUS_OK);
  EXPECT_EQ(c.result, (static_cast<uint64_t>(t.id()) << 32) | kOpIdentify);
  // Not granted: a built-in (that would have changed the buffer), a user
  // opcode, and one the bitmap does not name on its own.
  expect_not_granted(run(t, ops::atomic_add(buf, 0, 7)), "ATOMIC_ADD");
  expect_not_granted(run(t, local(kOpReport, 1)), "kOpReport");
  expect_not_granted(run(t, local(100)), "local 100");
  uint64_t word = 1;
  MR_ASSERT_OK(t.read_buffer(buf, 0, &word, 8));
  EXPECT_EQ(word, 0u) << "an ungranted ATOMIC_ADD ran";

  MR_ASSERT_OK(t.quiesce(scaled(seconds(30))));
  const megaring::TenantRuntimeCounters rc = t.runtime_counters();
  EXPECT_EQ(rc.device_not_granted, 3u);
  EXPECT_EQ(rc.faults_by_code[MR_FAULT_NOT_GRANTED], 3u);
  EXPECT_EQ(rc.device_admitted, 2u);
  EXPECT_EQ(rc.completed_ok, 2u);
  EXPECT_EQ(rc.faulted, 3u);
}

TEST_P(GrantsTest, HostileGrantsAreRefusedAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(start());
  // At registration: nothing is registered.
  TenantHandle none;
  Status st = registry_->register_tenant(config_with(OpcodeGrants::only({16}), 16), &none);
  EXPECT_EQ(st.code(), Result::kOpcodeOutOfRange) << st.to_string();
  EXPECT_EQ(st.value(), 16u);
  EXPECT_EQ(st.limit(), 16u);
  MR_EXPECT_RESULT(registry_->register_tenant(config_with(OpcodeGrants::only({0})), &none),
                   Result::kInvalidArgument);
  EXPECT_FALSE(none.valid());
  EXPECT_EQ(registry_->stats().live_tenants, 0u);

  TenantHandle t = add(config_with(OpcodeGrants::only({MR_OP_NOP}), 1024));
  const std::vector<std::pair<std::vector<uint32_t>, Result>> cases = {
      {{1024}, Result::kOpcodeOutOfRange},        // the window's end
      {{0xFFFFFFFFu}, Result::kOpcodeOutOfRange},
      {{MR_OP_NOP, 4096}, Result::kOpcodeOutOfRange},
      {{0}, Result::kInvalidArgument},             // never valid
      {{megaring::kGrantSystemEnd}, Result::kInvalidArgument},
      {{MR_OP_USER_BASE - 1}, Result::kInvalidArgument},
      {{megaring::kGrantUserEnd}, Result::kInvalidArgument},
      {{MR_OP_NOP, megaring::kGrantUserEnd + 1}, Result::kInvalidArgument},
  };
  for (const auto& [opcodes, want] : cases) {
    MR_EXPECT_RESULT(t.set_grants(OpcodeGrants::only(opcodes)), want) << opcodes.back();
    OpcodeGrants g;
    MR_ASSERT_OK(t.grants(&g));
    EXPECT_EQ(g.opcodes, std::vector<uint32_t>{MR_OP_NOP}) << "a refused set_grants changed them";
  }
  EXPECT_EQ(run(t, ops::nop(3)).status, MR_STATUS_OK);
  expect_not_granted(run(t, ops::fence()), "FENCE after refused set_grants");
  // The limits themselves are grantable.
  MR_EXPECT_OK(t.set_grants(OpcodeGrants::only(
      {1, megaring::kGrantSystemEnd - 1, MR_OP_USER_BASE, megaring::kGrantUserEnd - 1})));
  // An empty set grants nothing.
  MR_EXPECT_OK(t.set_grants(OpcodeGrants::only({})));
  expect_not_granted(run(t, ops::nop(3)), "NOP with no grants");

  MR_EXPECT_RESULT(t.grants(nullptr), Result::kInvalidArgument);
  MR_EXPECT_RESULT(TenantHandle().set_grants(OpcodeGrants{}), Result::kInvalidArgument);
  OpcodeGrants g;
  MR_EXPECT_RESULT(TenantHandle().grants(&g), Result::kInvalidArgument);
  MR_ASSERT_OK(registry_->unregister_tenant(t));
  MR_EXPECT_RESULT(t.set_grants(OpcodeGrants{}), Result::kRevoked);
  MR_EXPECT_OK(t.grants(&g)) << "the query still answers";
  MR_ASSERT_OK(t.quiesce(scaled(seconds(30))));
  registry_.reset();
  MR_EXPECT_RESULT(t.set_grants(OpcodeGrants{}), Result::kRevoked);
}

// A reused tenant index carries its new tenant's grants, never its
// predecessor's (registration writes them with the entry).
TEST_P(GrantsTest, ReusedIndexTakesTheNewTenantsGrants) {
  RegistryConfig rc;
  rc.max_tenants = 1;
  ASSERT_NO_FATAL_FAILURE(start(rc));
  TenantHandle a = add(config_with(OpcodeGrants::only({MR_OP_FENCE})));
  expect_not_granted(run(a, ops::nop(1)), "NOP of a");
  MR_ASSERT_OK(registry_->unregister_tenant(a));
  MR_ASSERT_OK(a.quiesce(scaled(seconds(30))));
  TenantHandle b = add(config_with(OpcodeGrants{}));
  ASSERT_EQ(b.id() & MR_TENANT_INDEX_MASK, a.id() & MR_TENANT_INDEX_MASK);
  EXPECT_EQ(run(b, ops::nop(2)).result, 2u);
  MR_ASSERT_OK(registry_->unregister_tenant(b));
  MR_ASSERT_OK(b.quiesce(scaled(seconds(30))));
  TenantHandle c = add(config_with(OpcodeGrants::only({MR_OP_FENCE})));
  expect_not_granted(run(c, ops::nop(3)), "NOP of c");
}

// Grant state k (k = number of set_grants calls that returned): even k
// grants NOP and not kOpIdentify, odd k the reverse; kOpReport always, so a
// slot that saw a mix of two states (or none) shows.
OpcodeGrants grants_of_state(uint64_t k) {
  return OpcodeGrants::only({k % 2 == 0 ? MR_OP_NOP : kOpIdentify, kOpReport});
}

// One producer's batch: kept slots, NOP (echoing a unique value) at even
// positions, kOpIdentify and kOpReport (reporting OK with a unique value)
// at odd ones, each checked: OK with the right result or FAULT NOT_GRANTED,
// nothing else; kOpReport, granted in every state, always runs. Returns
// whether each ran.
enum class Kind { kNop, kIdentify, kReport };
struct SlotResult {
  Kind kind;
  bool ran;
};
std::vector<SlotResult> run_batch(const TenantHandle& t, uint64_t tag) {
  constexpr uint32_t kBatch = 16;
  Ticket tickets[kBatch];
  std::vector<SlotResult> out;
  for (uint32_t i = 0; i < kBatch; ++i) {
    SlotRequest r = ops::nop(tag + i);
    if (i % 4 == 1) r.opcode = kOpIdentify;
    if (i % 4 == 3) r.opcode = kOpReport;  // args[0] = result; status and fault 0
    const Status st = t.publish_slot(r, &tickets[i], kept());
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    if (!st) return out;
  }
  for (uint32_t i = 0; i < kBatch; ++i) {
    Completion c;
    const Status st = t.wait(tickets[i], &c, scaled(seconds(60)));
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    if (!st) continue;
    const Kind kind = i % 4 == 1 ? Kind::kIdentify : i % 4 == 3 ? Kind::kReport : Kind::kNop;
    const uint64_t want =
        kind == Kind::kIdentify ? (static_cast<uint64_t>(t.id()) << 32) | kOpIdentify : tag + i;
    const bool ran = c.status == MR_STATUS_OK && c.result == want;
    const bool refused = c.status == MR_STATUS_FAULT && c.fault == MR_FAULT_NOT_GRANTED;
    EXPECT_TRUE(ran || refused) << "slot " << i << ": status " << c.status << " fault " << c.fault
                                << " result " << c.result;
    EXPECT_TRUE(ran || kind != Kind::kReport) << "kOpReport, granted in every state, was refused";
    out.push_back({kind, ran});
  }
  return out;
}

// Every slot of `batch` ran exactly as grant state `state` says.
void expect_state(const std::vector<SlotResult>& batch, uint64_t state) {
  for (const SlotResult& r : batch) {
    const bool granted = r.kind == Kind::kReport || (state % 2 == 0) == (r.kind == Kind::kNop);
    EXPECT_EQ(r.ran, granted) << "opcode kind " << static_cast<int>(r.kind)
                              << " under grant state " << state;
  }
}

uint64_t count_ran(const std::vector<SlotResult>& batch) {
  return static_cast<uint64_t>(
      std::count_if(batch.begin(), batch.end(), [](const SlotResult& r) { return r.ran; }));
}

// Phases: grants set, then four producers publish and wait; every slot of
// a phase was published after set_grants returned and before the next
// change, so each must match that phase's grants exactly.
TEST_P(GrantsTest, PhasesSeparatedByWaitsRunStrictlyUnderTheirGrants) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(config_with(grants_of_state(0)));
  for (int phase = 0; phase < 6; ++phase) {
    MR_ASSERT_OK(t.set_grants(grants_of_state(phase)));
    std::vector<std::thread> producers;
    for (int p = 0; p < kProducers; ++p)
      producers.emplace_back([&, p] {
        for (int b = 0; b < 4; ++b) {
          const std::vector<SlotResult> batch = run_batch(t, (uint64_t{1} << 40) * (p + 1) + b * 100);
          EXPECT_EQ(batch.size(), 16u);
          expect_state(batch, static_cast<uint64_t>(phase));
        }
      });
    for (auto& th : producers) th.join();
  }
  MR_ASSERT_OK(t.quiesce(scaled(seconds(30))));
  const megaring::TenantRuntimeCounters rc = t.runtime_counters();
  // A batch: 8 NOP, 4 kOpIdentify, 4 kOpReport; 4 producers x 4 batches a
  // phase; 3 phases refuse kOpIdentify, 3 NOP.
  EXPECT_EQ(rc.device_not_granted, 3u * kProducers * 4 * (4 + 8));
  EXPECT_EQ(rc.faults_by_code[MR_FAULT_NOT_GRANTED], rc.device_not_granted);
}

// Free-running: four producers publish while a fifth thread flips the
// grants. Every slot completes once, ran or NOT_GRANTED and nothing else;
// a batch during which no change was under way (the count of changes that
// returned, read before publishing, equals the count of changes begun, read
// after the last completion) must match that state exactly.
TEST_P(GrantsTest, ChangesWhileProducersPublishRunEachSlotUnderOldOrNew) {
  ASSERT_NO_FATAL_FAILURE(start());
  TenantHandle t = add(config_with(grants_of_state(0)));
  std::atomic<uint64_t> started{0}, finished{0};  // set_grants calls begun, returned
  std::atomic<uint64_t> batches{0}, strict_batches{0}, ok{0}, refused{0};
  std::atomic<bool> stop{false};
  constexpr uint64_t kChanges = 40;
  std::thread flipper([&] {
    for (uint64_t k = 1; k <= kChanges; ++k) {
      // Progress, not time: some batches run between two changes.
      const uint64_t seen = batches.load();
      while (batches.load() < seen + 2 && !stop.load()) std::this_thread::yield();
      started.store(k);  // seq_cst: ordered before the words set_grants stores
      const Status st = t.set_grants(grants_of_state(k));
      EXPECT_TRUE(st.is_ok()) << st.to_string();
      finished.store(k);
    }
    stop.store(true);
  });
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.emplace_back([&, p] {
      for (uint64_t b = 0;; ++b) {
        // The batch after the flipper's last change is strict for sure.
        const bool last = stop.load();
        const uint64_t before = finished.load();  // changes 1..before returned
        const std::vector<SlotResult> batch = run_batch(t, (uint64_t{1} << 40) * (p + 1) + b * 100);
        const uint64_t after = started.load();  // no change after it had begun
        if (after == before) {
          // Admitted after change `before` returned and before change
          // `before + 1` began: exactly state `before`.
          expect_state(batch, before);
          ++strict_batches;
        }
        ok += count_ran(batch);
        refused += batch.size() - count_ran(batch);
        ++batches;
        if (last) break;
      }
    });
  flipper.join();
  for (auto& th : producers) th.join();
  EXPECT_GE(strict_batches.load(), static_cast<uint64_t>(kProducers));
  MR_ASSERT_OK(t.quiesce(scaled(seconds(60))));
  const megaring::TenantRuntimeCounters rc = t.runtime_counters();
  EXPECT_EQ(rc.published, rc.drained);
  EXPECT_EQ(rc.completed_ok, ok.load());
  EXPECT_EQ(rc.faulted, refused.load()) << "only NOT_GRANTED faults";
  EXPECT_EQ(rc.faults_by_code[MR_FAULT_NOT_GRANTED], refused.load());
  EXPECT_EQ(rc.device_not_granted, refused.load());
  EXPECT_EQ(rc.device_admitted, ok.load());
  EXPECT_EQ(rc.published, ok.load() + refused.load()) << "every slot completed exactly once";
}

MEGARING_INSTANTIATE_BACKENDS(GrantsTest);

}  // namespace
}  // namespace megaring_test
