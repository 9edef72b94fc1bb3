// SPDX-License-Identifier: Apache-2.0
// Every public entry point against hostile values: 0, 1, max, max - 1, 2^63,
// 2^32 +- 1, negative and huge durations, null out-pointers, handles of
// another runtime or registry, stale and freed handles, double frees, calls
// after shutdown, after abort and after the runtime is gone. One table; each
// row states the code it must return (issue 13). A row that crashes fails
// the whole binary, which is the point: CI runs it under ASan and TSan.
//
// Each row gets a fresh World (a CPU runtime, a registry with two tenants
// and a few buffers), so rows cannot leak state into each other.
#include <cctype>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <megaring/producer.hpp>
#include <megaring/tenant.hpp>

#include "backend_fixture.hpp"

namespace megaring_test {
namespace {

using megaring::BufferHandle;
using megaring::Completion;
using megaring::Nanoseconds;
using megaring::OpcodeGrants;
using megaring::Producer;
using megaring::PublishOptions;
using megaring::RegionHandle;
using megaring::RegionPolicy;
using megaring::RegistryConfig;
using megaring::SlotRequest;
using megaring::TenantConfig;
using megaring::TenantHandle;
using megaring::TenantPublishOptions;
using megaring::TenantRegistry;
using megaring::Ticket;
using megaring::Timeline;
namespace ops = megaring::ops;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr uint64_t k2p63 = 1ull << 63;
constexpr uint64_t k2p32 = 1ull << 32;
constexpr Nanoseconds kNegative = Nanoseconds(-1);
constexpr Nanoseconds kMostNegative = Nanoseconds::min();

// What a call returned: a Result, or, for a slot, the fault code it
// completed with.
struct Code {
  enum Kind { kResult, kFault } kind = kResult;
  int value = 0;
  bool operator==(const Code& o) const { return kind == o.kind && value == o.value; }
  std::string str() const {
    switch (kind) {
      case kResult: return std::string("Result ") + megaring::result_string(Result(value));
      case kFault: return "slot fault " + std::to_string(value);
    }
    return "?";
  }
};
Code R(Result r) { return {Code::kResult, static_cast<int>(r)}; }
Code F(uint16_t fault) { return {Code::kFault, fault}; }
const Code kOk = R(Result::kSuccess);
Code of(const Status& st) { return R(st.code()); }
// A bug in the row itself (a set-up call failed) reads as this.
const Code kSetupFailed = R(Result::kInternal);

std::ostream& operator<<(std::ostream& os, const Code& c) { return os << c.str(); }

TenantConfig quota_config(const char* label) {
  TenantConfig c;
  c.label = label;
  c.quotas.opcode_cap = 16;
  c.quotas.max_outstanding_slots = 4;
  c.quotas.staging_bytes = 1000;
  c.quotas.resident_handles = 2;
  return c;
}

// A running CPU runtime, a registry with tenants a and b, a runtime buffer
// `buf` (64 bytes), a freed one, and a 64-byte buffer per tenant; with a
// staging arena, the runtime's sealed immutable region `reg` and mutable
// region `mut` (64 bytes each), and a freed region.
struct World {
  std::unique_ptr<Runtime> rt;
  std::unique_ptr<TenantRegistry> registry;
  TenantHandle a, b;
  BufferHandle buf = 0, freed = 0, a_buf = 0, b_buf = 0;
  RegionHandle reg = 0, mut = 0, freed_reg = 0;
  uint8_t host[128] = {};

  bool build(const Config& config) {
    if (!Runtime::create(config, &rt)) return false;
    if (!TenantRegistry::create(*rt, {}, &registry)) return false;
    if (!registry->register_tenant(quota_config("a"), &a)) return false;
    if (!registry->register_tenant(quota_config("b"), &b)) return false;
    if (!rt->alloc_buffer(64, &buf) || !rt->alloc_buffer(64, &freed) || !rt->free_buffer(freed))
      return false;
    if (config.staging_arena_bytes != 0 &&
        (!rt->create_region(RegionPolicy::kImmutable, 64, &reg) || !rt->seal_region(reg) ||
         !rt->create_region(RegionPolicy::kMutable, 64, &mut) ||
         !rt->create_region(RegionPolicy::kMutable, 64, &freed_reg) || !rt->free_region(freed_reg)))
      return false;
    return a.alloc_buffer(64, &a_buf).is_ok() && b.alloc_buffer(64, &b_buf).is_ok();
  }
  // With a registry attached only its pump reaps: one pass first, so that
  // the counters cover every completed ticket.
  megaring::RuntimeStats drained_stats() {
    if (registry) (void)registry->pump_once();
    return rt->stats();
  }
  // Runs one slot and returns the fault it completed with (F(NONE) for OK),
  // after checking that the runtime counted exactly that fault.
  Code slot(const SlotRequest& request) {
    const megaring::RuntimeStats before = drained_stats();
    Completion c;
    Status st = rt->call(request, &c, seconds(30));
    if (!st) return of(st);
    Ticket t{c.ticket, false};
    if (!rt->wait_done(t, seconds(30))) return kSetupFailed;
    const megaring::RuntimeStats after = drained_stats();
    if (c.status == MR_STATUS_OK) return after.completed_ok == before.completed_ok + 1 ? F(0) : kSetupFailed;
    if (c.status != MR_STATUS_FAULT || c.fault == MR_FAULT_NONE || c.fault >= MR_FAULT_CODE_COUNT)
      return kSetupFailed;
    if (after.faults_by_code[c.fault] != before.faults_by_code[c.fault] + 1) return kSetupFailed;
    return F(c.fault);
  }
};

SlotRequest with(SlotRequest r, uint32_t flags, uint32_t tenant) {
  r.flags = flags;
  r.tenant = tenant;
  return r;
}

struct Row {
  const char* name;
  std::function<Code(World&)> call;
  Code expected;
};

// A region of a runtime whose staging arena is `arena` bytes.
Code create_with_region(uint64_t arena) {
  Config c;
  c.backend = Backend::kCpu;
  c.staging_arena_bytes = arena;
  std::unique_ptr<Runtime> rt;
  if (!Runtime::create(c, &rt)) return kSetupFailed;
  RegionHandle h;
  return of(rt->create_region(RegionPolicy::kMutable, 8, &h));
}

// Runtime::create with one field changed. Success shuts the runtime down.
Code create_with(const std::function<void(Config&)>& change) {
  Config c;
  c.backend = Backend::kCpu;
  change(c);
  std::unique_ptr<Runtime> rt;
  const Status st = Runtime::create(c, &rt);
  if (st && !rt->shutdown(seconds(30))) return kSetupFailed;
  return of(st);
}

Code create_registry_with(World& w, const std::function<void(RegistryConfig&)>& change) {
  w.registry.reset();  // one registry per runtime
  RegistryConfig rc;
  change(rc);
  std::unique_ptr<TenantRegistry> r;
  return of(TenantRegistry::create(*w.rt, rc, &r));
}

Code register_with(World& w, const std::function<void(TenantConfig&)>& change) {
  TenantConfig c = quota_config("new");
  change(c);
  TenantHandle h;
  return of(w.registry->register_tenant(c, &h));
}

Code write_at(World& w, BufferHandle h, uint64_t offset, uint64_t bytes) {
  return of(w.rt->write_buffer(h, offset, w.host, bytes));
}
Code read_at(World& w, BufferHandle h, uint64_t offset, uint64_t bytes) {
  return of(w.rt->read_buffer(h, offset, w.host, bytes));
}

Ticket kept_nop(World& w) {
  PublishOptions keep;
  keep.keep_result = true;
  Ticket t;
  (void)w.rt->publish(ops::nop(1), &t, keep);
  return t;
}

// A CPU runtime with `rings` producer rings and a Producer on the first;
// `fn` gets both. The Producer goes before the runtime.
Code with_producer(const std::function<Code(Runtime&, Producer&)>& fn, uint32_t rings = 1) {
  Config c;
  c.backend = Backend::kCpu;
  c.producer_rings = rings;
  std::unique_ptr<Runtime> rt;
  if (!Runtime::create(c, &rt)) return kSetupFailed;
  std::unique_ptr<Producer> producer;
  if (!rt->open_producer(&producer)) return kSetupFailed;
  const Code code = fn(*rt, *producer);
  producer.reset();
  return code;
}
Ticket kept_nop(Producer& p) {
  PublishOptions keep;
  keep.keep_result = true;
  Ticket t;
  (void)p.publish(ops::nop(1), &t, keep);
  return t;
}
using R_ = Runtime&;
using P_ = Producer&;

TenantPublishOptions tenant_timeout(Nanoseconds timeout, bool keep = false) {
  TenantPublishOptions o;
  o.timeout = timeout;
  o.keep_result = keep;
  return o;
}

std::vector<Row> rows() {
  using W = World&;
  return {
      // --- Config (Runtime::create) -------------------------------------------
      {"create: out is null", [](W) { Config c; c.backend = Backend::kCpu; return of(Runtime::create(c, nullptr)); }, R(Result::kInvalidArgument)},
      {"create: backend 7", [](W) { return create_with([](Config& c) { c.backend = static_cast<Backend>(7); }); }, R(Result::kInvalidArgument)},
      {"create: backend -1", [](W) { return create_with([](Config& c) { c.backend = static_cast<Backend>(-1); }); }, R(Result::kInvalidArgument)},
      {"create: device -1", [](W) { return create_with([](Config& c) { c.device = -1; }); }, R(Result::kInvalidArgument)},
      {"create: ring_capacity 0", [](W) { return create_with([](Config& c) { c.ring_capacity = 0; }); }, R(Result::kInvalidArgument)},
      {"create: ring_capacity 1", [](W) { return create_with([](Config& c) { c.ring_capacity = 1; }); }, kOk},
      {"create: ring_capacity 3", [](W) { return create_with([](Config& c) { c.ring_capacity = 3; }); }, R(Result::kInvalidArgument)},
      {"create: ring_capacity 2^25", [](W) { return create_with([](Config& c) { c.ring_capacity = 1u << 25; }); }, R(Result::kInvalidArgument)},
      {"create: ring_capacity 2^31", [](W) { return create_with([](Config& c) { c.ring_capacity = 1u << 31; }); }, R(Result::kInvalidArgument)},
      {"create: ring_capacity max", [](W) { return create_with([](Config& c) { c.ring_capacity = ~0u; }); }, R(Result::kInvalidArgument)},
      {"create: workers 1", [](W) { return create_with([](Config& c) { c.workers = 1; }); }, kOk},
      {"create: workers kMaxCpuWorkers + 1", [](W) { return create_with([](Config& c) { c.workers = megaring::kMaxCpuWorkers + 1; }); }, R(Result::kInvalidArgument)},
      {"create: workers 10000", [](W) { return create_with([](Config& c) { c.workers = 10000; }); }, R(Result::kInvalidArgument)},
      {"create: workers max", [](W) { return create_with([](Config& c) { c.workers = ~0u; }); }, R(Result::kInvalidArgument)},
      {"create: max_buffers 0", [](W) { return create_with([](Config& c) { c.max_buffers = 0; }); }, R(Result::kInvalidArgument)},
      {"create: max_buffers 65535", [](W) { return create_with([](Config& c) { c.max_buffers = 65535; }); }, kOk},
      {"create: max_buffers 65536", [](W) { return create_with([](Config& c) { c.max_buffers = 65536; }); }, R(Result::kInvalidArgument)},
      {"create: max_tenants 0", [](W) { return create_with([](Config& c) { c.max_tenants = 0; }); }, R(Result::kInvalidArgument)},
      {"create: max_tenants 65537", [](W) { return create_with([](Config& c) { c.max_tenants = 65537; }); }, R(Result::kInvalidArgument)},
      {"create: initial_ticket 2^32 - 1", [](W) { return create_with([](Config& c) { c.initial_ticket = k2p32 - 1; }); }, kOk},
      {"create: initial_ticket 2^56", [](W) { return create_with([](Config& c) { c.initial_ticket = 1ull << 56; }); }, R(Result::kInvalidArgument)},
      {"create: initial_ticket max", [](W) { return create_with([](Config& c) { c.initial_ticket = kMax; }); }, R(Result::kInvalidArgument)},
      {"create: backoff min > max", [](W) { return create_with([](Config& c) { c.poll_backoff_min_ns = 10; c.poll_backoff_max_ns = 9; }); }, R(Result::kInvalidArgument)},
      {"create: backoff max 2^31", [](W) { return create_with([](Config& c) { c.poll_backoff_max_ns = 1u << 31; }); }, R(Result::kInvalidArgument)},
      {"create: backoff 0..0", [](W) { return create_with([](Config& c) { c.poll_backoff_min_ns = 0; c.poll_backoff_max_ns = 0; }); }, kOk},
      {"create: fetch_warps 8", [](W) { return create_with([](Config& c) { c.fetch_warps = 8; }); }, R(Result::kInvalidArgument)},
      {"create: fetch_warps max", [](W) { return create_with([](Config& c) { c.fetch_warps = ~0u; }); }, R(Result::kInvalidArgument)},
      {"create: fetch_warps 7", [](W) { return create_with([](Config& c) { c.fetch_warps = 7; }); }, kOk},
      {"create: fetch_warps 1", [](W) { return create_with([](Config& c) { c.fetch_warps = 1; }); }, kOk},
      {"create: producer_rings 15", [](W) { return create_with([](Config& c) { c.producer_rings = 15; }); }, kOk},
      {"create: producer_rings 16", [](W) { return create_with([](Config& c) { c.producer_rings = 16; }); }, R(Result::kInvalidArgument)},
      {"create: producer_rings max", [](W) { return create_with([](Config& c) { c.producer_rings = ~0u; }); }, R(Result::kInvalidArgument)},
      {"create: producer_rings 1 with a timeline", [](W) { return create_with([](Config& c) { c.producer_rings = 1; c.timeline_capacity = 2048; }); }, R(Result::kInvalidArgument)},
      {"create: timeline_capacity 3", [](W) { return create_with([](Config& c) { c.timeline_capacity = 3; }); }, R(Result::kInvalidArgument)},
      {"create: timeline_capacity 2^25", [](W) { return create_with([](Config& c) { c.timeline_capacity = 1u << 25; }); }, R(Result::kInvalidArgument)},
      {"create: timeline_capacity max", [](W) { return create_with([](Config& c) { c.timeline_capacity = ~0u; }); }, R(Result::kInvalidArgument)},
      {"create: abort_timeout -1 ns", [](W) { return create_with([](Config& c) { c.abort_timeout = kNegative; }); }, R(Result::kInvalidArgument)},
      {"create: abort_timeout 0", [](W) { return create_with([](Config& c) { c.abort_timeout = Nanoseconds(0); }); }, kOk},

      // --- publish, wait, release, call ----------------------------------------
      {"publish: ticket is null", [](W w) { return of(w.rt->publish(ops::nop(), nullptr)); }, R(Result::kInvalidArgument)},
      {"publish_batch: requests null", [](W w) { Ticket t; return of(w.rt->publish_batch(nullptr, 1, &t)); }, R(Result::kInvalidArgument)},
      {"publish_batch: count 0", [](W w) { SlotRequest r = ops::nop(); Ticket t; return of(w.rt->publish_batch(&r, 0, &t)); }, R(Result::kInvalidArgument)},
      {"publish_batch: count capacity + 1", [](W w) {
         std::vector<SlotRequest> r(w.rt->capacity() + 1, ops::nop());
         Ticket t;
         return of(w.rt->publish_batch(r.data(), w.rt->capacity() + 1, &t)); }, R(Result::kInvalidArgument)},
      {"publish_batch: count max", [](W w) { SlotRequest r = ops::nop(); Ticket t; return of(w.rt->publish_batch(&r, ~0u, &t)); }, R(Result::kInvalidArgument)},
      {"publish: timeout -1 ns", [](W w) { PublishOptions o; o.timeout = kNegative; Ticket t; return of(w.rt->publish(ops::nop(), &t, o)); }, R(Result::kInvalidArgument)},
      {"publish: timeout min", [](W w) { PublishOptions o; o.timeout = kMostNegative; Ticket t; return of(w.rt->publish(ops::nop(), &t, o)); }, R(Result::kInvalidArgument)},
      {"publish: timeout 0", [](W w) { PublishOptions o; o.timeout = Nanoseconds(0); Ticket t; return of(w.rt->publish(ops::nop(), &t, o)); }, kOk},
      {"publish: timeout kForever", [](W w) { PublishOptions o; o.timeout = megaring::kForever; Ticket t; return of(w.rt->publish(ops::nop(), &t, o)); }, kOk},
      {"publish: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); Ticket t; return of(w.rt->publish(ops::nop(), &t)); }, R(Result::kShutdown)},
      {"publish: after abort", [](W w) { (void)w.rt->abort(); Ticket t; return of(w.rt->publish(ops::nop(), &t)); }, R(Result::kAborted)},
      {"wait: completion null", [](W w) { return of(w.rt->wait(kept_nop(w), nullptr)); }, R(Result::kInvalidArgument)},
      {"wait: never published (max)", [](W w) { Completion c; return of(w.rt->wait(Ticket{kMax, true}, &c)); }, R(Result::kInvalidArgument)},
      {"wait: never published (2^63)", [](W w) { Completion c; return of(w.rt->wait(Ticket{k2p63, true}, &c)); }, R(Result::kInvalidArgument)},
      {"wait: not kept", [](W w) { Ticket t; (void)w.rt->publish(ops::nop(), &t); Completion c; return of(w.rt->wait(t, &c)); }, R(Result::kInvalidArgument)},
      {"wait: timeout -1 ns", [](W w) { Completion c; return of(w.rt->wait(kept_nop(w), &c, kNegative)); }, R(Result::kInvalidArgument)},
      {"wait: twice", [](W w) { Ticket t = kept_nop(w); Completion c; if (!w.rt->wait(t, &c, seconds(30))) return kSetupFailed; return of(w.rt->wait(t, &c)); }, R(Result::kInvalidArgument)},
      {"wait: after abort, for a kept ticket", [](W w) { Ticket t = kept_nop(w); (void)w.rt->abort(); Completion c; return of(w.rt->wait(t, &c, seconds(30))); }, kOk},
      {"wait_done: never published (max)", [](W w) { return of(w.rt->wait_done(Ticket{kMax, false})); }, R(Result::kInvalidArgument)},
      {"wait_done: timeout -1 ns", [](W w) { return of(w.rt->wait_done(kept_nop(w), kNegative)); }, R(Result::kInvalidArgument)},
      {"wait_done: timeout 0, done", [](W w) { Ticket t = kept_nop(w); if (!w.rt->wait_done(t, seconds(30))) return kSetupFailed; return of(w.rt->wait_done(t, Nanoseconds(0))); }, kOk},
      {"wait_done: after abort, a slot cut short", [](W w) {
         Ticket t; if (!w.rt->publish(ops::delay_ns(MR_DELAY_MAX_NS), &t)) return kSetupFailed;
         (void)w.rt->abort(); return of(w.rt->wait_done(t, seconds(30))); }, R(Result::kAborted)},
      {"wait_done: after shutdown", [](W w) { Ticket t = kept_nop(w); w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->wait_done(t)); }, kOk},
      {"release: not kept", [](W w) { Ticket t; (void)w.rt->publish(ops::nop(), &t); return of(w.rt->release(t)); }, R(Result::kInvalidArgument)},
      {"release: twice", [](W w) { Ticket t = kept_nop(w); (void)w.rt->release(t); return of(w.rt->release(t)); }, R(Result::kInvalidArgument)},
      {"release: never published", [](W w) { return of(w.rt->release(Ticket{kMax, true})); }, R(Result::kInvalidArgument)},
      {"call: completion null", [](W w) { return of(w.rt->call(ops::nop(), nullptr)); }, R(Result::kInvalidArgument)},
      {"call: timeout -1 ns", [](W w) { Completion c; return of(w.rt->call(ops::nop(), &c, kNegative)); }, R(Result::kInvalidArgument)},
      {"consumer_counters: out null", [](W w) { return of(w.rt->consumer_counters(nullptr)); }, R(Result::kInvalidArgument)},
      {"health: out null", [](W w) { return of(w.rt->health(nullptr)); }, R(Result::kInvalidArgument)},
      {"health: after abort", [](W w) { (void)w.rt->abort(); megaring::Health h; return of(w.rt->health(&h)); }, kOk},
      {"dump_state: struct null", [](W w) { return of(w.rt->dump_state(static_cast<megaring::StateDump*>(nullptr))); }, R(Result::kInvalidArgument)},
      {"dump_state: text null", [](W w) { return of(w.rt->dump_state(static_cast<std::string*>(nullptr))); }, R(Result::kInvalidArgument)},
      {"dump_state: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); std::string s; return of(w.rt->dump_state(&s)); }, kOk},
      {"metrics_text: out null", [](W w) { return of(w.rt->metrics_text(nullptr)); }, R(Result::kInvalidArgument)},
      {"metrics_text: after abort", [](W w) { (void)w.rt->abort(); std::string s; return of(w.rt->metrics_text(&s)); }, kOk},
      {"registry metrics_text: out null", [](W w) { return of(w.registry->metrics_text(nullptr)); }, R(Result::kInvalidArgument)},
      {"suspend: timeout -1 ns", [](W w) { return of(w.rt->suspend(kNegative)); }, R(Result::kInvalidArgument)},
      {"suspend: timeout 0 (one look)", [](W w) { const Status st = w.rt->suspend(Nanoseconds(0)); (void)w.rt->resume(); return of(st.code() == Result::kTimeout ? Status::ok() : st); }, kOk},
      {"suspend: twice", [](W w) { (void)w.rt->suspend(); const Status st = w.rt->suspend(); (void)w.rt->resume(); return of(st); }, kOk},
      {"suspend: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->suspend()); }, R(Result::kShutdown)},
      {"suspend: after abort", [](W w) { (void)w.rt->abort(); return of(w.rt->suspend()); }, R(Result::kAborted)},
      {"resume: not suspended", [](W w) { return of(w.rt->resume()); }, R(Result::kInvalidArgument)},
      {"resume: twice", [](W w) { (void)w.rt->suspend(); (void)w.rt->resume(); return of(w.rt->resume()); }, R(Result::kInvalidArgument)},
      {"resume: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->resume()); }, R(Result::kShutdown)},
      {"shutdown: timeout -1 ns", [](W w) { return of(w.rt->shutdown(kNegative)); }, R(Result::kInvalidArgument)},
      {"shutdown: twice", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->shutdown()); }, kOk},
      {"abort: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->abort()); }, kOk},
      {"shutdown: after abort", [](W w) { (void)w.rt->abort(); return of(w.rt->shutdown()); }, kOk},

      // --- Producers (a ring of their own) -------------------------------------
      {"open_producer: out null", [](W) { return with_producer([](R_ rt, P_) { return of(rt.open_producer(nullptr)); }); }, R(Result::kInvalidArgument)},
      {"open_producer: no producer rings", [](W w) { std::unique_ptr<Producer> p; return of(w.rt->open_producer(&p)); }, R(Result::kInvalidArgument)},
      {"open_producer: every ring taken", [](W) { return with_producer([](R_ rt, P_) { std::unique_ptr<Producer> p; return of(rt.open_producer(&p)); }); }, R(Result::kRingFull)},
      {"open_producer: after shutdown", [](W) { return with_producer([](R_ rt, P_) { (void)rt.shutdown(); std::unique_ptr<Producer> p; return of(rt.open_producer(&p)); }, 2); }, R(Result::kShutdown)},
      {"open_producer: after abort", [](W) { return with_producer([](R_ rt, P_) { (void)rt.abort(); std::unique_ptr<Producer> p; return of(rt.open_producer(&p)); }, 2); }, R(Result::kAborted)},
      {"producer publish: ticket null", [](W) { return with_producer([](R_, P_ p) { return of(p.publish(ops::nop(), nullptr)); }); }, R(Result::kInvalidArgument)},
      {"producer publish_batch: requests null", [](W) { return with_producer([](R_, P_ p) { Ticket t; return of(p.publish_batch(nullptr, 1, &t)); }); }, R(Result::kInvalidArgument)},
      {"producer publish_batch: count 0", [](W) { return with_producer([](R_, P_ p) { SlotRequest r = ops::nop(); Ticket t; return of(p.publish_batch(&r, 0, &t)); }); }, R(Result::kInvalidArgument)},
      {"producer publish_batch: count capacity + 1", [](W) { return with_producer([](R_ rt, P_ p) {
         std::vector<SlotRequest> r(rt.capacity() + 1, ops::nop());
         Ticket t;
         return of(p.publish_batch(r.data(), rt.capacity() + 1, &t)); }); }, R(Result::kInvalidArgument)},
      {"producer publish_batch: count max", [](W) { return with_producer([](R_, P_ p) { SlotRequest r = ops::nop(); Ticket t; return of(p.publish_batch(&r, ~0u, &t)); }); }, R(Result::kInvalidArgument)},
      {"producer publish: timeout -1 ns", [](W) { return with_producer([](R_, P_ p) { PublishOptions o; o.timeout = kNegative; Ticket t; return of(p.publish(ops::nop(), &t, o)); }); }, R(Result::kInvalidArgument)},
      {"producer publish: after shutdown", [](W) { return with_producer([](R_ rt, P_ p) { (void)rt.shutdown(); Ticket t; return of(p.publish(ops::nop(), &t)); }); }, R(Result::kShutdown)},
      {"producer publish: after abort", [](W) { return with_producer([](R_ rt, P_ p) { (void)rt.abort(); Ticket t; return of(p.publish(ops::nop(), &t)); }); }, R(Result::kAborted)},
      {"producer publish: after the runtime is destroyed", [](W) {
         Config c; c.backend = Backend::kCpu; c.producer_rings = 1;
         std::unique_ptr<Runtime> rt; if (!Runtime::create(c, &rt)) return kSetupFailed;
         std::unique_ptr<Producer> p; if (!rt->open_producer(&p)) return kSetupFailed;
         rt.reset();
         Ticket t; return of(p->publish(ops::nop(), &t)); }, R(Result::kShutdown)},
      {"producer wait: completion null", [](W) { return with_producer([](R_, P_ p) { return of(p.wait(kept_nop(p), nullptr)); }); }, R(Result::kInvalidArgument)},
      {"producer wait: never published (max)", [](W) { return with_producer([](R_, P_ p) { Completion c; return of(p.wait(Ticket{kMax, true}, &c)); }); }, R(Result::kInvalidArgument)},
      {"producer wait: never published (2^63)", [](W) { return with_producer([](R_, P_ p) { Completion c; return of(p.wait(Ticket{k2p63, true}, &c)); }); }, R(Result::kInvalidArgument)},
      {"producer wait: not kept", [](W) { return with_producer([](R_, P_ p) { Ticket t; (void)p.publish(ops::nop(), &t); Completion c; return of(p.wait(t, &c)); }); }, R(Result::kInvalidArgument)},
      {"producer wait: timeout -1 ns", [](W) { return with_producer([](R_, P_ p) { Completion c; return of(p.wait(kept_nop(p), &c, kNegative)); }); }, R(Result::kInvalidArgument)},
      {"producer wait: twice", [](W) { return with_producer([](R_, P_ p) { Ticket t = kept_nop(p); Completion c; if (!p.wait(t, &c, seconds(30))) return kSetupFailed; return of(p.wait(t, &c)); }); }, R(Result::kInvalidArgument)},
      {"producer wait: after abort, for a kept ticket", [](W) { return with_producer([](R_ rt, P_ p) { Ticket t = kept_nop(p); (void)rt.abort(); Completion c; return of(p.wait(t, &c, seconds(30))); }); }, kOk},
      {"producer wait_done: never published (max)", [](W) { return with_producer([](R_, P_ p) { return of(p.wait_done(Ticket{kMax, false})); }); }, R(Result::kInvalidArgument)},
      {"producer wait_done: timeout -1 ns", [](W) { return with_producer([](R_, P_ p) { return of(p.wait_done(kept_nop(p), kNegative)); }); }, R(Result::kInvalidArgument)},
      {"producer wait_done: after abort, a slot cut short", [](W) { return with_producer([](R_ rt, P_ p) {
         Ticket t; if (!p.publish(ops::delay_ns(MR_DELAY_MAX_NS), &t)) return kSetupFailed;
         (void)rt.abort(); return of(p.wait_done(t, seconds(30))); }); }, R(Result::kAborted)},
      {"producer release: twice", [](W) { return with_producer([](R_, P_ p) { Ticket t = kept_nop(p); (void)p.release(t); return of(p.release(t)); }); }, R(Result::kInvalidArgument)},
      {"producer release: never published", [](W) { return with_producer([](R_, P_ p) { return of(p.release(Ticket{kMax, true})); }); }, R(Result::kInvalidArgument)},
      {"producer call: completion null", [](W) { return with_producer([](R_, P_ p) { return of(p.call(ops::nop(), nullptr)); }); }, R(Result::kInvalidArgument)},
      {"producer call: timeout -1 ns", [](W) { return with_producer([](R_, P_ p) { Completion c; return of(p.call(ops::nop(), &c, kNegative)); }); }, R(Result::kInvalidArgument)},

      // --- Buffers (host side) -------------------------------------------------
      {"alloc_buffer: handle null", [](W w) { return of(w.rt->alloc_buffer(64, nullptr)); }, R(Result::kInvalidArgument)},
      {"alloc_buffer: 0 bytes", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(0, &h)); }, kOk},
      {"alloc_buffer: 1 byte", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(1, &h)); }, kOk},
      {"alloc_buffer: 2^64 - 1", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(kMax, &h)); }, R(Result::kInvalidArgument)},
      {"alloc_buffer: 2^64 - 63", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(kMax - 62, &h)); }, R(Result::kInvalidArgument)},
      {"alloc_buffer: 2^63", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(k2p63, &h)); }, R(Result::kInvalidArgument)},
      {"alloc_buffer: kMaxBufferBytes + 1", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(megaring::kMaxBufferBytes + 1, &h)); }, R(Result::kInvalidArgument)},
      {"alloc_buffer: kMaxBufferBytes", [](W w) { BufferHandle h; return of(w.rt->alloc_buffer(megaring::kMaxBufferBytes, &h)); }, R(Result::kOutOfMemory)},
      {"register_buffer: memory null", [](W w) { BufferHandle h; return of(w.rt->register_buffer(nullptr, 64, &h)); }, R(Result::kInvalidArgument)},
      {"register_buffer: handle null", [](W w) { return of(w.rt->register_buffer(w.host, 64, nullptr)); }, R(Result::kInvalidArgument)},
      {"register_buffer: 0 bytes", [](W w) { BufferHandle h; return of(w.rt->register_buffer(w.host, 0, &h)); }, kOk},
      {"register_buffer: kMaxBufferBytes + 1", [](W w) { BufferHandle h; return of(w.rt->register_buffer(w.host, megaring::kMaxBufferBytes + 1, &h)); }, R(Result::kInvalidArgument)},
      {"register_buffer: a range that wraps", [](W w) { BufferHandle h; return of(w.rt->register_buffer(reinterpret_cast<void*>(kMax - 15), 64, &h)); }, R(Result::kInvalidArgument)},
      {"unregister_buffer: handle 0", [](W w) { return of(w.rt->unregister_buffer(0)); }, R(Result::kInvalidArgument)},
      {"unregister_buffer: an allocated buffer", [](W w) { return of(w.rt->unregister_buffer(w.buf)); }, R(Result::kInvalidArgument)},
      {"unregister_buffer: timeout negative", [](W w) { BufferHandle h; if (!w.rt->register_buffer(w.host, 64, &h)) return kSetupFailed; return of(w.rt->unregister_buffer(h, Nanoseconds(-1))); }, R(Result::kInvalidArgument)},
      {"unregister_buffer: a freed handle", [](W w) { return of(w.rt->unregister_buffer(w.freed)); }, R(Result::kInvalidArgument)},
      {"tenant unregister_buffer: another tenant's", [](W w) { return of(w.a.unregister_buffer(w.b_buf)); }, R(Result::kInvalidArgument)},
      {"alloc_buffer: table full", [](W) {
         Config c; c.backend = Backend::kCpu; c.max_buffers = 1;
         std::unique_ptr<Runtime> rt; if (!Runtime::create(c, &rt)) return kSetupFailed;
         BufferHandle h; if (!rt->alloc_buffer(8, &h)) return kSetupFailed;
         return of(rt->alloc_buffer(8, &h)); }, R(Result::kOutOfMemory)},
      {"alloc_buffer: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); BufferHandle h; return of(w.rt->alloc_buffer(8, &h)); }, R(Result::kShutdown)},
      {"alloc_buffer: after abort", [](W w) { (void)w.rt->abort(); BufferHandle h; return of(w.rt->alloc_buffer(8, &h)); }, R(Result::kAborted)},
      {"free_buffer: handle 0", [](W w) { return of(w.rt->free_buffer(0)); }, R(Result::kInvalidArgument)},
      {"free_buffer: handle max", [](W w) { return of(w.rt->free_buffer(~0u)); }, R(Result::kInvalidArgument)},
      {"free_buffer: freed (double free)", [](W w) { return of(w.rt->free_buffer(w.freed)); }, R(Result::kInvalidArgument)},
      {"free_buffer: stale generation", [](W w) { return of(w.rt->free_buffer(w.buf + (1u << MR_BUFFER_INDEX_BITS))); }, R(Result::kInvalidArgument)},
      {"free_buffer: another runtime's handle", [](W w) {
         World other; Config c; c.backend = Backend::kCpu; if (!other.build(c)) return kSetupFailed;
         return of(w.rt->free_buffer(other.buf)); }, R(Result::kInvalidArgument)},
      {"free_buffer: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->free_buffer(w.buf)); }, kOk},
      {"write_buffer: src null, 1 byte", [](W w) { return of(w.rt->write_buffer(w.buf, 0, nullptr, 1)); }, R(Result::kInvalidArgument)},
      {"write_buffer: src null, 0 bytes", [](W w) { return of(w.rt->write_buffer(w.buf, 0, nullptr, 0)); }, kOk},
      {"write_buffer: whole buffer", [](W w) { return write_at(w, w.buf, 0, 64); }, kOk},
      {"write_buffer: empty at the end", [](W w) { return write_at(w, w.buf, 64, 0); }, kOk},
      {"write_buffer: empty past the end", [](W w) { return write_at(w, w.buf, 65, 0); }, R(Result::kInvalidArgument)},
      {"write_buffer: one byte too many", [](W w) { return write_at(w, w.buf, 0, 65); }, R(Result::kInvalidArgument)},
      {"write_buffer: offset max, 2 bytes (wraps)", [](W w) { return write_at(w, w.buf, kMax, 2); }, R(Result::kInvalidArgument)},
      {"write_buffer: offset 1, bytes max (wraps)", [](W w) { return write_at(w, w.buf, 1, kMax); }, R(Result::kInvalidArgument)},
      {"write_buffer: 2^63 + 2^63", [](W w) { return write_at(w, w.buf, k2p63, k2p63); }, R(Result::kInvalidArgument)},
      {"write_buffer: offset 2^32 + 1", [](W w) { return write_at(w, w.buf, k2p32 + 1, 1); }, R(Result::kInvalidArgument)},
      {"write_buffer: freed handle", [](W w) { return write_at(w, w.freed, 0, 1); }, R(Result::kInvalidArgument)},
      {"write_buffer: after shutdown (results stay readable)", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return write_at(w, w.buf, 0, 8); }, kOk},
      {"read_buffer: dst null, 1 byte", [](W w) { return of(w.rt->read_buffer(w.buf, 0, nullptr, 1)); }, R(Result::kInvalidArgument)},
      {"read_buffer: offset 2^64 - 64, 64 bytes", [](W w) { return read_at(w, w.buf, kMax - 63, 64); }, R(Result::kInvalidArgument)},
      {"read_buffer: handle 0", [](W w) { return read_at(w, 0, 0, 1); }, R(Result::kInvalidArgument)},

      // --- Slots with hostile arguments: FAULT completions, counted -------------
      {"slot: atomic_add at offset 2^64 - 8", [](W w) { return w.slot(ops::atomic_add(w.buf, kMax - 7, 1)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: atomic_add at offset 4096", [](W w) { return w.slot(ops::atomic_add(w.buf, 4096, 1)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: atomic_add misaligned", [](W w) { return w.slot(ops::atomic_add(w.buf, 4, 1)); }, F(MR_FAULT_MISALIGNED)},
      {"slot: fill 2^64 - 1 bytes at 1", [](W w) { return w.slot(ops::fill(w.buf, 1, kMax, 0)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: fill byte value 256", [](W w) { SlotRequest r = ops::fill(w.buf, 0, 1, 0); r.args[3] = 256; return w.slot(r); }, F(MR_FAULT_BAD_ARGUMENT)},
      {"slot: store_u32 value 2^32", [](W w) { SlotRequest r = ops::store_u32(w.buf, 0, 0); r.args[2] = k2p32; return w.slot(r); }, F(MR_FAULT_BAD_ARGUMENT)},
      {"slot: copy overlapping", [](W w) { return w.slot(ops::copy(w.buf, 0, w.buf, 8, 16)); }, F(MR_FAULT_BAD_ARGUMENT)},
      {"slot: copy 2^63 bytes", [](W w) { return w.slot(ops::copy(w.buf, 0, w.a_buf, 0, k2p63)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: reduce 2^62 elements (bytes wrap)", [](W w) { return w.slot(ops::reduce_add_u32(w.buf, 0, 1ull << 62)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: reduce 2^64 - 1 elements", [](W w) { return w.slot(ops::reduce_add_u32(w.buf, 0, kMax)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: delay over MR_DELAY_MAX_NS", [](W w) { return w.slot(ops::delay_ns(MR_DELAY_MAX_NS + 1)); }, F(MR_FAULT_BAD_ARGUMENT)},
      {"slot: freed handle", [](W w) { return w.slot(ops::atomic_add(w.freed, 0, 1)); }, F(MR_FAULT_BAD_HANDLE)},
      {"slot: handle 2^32 + buf", [](W w) { SlotRequest r = ops::atomic_add(w.buf, 0, 1); r.args[0] += k2p32; return w.slot(r); }, F(MR_FAULT_BAD_HANDLE)},
      {"slot: handle index past the table", [](W w) { return w.slot(ops::atomic_add(0xFFFF, 0, 1)); }, F(MR_FAULT_BAD_HANDLE)},
      {"slot: unknown opcode 255", [](W w) { SlotRequest r; r.opcode = 255; return w.slot(r); }, F(MR_FAULT_UNKNOWN_OPCODE)},
      {"slot: opcode 0", [](W w) { SlotRequest r; r.opcode = 0; return w.slot(r); }, F(MR_FAULT_UNKNOWN_OPCODE)},
      {"slot: reserved flags", [](W w) { return w.slot(with(ops::nop(), ~0u, 0)); }, F(MR_FAULT_RESERVED_FLAGS)},
      {"slot: tenant-less opcode in the tenant range", [](W w) { SlotRequest r; r.opcode = MR_OP_TENANT_BASE; return w.slot(r); }, F(MR_FAULT_OUT_OF_WINDOW)},
      {"slot: tenant id max", [](W w) { return w.slot(with(ops::nop(), 0, ~0u)); }, F(MR_FAULT_BAD_TENANT)},
      {"slot: tenant id of a live tenant, stale generation", [](W w) { return w.slot(with(ops::nop(), 0, w.a.id() + (1u << MR_TENANT_INDEX_BITS))); }, F(MR_FAULT_BAD_TENANT)},

      // --- Timeline and trace writing -------------------------------------------
      {"timeline: mode off", [](W w) { Timeline t; return of(w.rt->timeline(&t)); }, R(Result::kInvalidArgument)},
      {"timeline: out null (mode on)", [](W) {
         Config c; c.backend = Backend::kCpu; c.timeline_capacity = 2048;
         std::unique_ptr<Runtime> rt; if (!Runtime::create(c, &rt)) return kSetupFailed;
         return of(rt->timeline(nullptr)); }, R(Result::kInvalidArgument)},
      {"write_timeline_trace: empty path", [](W) {
         Config c; c.backend = Backend::kCpu; c.timeline_capacity = 2048;
         std::unique_ptr<Runtime> rt; if (!Runtime::create(c, &rt)) return kSetupFailed;
         return of(rt->write_timeline_trace("")); }, R(Result::kInvalidArgument)},
      {"write_timeline_trace: a full device", [](W) {
         Config c; c.backend = Backend::kCpu; c.timeline_capacity = 2048;
         std::unique_ptr<Runtime> rt; if (!Runtime::create(c, &rt)) return kSetupFailed;
         return of(rt->write_timeline_trace("/dev/full")); }, R(Result::kIoError)},

      // --- Registry and tenants ---------------------------------------------------
      {"registry create: out null", [](W w) { w.registry.reset(); return of(TenantRegistry::create(*w.rt, {}, nullptr)); }, R(Result::kInvalidArgument)},
      {"registry create: a second one", [](W w) { std::unique_ptr<TenantRegistry> r; return of(TenantRegistry::create(*w.rt, {}, &r)); }, R(Result::kInvalidArgument)},
      {"registry create: max_tenants past the table", [](W w) { return create_registry_with(w, [](RegistryConfig& c) { c.max_tenants = 1u << 20; }); }, R(Result::kInvalidArgument)},
      {"registry create: opcode_begin below the tenant range", [](W w) { return create_registry_with(w, [](RegistryConfig& c) { c.opcode_begin = 0; }); }, R(Result::kInvalidArgument)},
      {"registry create: empty opcode range", [](W w) { return create_registry_with(w, [](RegistryConfig& c) { c.opcode_end = c.opcode_begin; }); }, R(Result::kInvalidArgument)},
      {"registry create: close_timeout -1 ns", [](W w) { return create_registry_with(w, [](RegistryConfig& c) { c.close_timeout = kNegative; }); }, R(Result::kInvalidArgument)},
      {"registry create: pump_idle_sleep_max min", [](W w) { return create_registry_with(w, [](RegistryConfig& c) { c.pump_idle_sleep_max = kMostNegative; }); }, R(Result::kInvalidArgument)},
      {"register: out null", [](W w) { return of(w.registry->register_tenant(quota_config("x"), nullptr)); }, R(Result::kInvalidArgument)},
      {"register: opcode_cap 0", [](W w) { return register_with(w, [](TenantConfig& c) { c.quotas.opcode_cap = 0; }); }, R(Result::kInvalidArgument)},
      {"register: opcode_cap max", [](W w) { return register_with(w, [](TenantConfig& c) { c.quotas.opcode_cap = ~0u; }); }, R(Result::kRegistryFull)},
      {"register: max_outstanding_slots 0", [](W w) { return register_with(w, [](TenantConfig& c) { c.quotas.max_outstanding_slots = 0; }); }, R(Result::kInvalidArgument)},
      {"register: quotas max", [](W w) { return register_with(w, [](TenantConfig& c) { c.quotas.max_outstanding_slots = kMax; c.quotas.staging_bytes = kMax; c.quotas.resident_handles = kMax; }); }, kOk},
      {"register: after the runtime shut down", [](W w) { (void)w.rt->shutdown(); return register_with(w, [](TenantConfig&) {}); }, kOk},
      {"unregister: empty handle", [](W w) { return of(w.registry->unregister_tenant(TenantHandle())); }, R(Result::kInvalidArgument)},
      {"unregister: twice", [](W w) { (void)w.registry->unregister_tenant(w.a); return of(w.registry->unregister_tenant(w.a)); }, R(Result::kRevoked)},
      {"unregister: another registry's tenant", [](W w) {
         World other; Config c; c.backend = Backend::kCpu; if (!other.build(c)) return kSetupFailed;
         return of(w.registry->unregister_tenant(other.a)); }, R(Result::kInvalidArgument)},
      {"global_opcode: out null", [](W w) { return of(w.a.global_opcode(1, nullptr)); }, R(Result::kInvalidArgument)},
      {"global_opcode: cap", [](W w) { uint32_t g; return of(w.a.global_opcode(16, &g)); }, R(Result::kOpcodeOutOfRange)},
      {"global_opcode: max", [](W w) { uint32_t g; return of(w.a.global_opcode(~0u, &g)); }, R(Result::kOpcodeOutOfRange)},
      {"tenant publish: 6 arguments", [](W w) { Ticket t; return of(w.a.publish_slot(MR_OP_NOP, {1, 2, 3, 4, 5, 6}, &t)); }, R(Result::kInvalidArgument)},
      {"tenant publish: ticket null", [](W w) { return of(w.a.publish_slot(ops::nop(), nullptr)); }, R(Result::kInvalidArgument)},
      {"tenant publish_batch: count 0", [](W w) { SlotRequest r = ops::nop(); Ticket t; return of(w.a.publish_batch(&r, 0, &t)); }, R(Result::kInvalidArgument)},
      {"tenant publish_batch: past max_outstanding", [](W w) { std::vector<SlotRequest> r(5, ops::nop()); Ticket t; return of(w.a.publish_batch(r.data(), 5, &t)); }, R(Result::kInvalidArgument)},
      {"tenant publish: names another tenant", [](W w) { Ticket t; return of(w.a.publish_slot(with(ops::nop(), 0, w.b.id()), &t)); }, R(Result::kInvalidArgument)},
      {"tenant publish: local opcode max", [](W w) { SlotRequest r; r.opcode = ~0u; Ticket t; return of(w.a.publish_slot(r, &t)); }, R(Result::kOpcodeOutOfRange)},
      {"tenant publish: timeout -1 ns", [](W w) { Ticket t; return of(w.a.publish_slot(ops::nop(), &t, tenant_timeout(kNegative))); }, R(Result::kInvalidArgument)},
      {"tenant publish: timeout kForever", [](W w) { Ticket t; return of(w.a.publish_slot(ops::nop(), &t, tenant_timeout(megaring::kForever))); }, kOk},
      {"tenant publish: after unregister", [](W w) { (void)w.registry->unregister_tenant(w.a); Ticket t; return of(w.a.publish_slot(ops::nop(), &t)); }, R(Result::kRevoked)},
      {"tenant publish: after the registry is gone", [](W w) { w.registry.reset(); Ticket t; return of(w.a.publish_slot(ops::nop(), &t)); }, R(Result::kRevoked)},
      {"tenant publish: after the runtime shut down", [](W w) { (void)w.rt->shutdown(); Ticket t; return of(w.a.publish_slot(ops::nop(), &t)); }, R(Result::kShutdown)},
      {"tenant publish: after the runtime is gone", [](W w) { w.rt.reset(); Ticket t; return of(w.a.publish_slot(ops::nop(), &t)); }, R(Result::kRevoked)},
      {"tenant wait: completion null", [](W w) { Ticket t; (void)w.a.publish_slot(ops::nop(), &t, tenant_timeout(seconds(30), true)); return of(w.a.wait(t, nullptr)); }, R(Result::kInvalidArgument)},
      {"tenant wait: timeout -1 ns", [](W w) { Ticket t; (void)w.a.publish_slot(ops::nop(), &t, tenant_timeout(seconds(30), true)); Completion c; return of(w.a.wait(t, &c, kNegative)); }, R(Result::kInvalidArgument)},
      {"tenant wait: another tenant's ticket", [](W w) { Ticket t; (void)w.b.publish_slot(ops::nop(), &t, tenant_timeout(seconds(30), true)); Completion c; return of(w.a.wait(t, &c)); }, R(Result::kInvalidArgument)},
      {"tenant wait: not kept", [](W w) { Ticket t; (void)w.a.publish_slot(ops::nop(), &t); Completion c; return of(w.a.wait(t, &c)); }, R(Result::kInvalidArgument)},
      {"tenant wait: after the runtime is gone", [](W w) { Ticket t; (void)w.a.publish_slot(ops::delay_ns(MR_DELAY_MAX_NS), &t, tenant_timeout(seconds(30), true)); w.rt.reset(); Completion c; return of(w.a.wait(t, &c, seconds(1))); }, R(Result::kRevoked)},
      {"tenant release: unknown ticket", [](W w) { return of(w.a.release(Ticket{kMax, true})); }, R(Result::kInvalidArgument)},
      {"reserve_staging_bytes: 0", [](W w) { return of(w.a.reserve_staging_bytes(0)); }, kOk},
      {"reserve_staging_bytes: the whole quota", [](W w) { return of(w.a.reserve_staging_bytes(1000)); }, kOk},
      {"reserve_staging_bytes: quota + 1", [](W w) { return of(w.a.reserve_staging_bytes(1001)); }, R(Result::kStagingBackpressure)},
      {"reserve_staging_bytes: 2^64 - 1 after 1", [](W w) { (void)w.a.reserve_staging_bytes(1); return of(w.a.reserve_staging_bytes(kMax)); }, R(Result::kStagingBackpressure)},
      {"release_staging_bytes: nothing reserved", [](W w) { return of(w.a.release_staging_bytes(1)); }, R(Result::kResourceUnderflow)},
      {"release_staging_bytes: 2^64 - 1", [](W w) { (void)w.a.reserve_staging_bytes(10); return of(w.a.release_staging_bytes(kMax)); }, R(Result::kResourceUnderflow)},
      {"reserve_resident_handles: 2^63", [](W w) { return of(w.a.reserve_resident_handles(k2p63)); }, R(Result::kResidentBackpressure)},
      {"release_resident_handles: a buffer's handle", [](W w) { return of(w.a.release_resident_handles(1)); }, R(Result::kResourceUnderflow)},
      {"release_resident_handles: after unregister", [](W w) { (void)w.registry->unregister_tenant(w.a); return of(w.a.release_resident_handles(1)); }, R(Result::kRevoked)},
      {"tenant alloc_buffer: handle null", [](W w) { return of(w.a.alloc_buffer(8, nullptr)); }, R(Result::kInvalidArgument)},
      {"tenant alloc_buffer: 2^64 - 1, quota unchanged", [](W w) {
         BufferHandle h; const Code c = of(w.a.alloc_buffer(kMax, &h));
         return w.a.quota_counters().resident_handles_in_use == 1 ? c : kSetupFailed; }, R(Result::kInvalidArgument)},
      {"tenant alloc_buffer: past the quota", [](W w) { BufferHandle h; (void)w.a.alloc_buffer(8, &h); return of(w.a.alloc_buffer(8, &h)); }, R(Result::kResidentBackpressure)},
      {"tenant free_buffer: another tenant's", [](W w) { return of(w.a.free_buffer(w.b_buf)); }, R(Result::kInvalidArgument)},
      {"tenant free_buffer: the runtime's", [](W w) { return of(w.a.free_buffer(w.buf)); }, R(Result::kInvalidArgument)},
      {"tenant free_buffer: twice", [](W w) { (void)w.a.free_buffer(w.a_buf); return of(w.a.free_buffer(w.a_buf)); }, R(Result::kInvalidArgument)},
      {"tenant free_buffer: handle 0", [](W w) { return of(w.a.free_buffer(0)); }, R(Result::kInvalidArgument)},
      {"tenant write_buffer: another tenant's", [](W w) { return of(w.a.write_buffer(w.b_buf, 0, w.host, 1)); }, R(Result::kInvalidArgument)},
      {"tenant write_buffer: offset max, 2 bytes", [](W w) { return of(w.a.write_buffer(w.a_buf, kMax, w.host, 2)); }, R(Result::kInvalidArgument)},
      {"tenant read_buffer: bytes 2^64 - 1", [](W w) { return of(w.a.read_buffer(w.a_buf, 1, w.host, kMax)); }, R(Result::kInvalidArgument)},
      {"tenant slot: another tenant's buffer", [](W w) {
         uint32_t op; if (!w.a.global_opcode(MR_OP_ATOMIC_ADD, &op)) return kSetupFailed;
         SlotRequest r = ops::atomic_add(w.b_buf, 0, 1); r.opcode = op;
         return w.slot(with(r, 0, w.a.id())); }, F(MR_FAULT_BAD_HANDLE)},
      {"note_drained: 0", [](W w) { return of(w.a.note_drained(0)); }, kOk},
      {"note_drained: 2^64 - 1", [](W w) { return of(w.a.note_drained(kMax)); }, R(Result::kResourceUnderflow)},
      {"quiesce: timeout -1 ns", [](W w) { return of(w.a.quiesce(kNegative)); }, R(Result::kInvalidArgument)},
      {"quiesce: timeout 0, nothing outstanding", [](W w) { return of(w.a.quiesce(Nanoseconds(0))); }, kOk},
      {"empty handle: publish", [](W) { Ticket t; return of(TenantHandle().publish_slot(ops::nop(), &t)); }, R(Result::kInvalidArgument)},
      {"empty handle: reserve", [](W) { return of(TenantHandle().reserve_staging_bytes(1)); }, R(Result::kInvalidArgument)},
      {"empty handle: note_drained", [](W) { return of(TenantHandle().note_drained(1)); }, R(Result::kInvalidArgument)},
      // --- Opcode grants ------------------------------------------------------------
      {"register: grant at the window's end", [](W w) { return register_with(w, [](TenantConfig& c) { c.grants = OpcodeGrants::only({16}); }); }, R(Result::kOpcodeOutOfRange)},
      {"register: grant of opcode 0", [](W w) { return register_with(w, [](TenantConfig& c) { c.grants = OpcodeGrants::only({0}); }); }, R(Result::kInvalidArgument)},
      {"set_grants: opcode at the window's end", [](W w) { return of(w.a.set_grants(OpcodeGrants::only({16}))); }, R(Result::kOpcodeOutOfRange)},
      {"set_grants: opcode max", [](W w) { return of(w.a.set_grants(OpcodeGrants::only({~0u}))); }, R(Result::kOpcodeOutOfRange)},
      {"set_grants: opcode 0", [](W w) { return of(w.a.set_grants(OpcodeGrants::only({0}))); }, R(Result::kInvalidArgument)},
      {"set_grants: past kGrantSystemEnd, in the window", [](W w) {
         TenantConfig c = quota_config("wide"); c.quotas.opcode_cap = 2048; TenantHandle h;
         if (!w.registry->register_tenant(c, &h)) return kSetupFailed;
         return of(h.set_grants(OpcodeGrants::only({megaring::kGrantUserEnd}))); }, R(Result::kInvalidArgument)},
      {"set_grants: nothing", [](W w) { return of(w.a.set_grants(OpcodeGrants::only({}))); }, kOk},
      {"set_grants: after unregister", [](W w) { (void)w.registry->unregister_tenant(w.a); return of(w.a.set_grants(OpcodeGrants{})); }, R(Result::kRevoked)},
      {"set_grants: after the registry is gone", [](W w) { w.registry.reset(); return of(w.a.set_grants(OpcodeGrants{})); }, R(Result::kRevoked)},
      {"set_grants: after the runtime is gone", [](W w) { w.rt.reset(); return of(w.a.set_grants(OpcodeGrants{})); }, R(Result::kRevoked)},
      {"grants: out null", [](W w) { return of(w.a.grants(nullptr)); }, R(Result::kInvalidArgument)},
      {"empty handle: set_grants", [](W) { return of(TenantHandle().set_grants(OpcodeGrants{})); }, R(Result::kInvalidArgument)},
      {"tenant slot: an opcode not granted", [](W w) {
         if (!w.a.set_grants(OpcodeGrants::only({MR_OP_NOP}))) return kSetupFailed;
         uint32_t op; if (!w.a.global_opcode(MR_OP_ATOMIC_ADD, &op)) return kSetupFailed;
         SlotRequest r = ops::atomic_add(w.a_buf, 0, 1); r.opcode = op;
         return w.slot(with(r, 0, w.a.id())); }, F(MR_FAULT_NOT_GRANTED)},

      // --- Staging regions and descriptors (the world has a 64 KiB arena) ------
      {"create: staging_arena_bytes 2^40 + 1", [](W) { return create_with([](Config& c) { c.staging_arena_bytes = megaring::kMaxStagingArenaBytes + 1; }); }, R(Result::kInvalidArgument)},
      {"create: staging_arena_bytes 2^64 - 1", [](W) { return create_with([](Config& c) { c.staging_arena_bytes = kMax; }); }, R(Result::kInvalidArgument)},
      {"create: max_regions 0", [](W) { return create_with([](Config& c) { c.max_regions = 0; }); }, R(Result::kInvalidArgument)},
      {"create: max_regions 65536", [](W) { return create_with([](Config& c) { c.max_regions = 65536; }); }, R(Result::kInvalidArgument)},
      {"create_region: no arena", [](W) { return create_with_region(0); }, R(Result::kOutOfMemory)},
      {"create_region: handle null", [](W w) { return of(w.rt->create_region(RegionPolicy::kMutable, 8, nullptr)); }, R(Result::kInvalidArgument)},
      {"create_region: 0 bytes", [](W w) { RegionHandle h; return of(w.rt->create_region(RegionPolicy::kMutable, 0, &h)); }, R(Result::kInvalidArgument)},
      {"create_region: 2^64 - 1", [](W w) { RegionHandle h; return of(w.rt->create_region(RegionPolicy::kMutable, kMax, &h)); }, R(Result::kOutOfMemory)},
      {"create_region: 2^64 - 63 (rounding wraps)", [](W w) { RegionHandle h; return of(w.rt->create_region(RegionPolicy::kMutable, kMax - 62, &h)); }, R(Result::kOutOfMemory)},
      {"create_region: policy 0", [](W w) { RegionHandle h; return of(w.rt->create_region(static_cast<RegionPolicy>(0), 8, &h)); }, R(Result::kInvalidArgument)},
      {"create_region: policy max", [](W w) { RegionHandle h; return of(w.rt->create_region(static_cast<RegionPolicy>(~0u), 8, &h)); }, R(Result::kInvalidArgument)},
      {"create_region: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); RegionHandle h; return of(w.rt->create_region(RegionPolicy::kMutable, 8, &h)); }, R(Result::kShutdown)},
      {"create_region: after abort", [](W w) { (void)w.rt->abort(); RegionHandle h; return of(w.rt->create_region(RegionPolicy::kMutable, 8, &h)); }, R(Result::kAborted)},
      {"write_region: offset max, 2 bytes", [](W w) { return of(w.rt->write_region(w.mut, kMax, w.host, 2)); }, R(Result::kInvalidArgument)},
      {"write_region: source null", [](W w) { return of(w.rt->write_region(w.mut, 0, nullptr, 1)); }, R(Result::kInvalidArgument)},
      {"write_region: sealed", [](W w) { return of(w.rt->write_region(w.reg, 0, w.host, 1)); }, R(Result::kInvalidArgument)},
      {"write_region: freed handle", [](W w) { return of(w.rt->write_region(w.freed_reg, 0, w.host, 1)); }, R(Result::kInvalidArgument)},
      {"write_region: handle 0", [](W w) { return of(w.rt->write_region(0, 0, w.host, 1)); }, R(Result::kInvalidArgument)},
      {"write_region: after shutdown (regions stay)", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->write_region(w.mut, 0, w.host, 8)); }, kOk},
      {"append_region: not append-only", [](W w) { return of(w.rt->append_region(w.mut, w.host, 1, nullptr)); }, R(Result::kInvalidArgument)},
      {"append_region: 2^64 - 1 bytes after 1", [](W w) {
         RegionHandle h; if (!w.rt->create_region(RegionPolicy::kAppendOnly, 64, &h) || !w.rt->append_region(h, w.host, 1, nullptr)) return kSetupFailed;
         return of(w.rt->append_region(h, w.host, kMax, nullptr)); }, R(Result::kInvalidArgument)},
      {"read_region: 2^64 - 1 bytes at 1", [](W w) { return of(w.rt->read_region(w.mut, 1, w.host, kMax)); }, R(Result::kInvalidArgument)},
      {"read_region: destination null", [](W w) { return of(w.rt->read_region(w.mut, 0, nullptr, 1)); }, R(Result::kInvalidArgument)},
      {"free_region: twice", [](W w) { return of(w.rt->free_region(w.freed_reg)); }, R(Result::kInvalidArgument)},
      {"free_region: after shutdown", [](W w) { w.registry.reset(); (void)w.rt->shutdown(); return of(w.rt->free_region(w.mut)); }, kOk},
      {"slot: descriptor offset 2^64 - 1, 2 bytes", [](W w) { return w.slot(ops::stage_to_buffer({w.reg, kMax, 2}, w.buf, 0)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: descriptor 2^64 - 1 bytes at 1", [](W w) { return w.slot(ops::stage_to_buffer({w.reg, 1, kMax}, w.buf, 0)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: descriptor 2^63 + 2^63", [](W w) { return w.slot(ops::stage_to_buffer({w.reg, k2p63, k2p63}, w.buf, 0)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: descriptor into a mutable region", [](W w) { return w.slot(ops::stage_to_buffer({w.mut, 0, 1}, w.buf, 0)); }, F(MR_FAULT_REGION_POLICY)},
      {"slot: descriptor, region handle 0", [](W w) { return w.slot(ops::stage_to_buffer({0, 0, 1}, w.buf, 0)); }, F(MR_FAULT_BAD_REGION)},
      {"slot: descriptor, freed region", [](W w) { return w.slot(ops::stage_to_buffer({w.freed_reg, 0, 1}, w.buf, 0)); }, F(MR_FAULT_BAD_REGION)},
      {"slot: descriptor, region 2^32 + reg", [](W w) { SlotRequest r = ops::stage_to_buffer({w.reg, 0, 1}, w.buf, 0); r.args[0] += k2p32; return w.slot(r); }, F(MR_FAULT_BAD_REGION)},
      {"slot: descriptor, buffer offset 2^64 - 1", [](W w) { return w.slot(ops::stage_to_buffer({w.reg, 0, 2}, w.buf, kMax)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: buffer_to_staging into a sealed region", [](W w) { return w.slot(ops::buffer_to_staging(w.buf, 0, w.reg, 0, 1)); }, F(MR_FAULT_REGION_POLICY)},
      {"slot: buffer_to_staging 2^64 - 1 bytes at 1", [](W w) { return w.slot(ops::buffer_to_staging(w.buf, 0, w.mut, 1, kMax)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: axpy count 2^32 - 1", [](W w) { return w.slot(ops::axpy_f32(w.buf, 0, w.a_buf, 0, ~0u, 1.0f)); }, F(MR_FAULT_OUT_OF_BOUNDS)},
      {"slot: axpy shifted overlap", [](W w) { return w.slot(ops::axpy_f32(w.buf, 0, w.buf, 4, 4, 1.0f)); }, F(MR_FAULT_BAD_ARGUMENT)},
      {"slot: axpy misaligned", [](W w) { return w.slot(ops::axpy_f32(w.buf, 2, w.a_buf, 0, 1, 1.0f)); }, F(MR_FAULT_MISALIGNED)},
      {"tenant create_region: past the staging quota", [](W w) { RegionHandle h; (void)w.a.reserve_staging_bytes(990); return of(w.a.create_region(RegionPolicy::kMutable, 11, &h)); }, R(Result::kStagingBackpressure)},
      {"tenant create_region: 2^64 - 1, quota unchanged", [](W w) {
         RegionHandle h; const Code c = of(w.a.create_region(RegionPolicy::kMutable, kMax, &h));
         return w.a.quota_counters().staging_bytes_in_use == 0 ? c : kSetupFailed; }, R(Result::kStagingBackpressure)},
      {"tenant create_region: handle null", [](W w) { return of(w.a.create_region(RegionPolicy::kMutable, 8, nullptr)); }, R(Result::kInvalidArgument)},
      {"tenant write_region: the runtime's region", [](W w) { return of(w.a.write_region(w.mut, 0, w.host, 1)); }, R(Result::kInvalidArgument)},
      {"tenant free_region: another tenant's", [](W w) { RegionHandle h; if (!w.b.create_region(RegionPolicy::kMutable, 8, &h)) return kSetupFailed; return of(w.a.free_region(h)); }, R(Result::kInvalidArgument)},
      {"tenant create_region: after unregister", [](W w) { (void)w.registry->unregister_tenant(w.a); RegionHandle h; return of(w.a.create_region(RegionPolicy::kMutable, 8, &h)); }, R(Result::kRevoked)},
      {"tenant slot: another tenant's region", [](W w) {
         RegionHandle h; if (!w.b.create_region(RegionPolicy::kImmutable, 8, &h) || !w.b.seal_region(h)) return kSetupFailed;
         uint32_t op; if (!w.a.global_opcode(MR_OP_STAGE_TO_BUFFER, &op)) return kSetupFailed;
         SlotRequest r = ops::stage_to_buffer({h, 0, 8}, w.a_buf, 0); r.opcode = op;
         return w.slot(with(r, 0, w.a.id())); }, F(MR_FAULT_BAD_REGION)},
      {"empty handle: create_region", [](W) { RegionHandle h; return of(TenantHandle().create_region(RegionPolicy::kMutable, 8, &h)); }, R(Result::kInvalidArgument)},
  };
}

class HostileInputTest : public ::testing::TestWithParam<size_t> {};

TEST_P(HostileInputTest, ReturnsItsCode) {
  static const std::vector<Row> table = rows();
  const Row& row = table.at(GetParam());
  Watchdog watchdog(row.name, Watchdog::default_limit());
  World world;
  Config config;
  config.backend = Backend::kCpu;
  config.staging_arena_bytes = 64 << 10;
  ASSERT_TRUE(world.build(config)) << "world set-up failed";
  const Code got = row.call(world);
  EXPECT_EQ(got, row.expected) << row.name;
  // Whatever the row did, the world tears down cleanly: registry, then runtime.
}

std::string row_name(const ::testing::TestParamInfo<size_t>& info) {
  static const std::vector<Row> table = rows();
  std::string name = std::to_string(info.param) + "_";
  for (const char* p = table.at(info.param).name; *p != '\0'; ++p)
    name += (std::isalnum(static_cast<unsigned char>(*p)) != 0) ? *p : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Matrix, HostileInputTest, ::testing::Range<size_t>(0, rows().size()),
                         row_name);

}  // namespace
}  // namespace megaring_test
