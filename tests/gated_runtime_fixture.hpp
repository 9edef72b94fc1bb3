// SPDX-License-Identifier: Apache-2.0
// The base fixture of the tests that hold an executor on the gate opcode
// (tenant_test_ops.hpp) while the host changes something: the control
// operations (test_control_ops.cpp) and suspend/resume (suspend_fixture.hpp).
// It shuts the gate before each test and opens it after (a unit is never
// left held), owns the runtime, the registry and the tenant in the order
// they must go, and waits for an executor to take a slot.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>

#include <megaring/runtime.hpp>
#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {

class GatedRuntimeTest : public BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped()) return;
    ASSERT_NE(gate_word(cuda()), nullptr) << "cannot allocate the gate word";
    set_gate(cuda(), 0);
  }
  void TearDown() override {
    if (gate_word(cuda()) != nullptr) set_gate(cuda(), 1);  // never leave a unit held
    tenant_ = megaring::TenantHandle();
    registry_.reset();
    if (rt_) (void)rt_->shutdown(scaled(std::chrono::seconds(30)));
    rt_.reset();
    BackendTest::TearDown();
  }
  bool cuda() const { return backend() == megaring::Backend::kCuda; }

  // A slot that holds the executor taking it until the gate opens.
  megaring::SlotRequest gate() const {
    megaring::SlotRequest r;
    r.opcode = kOpGate;
    r.args[0] = reinterpret_cast<uint64_t>(gate_word(cuda()));
    return r;
  }
  // Until an executor (executor 0 alone, with first_unit_only) runs ring 0's
  // `ticket` (dump_state's notes).
  void wait_until_held(const megaring::Ticket& ticket, bool first_unit_only = false) {
    const auto until = std::chrono::steady_clock::now() + scaled(std::chrono::seconds(20));
    for (;;) {
      megaring::StateDump d;
      MR_ASSERT_OK(rt_->dump_state(&d));
      const size_t units = first_unit_only ? std::min<size_t>(1, d.units.size()) : d.units.size();
      for (size_t u = 0; u < units; ++u)
        if (d.units[u].busy && d.units[u].ring == 0 && d.units[u].ticket == ticket.value) return;
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "no executor took the slot";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<megaring::TenantRegistry> registry_;
  megaring::TenantHandle tenant_;
};

}  // namespace megaring_test
