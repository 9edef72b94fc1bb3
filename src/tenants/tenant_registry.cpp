// SPDX-License-Identifier: Apache-2.0
// TenantRegistry: the public face of a RegistryCore. No exception leaves it.
#include <memory>
#include <utility>

#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"
#include "tenants/registry_core.hpp"
#include "tenants/tenant_refusals.hpp"

namespace megaring {

TenantRegistry::TenantRegistry(std::shared_ptr<detail::RegistryCore> core) : core_(std::move(core)) {}

TenantRegistry::~TenantRegistry() {
  const detail::LogHold hold;  // what the close logs reaches the callback after it
  try {
    core_->close();
  } catch (...) {
  }
}

Status TenantRegistry::create(Runtime& runtime, const RegistryConfig& config,
                              std::unique_ptr<TenantRegistry>* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  return detail::guarded([&]() -> Status {
    auto core = std::make_shared<detail::RegistryCore>(runtime, config);
    Status st = core->init();
    if (!st) return st;
    out->reset(new TenantRegistry(std::move(core)));
    return Status::ok();
  });
}

Status TenantRegistry::register_tenant(const TenantConfig& config, TenantHandle* out) noexcept {
  return detail::guarded([&] { return core_->register_tenant(config, out); });
}

Status TenantRegistry::unregister_tenant(const TenantHandle& tenant) noexcept {
  return detail::guarded([&]() -> Status {
    if (!tenant.state_) return detail::empty_handle();
    return core_->unregister_tenant(tenant.state_);
  });
}

size_t TenantRegistry::pump_once() noexcept {
  try {
    return core_->pump_once();
  } catch (...) {
    return 0;
  }
}

RegistryStats TenantRegistry::stats() const noexcept {
  try {
    return core_->stats();
  } catch (...) {
    return RegistryStats{};
  }
}

}  // namespace megaring
