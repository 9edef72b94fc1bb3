// SPDX-License-Identifier: Apache-2.0
// See api_sequence.hpp; the driver's model and class are in
// api_sequence_driver.hpp. This file: run_api_sequence, the run loop and the
// step dispatch, the tenant steps (register, unregister, publish, wait,
// note_drained and quiesce), the invariants checked after every step and the
// final conservation check. The pump is manual, so tenants' drained counts move
// only inside calls that pump (pump_once, tenant wait and quiesce); consumer
// threads still complete slots concurrently, which the checks allow for.
#include "api_sequence.hpp"

#include <algorithm>

#include "api_sequence_driver.hpp"

namespace megaring::fuzz::detail {

std::string Driver::run() {
  Config config;
  config.backend = Backend::kCpu;
  const uint8_t shape = in_.u8();
  config.ring_capacity = 1u << (2 + shape % 4);  // 4 .. 32: back-pressure is common
  // The fetch crew, from the same byte's other bits (the seeds keep their
  // rings): 1 .. 7 warps, rounds of 64 .. 448 bodies and windows up to 896
  // headers, mostly more than the ring holds.
  config.fetch_warps = 1 + (shape / 4) % kMaxFetchWarps;
  // One unit: the slots here FILL and ATOMIC_ADD the same bytes, which
  // two units would run at once (a data race the caller owns; FENCE
  // orders such slots). The races this driver is after are between the
  // producer, the pump and the consumer.
  config.workers = 1;
  config.max_buffers = 6;
  config.max_tenants = kTenants + 1;
  config.producer_rings = kProducers;  // the fetcher serves three rings, polls them all
  config.staging_arena_bytes = kArenaBytes;
  config.max_regions = kMaxRegions;
  if (!Runtime::create(config, &rt_)) return "runtime create failed";
  RegistryConfig rc;
  rc.pump = PumpMode::kManual;
  rc.close_timeout = seconds(30);
  if (!TenantRegistry::create(*rt_, rc, &registry_)) return "registry create failed";
  for (TenantModel& t : tenants_) register_tenant(t);  // most calls need a tenant
  for (step_ = 0; !in_.done() && failure_.empty() && step_ < 400; ++step_) {
    one_step();
    if (failure_.empty()) check_invariants();
  }
  if (failure_.empty()) finish();
  return failure_;
}

void Driver::one_step() {
  const uint8_t op = in_.u8();
  TenantModel& t = tenants_[in_.u8() % kTenants];
  // Weighted so that random bytes publish a lot and end the world rarely.
  switch (op % 24) {
    case 0: return register_tenant(t);
    case 1: return (in_.u8() % 8 == 0) ? unregister(t) : register_tenant(t);
    case 2:
    case 3:
    case 4:
    case 5: return publish(t);
    case 6: return plain_publish();
    case 7: call_ = "pump_once"; if (registry_) (void)registry_->pump_once(); return;
    case 8: return wait_kept(t, /*release=*/false);
    case 9: return wait_kept(t, /*release=*/true);
    case 10: return staging(t, (in_.u8() & 1) != 0);
    case 11:
    case 12: return resident(t, (in_.u8() & 1) != 0);
    case 13: return alloc_buffer(t);
    case 14: return free_buffer(t);
    case 15: return copy_buffer(t);
    case 16: return note_and_quiesce(t);
    case 17: return lifecycle();
    case 18: return (in_.u8() % 2 == 0) ? set_grants(t) : global_opcode(t);
    case 19: return producer_step(producers_[in_.u8() % kProducers]);
    case 20: return create_region(t);
    case 21: return region_io(t);
    case 22: return free_region(t);
    case 23: return descriptor_slot(t);
    default: return global_opcode(t);
  }
}

void Driver::register_tenant(TenantModel& t) {
  call_ = "register_tenant";
  if (t.handle.valid() || registry_ == nullptr) return;
  TenantConfig c;
  c.quotas.opcode_cap = (in_.u8() % 8 == 0) ? 1 + in_.u8() % 4 : 4 + in_.u8() % 16;
  c.quotas.max_outstanding_slots = 1 + in_.u8() % 8;
  c.quotas.staging_bytes = in_.hostile();
  c.quotas.resident_handles = in_.u8() % 4;
  c.on_completion = [this, slot = &t - tenants_](const Completion& done) {
    std::lock_guard<std::mutex> lock(delivered_mutex_);
    ++delivered_[slot][done.ticket];
  };
  TenantHandle h;
  const Status st = registry_->register_tenant(c, &h);
  if (rt_ == nullptr) return expect(st, {Result::kRevoked});
  expect(st, {Result::kSuccess, Result::kRegistryFull});
  if (!st) return;
  t = TenantModel{};
  t.handle = h;
  t.quotas = c.quotas;
  t.live = true;
}

void Driver::revoke_in_model(TenantModel& t) {
  t.live = false;
  t.staging = 0;
  t.reserved = 0;
  for (const auto& b : t.buffers) t.freed.push_back(b.first);
  t.buffers.clear();
  // The registry frees its regions through the runtime; once the consumer
  // stopped, the tenant's entry may stay ACTIVE there and the runtime may
  // refuse (the region is an orphan: either answer is fine later).
  for (const auto& r : t.regions)
    (life_ == Life::kRunning && !runtime_gone_ ? stale_regions_ : orphan_regions_).insert(r.first);
  if (!t.regions.empty()) regions_freed_ = true;
  t.regions.clear();
}

void Driver::unregister(TenantModel& t) {
  call_ = "unregister_tenant";
  if (!t.handle.valid() || registry_ == nullptr) return;
  const Status st = registry_->unregister_tenant(t.handle);
  if (!t.live) return expect(st, {Result::kRevoked});
  // The runtime's error: it stopped, so the consumer's table could not be
  // told; the host side revoked it all the same.
  if (st.code() != Result::kSuccess && life_ == Life::kRunning) fail("unexpected " + st.to_string());
  revoke_in_model(t);
}

void Driver::publish(TenantModel& t) {
  call_ = "tenant publish_batch";
  if (!t.handle.valid()) return;
  // Mostly within the tenant's quota; now and then past it.
  const uint64_t fits = std::min<uint64_t>(4, t.quotas.max_outstanding_slots);
  const uint32_t count = static_cast<uint32_t>(in_.u8() % 8 == 0 ? 1 + in_.u8() % 9 : 1 + in_.u8() % fits);
  const bool keep = (in_.u8() & 1) != 0;
  std::vector<SlotRequest> requests(count);
  bool in_window = true;
  for (SlotRequest& r : requests) {
    switch (in_.u8() % 16) {
      default: r = ops::nop(in_.u8()); break;
      case 4:
      case 5: {  // on one of its buffers, a freed one, or any handle
        BufferHandle h = static_cast<BufferHandle>(in_.raw64());
        if (!t.buffers.empty() && (in_.u8() & 1)) h = t.buffers.begin()->first;
        r = ops::atomic_add(h, in_.hostile(), 1);
        break;
      }
      case 6: r = ops::fill(t.buffers.empty() ? 0 : t.buffers.begin()->first, in_.hostile(), in_.hostile(), 7); break;
      case 7: r.opcode = in_.u8(); break;  // unknown or out of the window
    }
    if (r.opcode >= t.quotas.opcode_cap) in_window = false;
  }
  const uint64_t outstanding = t.handle.published_count() - t.handle.drained_count();
  TenantPublishOptions options;
  options.keep_result = keep;
  Ticket first;
  const Status st = t.handle.publish_batch(requests.data(), count, &first, options);
  if (!t.live) return expect(st, {Result::kRevoked});
  if (count > t.quotas.max_outstanding_slots) return expect(st, {Result::kInvalidArgument});
  if (!in_window) return expect(st, {Result::kOpcodeOutOfRange});
  if (outstanding + count > t.quotas.max_outstanding_slots)
    return expect(st, {Result::kBackpressure});
  if (count > rt_->capacity()) return expect(st, {Result::kInvalidArgument});
  if (life_ != Life::kRunning)
    return expect(st, {life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted});
  expect(st, {Result::kSuccess, Result::kRingFull});
  if (!st) return;
  for (uint32_t i = 0; i < count; ++i) {
    if (!t.published.insert(first.value + i).second) fail("a ticket was handed out twice");
    if (keep) t.kept.push_back(Ticket{first.value + i, true});
  }
}

void Driver::plain_publish() {
  call_ = "Runtime::publish";
  if (rt_ == nullptr) return;
  PublishOptions o;
  o.on_full = OnFull::kFail;
  Ticket t;
  const Status st = rt_->publish(ops::nop(1), &t, o);
  if (life_ == Life::kRunning) {
    if (st.code() != Result::kSuccess && st.code() != Result::kRingFull) fail("unexpected " + st.to_string());
    if (st) ++plain_published_;
  } else if (st.code() != (life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted)) {
    fail("unexpected " + st.to_string());
  }
}

void Driver::wait_kept(TenantModel& t, bool release) {
  call_ = release ? "tenant release" : "tenant wait";
  if (!t.handle.valid()) return;
  if (t.kept.empty()) {  // a ticket it never kept
    Completion c;
    const Status st = release ? t.handle.release(Ticket{in_.raw64(), true})
                              : t.handle.wait(Ticket{in_.raw64(), true}, &c, milliseconds(0));
    return expect(st, {Result::kInvalidArgument});
  }
  const Ticket ticket = t.kept.back();
  t.kept.pop_back();
  if (release) return expect(t.handle.release(ticket), {Result::kSuccess});
  Completion c;
  const Status st = t.handle.wait(ticket, &c, seconds(30));
  if (registry_ == nullptr || rt_ == nullptr) {
    // Delivered before the registry went, or never: either is fine.
    return expect(st, {Result::kSuccess, Result::kRevoked});
  }
  expect(st, {Result::kSuccess});
  if (!st) return;
  if (c.ticket != ticket.value) fail("wait returned another ticket's completion");
  if (c.status > MR_STATUS_REVOKED && c.status != MR_STATUS_ABORTED) fail("bad completion status");
  Completion again;
  expect(t.handle.wait(ticket, &again, milliseconds(0)), {Result::kInvalidArgument});
}

void Driver::note_and_quiesce(TenantModel& t) {
  call_ = "note_drained / quiesce";
  if (!t.handle.valid()) return;
  // The pump counts every delivery as drained, so nothing is left to note.
  const uint64_t count = in_.hostile();
  expect(t.handle.note_drained(count), {count == 0 ? Result::kSuccess : Result::kResourceUnderflow});
  const Status st = t.handle.quiesce(milliseconds(0));
  expect(st, {Result::kSuccess, Result::kQuiesceTimeout, Result::kRevoked});
}

void Driver::check_invariants() {
  call_ = "invariants";
  for (size_t i = 0; i < kTenants; ++i) {
    const TenantModel& t = tenants_[i];
    if (!t.handle.valid()) continue;
    const TenantQuotaCounters q = t.handle.quota_counters();
    if (q.staging_bytes_in_use > q.staging_bytes_limit) fail("staging in use over its quota");
    if (q.resident_handles_in_use > q.resident_handles_limit) fail("resident handles over the quota");
    if (q.staging_bytes_in_use != t.staging_in_use())
      fail("staging in use != reservations + the live regions' 64-byte lines");
    if (q.staging_region_bytes != t.region_bytes()) fail("staging region bytes differ from the live regions' lines");
    if (q.staging_regions != t.regions.size()) fail("staging regions differ from the live regions");
    if (q.resident_handles_reserved != t.reserved) fail("resident reservations differ");
    if (q.resident_buffers != t.buffers.size()) fail("resident buffers differ from the live buffers");
    if (q.resident_handles_in_use != t.handles_in_use())
      fail("resident handles in use != reservations + buffers + regions");
    const uint64_t published = t.handle.published_count();
    const uint64_t drained = t.handle.drained_count();
    if (drained > published) fail("drained more than published");
    if (q.outstanding_slots > q.max_outstanding_slots) fail("outstanding over its quota");
    if (published != t.published.size()) fail("published count differs from the tickets handed out");
    std::lock_guard<std::mutex> lock(delivered_mutex_);
    for (const auto& [ticket, times] : delivered_[i]) {
      if (times != 1) fail("ticket " + std::to_string(ticket) + " delivered twice");
      if (t.published.count(ticket) == 0) fail("a completion reached a tenant that did not publish it");
    }
  }
  if (rt_ != nullptr && rt_->stats().protocol_errors != 0) fail("protocol errors");
}

// Closes everything and checks conservation.
void Driver::finish() {
  call_ = "finish";
  const bool runtime_first = runtime_gone_;
  // Every kept ticket of a producer answers once; then the producers go,
  // before the runtime.
  for (ProducerModel& p : producers_) {
    while (p.producer != nullptr && !p.kept.empty() && failure_.empty())
      wait_oldest_kept(p, "Producer::wait (finish)");
    p.producer.reset();
  }
  if (!failure_.empty()) return;
  close_registry();
  if (!failure_.empty()) return;
  if (rt_ != nullptr) {
    if (!rt_->shutdown(seconds(30)) && life_ == Life::kRunning) return fail("shutdown failed");
    const RuntimeStats s = rt_->stats();
    if (s.reaped != s.published) fail("tickets left unreaped after shutdown");
    if (s.completed_ok + s.faulted + s.aborted + s.revoked != s.reaped)
      fail("reaped tickets without exactly one final status");
    if (s.protocol_errors != 0) fail("protocol errors");
  }
  for (size_t i = 0; i < kTenants; ++i) {
    const TenantModel& t = tenants_[i];
    std::lock_guard<std::mutex> lock(delivered_mutex_);
    for (const auto& [ticket, times] : delivered_[i])
      if (times != 1 || t.published.count(ticket) == 0) fail("a ticket delivered twice or to a stranger");
    // Unless the runtime went first (then nothing more is delivered),
    // every published ticket was delivered.
    if (!runtime_first && delivered_[i].size() != t.published.size())
      fail("tenant " + std::to_string(i) + ": " + std::to_string(t.published.size()) +
           " tickets published, " + std::to_string(delivered_[i].size()) + " delivered");
  }
}

}  // namespace megaring::fuzz::detail

namespace megaring::fuzz {

std::string run_api_sequence(const uint8_t* data, size_t size) {
  detail::Driver driver(detail::Bytes(data, size));
  return driver.run();
}

}  // namespace megaring::fuzz
