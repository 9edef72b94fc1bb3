// SPDX-License-Identifier: Apache-2.0
// Opcode grants (tenant.hpp, "Opcode grants"): the bitmap a tenant's grants
// become, and TenantHandle::set_grants / grants.
#include "tenants/tenant_grants.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "support/api_guard.hpp"
#include "support/nvtx.hpp"
#include "tenants/registry_core.hpp"
#include "tenants/tenant_refusals.hpp"
#include "tenants/tenant_state.hpp"

namespace megaring {
namespace detail {

namespace {

// Whether the bitmap names `local` on its own (mr_grant_bit): bit 0 of word
// 0 stands for every opcode it does not name, so it is granted by `all` only.
bool grantable_alone(uint32_t local) {
  return (local >= 1 && local < MR_GRANT_SYSTEM_END) ||
         (local >= MR_OP_USER_BASE && local < MR_GRANT_USER_END);
}

}  // namespace

Status grant_bitmap(const OpcodeGrants& grants, uint32_t opcode_cap, mr_tenant_grants* bitmap,
                    OpcodeGrants* normalized) {
  mr_tenant_grants words{};
  if (grants.all) {
    for (uint64_t& w : words.words) w = ~uint64_t{0};
    *bitmap = words;
    *normalized = OpcodeGrants::everything();
    return Status::ok();
  }
  for (const uint32_t local : grants.opcodes) {
    if (local >= opcode_cap)
      return Status(Result::kOpcodeOutOfRange,
                    "cannot grant local opcode " + std::to_string(local) + ": outside the window of " +
                        std::to_string(opcode_cap) + " opcodes",
                    local, opcode_cap);
    if (!grantable_alone(local))
      return Status(Result::kInvalidArgument,
                    "cannot grant local opcode " + std::to_string(local) +
                        " on its own: grants name opcodes [1, " +
                        std::to_string(MR_GRANT_SYSTEM_END) + ") and [" +
                        std::to_string(MR_OP_USER_BASE) + ", " + std::to_string(MR_GRANT_USER_END) +
                        "); OpcodeGrants::all grants the rest");
    const uint32_t bit = mr_grant_bit(local);
    words.words[bit >> 6] |= uint64_t{1} << (bit & 63u);
  }
  OpcodeGrants sorted = OpcodeGrants::only(grants.opcodes);  // the one allocation
  std::sort(sorted.opcodes.begin(), sorted.opcodes.end());
  sorted.opcodes.erase(std::unique(sorted.opcodes.begin(), sorted.opcodes.end()),
                       sorted.opcodes.end());
  *bitmap = words;
  *normalized = std::move(sorted);
  return Status::ok();
}

Status RegistryCore::set_grants(TenantState& state, const OpcodeGrants& grants) {
  MR_NVTX_RANGE("megaring::set_grants");
  mr_tenant_grants bitmap{};
  OpcodeGrants normalized;
  Status st = grant_bitmap(grants, state.identity.quotas.opcode_cap, &bitmap, &normalized);
  if (!st) return st;
  if (state.core.get() != this)
    return Status(Result::kInvalidArgument, "tenant belongs to another registry");
  // A control operation (runtime.hpp): it may wait up to the runtime's
  // control_timeout for the executors, so it runs with mutex_ let go (the
  // pump and the registry's other calls go on) and under control_mutex_,
  // which register_tenant takes too: an index this tenant leaves meanwhile
  // is not reused until the words have landed, so they never reach a
  // successor's entry. In flight, it holds off on_runtime_end.
  std::lock_guard<std::mutex> serial(control_mutex_);
  mr_tenant_grants previous{};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed()) return closed_status();
    if (state.revoked.load(std::memory_order_seq_cst)) return revoked_status(state.identity.id);
    OpcodeGrants unused;
    st = grant_bitmap(state.grants, state.identity.quotas.opcode_cap, &previous, &unused);
    if (!st) return Status(Result::kInternal, "set_grants: the current grants: " + st.to_string());
    ++controls_in_flight_;
  }
  st = RuntimeInternals::set_tenant_grants(runtime_, state.identity.index, bitmap, previous);
  std::lock_guard<std::mutex> lock(mutex_);
  if (--controls_in_flight_ == 0) control_done_.notify_all();
  if (st) state.grants = std::move(normalized);  // what the table holds now
  return st;
}

OpcodeGrants RegistryCore::grants(const TenantState& state) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state.grants;
}

}  // namespace detail

Status TenantHandle::set_grants(const OpcodeGrants& grants) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    return state_->core->set_grants(*state_, grants);
  });
}

Status TenantHandle::grants(OpcodeGrants* out) const {
  return detail::guarded([&]() -> Status {
    if (!state_) return detail::empty_handle();
    if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
    *out = state_->core->grants(*state_);
    return Status::ok();
  });
}

}  // namespace megaring
