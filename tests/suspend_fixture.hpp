// SPDX-License-Identifier: Apache-2.0
// The fixture of the suspend/resume tests (test_suspend_resume.cpp,
// test_suspend_lifecycle.cpp): a runtime with the tenant test consumer
// (tenant_test_ops.hpp), optionally producer rings and a tenant, the gate
// word, and the waits the tests share.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <megaring/producer.hpp>
#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"
#include "gated_runtime_fixture.hpp"
#include "tenant_test_ops.hpp"

namespace megaring_test {
namespace suspend_test {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::ConsumerPhase;
using megaring::ControlStats;
using megaring::OpcodeGrants;
using megaring::Priority;
using megaring::Producer;
using megaring::PublishOptions;
using megaring::RegistryConfig;
using megaring::SlotRequest;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Grant sets for the control tests (as test_control_ops.cpp): kOpReadGrants
// returns kReadA under A and kReadB under B.
inline const OpcodeGrants kGrantsA = OpcodeGrants::only({MR_OP_NOP, kOpGate, kOpReadGrants, 262, 320});
inline const OpcodeGrants kGrantsB = OpcodeGrants::only({MR_OP_NOP, kOpGate, kOpReadGrants, 263, 321});
constexpr uint64_t kGate = 1ull << (kOpGate - 256);
constexpr uint64_t kReadA = (kGate | 0x50u) | (uint64_t{1} << 32);
constexpr uint64_t kReadB = (kGate | 0x90u) | (uint64_t{2} << 32);

inline SlotRequest nop(uint64_t arg) {
  SlotRequest r;
  r.opcode = MR_OP_NOP;
  r.args[0] = arg;
  return r;
}
// Adds 1 to word `word` of `buffer`; its result is the word's old value.
inline SlotRequest count_once(BufferHandle buffer, uint64_t word) {
  SlotRequest r;
  r.opcode = MR_OP_ATOMIC_ADD;
  r.args[0] = buffer;
  r.args[1] = word * 8;
  r.args[2] = 1;
  return r;
}
inline PublishOptions kept() {
  PublishOptions o;
  o.keep_result = true;
  return o;
}
inline TenantPublishOptions tenant_kept() {
  TenantPublishOptions o;
  o.keep_result = true;
  o.timeout = megaring::kForever;  // back-pressure waits, as a suspended ring makes it
  return o;
}

class SuspendTest : public GatedRuntimeTest {
 protected:

  void start(uint32_t workers, uint32_t producer_rings = 0, uint32_t capacity = 1024,
             bool with_tenant = false, Nanoseconds control_timeout = seconds(1)) {
    Config c = base_config();
    c.workers = workers;
    c.producer_rings = producer_rings;
    c.ring_capacity = capacity;
    c.control_timeout = scaled(control_timeout);
    const Status st = Runtime::create(c, tenant_test_consumer(), &rt_);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    if (!with_tenant) return;
    MR_ASSERT_OK(TenantRegistry::create(*rt_, RegistryConfig{}, &registry_));
    TenantConfig tc;
    tc.label = "suspended";
    tc.quotas.opcode_cap = 512;
    tc.quotas.max_outstanding_slots = 4096;
    tc.grants = kGrantsA;
    MR_ASSERT_OK(registry_->register_tenant(tc, &tenant_));
  }
  // Until the consumer staged ring 0's `ticket` (one ring: the sequence is
  // ring 0's ticket).
  void wait_until_fetched(const Ticket& ticket) {
    const auto until = std::chrono::steady_clock::now() + scaled(seconds(20));
    for (;;) {
      megaring::StateDump d;
      MR_ASSERT_OK(rt_->dump_state(&d));
      if (d.fetched > ticket.value) return;
      ASSERT_LT(std::chrono::steady_clock::now(), until) << "the fetcher never staged the slot";
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  Completion wait_kept(const Ticket& t) {
    Completion c;
    c.status = 0xFFFF;
    MR_EXPECT_OK(rt_->wait(t, &c, scaled(seconds(30))));
    return c;
  }

};

}  // namespace suspend_test
}  // namespace megaring_test
