// SPDX-License-Identifier: Apache-2.0
// Shared scaffolding of the tenant tests (megaring_test_tenant, one file per
// concern under tests/tenant/): registry, opcode windows, quotas, the drain
// pump, consumer enforcement and revocation, on every backend (Cpu/...,
// Gpu/...).
//
// Tests that need slots to stay queued hold the only consumer unit
// (Config::workers = 1) with a gate slot (tenant_test_ops.hpp) and open it
// once the state under test is set up: no timing assumptions.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <megaring/tenant.hpp>

#include "runtime/runtime_internal.hpp"
#include "backend_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {

// The names every tenant test uses, spelled once here.
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

inline TenantPublishOptions waiting(bool keep = false) {
  TenantPublishOptions o;
  o.keep_result = keep;
  o.timeout = scaled(seconds(20));
  return o;
}

inline TenantConfig tenant_config(const std::string& label, uint64_t max_outstanding = 256,
                                  uint32_t opcode_cap = 16) {
  TenantConfig c;
  c.label = label;
  c.quotas.max_outstanding_slots = max_outstanding;
  c.quotas.opcode_cap = opcode_cap;
  return c;
}

// A tenant-less slot that holds its consumer unit until the gate opens.
class Gate {
 public:
  explicit Gate(Backend backend) : cuda_(backend == Backend::kCuda) {
    if (ok()) set_gate(cuda_, 0);
  }
  bool ok() const { return gate_word(cuda_) != nullptr; }
  SlotRequest slot() const {
    SlotRequest r;
    r.opcode = kOpGate;
    r.args[0] = reinterpret_cast<uint64_t>(gate_word(cuda_));
    return r;
  }
  void open() { set_gate(cuda_, 1); }
  // Opens the gate whatever state a failed test left it in.
  static void open(Backend backend) {
    const bool cuda = backend == Backend::kCuda;
    if (gate_word(cuda) != nullptr) set_gate(cuda, 1);
  }

 private:
  bool cuda_;
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
    // The test words exist before any runtime runs (see gate_word).
    ASSERT_NE(gate_word(backend() == Backend::kCuda), nullptr) << "cannot allocate the gate word";
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
inline void expect_disjoint_windows(const std::vector<TenantHandle>& tenants) {
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

}  // namespace megaring_test
