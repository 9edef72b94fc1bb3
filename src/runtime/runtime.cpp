// SPDX-License-Identifier: Apache-2.0
// The public Runtime API: a thin shell over Runtime::Impl (runtime_impl.hpp)
// and its components. Every entry point returns a Status and lets no
// exception escape; the work is done below.
#include <memory>
#include <string>

#include "support/api_guard.hpp"
#include "runtime/runtime_impl.hpp"
#include "runtime/runtime_internal.hpp"
#include "runtime/timeline_trace.hpp"

namespace megaring {

#define MR_GUARD(expr) MR_API_GUARD(expr)

Runtime::Runtime(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Runtime::~Runtime() {
  // What the shutdown logs (under its locks) reaches the log callback after it.
  const detail::LogHold hold;
  // First, while every part of the runtime is whole: a layer above (a
  // TenantRegistry outliving its runtime) lets go of it (runtime_link.hpp).
  if (impl_) impl_->link()->end();
  impl_.reset();
}

Status Runtime::create(const Config& config, std::unique_ptr<Runtime>* out) noexcept {
  return create(config, builtin_consumer(), out);
}

Status Runtime::create(const Config& config, const Consumer& consumer,
                       std::unique_ptr<Runtime>* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(([&]() -> Status {
    auto impl = std::make_unique<Impl>();
    Status st = impl->init(config, consumer);
    if (!st) return st;
    out->reset(new Runtime(std::move(impl)));
    return Status::ok();
  })())
}

Backend Runtime::backend() const noexcept { return impl_->backend().kind(); }
uint32_t Runtime::capacity() const noexcept { return impl_->ring_capacity(); }
uint32_t Runtime::consumer_units() const noexcept { return impl_->backend().units(); }
const char* Runtime::device_name() const noexcept { return impl_->backend().device_name(); }

Status Runtime::publish(const SlotRequest& request, Ticket* ticket,
                        const PublishOptions& options) noexcept {
  MR_GUARD(impl_->ring().publish(&request, 1, ticket, options))
}
Status Runtime::publish_batch(const SlotRequest* requests, uint32_t count, Ticket* first_ticket,
                              const PublishOptions& options) noexcept {
  MR_GUARD(impl_->ring().publish(requests, count, first_ticket, options))
}
Status Runtime::wait(const Ticket& ticket, Completion* completion, Nanoseconds timeout) noexcept {
  MR_GUARD(([&]() -> Status {
    Status st = impl_->ring().wait(ticket, completion, timeout);
    if (st.code() == Result::kTimeout) impl_->on_wait_timeout("wait", ticket.value, st);
    return st;
  })())
}
Status Runtime::wait_done(const Ticket& ticket, Nanoseconds timeout) noexcept {
  MR_GUARD(([&]() -> Status {
    Status st = impl_->ring().wait_done(ticket, timeout);
    if (st.code() == Result::kTimeout) impl_->on_wait_timeout("wait_done", ticket.value, st);
    return st;
  })())
}
Status Runtime::release(const Ticket& ticket) noexcept { MR_GUARD(impl_->ring().release(ticket)) }
Status Runtime::call(const SlotRequest& request, Completion* completion,
                     Nanoseconds timeout) noexcept {
  MR_GUARD(([&]() -> Status {
    PublishOptions options;
    options.keep_result = true;
    options.timeout = timeout;
    Ticket ticket;
    detail::SharedRing& ring = impl_->ring();
    Status st = ring.publish(&request, 1, &ticket, options);
    if (!st) return st;
    st = ring.wait(ticket, completion, timeout);
    if (st.code() == Result::kTimeout) impl_->on_wait_timeout("call", ticket.value, st);
    if (!st) (void)ring.release(ticket);  // never leave a kept ticket behind
    return st;
  })())
}
uint64_t Runtime::done_count() const noexcept { return impl_->ring().done_count(); }
uint64_t Runtime::heartbeat_ns() const noexcept { return impl_->heartbeat(); }
RuntimeStats Runtime::stats() noexcept {
  try {
    return impl_->stats();
  } catch (...) {
    return RuntimeStats{};
  }
}

Status Runtime::consumer_counters(ConsumerCounters* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(impl_->backend().read_consumer_counters(out))
}
Status Runtime::control_stats(ControlStats* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(([&]() -> Status {
    *out = impl_->control().stats();
    return Status::ok();
  })())
}
Status Runtime::consumer_costs(CostCounters* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(([&]() -> Status {
    CostCounters executors, io;
    Status st = impl_->backend().read_consumer_costs(&executors, &io);
    if (!st) return st;
    *out = executors;
    for (const detail::CostField& f : detail::kCostFields) out->*f.member += io.*f.member;
    return Status::ok();
  })())
}
Status Runtime::consumer_costs(CostCounters* executors, CostCounters* io) noexcept {
  if (executors == nullptr || io == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(impl_->backend().read_consumer_costs(executors, io))
}

Status Runtime::open_producer(std::unique_ptr<Producer>* out) noexcept {
  MR_GUARD(impl_->open_producer(out, Priority::kNormal))
}
Status Runtime::open_producer(std::unique_ptr<Producer>* out, Priority priority) noexcept {
  MR_GUARD(impl_->open_producer(out, priority))
}
Status Runtime::alloc_buffer(uint64_t bytes, BufferHandle* handle) noexcept {
  MR_GUARD(impl_->alloc_buffer(bytes, 0, handle))
}
Status Runtime::free_buffer(BufferHandle handle) noexcept {
  MR_GUARD(impl_->free_buffer(handle, /*by_owner=*/false))
}
Status Runtime::register_buffer(void* memory, uint64_t bytes, BufferHandle* handle) noexcept {
  MR_GUARD(impl_->register_buffer(memory, bytes, 0, handle))
}
Status Runtime::unregister_buffer(BufferHandle handle, Nanoseconds timeout,
                                  WhileInUse while_in_use) noexcept {
  MR_GUARD(impl_->unregister_buffer(handle, timeout, while_in_use, /*by_owner=*/false))
}
Status Runtime::write_buffer(BufferHandle handle, uint64_t offset, const void* src,
                             uint64_t bytes) noexcept {
  MR_GUARD(impl_->copy_buffer(handle, offset, const_cast<void*>(src), bytes, true))
}
Status Runtime::read_buffer(BufferHandle handle, uint64_t offset, void* dst,
                            uint64_t bytes) noexcept {
  MR_GUARD(impl_->copy_buffer(handle, offset, dst, bytes, false))
}
Status Runtime::create_region(RegionPolicy policy, uint64_t bytes, RegionHandle* handle) noexcept {
  MR_GUARD(impl_->create_region(policy, bytes, 0, handle))
}
Status Runtime::write_region(RegionHandle handle, uint64_t offset, const void* src,
                             uint64_t bytes) noexcept {
  MR_GUARD(impl_->region_table().write(handle, offset, src, bytes))
}
Status Runtime::seal_region(RegionHandle handle) noexcept {
  MR_GUARD(impl_->region_table().seal(handle))
}
Status Runtime::append_region(RegionHandle handle, const void* src, uint64_t bytes,
                              uint64_t* offset) noexcept {
  MR_GUARD(impl_->region_table().append(handle, src, bytes, offset))
}
Status Runtime::read_region(RegionHandle handle, uint64_t offset, void* dst,
                            uint64_t bytes) noexcept {
  MR_GUARD(impl_->region_table().read(handle, offset, dst, bytes))
}
Status Runtime::free_region(RegionHandle handle) noexcept {
  MR_GUARD(impl_->free_region(handle, /*by_owner=*/false))
}
Status Runtime::timeline(Timeline* out) noexcept { MR_GUARD(impl_->timeline(out)) }
Status Runtime::write_timeline_trace(const std::string& path) noexcept {
  MR_GUARD(([&]() -> Status {
    Timeline t;
    Status st = impl_->timeline(&t);
    if (!st) return st;
    return detail::write_chrome_trace(t, path);
  })())
}
Status Runtime::health(Health* out) noexcept { MR_GUARD(impl_->health(out)) }
Status Runtime::dump_state(StateDump* out) noexcept { MR_GUARD(impl_->dump_state(out)) }
Status Runtime::dump_state(std::string* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(([&]() -> Status {
    StateDump dump;
    Status st = impl_->dump_state(&dump);
    if (!st) return st;
    *out = format_state_dump(dump);
    return Status::ok();
  })())
}
Status Runtime::metrics_text(std::string* out) noexcept { MR_GUARD(impl_->metrics_text(out)) }
Status Runtime::shutdown(Nanoseconds timeout) noexcept { MR_GUARD(impl_->shutdown(timeout)) }
Status Runtime::abort() noexcept { MR_GUARD(impl_->abort()) }
Status Runtime::suspend(Nanoseconds timeout) noexcept { MR_GUARD(impl_->suspend(timeout)) }
Status Runtime::resume() noexcept { MR_GUARD(impl_->resume()) }
ConsumerPhase Runtime::consumer_phase() const noexcept { return impl_->consumer_phase(); }

// ---------------------------------------------------------------------------
// The tenant layer's access (runtime_internal.hpp)
// ---------------------------------------------------------------------------
namespace detail {
std::shared_ptr<RuntimeLink> RuntimeInternals::link(Runtime& runtime) { return runtime.impl_->link(); }
Status RuntimeInternals::claim_drain(Runtime& runtime, bool claim) {
  MR_GUARD(runtime.impl_->ring().claim_drain(claim))
}
size_t RuntimeInternals::drain(Runtime& runtime, std::vector<DrainRecord>* records) {
  const size_t before = records->size();
  try {
    return runtime.impl_->drain(records);
  } catch (...) {
    // No host memory (for the records, or to park a kept result): a pass
    // that throws commits nothing (SharedRing::reap), so neither may its
    // records; the next pass reaps the same tickets again.
    records->resize(before);
    return 0;
  }
}
Status RuntimeInternals::publish_tagged(Runtime& runtime, const SlotRequest* requests,
                                        uint32_t count, Origin origin, bool want_record,
                                        Ticket* first, const PublishOptions& options) {
  MR_GUARD(runtime.impl_->ring().publish(requests, count, first, options, origin, want_record))
}
Status RuntimeInternals::alloc_owned_buffer(Runtime& runtime, uint64_t bytes, uint32_t owner,
                                            BufferHandle* handle) {
  MR_GUARD(runtime.impl_->alloc_buffer(bytes, owner, handle))
}
Status RuntimeInternals::register_owned_buffer(Runtime& runtime, const void* memory, uint64_t bytes,
                                               uint32_t owner, BufferHandle* handle) {
  MR_GUARD(runtime.impl_->register_buffer(memory, bytes, owner, handle))
}
Status RuntimeInternals::create_owned_region(Runtime& runtime, RegionPolicy policy, uint64_t bytes,
                                             uint32_t owner, RegionHandle* handle) {
  MR_GUARD(runtime.impl_->create_region(policy, bytes, owner, handle))
}
Status RuntimeInternals::free_owned_buffer(Runtime& runtime, BufferHandle handle) {
  MR_GUARD(runtime.impl_->free_buffer(handle, /*by_owner=*/true))
}
Status RuntimeInternals::unregister_owned_buffer(Runtime& runtime, BufferHandle handle,
                                                 Nanoseconds timeout, WhileInUse while_in_use) {
  MR_GUARD(runtime.impl_->unregister_buffer(handle, timeout, while_in_use, /*by_owner=*/true))
}
Status RuntimeInternals::free_owned_region(Runtime& runtime, RegionHandle handle) {
  MR_GUARD(runtime.impl_->free_region(handle, /*by_owner=*/true))
}
uint32_t RuntimeInternals::max_tenants(const Runtime& runtime) {
  return runtime.impl_->config().max_tenants;
}
Status RuntimeInternals::write_tenant_entry(Runtime& runtime, uint32_t index,
                                            const mr_tenant_entry& entry,
                                            const mr_tenant_grants& grants) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  st = runtime.impl_->backend().write_tenant_entry(index, entry, grants);
  if (st && entry.state == MR_TENANT_ACTIVE) runtime.impl_->tenant_owners().set_live(index, entry.tenant);
  return st;
}
Status RuntimeInternals::set_tenant_grants(Runtime& runtime, uint32_t index,
                                           const mr_tenant_grants& grants,
                                           const mr_tenant_grants& previous) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  // A control operation: the words change together while no slot runs, so
  // a slot that reads several of them sees the old grants or the new.
  detail::ConsumerBackend& backend = runtime.impl_->backend();
  const std::vector<detail::ControlStep> steps = {
      {[&] { return backend.set_tenant_grants(index, grants); },
       [&] { return backend.set_tenant_grants(index, previous); }}};
  return runtime.impl_->run_control("set_grants", steps);
}
Status RuntimeInternals::run_control(Runtime& runtime, const char* what,
                                     const std::vector<detail::ControlStep>& steps) {
  MR_GUARD(runtime.impl_->run_control(what, steps))
}
void RuntimeInternals::inject_control_failure(Runtime& runtime, uint32_t step) {
  runtime.impl_->control().inject_failure_at(step);
}
Status RuntimeInternals::set_tenant_state(Runtime& runtime, uint32_t index, uint32_t state) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  // Leaving ACTIVE (revocation): from here the runtime's calls free what the
  // tenant left, even if the consumer's word could not be written.
  if (state != MR_TENANT_ACTIVE) runtime.impl_->tenant_owners().set_gone(index);
  return runtime.impl_->backend().set_tenant_state(index, state);
}
Status RuntimeInternals::read_tenant_ids(Runtime& runtime, std::vector<uint32_t>* ids) {
  MR_GUARD(([&]() -> Status {
    ids->assign(runtime.impl_->config().max_tenants, 0);
    return runtime.impl_->backend().read_tenant_ids(ids->data());
  })())
}
Status RuntimeInternals::read_tenant_counters(Runtime& runtime, uint32_t index,
                                              mr_tenant_counters* out) {
  Status st = runtime.impl_->check_tenant_index(index);
  if (!st) return st;
  return runtime.impl_->backend().read_tenant_counters(index, out);
}
uint64_t RuntimeInternals::published_end(const Runtime& runtime) {
  return runtime.impl_->ring().published_end();
}
Status RuntimeInternals::peek_slot(Runtime& runtime, uint64_t ticket, mr_slot* out) {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  MR_GUARD(runtime.impl_->ring().peek_slot(ticket, out))
}
void RuntimeInternals::set_reserve_hook(Runtime& runtime, ReserveHook hook, void* arg) {
  runtime.impl_->ring().set_reserve_hook(hook, arg);
}
void RuntimeInternals::set_park_hook(Runtime& runtime, ParkHook hook, void* arg) {
  runtime.impl_->ring().set_park_hook(hook, arg);
}
uint64_t RuntimeInternals::parking_waits(const Runtime& runtime) {
  return runtime.impl_->ring().parking_waits();
}
uint64_t RuntimeInternals::health_checks(const Runtime& runtime) {
  return runtime.impl_->health_checks();
}
}  // namespace detail

}  // namespace megaring
