// SPDX-License-Identifier: Apache-2.0
// The registry's table of tenants through its life: init, registration,
// revocation and retirement, the device counters, close. The drain pump is
// in drain_pump.cpp.
#include "tenants/registry_core.hpp"

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"
#include "support/log.hpp"
#include "support/nvtx.hpp"
#include "support/prometheus_text.hpp"
#include "tenants/tenant_grants.hpp"
#include "tenants/tenant_refusals.hpp"

namespace megaring::detail {

Status RegistryCore::check_config_and_size_table() {
  const uint32_t runtime_table = RuntimeInternals::max_tenants(runtime_);
  if (runtime_table < 2)
    return Status(Result::kInvalidArgument, "the runtime's tenant table holds no tenant (Config::max_tenants < 2)");
  uint32_t wanted = config_.max_tenants == 0 ? runtime_table - 1 : config_.max_tenants;
  if (wanted > runtime_table - 1)
    return Status(Result::kInvalidArgument,
                  "max_tenants " + std::to_string(wanted) + " exceeds the runtime's tenant table (" +
                      std::to_string(runtime_table - 1) + " tenants; raise Config::max_tenants)");
  if (!valid_timeout(config_.pump_idle_sleep_max) || !valid_timeout(config_.close_timeout))
    return Status(Result::kInvalidArgument, "pump_idle_sleep_max and close_timeout must not be negative");
  if (config_.opcode_begin < MR_OP_TENANT_BASE || config_.opcode_end > MR_OP_TENANT_END ||
      config_.opcode_begin >= config_.opcode_end)
    return Status(Result::kInvalidArgument,
                  "opcode space must be a non-empty part of [MR_OP_TENANT_BASE, MR_OP_TENANT_END]");
  table_.size = wanted + 1;
  return Status::ok();
}

Status RegistryCore::init() {
  Status st = check_config_and_size_table();
  if (!st) return st;
  // Continue each index's generations from the consumer's table: slots of an
  // earlier registry's tenants may still be queued, and their ids must never
  // name one of ours.
  std::vector<uint32_t> ids;
  st = RuntimeInternals::read_tenant_ids(runtime_, &ids);
  if (!st) return st;
  table_.by_index.resize(table_.size);
  table_.generation.assign(table_.size, 0);
  for (uint32_t i = 1; i < table_.size; ++i)
    table_.generation[i] = static_cast<uint16_t>(ids[i] >> MR_TENANT_INDEX_BITS);
  for (uint32_t i = table_.size; i-- > 1;) table_.free_indices.push_back(i);
  windows_.reset(config_.opcode_begin, config_.opcode_end);
  st = RuntimeInternals::claim_drain(runtime_, true);
  if (!st) return st;
  claimed_ = true;
  RuntimeInternals::link(runtime_)->on_end(shared_from_this(), &RegistryCore::on_runtime_end);
  if (!manual()) {
    try {
      pump_.thread = std::thread(&RegistryCore::pump_thread_main, this);
    } catch (const std::exception& e) {
      (void)RuntimeInternals::claim_drain(runtime_, false);
      claimed_ = false;
      return Status(Result::kInternal, std::string("cannot start the drain pump: ") + e.what());
    }
  }
  return Status::ok();
}

// Without close() only if TenantRegistry::create failed half-way: never
// leave a running pump thread or a claimed drain behind.
RegistryCore::~RegistryCore() {
  pump_.stop.store(true);
  if (pump_.thread.joinable()) pump_.thread.join();
  if (claimed_ && !closed()) (void)RuntimeInternals::claim_drain(runtime_, false);
}

void RegistryCore::retry_retire() {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    retire_drained_locked();
  } catch (...) {
    // Out of host memory for the window map: the tenant stays draining and
    // the next pass tries again.
  }
}

// Reads the tenant's counters from the consumer's table into
// since_baseline: what the tenant shows live, and once frozen. The caller
// holds mutex_ and has checked the registry is open (the runtime is there).
void RegistryCore::read_device_counters_locked(TenantState& state) {
  mr_tenant_counters now{};
  bool read = false;
  try {
    read = RuntimeInternals::read_tenant_counters(runtime_, state.identity.index, &now).is_ok();
  } catch (...) {  // the error message could not be allocated: keep the last values
  }
  if (!read) return;
  const mr_tenant_counters& base = state.device.baseline;
  state.device.since_baseline.admitted = now.admitted - base.admitted;
  state.device.since_baseline.out_of_window = now.out_of_window - base.out_of_window;
  state.device.since_baseline.revoked = now.revoked - base.revoked;
  state.device.since_baseline.not_granted = now.not_granted - base.not_granted;
}

mr_tenant_counters RegistryCore::device_counters(TenantState& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!state.device.frozen && !closed()) read_device_counters_locked(state);
  return state.device.since_baseline;
}

void RegistryCore::freeze_counters_locked(TenantState& state) {
  if (state.device.frozen) return;
  read_device_counters_locked(state);
  state.device.frozen = true;
}

void RegistryCore::retire_drained_locked() {
  auto it = table_.draining.begin();
  while (it != table_.draining.end()) {
    TenantState& t = **it;
    // seq_cst read of published (Dekker with the publisher, tenant_state.hpp).
    if (t.slots.outstanding() != 0) {
      ++it;
      continue;
    }
    table_.free_indices.reserve(table_.size);  // push_back below cannot throw then
    windows_.give(t.identity.base_opcode, t.identity.quotas.opcode_cap);  // the one step that may throw
    freeze_counters_locked(t);
    table_.by_index[t.identity.index].reset();
    table_.free_indices.push_back(t.identity.index);
    it = table_.draining.erase(it);
  }
  draining_any_.store(!table_.draining.empty(), std::memory_order_release);
}

Status RegistryCore::register_tenant(const TenantConfig& config, TenantHandle* out) {
  MR_NVTX_RANGE("megaring::register_tenant");
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  const TenantQuotas& q = config.quotas;
  if (q.opcode_cap == 0)
    return Status(Result::kInvalidArgument, "opcode_cap must be at least 1");
  if (q.max_outstanding_slots == 0)
    return Status(Result::kInvalidArgument, "max_outstanding_slots must be at least 1");
  mr_tenant_grants grant_words{};
  OpcodeGrants grants;
  Status checked = grant_bitmap(config.grants, q.opcode_cap, &grant_words, &grants);
  if (!checked) return checked;
  std::lock_guard<std::mutex> serial(control_mutex_);  // no grants write in flight (set_grants)
  std::lock_guard<std::mutex> lock(mutex_);
  if (closing_)
    return closed() ? closed_status()
                    : Status(Result::kRevoked, "the tenant registry is closing");
  retire_drained_locked();
  if (table_.free_indices.empty())
    return Status(Result::kRegistryFull,
                  "no tenant id free: " + std::to_string(table_.live) + " live and " +
                      std::to_string(table_.draining.size()) +
                      " draining tenants fill the table of " + std::to_string(table_.size - 1),
                  table_.live + table_.draining.size(), table_.size - 1);
  uint32_t base = 0;
  if (!windows_.take(q.opcode_cap, &base))
    return Status(Result::kRegistryFull,
                  "no free opcode window of " + std::to_string(q.opcode_cap) + " opcodes in [" +
                      std::to_string(config_.opcode_begin) + ", " +
                      std::to_string(config_.opcode_end) + ")",
                  q.opcode_cap, config_.opcode_end - config_.opcode_begin);
  const uint32_t index = table_.free_indices.back();
  uint16_t gen = static_cast<uint16_t>(table_.generation[index] + 1);
  if (gen == 0) gen = 1;
  const uint32_t id = (static_cast<uint32_t>(gen) << MR_TENANT_INDEX_BITS) | index;

  auto state = std::make_shared<TenantState>();
  state->identity.id = id;
  state->identity.index = index;
  state->identity.base_opcode = base;
  state->identity.label = config.label;
  state->identity.quotas = q;
  state->identity.on_completion = config.on_completion;
  state->grants = std::move(grants);
  state->core = shared_from_this();
  Status st = RuntimeInternals::read_tenant_counters(runtime_, index, &state->device.baseline);
  mr_tenant_entry entry{id, MR_TENANT_ACTIVE, base, q.opcode_cap};
  // No slot naming this index is in flight: its previous tenant drained.
  if (st) st = RuntimeInternals::write_tenant_entry(runtime_, index, entry, grant_words);
  if (!st) {
    windows_.give(base, q.opcode_cap);
    return st;
  }
  table_.generation[index] = gen;
  table_.free_indices.pop_back();
  table_.by_index[index] = state;
  ++table_.live;
  MR_LOG(LogLevel::kInfo, "tenant registered: id " + std::to_string(id) + ", label \"" +
                              prometheus_escape(config.label) + "\", opcodes [" +
                              std::to_string(base) + ", +" + std::to_string(q.opcode_cap) +
                              "), max_outstanding_slots " + std::to_string(q.max_outstanding_slots));
  *out = TenantHandle(std::move(state));
  return Status();
}

// A revoked tenant holds nothing: zeroes its reservations and hands back the
// buffers it held, for the caller to free (or not: a runtime being destroyed
// frees them itself), and its staging regions in *regions (if not null).
std::vector<BufferHandle> RegistryCore::release_quotas(TenantState& state,
                                                       std::vector<RegionHandle>* regions) {
  std::lock_guard<std::mutex> lock(state.usage.mutex);
  std::vector<BufferHandle> buffers(state.usage.buffers.begin(), state.usage.buffers.end());
  state.usage.buffers.clear();
  if (regions != nullptr)
    for (const auto& r : state.usage.regions) regions->push_back(r.first);
  state.usage.regions.clear();
  state.usage.region_bytes = 0;
  state.usage.staging_reserved = 0;
  state.usage.resident_reserved = 0;
  return buffers;
}

Status RegistryCore::unregister_tenant(const std::shared_ptr<TenantState>& state) {
  MR_NVTX_RANGE("megaring::unregister_tenant");
  std::lock_guard<std::mutex> lock(mutex_);
  if (state->core.get() != this)
    return Status(Result::kInvalidArgument, "tenant belongs to another registry");
  if (closed()) return closed_status();
  // seq_cst: the Dekker pair with publishers (tenant_state.hpp).
  if (state->revoked.exchange(true, std::memory_order_seq_cst))
    return revoked_status(state->identity.id);
  --table_.live;
  MR_LOG(LogLevel::kInfo, "tenant unregistered: id " + std::to_string(state->identity.id) +
                              ", label \"" + prometheus_escape(state->identity.label) + "\"");
  // Queued slots of this tenant complete REVOKED from here on.
  Status st = RuntimeInternals::set_tenant_state(runtime_, state->identity.index, MR_TENANT_REVOKED);
  // Slots published before still hold the buffers; free_buffer defers the
  // memory until they completed.
  std::vector<RegionHandle> regions;
  for (BufferHandle h : release_quotas(*state, &regions)) (void)runtime_.free_buffer(h);
  for (RegionHandle h : regions) (void)runtime_.free_region(h);
  table_.draining.push_back(state);
  draining_any_.store(true, std::memory_order_release);
  retire_drained_locked();
  return st;
}

std::vector<std::shared_ptr<TenantState>> RegistryCore::tenants() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<TenantState>> out;
  for (const auto& s : table_.by_index)
    if (s) out.push_back(s);
  return out;
}

void RegistryCore::on_runtime_end() {
  {
    // A set_grants in flight uses the runtime: it ends within the runtime's
    // control_timeout (the consumer still runs while end hooks run).
    std::unique_lock<std::mutex> lock(mutex_);
    control_done_.wait(lock, [&] { return controls_in_flight_ == 0; });
  }
  runtime_gone_.store(true);
  try {
    close(/*drain=*/false);
  } catch (...) {
    // Only the snapshot vectors allocate; without them the tenants stay
    // live on paper, but the drain is let go below regardless.
  }
  if (!closed()) {
    {
      std::lock_guard<std::mutex> pass(pump_.pass_mutex);
      closed_.store(true, std::memory_order_release);
      (void)RuntimeInternals::claim_drain(runtime_, false);
    }
    // No delivery (whose retirements read the runtime) outlives the runtime.
    deliver_leftovers();
  }
}

void RegistryCore::close(bool drain) {
  std::vector<std::shared_ptr<TenantState>> live;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closing_ || !claimed_) return;  // closed already, or init() never claimed the drain
    closing_ = true;  // no registration slips in after the snapshot below
    for (auto& s : table_.by_index)
      if (s && !s->revoked.load()) live.push_back(s);
  }
  revoke_for_close(live, drain);
  pump_.stop.store(true, std::memory_order_release);
  if (pump_.thread.joinable()) pump_.thread.join();
  if (drain) drain_for_close();
  detach_for_close();
}

void RegistryCore::revoke_for_close(const std::vector<std::shared_ptr<TenantState>>& live,
                                    bool drain) {
  if (drain) {
    // Revoke everyone, then drain what they left queued (REVOKED
    // completions come quickly), bounded by close_timeout.
    for (auto& s : live) (void)unregister_tenant(s);
    return;
  }
  // The runtime is going: it aborts every slot and frees every buffer
  // itself. Revoke on the host side only.
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& s : live) {
    s->revoked.store(true, std::memory_order_seq_cst);
    (void)release_quotas(*s);
    table_.draining.push_back(s);
  }
  table_.live = 0;
}

// Pumps (the pump thread is stopped) until the revoked tenants drained or
// close_timeout passed.
void RegistryCore::drain_for_close() {
  const auto deadline = deadline_after(config_.close_timeout);
  HostWaiter waiter;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      retire_drained_locked();
      if (table_.draining.empty()) break;
    }
    if (SteadyClock::now() > deadline) break;
    if (pump_once() == 0) waiter.pause();
  }
}

void RegistryCore::detach_for_close() {
  std::vector<std::shared_ptr<TenantState>> all;
  all.reserve(table_.size);  // no allocation below, where a throw would leave the drain claimed
  {
    // Lock order as in pump_once: the pass lock, then the registry's. No
    // pass may be using the runtime when the drain is given up, and none
    // stages after the close.
    std::lock_guard<std::mutex> pass(pump_.pass_mutex);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& s : table_.by_index)
      if (s) {
        freeze_counters_locked(*s);
        all.push_back(s);
      }
    closed_.store(true, std::memory_order_release);
    (void)RuntimeInternals::claim_drain(runtime_, false);
  }
  // Waiters on slots that can no longer be delivered, a callback's among
  // them: wake them to see the closed registry.
  for (auto& s : all) s->kept.wake_all();
  // Then wait for a delivery in progress on another thread (its callbacks'
  // pumps, waits and quiesces now see the close and return), and deliver
  // what earlier passes queued, as a pass would have: nothing queues more.
  deliver_leftovers();
  std::lock_guard<std::mutex> lock(mutex_);
  // Break the state -> core -> state cycles; handles keep their own state.
  table_.by_index.clear();
  table_.draining.clear();
  draining_any_.store(false);
}

RegistryStats RegistryCore::stats() const {
  RegistryStats s;
  std::lock_guard<std::mutex> lock(mutex_);
  s.live_tenants = table_.live;
  s.draining_tenants = static_cast<uint32_t>(table_.draining.size());
  s.drained_slots = pump_.drained_slots.load(std::memory_order_relaxed);
  s.untenanted_slots = pump_.untenanted_slots.load(std::memory_order_relaxed);
  return s;
}

}  // namespace megaring::detail
