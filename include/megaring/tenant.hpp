// SPDX-License-Identifier: Apache-2.0
// Tenants: several clients (models, sessions) sharing one resident
// megakernel, each held to its own opcode window and quotas.
//
//   auto registry = ...;  TenantRegistry::create(*runtime, {}, &registry);
//   TenantConfig cfg;  cfg.label = "model-a";  cfg.quotas.max_outstanding_slots = 64;
//   TenantHandle a;    registry->register_tenant(cfg, &a);
//   TenantPublishOptions keep;  keep.keep_result = true;
//   Ticket t;          a.publish_slot(ops::nop(7), &t, keep);
//   Completion c;      a.wait(t, &c);          // c.result == 7
//   registry->unregister_tenant(a);             // a's queued slots complete REVOKED
//
// Opcode windows. Each tenant owns the global opcodes [base_opcode,
// base_opcode + opcode_cap), disjoint from every other live or draining
// tenant's window and from the built-in, system and tenant-less user opcodes
// (windows lie in [MR_OP_TENANT_BASE, MR_OP_TENANT_END)). A tenant publishes
// tenant-local opcodes; the slot carries base_opcode + local and the
// tenant's id. The consumer admits it only if the tenant is active and the
// opcode lies in its window, and then runs the local opcode exactly as it
// would run that opcode in a tenant-less slot (built-ins below
// MR_OP_SYSTEM_END, your handler table from MR_OP_USER_BASE, so a tenant that
// needs user opcodes asks for opcode_cap > MR_OP_USER_BASE). Otherwise the
// slot completes FAULT (MR_FAULT_OUT_OF_WINDOW / MR_FAULT_BAD_TENANT) or
// REVOKED, counted per tenant on the consumer. A tenant's slots may name only
// buffers and staging regions it created through its handle, and only that
// handle frees them: the Runtime's free_buffer / unregister_buffer /
// free_region refuse a live tenant's objects (kInvalidArgument), which would
// otherwise leave their charge on the tenant's quotas.
//
// Opcode grants. Within its window a tenant runs only the local opcodes it
// was granted, built-ins and user opcodes alike: TenantConfig::grants at
// registration (by default every opcode of the window, as before grants
// existed), TenantHandle::set_grants later. A slot with an opcode of its
// window that is not granted completes FAULT MR_FAULT_NOT_GRANTED, counted
// per tenant on the consumer (device_not_granted). The consumer checks a
// slot against one word of the tenant's grant bitmap (slot_abi.h,
// mr_tenant_grants; it lives beside the tenant table, in consumer memory),
// read once at admission with the tenant entry, so a slot runs entirely
// under the grants before a change or entirely under those after it, never
// a mix. Guarantee of set_grants: it stores the new words into the
// consumer's table as revocation stores the state word (one write order,
// src/backends/table_writes.hpp: word stores, then the backend's finish,
// which waits until they landed) and returns after; every slot admitted
// after it returns is checked against the new grants, and so is every slot
// published after it returns (its header release orders the words before
// it). Slots queued before may be admitted under either. Concurrent
// set_grants calls on one tenant take effect one after another.
//
// The drain pump. While a registry exists, only its pump recycles ring
// positions: it observes DONE_COUNT, attributes each completed ticket to the
// tenant that published it, delivers the completion (to wait() for kept
// tickets, and to the tenant's on_completion callback), then calls
// note_drained. It runs on its own thread (PumpMode::kThread) or wherever the
// server calls pump_once() (PumpMode::kManual; wait() and quiesce() then pump
// too). If it stalls, producers see back-pressure; nothing is dropped.
//
// Revocation. unregister_tenant() makes the tenant's new publishes fail with
// kRevoked, zeroes its staging and resident-handle usage, frees its buffers
// and makes every slot of it not yet admitted by a consumer unit complete
// with MR_STATUS_REVOKED; other tenants' slots are untouched. Its id and
// window are reused only once all its slots have drained.
//
// Lifetimes and threads: producers must stop publishing before the registry
// or its runtime is destroyed. Destroying the registry revokes every tenant
// and drains their slots (bounded by RegistryConfig::close_timeout).
// Destroying the runtime first is safe too: the registry detaches at once
// (its pump stops, every tenant is revoked, the runtime aborts their slots)
// and from then on every registry and handle call fails with kRevoked ("the
// runtime was destroyed") without touching the runtime; the registry can be
// destroyed later. Handles may outlive the registry: publishing and quota
// calls then fail with kRevoked, and so do wait() and quiesce() for slots
// that can no longer drain. A later registry on the same runtime never
// reuses an id of an earlier one. All handle and registry calls are
// thread-safe; copies of a handle share one tenant.
//
// Errors. Every call returns the API's one Status (megaring/status.hpp):
// the tenant codes (kRevoked .. kRegistryFull, with value() and limit() for
// quota refusals), or, where the runtime refused, the runtime's own code
// and message (a tenant publish on a full ring is kRingFull, a wait that
// runs out kTimeout, a publish after shutdown kShutdown).
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "megaring/runtime.hpp"

namespace megaring {

struct TenantQuotas {
  uint32_t opcode_cap = 16;              // window size: local opcodes [0, opcode_cap)
  uint64_t max_outstanding_slots = 256;  // published but not yet drained
  // reserve_staging_bytes budget; regions count the 64-byte lines they take
  uint64_t staging_bytes = 64ull << 20;
  uint64_t resident_handles = 64;  // reserve_resident_handles budget (buffers and regions count)
};

// What can be granted one opcode at a time (slot_abi.h, mr_tenant_grants):
// local opcodes [1, kGrantSystemEnd) (the built-ins are 1 .. 9) and user
// opcodes [MR_OP_USER_BASE, kGrantUserEnd). Any other opcode of a window is
// granted only by OpcodeGrants::all.
inline constexpr uint32_t kGrantSystemEnd = MR_GRANT_SYSTEM_END;  // 64
inline constexpr uint32_t kGrantUserEnd = MR_GRANT_USER_END;      // 704: 448 user opcodes

// Which local opcodes of its window a tenant may run (see the top of this
// file). A local opcode granted here must lie in the window (below
// opcode_cap: else kOpcodeOutOfRange) and within the limits above (else
// kInvalidArgument).
struct OpcodeGrants {
  // Every local opcode of the window (the default).
  bool all = true;
  // With all == false: exactly these (duplicates are harmless; empty: none).
  std::vector<uint32_t> opcodes;

  static OpcodeGrants everything() { return OpcodeGrants{}; }
  static OpcodeGrants only(std::vector<uint32_t> local_opcodes) {
    OpcodeGrants g;
    g.all = false;
    g.opcodes = std::move(local_opcodes);
    return g;
  }
};

// A completion delivered by the drain pump.
using TenantCompletionCallback = std::function<void(const Completion&)>;

struct TenantConfig {
  std::string label;
  TenantQuotas quotas;
  // Called by the pump for every completion of this tenant, in ticket
  // order, one callback (of any tenant) at a time, before the completion
  // counts as drained. Runs on whichever thread delivers: the pump thread,
  // a thread in pump_once() (either mode), a manual-mode wait, quiesce or
  // publish that pumps, or the thread closing the registry (its destructor,
  // or ~Runtime when the registry outlives it). It should be quick. It may
  // pump, and in manual mode wait() for a kept ticket: the completions a
  // pump inside it drains are staged at once (kept results, counts), and
  // their callbacks run after this one returns. Until then they are not
  // drained: a quiesce() of a tenant with completions queued behind this
  // callback (its own tenant's, say) times out, and a publish that needs
  // the quota or ring space they hold waits to its timeout. It must not
  // destroy this registry or its runtime (the close waits for it), nor, in
  // kThread mode, wait for anything only the pump thread it runs on drains.
  TenantCompletionCallback on_completion;
  // The local opcodes the tenant may run; by default all of its window.
  OpcodeGrants grants;
};

struct TenantPublishOptions {
  // Keep the completion for wait() (or release()); unread kept results stay
  // in host memory until read.
  bool keep_result = false;
  // How long to wait for the outstanding-slot quota and then ring space.
  // Zero: fail at once with kBackpressure, or kRingFull.
  Nanoseconds timeout = Nanoseconds::zero();
};

// One consistent cut of a tenant's quotas. At every moment in_use <= limit,
// and resident_handles_in_use = resident_handles_reserved + resident_buffers
// + staging_regions (+ any alloc_buffer or create_region between its quota
// check and the runtime's table).
struct TenantQuotaCounters {
  uint64_t max_outstanding_slots = 0;
  uint64_t outstanding_slots = 0;
  uint64_t staging_bytes_limit = 0;
  uint64_t staging_bytes_in_use = 0;
  uint64_t resident_handles_limit = 0;
  uint64_t resident_handles_in_use = 0;
  uint64_t resident_handles_reserved = 0;  // by reserve_resident_handles
  uint64_t resident_buffers = 0;           // live buffers of the tenant, one handle each
  // staging_bytes_in_use = explicit reservations + staging_region_bytes.
  uint64_t staging_region_bytes = 0;       // bytes its live regions take: sizes rounded up to 64
  uint64_t staging_regions = 0;            // live staging regions of the tenant, one handle each
};

struct TenantRuntimeCounters {
  // Host side (the drain pump's attribution of this tenant's own publishes).
  uint64_t published = 0;
  uint64_t drained = 0;
  uint64_t completed_ok = 0;
  uint64_t faulted = 0;
  uint64_t revoked = 0;   // completed MR_STATUS_REVOKED
  uint64_t aborted = 0;   // completed MR_STATUS_ABORTED (runtime aborted)
  uint64_t faults_by_code[MR_FAULT_CODE_COUNT] = {};
  uint64_t backpressure_events = 0;  // publishes refused (or delayed) by the slot quota
  uint64_t pipeline_errors = 0;      // publishes the ring refused (rolled back)
  // Consumer side: every slot that carried this tenant's id, however it got
  // into the ring.
  uint64_t device_admitted = 0;
  uint64_t device_out_of_window = 0;
  uint64_t device_revoked = 0;
  uint64_t device_not_granted = 0;  // faulted MR_FAULT_NOT_GRANTED
};

namespace detail {
struct TenantState;
class RegistryCore;
}  // namespace detail

class TenantHandle {
 public:
  TenantHandle() = default;  // empty: every call fails with kInvalidArgument
  bool valid() const noexcept { return state_ != nullptr; }

  uint32_t id() const noexcept;  // the slot's tenant field: [15:0] index, [31:16] generation
  const std::string& label() const noexcept;
  uint32_t base_opcode() const noexcept;
  uint32_t opcode_cap() const noexcept;
  bool revoked() const noexcept;

  // Maps a tenant-local opcode to the global one; kOpcodeOutOfRange outside
  // the window, kInvalidArgument for a null `global`.
  Status global_opcode(uint32_t local, uint32_t* global) const;

  // Replaces the tenant's opcode grants (see the top of this file for what
  // holds when it returns). kOpcodeOutOfRange for an opcode outside the
  // window, kInvalidArgument for one beyond the grant limits
  // (kGrantSystemEnd, kGrantUserEnd); nothing changes then. kRevoked once
  // the tenant was unregistered (or its registry closed). A control
  // operation: kTimeout, nothing changed, when the executors do not reach a
  // point between slots within Config::control_timeout (runtime.hpp).
  Status set_grants(const OpcodeGrants& grants) const;
  // The grants as last set: `all`, or the opcodes sorted, without duplicates.
  // Still answers after unregistration (what was in force then).
  Status grants(OpcodeGrants* out) const;

  // Publishes slots with tenant-local opcodes (request.opcode; request.tenant
  // must be 0 or this tenant's id): stamps the tenant and the global opcode.
  // A publish the ring refuses is rolled back (counters unchanged) and
  // returns the ring's error (kRingFull, kTimeout, kShutdown, kAborted ...).
  Status publish_slot(const SlotRequest& local_request, Ticket* ticket,
                      const TenantPublishOptions& options = {}) const;
  Status publish_slot(uint32_t local_opcode, std::initializer_list<uint64_t> args,
                      Ticket* ticket, const TenantPublishOptions& options = {}) const;
  Status publish_batch(const SlotRequest* local_requests, uint32_t count, Ticket* first,
                       const TenantPublishOptions& options = {}) const;

  // Waits for a kept ticket's completion (then forgets it), or drops it. A
  // kRevoked from wait() (the registry closed before delivery) is final too:
  // the ticket is forgotten.
  Status wait(const Ticket& ticket, Completion* completion,
              Nanoseconds timeout = kForever) const;
  Status release(const Ticket& ticket) const;

  // Slots published (a publish in progress counts until the ring accepts or
  // refuses it), and slots the pump has drained.
  uint64_t published_count() const noexcept;
  uint64_t drained_count() const noexcept;
  uint64_t max_outstanding_slots() const noexcept;

  // Quotas: a reservation that would pass the quota fails with
  // k*Backpressure and changes nothing; a release of more than was reserved
  // fails with kResourceUnderflow and changes nothing. 0 is a no-op.
  // Buffers and regions hold resident handles too (below), but only
  // free_buffer / free_region give those back: release_resident_handles
  // covers explicit reservations alone.
  Status reserve_staging_bytes(uint64_t bytes) const;
  Status release_staging_bytes(uint64_t bytes) const;
  Status reserve_resident_handles(uint64_t count) const;
  Status release_resident_handles(uint64_t count) const;

  // Consumer buffers owned by this tenant (each holds one resident handle
  // until free_buffer): only this tenant's slots (and tenant-less ones) may
  // name them. A handle that is not this tenant's live buffer (another
  // tenant's, freed, or never allocated) is kInvalidArgument.
  Status alloc_buffer(uint64_t bytes, BufferHandle* handle) const;
  Status free_buffer(BufferHandle handle) const;
  // Memory the caller allocated (a tensor's, say) as a buffer of this
  // tenant, without a copy, as Runtime::register_buffer; it holds a
  // resident handle until unregister_buffer returns OK (which also gives the
  // memory back to the caller). A tenant that is unregistered retires its
  // registered buffers without waiting: their memory is the caller's once
  // the tenant's slots drained (quiesce).
  Status register_buffer(void* memory, uint64_t bytes, BufferHandle* handle) const;
  Status unregister_buffer(BufferHandle handle, Nanoseconds timeout = kForever,
                           WhileInUse while_in_use = WhileInUse::kWait) const;
  Status write_buffer(BufferHandle handle, uint64_t offset, const void* src,
                      uint64_t bytes) const;
  Status read_buffer(BufferHandle handle, uint64_t offset, void* dst, uint64_t bytes) const;

  // Staging regions of this tenant (Runtime::create_region): each region
  // holds one resident handle (kResidentBackpressure past the quota: the
  // region table is shared) and is charged the arena range it takes, its
  // size rounded up to 64-byte lines, to the staging_bytes quota
  // (kStagingBackpressure past it) until free_region, which gives both
  // back at once (the arena range
  // follows once the slots published before completed). Only this tenant's
  // slots (and tenant-less ones) may name them; another tenant's handle is
  // kInvalidArgument here and faults MR_FAULT_BAD_REGION in a slot.
  // Unregistering the tenant frees them.
  Status create_region(RegionPolicy policy, uint64_t bytes, RegionHandle* handle) const;
  Status free_region(RegionHandle handle) const;
  Status write_region(RegionHandle handle, uint64_t offset, const void* src, uint64_t bytes) const;
  Status seal_region(RegionHandle handle) const;
  Status append_region(RegionHandle handle, const void* src, uint64_t bytes,
                       uint64_t* offset) const;
  Status read_region(RegionHandle handle, uint64_t offset, void* dst, uint64_t bytes) const;
  TenantQuotaCounters quota_counters() const;
  TenantRuntimeCounters runtime_counters() const;

  // Marks `count` slots drained. The registry's pump does this for every
  // completion it delivers; a caller may only mark slots the pump has
  // delivered and not yet counted (kResourceUnderflow otherwise), so the two
  // never count a slot twice.
  Status note_drained(uint64_t count) const;

  // Waits until every published slot has drained; kQuiesceTimeout (with the
  // outstanding count in value()) when `timeout` passes first. Works on a
  // revoked tenant: its queued slots complete REVOKED and drain.
  Status quiesce(Nanoseconds timeout) const;

 private:
  friend class detail::RegistryCore;
  friend class TenantRegistry;
  explicit TenantHandle(std::shared_ptr<detail::TenantState> state) : state_(std::move(state)) {}
  std::shared_ptr<detail::TenantState> state_;
};

enum class PumpMode {
  kThread,  // the registry runs the drain pump on its own thread
  kManual,  // the caller drives it with pump_once() (wait/quiesce pump too)
};

struct RegistryConfig {
  // Tenants at most; 0 = as many as the runtime's tenant table holds
  // (Config::max_tenants - 1).
  uint32_t max_tenants = 0;
  // Opcode space for windows, within [MR_OP_TENANT_BASE, MR_OP_TENANT_END].
  uint32_t opcode_begin = MR_OP_TENANT_BASE;
  uint32_t opcode_end = MR_OP_TENANT_END;
  PumpMode pump = PumpMode::kThread;
  // The pump thread's longest sleep when idle (it spins, then yields first).
  Nanoseconds pump_idle_sleep_max = std::chrono::microseconds(50);
  // How long destruction waits for revoked tenants' slots to drain.
  Nanoseconds close_timeout = std::chrono::seconds(10);
};

struct RegistryStats {
  uint32_t live_tenants = 0;
  uint32_t draining_tenants = 0;  // revoked, slots not yet all drained
  uint64_t drained_slots = 0;     // tickets the pump delivered, all tenants
  uint64_t untenanted_slots = 0;  // tickets the pump reaped that no handle published
};

class TenantRegistry {
 public:
  // Attaches to `runtime` (one registry per runtime) and starts the pump.
  static Status create(Runtime& runtime, const RegistryConfig& config,
                       std::unique_ptr<TenantRegistry>* out) noexcept;
  ~TenantRegistry();
  TenantRegistry(const TenantRegistry&) = delete;
  TenantRegistry& operator=(const TenantRegistry&) = delete;

  // kRegistryFull when no id or no window of quotas.opcode_cap is free.
  Status register_tenant(const TenantConfig& config, TenantHandle* out) noexcept;
  // Revokes the tenant (see the top of this file). kRevoked if it already was.
  Status unregister_tenant(const TenantHandle& tenant) noexcept;

  // One pass of the drain pump: returns how many tickets it drained. Their
  // kept results are ready when it returns; their callbacks have run too,
  // unless another thread (or a callback this call runs inside) was
  // delivering, which then runs them. Thread-safe; in kThread mode the pump
  // thread already does this.
  size_t pump_once() noexcept;

  RegistryStats stats() const noexcept;

  // Every live and draining tenant's counters, and the registry's, as
  // Prometheus text exposition (megaring_tenant_*, labelled
  // tenant="<id>",label="<label>", the label escaped as the format asks).
  Status metrics_text(std::string* out) const noexcept;

 private:
  explicit TenantRegistry(std::shared_ptr<detail::RegistryCore> core);
  std::shared_ptr<detail::RegistryCore> core_;
};

}  // namespace megaring
