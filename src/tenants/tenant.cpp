// Tenants on one runtime: registry (ids, opcode windows, the consumer's
// tenant table), per-tenant quotas, and the drain pump that attributes
// completions to tenants. See megaring/tenant.hpp for the contract.
//
// Counters of one tenant and how they relate:
//   published  slots reserved against the quota; incremented BEFORE the ring
//              publish (so a racing quiesce waits for it) and decremented if
//              the ring refuses it.
//   drained    slots whose completion the pump delivered.
//   outstanding = published - drained; never negative: every drained slot
//              was published successfully, and successful publishes only grow.
// Revocation races publishing by a Dekker pattern on (published, revoked):
// a publisher increments published then reads revoked; the registry sets
// revoked then reads published (both seq_cst). Either the publisher sees the
// revocation and rolls back, or the registry sees the slot as outstanding
// and keeps the tenant's id and window out of reuse until it has drained.
#include "megaring/tenant.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "support/api_guard.hpp"
#include "support/nvtx.hpp"
#include "runtime/runtime_internal.hpp"
#include "megaring/detail/checked.hpp"
#include "megaring/detail/host_waiter.hpp"

namespace megaring {

namespace {

using Clock = std::chrono::steady_clock;
using detail::deadline_after;
using detail::guarded;
using detail::RuntimeInternals;


Status revoked_status(uint32_t id) {
  return Status(Result::kRevoked, "tenant " + std::to_string(id) + " was unregistered");
}

Status negative_timeout(const char* what) {
  return Status(Result::kInvalidArgument, std::string(what) + " is negative");
}

}  // namespace

namespace detail {

// One tenant, shared by every copy of its handle.
struct TenantState {
  // Fixed at registration.
  uint32_t id = 0;
  uint32_t index = 0;
  uint32_t base_opcode = 0;
  std::string label;
  TenantQuotas quotas;
  TenantCompletionCallback on_completion;
  std::shared_ptr<RegistryCore> core;  // keeps the core (not the runtime) alive for handles
  mr_tenant_counters device_baseline{};  // the index's counters at registration

  std::atomic<bool> revoked{false};
  alignas(64) std::atomic<uint64_t> published{0};
  alignas(64) std::atomic<uint64_t> drained{0};
  std::atomic<uint64_t> delivered{0};  // completions the pump handed over; drained <= delivered

  // Pump attribution (relaxed: statistics).
  std::atomic<uint64_t> completed_ok{0}, faulted{0}, revoked_completions{0}, aborted{0};
  std::atomic<uint64_t> faults_by_code[MR_FAULT_CODE_COUNT] = {};
  std::atomic<uint64_t> backpressure_events{0}, pipeline_errors{0};

  // Kept tickets: published and not yet delivered (pending), delivered and
  // not yet read (results). The pump may deliver before the publisher
  // records the ticket as pending; the publisher then skips it.
  std::mutex kept_mutex;
  std::condition_variable kept_cv;
  std::unordered_set<uint64_t> kept_pending;
  std::unordered_set<uint64_t> kept_released;  // released before delivery: drop it
  std::unordered_map<uint64_t, Completion> kept_results;

  // Staging bytes and resident handles, guarded by quota_mutex. A resident
  // handle is held by an explicit reservation, by a buffer of the tenant,
  // or by an alloc_buffer between its quota check and the buffer table:
  // resident_in_use_locked() = resident_reserved + allocating + buffers.size(), so
  // release_resident_handles() can give back only what was reserved, never
  // a buffer's handle. Revocation zeroes all of them.
  mutable std::mutex quota_mutex;
  uint64_t staging_reserved = 0;
  uint64_t resident_reserved = 0;
  uint64_t allocating = 0;
  std::unordered_set<BufferHandle> buffers;
  uint64_t resident_in_use_locked() const {
    return resident_reserved + allocating + buffers.size();
  }

  // Set once the index retired (or the registry closed): the device counters
  // as last read, minus the baseline. Guarded by the core's mutex.
  bool counters_frozen = false;
  mr_tenant_counters device_final{};

  uint64_t outstanding() const {
    // drained first: see the file comment (no underflow). seq_cst: the
    // registry's retirement check is the reading half of the Dekker pair.
    const uint64_t d = drained.load(std::memory_order_seq_cst);
    const uint64_t p = published.load(std::memory_order_seq_cst);
    return p - d;
  }
};

class RegistryCore final : public std::enable_shared_from_this<RegistryCore> {
 public:
  RegistryCore(Runtime& runtime, const RegistryConfig& config)
      : runtime_(runtime), config_(config) {}

  ~RegistryCore();
  Status init();
  // Revokes every tenant, stops the pump and detaches from the runtime.
  // With `drain`, first lets the revoked tenants' queued slots drain
  // (bounded by close_timeout); without, leaves the runtime at once (it is
  // being destroyed: on_runtime_end).
  void close(bool drain = true);
  // The runtime's end hook (runtime_link.hpp): runs first in ~Runtime. The
  // registry closes at once, as if destroyed with it (every tenant revoked,
  // the pump stopped, the drain let go), and never touches the runtime again.
  void on_runtime_end();

  Status register_tenant(const TenantConfig& config, TenantHandle* out);
  Status unregister_tenant(const std::shared_ptr<TenantState>& state);
  size_t pump_once();
  RegistryStats stats() const;

  bool manual() const { return config_.pump == PumpMode::kManual; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // A publish rolled back a reservation of a revoked tenant: it may be the
  // last thing that kept the tenant from retiring.
  void retry_retire();
  Runtime& runtime() { return runtime_; }
  // Reads the consumer's counters of a tenant (live, or frozen once retired).
  mr_tenant_counters device_counters(TenantState& state);

  // Why a call on a closed registry fails.
  Status closed_status() const {
    return Status(Result::kRevoked, runtime_gone_.load() ? "the runtime was destroyed"
                                                         : "the tenant registry is closed");
  }

 private:
  static std::vector<BufferHandle> release_quotas(TenantState& state);
  // Frees the ids and windows of revoked tenants that fully drained.
  void retire_drained_locked();
  void freeze_counters_locked(TenantState& state);
  bool take_window_locked(uint32_t cap, uint32_t* base);
  void give_window_locked(uint32_t base, uint32_t cap);
  void pump_thread_main();
  // Hands a pass's records to their tenants, then counts them drained.
  void deliver(const DrainRecord* records, size_t count) noexcept;

  Runtime& runtime_;
  RegistryConfig config_;
  uint32_t table_size_ = 0;  // indices [1, table_size_)

  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<TenantState>> by_index_;  // live and draining tenants
  std::vector<uint16_t> generation_;
  std::vector<uint32_t> free_indices_;
  std::map<uint32_t, uint64_t> free_windows_;  // begin -> end (exclusive, up to 2^32)
  std::vector<std::shared_ptr<TenantState>> draining_;
  uint32_t live_ = 0;
  bool closing_ = false;   // close() started: no new registrations (guarded by mutex_)
  bool claimed_ = false;   // init() claimed the runtime's drain

  std::atomic<bool> draining_any_{false};  // draining_ is non-empty (a hint for pump_once)
  std::atomic<bool> closed_{false};
  std::atomic<bool> runtime_gone_{false};  // closed by on_runtime_end
  std::atomic<bool> stop_pump_{false};
  std::thread pump_thread_;
  std::mutex pump_mutex_;  // one pump pass at a time (delivery order per tenant)
  std::vector<DrainRecord> records_;  // the pass's records (guarded by pump_mutex_)
  std::atomic<uint64_t> drained_slots_{0}, untenanted_slots_{0};
};

Status RegistryCore::init() {
  const uint32_t runtime_table = RuntimeInternals::max_tenants(runtime_);
  if (runtime_table < 2)
    return Status(Result::kInvalidArgument, "the runtime's tenant table holds no tenant (Config::max_tenants < 2)");
  uint32_t wanted = config_.max_tenants == 0 ? runtime_table - 1 : config_.max_tenants;
  if (wanted > runtime_table - 1)
    return Status(Result::kInvalidArgument,
                  "max_tenants " + std::to_string(wanted) + " exceeds the runtime's tenant table (" +
                      std::to_string(runtime_table - 1) + " tenants; raise Config::max_tenants)");
  if (!detail::valid_timeout(config_.pump_idle_sleep_max) ||
      !detail::valid_timeout(config_.close_timeout))
    return Status(Result::kInvalidArgument, "pump_idle_sleep_max and close_timeout must not be negative");
  if (config_.opcode_begin < MR_OP_TENANT_BASE || config_.opcode_end > MR_OP_TENANT_END ||
      config_.opcode_begin >= config_.opcode_end)
    return Status(Result::kInvalidArgument,
                  "opcode space must be a non-empty part of [MR_OP_TENANT_BASE, MR_OP_TENANT_END]");
  table_size_ = wanted + 1;
  // Continue each index's generations from the consumer's table: slots of an
  // earlier registry's tenants may still be queued, and their ids must never
  // name one of ours.
  std::vector<uint32_t> ids;
  Status st = RuntimeInternals::read_tenant_ids(runtime_, &ids);
  if (!st) return st;
  by_index_.resize(table_size_);
  generation_.assign(table_size_, 0);
  for (uint32_t i = 1; i < table_size_; ++i)
    generation_[i] = static_cast<uint16_t>(ids[i] >> MR_TENANT_INDEX_BITS);
  for (uint32_t i = table_size_; i-- > 1;) free_indices_.push_back(i);
  free_windows_[config_.opcode_begin] = config_.opcode_end;
  st = RuntimeInternals::claim_drain(runtime_, true);
  if (!st) return st;
  claimed_ = true;
  RuntimeInternals::link(runtime_)->on_end(shared_from_this(), &RegistryCore::on_runtime_end);
  if (!manual()) {
    try {
      pump_thread_ = std::thread(&RegistryCore::pump_thread_main, this);
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
  stop_pump_.store(true);
  if (pump_thread_.joinable()) pump_thread_.join();
  if (claimed_ && !closed()) (void)RuntimeInternals::claim_drain(runtime_, false);
}

void RegistryCore::pump_thread_main() {
  const auto max_sleep_us =
      std::chrono::duration_cast<std::chrono::microseconds>(config_.pump_idle_sleep_max);
  detail::HostWaiter waiter(
      static_cast<uint32_t>(std::clamp<int64_t>(max_sleep_us.count(), 1, 1000000)));
  while (!stop_pump_.load(std::memory_order_acquire)) {
    if (pump_once() != 0) {
      waiter.reset();
    } else {
      waiter.pause();  // spin, yield, then sleep up to pump_idle_sleep_max
    }
  }
}

// The pump pulls: it takes the completed records from the runtime, then
// delivers them itself.
size_t RegistryCore::pump_once() {
  if (closed()) return 0;
  // One pass at a time, for the delivery order per tenant. A pass already
  // running, on another thread or below this call (a completion callback
  // that pumps, waits or quiesces), makes this call a no-op.
  std::unique_lock<std::mutex> pass(pump_mutex_, std::try_to_lock);
  if (!pass.owns_lock() || closed()) return 0;
  records_.clear();
  const size_t n = RuntimeInternals::drain(runtime_, &records_);
  deliver(records_.data(), records_.size());
  // A revoked tenant whose last reservation was rolled back has no record
  // left to trigger its retirement; check here too.
  if (n == 0 && draining_any_.load(std::memory_order_acquire)) retry_retire();
  return n;
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

// Runs inside pump_once(), after the ring positions were recycled. Delivers
// each completion to its tenant, then counts it drained. No allocation on
// the delivery path: a lost record would leave a tenant that never drains.
void RegistryCore::deliver(const DrainRecord* records, size_t count) noexcept {
  MR_NVTX_RANGE("megaring::tenant_drain");
  // Registry counters first: a waiter woken below may read them.
  uint64_t untenanted = 0;
  for (size_t i = 0; i < count; ++i) untenanted += records[i].origin.tenant == 0;
  untenanted_slots_.fetch_add(untenanted, std::memory_order_relaxed);
  drained_slots_.fetch_add(count - untenanted, std::memory_order_relaxed);

  std::shared_ptr<TenantState> current;  // tenant of the run of records being delivered
  uint32_t current_id = 0;
  uint64_t run = 0;                      // its records delivered and not yet counted drained
  auto flush = [&] {
    if (current && run != 0) {
      // RELEASE (acq_rel): the deliveries happen before a quiesce, a quota
      // check or a note_drained that reads these counts. Then drain what was
      // delivered, less what a note_drained() caller already counted.
      const uint64_t delivered = current->delivered.fetch_add(run, std::memory_order_acq_rel) + run;
      uint64_t d = current->drained.load(std::memory_order_acquire);
      while (d < delivered &&
             !current->drained.compare_exchange_weak(d, std::min(d + run, delivered),
                                                     std::memory_order_acq_rel)) {
      }
    }
    run = 0;
  };
  for (size_t i = 0; i < count; ++i) {
    const DrainRecord& r = records[i];
    if (r.origin.tenant == 0) continue;  // a plain Runtime::publish
    const uint32_t id = r.origin.tenant;
    if (!current || id != current_id) {
      flush();
      std::lock_guard<std::mutex> lock(mutex_);
      const uint32_t index = id & MR_TENANT_INDEX_MASK;
      current = index < by_index_.size() && by_index_[index] && by_index_[index]->id == id
                    ? by_index_[index]
                    : nullptr;
      current_id = id;
    }
    if (!current) {  // only after close() gave up on the tenant
      untenanted_slots_.fetch_add(1, std::memory_order_relaxed);
      drained_slots_.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    TenantState& t = *current;
    switch (r.status) {
      case MR_STATUS_OK: t.completed_ok.fetch_add(1, std::memory_order_relaxed); break;
      case MR_STATUS_FAULT:
        t.faulted.fetch_add(1, std::memory_order_relaxed);
        t.faults_by_code[r.fault < MR_FAULT_CODE_COUNT ? r.fault : 0].fetch_add(
            1, std::memory_order_relaxed);
        break;
      case MR_STATUS_REVOKED: t.revoked_completions.fetch_add(1, std::memory_order_relaxed); break;
      default: t.aborted.fetch_add(1, std::memory_order_relaxed); break;
    }
    Completion c;
    c.ticket = r.ticket;
    c.result = r.result;
    c.status = r.status;
    c.fault = r.fault;
    if (r.origin.kept) {
      try {
        std::lock_guard<std::mutex> lock(t.kept_mutex);
        t.kept_pending.erase(r.ticket);
        if (t.kept_released.erase(r.ticket) == 0) t.kept_results.emplace(r.ticket, c);
      } catch (...) {
        // Out of host memory: wait() will report the ticket as not pending;
        // it still counts as drained below.
      }
      t.kept_cv.notify_all();
    }
    if (t.on_completion) {
      try {
        t.on_completion(c);
      } catch (...) {
        // A throwing callback must not stop the pump for every tenant.
      }
    }
    ++run;
  }
  flush();
  current.reset();
  if (draining_any_.load(std::memory_order_acquire)) retry_retire();
}

mr_tenant_counters RegistryCore::device_counters(TenantState& state) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state.counters_frozen || closed()) return state.device_final;
  mr_tenant_counters now{};
  if (!RuntimeInternals::read_tenant_counters(runtime_, state.index, &now)) return state.device_final;
  mr_tenant_counters out{};
  out.admitted = now.admitted - state.device_baseline.admitted;
  out.out_of_window = now.out_of_window - state.device_baseline.out_of_window;
  out.revoked = now.revoked - state.device_baseline.revoked;
  return out;
}

void RegistryCore::freeze_counters_locked(TenantState& state) {
  if (state.counters_frozen) return;
  mr_tenant_counters now{};
  bool read = false;
  try {
    read = RuntimeInternals::read_tenant_counters(runtime_, state.index, &now).is_ok();
  } catch (...) {  // the error message could not be allocated: keep the last values
  }
  if (read) {
    state.device_final.admitted = now.admitted - state.device_baseline.admitted;
    state.device_final.out_of_window = now.out_of_window - state.device_baseline.out_of_window;
    state.device_final.revoked = now.revoked - state.device_baseline.revoked;
  }
  state.counters_frozen = true;
}

bool RegistryCore::take_window_locked(uint32_t cap, uint32_t* base) {
  for (auto it = free_windows_.begin(); it != free_windows_.end(); ++it) {
    if (it->second - it->first >= cap) {
      *base = it->first;
      const uint64_t end = it->second;
      free_windows_.erase(it);
      if (*base + static_cast<uint64_t>(cap) < end) free_windows_[*base + cap] = end;
      return true;
    }
  }
  return false;
}

void RegistryCore::give_window_locked(uint32_t base, uint32_t cap) {
  uint64_t begin = base;
  uint64_t end = static_cast<uint64_t>(base) + cap;
  auto next = free_windows_.lower_bound(base);
  const bool merge_next = next != free_windows_.end() && next->first == end;
  if (merge_next) end = next->second;
  auto prev = next == free_windows_.begin() ? free_windows_.end() : std::prev(next);
  const bool merge_prev = prev != free_windows_.end() && prev->second == begin;
  if (merge_prev) begin = prev->first;
  // The only step that can throw (a new map node) comes before any erase, so
  // a failure leaves the map as it was.
  free_windows_[static_cast<uint32_t>(begin)] = end;
  if (merge_next) free_windows_.erase(next);
}

void RegistryCore::retire_drained_locked() {
  auto it = draining_.begin();
  while (it != draining_.end()) {
    TenantState& t = **it;
    // seq_cst read of published (Dekker with the publisher, see the top).
    if (t.outstanding() != 0) {
      ++it;
      continue;
    }
    free_indices_.reserve(table_size_);  // push_back below cannot throw then
    give_window_locked(t.base_opcode, t.quotas.opcode_cap);  // the one step that may throw
    freeze_counters_locked(t);
    by_index_[t.index].reset();
    free_indices_.push_back(t.index);
    it = draining_.erase(it);
  }
  draining_any_.store(!draining_.empty(), std::memory_order_release);
}

Status RegistryCore::register_tenant(const TenantConfig& config, TenantHandle* out) {
  MR_NVTX_RANGE("megaring::register_tenant");
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  const TenantQuotas& q = config.quotas;
  if (q.opcode_cap == 0)
    return Status(Result::kInvalidArgument, "opcode_cap must be at least 1");
  if (q.max_outstanding_slots == 0)
    return Status(Result::kInvalidArgument, "max_outstanding_slots must be at least 1");
  std::lock_guard<std::mutex> lock(mutex_);
  if (closing_)
    return closed() ? closed_status()
                    : Status(Result::kRevoked, "the tenant registry is closing");
  retire_drained_locked();
  if (free_indices_.empty())
    return Status(Result::kRegistryFull,
                  "no tenant id free: " + std::to_string(live_) + " live and " +
                      std::to_string(draining_.size()) + " draining tenants fill the table of " +
                      std::to_string(table_size_ - 1),
                  live_ + draining_.size(), table_size_ - 1);
  uint32_t base = 0;
  if (!take_window_locked(q.opcode_cap, &base))
    return Status(Result::kRegistryFull,
                  "no free opcode window of " + std::to_string(q.opcode_cap) + " opcodes in [" +
                      std::to_string(config_.opcode_begin) + ", " +
                      std::to_string(config_.opcode_end) + ")",
                  q.opcode_cap, config_.opcode_end - config_.opcode_begin);
  const uint32_t index = free_indices_.back();
  uint16_t gen = static_cast<uint16_t>(generation_[index] + 1);
  if (gen == 0) gen = 1;
  const uint32_t id = (static_cast<uint32_t>(gen) << MR_TENANT_INDEX_BITS) | index;

  auto state = std::make_shared<TenantState>();
  state->id = id;
  state->index = index;
  state->base_opcode = base;
  state->label = config.label;
  state->quotas = q;
  state->on_completion = config.on_completion;
  state->core = shared_from_this();
  Status st = RuntimeInternals::read_tenant_counters(runtime_, index, &state->device_baseline);
  mr_tenant_entry entry{id, MR_TENANT_ACTIVE, base, q.opcode_cap};
  // No slot naming this index is in flight: its previous tenant drained.
  if (st) st = RuntimeInternals::write_tenant_entry(runtime_, index, entry);
  if (!st) {
    give_window_locked(base, q.opcode_cap);
    return st;
  }
  generation_[index] = gen;
  free_indices_.pop_back();
  by_index_[index] = state;
  ++live_;
  *out = TenantHandle(std::move(state));
  return Status();
}

// A revoked tenant holds nothing: zeroes its reservations and hands back the
// buffers it held, for the caller to free (or not: a runtime being destroyed
// frees them itself).
std::vector<BufferHandle> RegistryCore::release_quotas(TenantState& state) {
  std::lock_guard<std::mutex> lock(state.quota_mutex);
  std::vector<BufferHandle> buffers(state.buffers.begin(), state.buffers.end());
  state.buffers.clear();
  state.staging_reserved = 0;
  state.resident_reserved = 0;
  return buffers;
}

Status RegistryCore::unregister_tenant(const std::shared_ptr<TenantState>& state) {
  MR_NVTX_RANGE("megaring::unregister_tenant");
  std::lock_guard<std::mutex> lock(mutex_);
  if (state->core.get() != this)
    return Status(Result::kInvalidArgument, "tenant belongs to another registry");
  if (closed()) return closed_status();
  // seq_cst: the Dekker pair with publishers (see the top of the file).
  if (state->revoked.exchange(true, std::memory_order_seq_cst))
    return revoked_status(state->id);
  --live_;
  // Queued slots of this tenant complete REVOKED from here on.
  Status st = RuntimeInternals::set_tenant_state(runtime_, state->index, MR_TENANT_REVOKED);
  // Slots published before still hold the buffers; free_buffer defers the
  // memory until they completed.
  for (BufferHandle h : release_quotas(*state)) (void)runtime_.free_buffer(h);
  draining_.push_back(state);
  draining_any_.store(true, std::memory_order_release);
  retire_drained_locked();
  return st;
}

void RegistryCore::on_runtime_end() {
  runtime_gone_.store(true);
  try {
    close(/*drain=*/false);
  } catch (...) {
    // Only the snapshot vectors allocate; without them the tenants stay
    // live on paper, but the drain is let go below regardless.
  }
  if (!closed()) {
    std::lock_guard<std::mutex> pass(pump_mutex_);
    closed_.store(true, std::memory_order_release);
    (void)RuntimeInternals::claim_drain(runtime_, false);
  }
}

void RegistryCore::close(bool drain) {
  std::vector<std::shared_ptr<TenantState>> live;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closing_ || !claimed_) return;  // closed already, or init() never claimed the drain
    closing_ = true;  // no registration slips in after the snapshot below
    for (auto& s : by_index_)
      if (s && !s->revoked.load()) live.push_back(s);
  }
  if (drain) {
    // Revoke everyone, then drain what they left queued (REVOKED
    // completions come quickly), bounded by close_timeout.
    for (auto& s : live) (void)unregister_tenant(s);
  } else {
    // The runtime is going: it aborts every slot and frees every buffer
    // itself. Revoke on the host side only.
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& s : live) {
      s->revoked.store(true, std::memory_order_seq_cst);
      (void)release_quotas(*s);
      draining_.push_back(s);
    }
    live_ = 0;
  }
  stop_pump_.store(true, std::memory_order_release);
  if (pump_thread_.joinable()) pump_thread_.join();
  const auto deadline = deadline_after(config_.close_timeout);
  detail::HostWaiter waiter;
  while (drain) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      retire_drained_locked();
      if (draining_.empty()) break;
    }
    if (Clock::now() > deadline) break;
    if (pump_once() == 0) waiter.pause();
  }
  std::vector<std::shared_ptr<TenantState>> all;
  {
    // Lock order as in pump_once: the pass lock, then the registry's. No
    // pass may be using the runtime when the drain is given up.
    std::lock_guard<std::mutex> pass(pump_mutex_);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& s : by_index_)
      if (s) {
        freeze_counters_locked(*s);
        all.push_back(s);
      }
    closed_.store(true, std::memory_order_release);
    (void)RuntimeInternals::claim_drain(runtime_, false);
    // Break the state -> core -> state cycles; handles keep their own state.
    by_index_.clear();
    draining_.clear();
    draining_any_.store(false);
  }
  // Waiters on slots that can no longer be delivered: wake them to see the
  // closed registry.
  for (auto& s : all) {
    std::lock_guard<std::mutex> lock(s->kept_mutex);
    s->kept_cv.notify_all();
  }
}

RegistryStats RegistryCore::stats() const {
  RegistryStats s;
  std::lock_guard<std::mutex> lock(mutex_);
  s.live_tenants = live_;
  s.draining_tenants = static_cast<uint32_t>(draining_.size());
  s.drained_slots = drained_slots_.load(std::memory_order_relaxed);
  s.untenanted_slots = untenanted_slots_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// TenantHandle
// ---------------------------------------------------------------------------
namespace {
const std::string kEmptyLabel;
Status empty_handle() {
  return Status(Result::kInvalidArgument, "empty tenant handle");
}
}  // namespace

uint32_t TenantHandle::id() const noexcept { return state_ ? state_->id : 0; }
const std::string& TenantHandle::label() const noexcept { return state_ ? state_->label : kEmptyLabel; }
uint32_t TenantHandle::base_opcode() const noexcept { return state_ ? state_->base_opcode : 0; }
uint32_t TenantHandle::opcode_cap() const noexcept { return state_ ? state_->quotas.opcode_cap : 0; }
bool TenantHandle::revoked() const noexcept { return !state_ || state_->revoked.load(); }
uint64_t TenantHandle::published_count() const noexcept {
  return state_ ? state_->published.load(std::memory_order_acquire) : 0;
}
uint64_t TenantHandle::drained_count() const noexcept {
  return state_ ? state_->drained.load(std::memory_order_acquire) : 0;
}
uint64_t TenantHandle::max_outstanding_slots() const noexcept {
  return state_ ? state_->quotas.max_outstanding_slots : 0;
}

Status TenantHandle::global_opcode(uint32_t local, uint32_t* global) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    if (global == nullptr) return Status(Result::kInvalidArgument, "global is null");
    if (local >= state_->quotas.opcode_cap)
      return Status(Result::kOpcodeOutOfRange,
                    "local opcode " + std::to_string(local) + " outside the window of " +
                        std::to_string(state_->quotas.opcode_cap) + " opcodes",
                    local, state_->quotas.opcode_cap);
    *global = state_->base_opcode + local;
    return Status();
  });
}

Status TenantHandle::publish_slot(const SlotRequest& local_request, Ticket* ticket,
                                  const TenantPublishOptions& options) const {
  return publish_batch(&local_request, 1, ticket, options);
}

Status TenantHandle::publish_slot(uint32_t local_opcode, std::initializer_list<uint64_t> args,
                                  Ticket* ticket, const TenantPublishOptions& options) const {
  return guarded([&]() -> Status {
    if (args.size() > MR_SLOT_ARGS)
      return Status(Result::kInvalidArgument,
                    std::to_string(args.size()) + " arguments; a slot holds " +
                        std::to_string(MR_SLOT_ARGS));
    SlotRequest r;
    r.opcode = local_opcode;
    std::copy(args.begin(), args.end(), r.args);
    return publish_batch(&r, 1, ticket, options);
  });
}

Status TenantHandle::publish_batch(const SlotRequest* local_requests, uint32_t count,
                                   Ticket* first, const TenantPublishOptions& options) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    if (local_requests == nullptr || first == nullptr || count == 0)
      return Status(Result::kInvalidArgument, "publish needs requests, a ticket and count > 0");
    if (!detail::valid_timeout(options.timeout)) return negative_timeout("publish timeout");
    if (t.revoked.load(std::memory_order_acquire)) return revoked_status(t.id);
    const uint64_t cap = t.quotas.max_outstanding_slots;
    if (count > cap)
      return Status(Result::kInvalidArgument,
                    "batch of " + std::to_string(count) + " exceeds max_outstanding_slots " +
                        std::to_string(cap),
                    count, cap);
    // Translate to global opcodes and stamp the tenant, before any counter moves.
    SlotRequest small[16];
    std::vector<SlotRequest> large;
    SlotRequest* global = small;
    if (count > 16) {
      large.resize(count);
      global = large.data();
    }
    for (uint32_t i = 0; i < count; ++i) {
      const SlotRequest& r = local_requests[i];
      uint32_t op = 0;
      Status st = global_opcode(r.opcode, &op);
      if (!st) return st;
      if (r.tenant != 0 && r.tenant != t.id)
        return Status(Result::kInvalidArgument,
                      "request names tenant " + std::to_string(r.tenant) + ", not this one (" +
                          std::to_string(t.id) + ")");
      global[i] = r;
      global[i].opcode = op;
      global[i].tenant = t.id;
    }
    const auto deadline = deadline_after(options.timeout);
    // Reserve `count` against the outstanding quota.
    bool counted = false;
    detail::HostWaiter waiter;
    for (;;) {
      const uint64_t d = t.drained.load(std::memory_order_acquire);  // before published
      uint64_t p = t.published.load(std::memory_order_acquire);
      bool reserved = false;
      // p >= d: drained never passes what was published (see the top).
      while (detail::fits_quota(p - std::min(p, d), count, cap)) {
        // seq_cst: the Dekker pair with unregister (see the top of the file).
        if (t.published.compare_exchange_weak(p, p + count, std::memory_order_seq_cst)) {
          reserved = true;
          break;
        }
      }
      if (reserved) break;
      if (!counted) {
        t.backpressure_events.fetch_add(1, std::memory_order_relaxed);
        MR_NVTX_MARKER("megaring::tenant_backpressure");
        counted = true;
      }
      const uint64_t outstanding = p - std::min(p, d);
      if (options.timeout == Nanoseconds::zero() || Clock::now() > deadline)
        return Status(Result::kBackpressure,
                      std::to_string(outstanding) + " slots outstanding, quota " +
                          std::to_string(cap) + ", " + std::to_string(count) + " more asked",
                      outstanding, cap);
      if (t.revoked.load(std::memory_order_acquire)) return revoked_status(t.id);
      if (t.core->manual() && t.core->pump_once() != 0) continue;
      waiter.pause();
    }
    if (t.revoked.load(std::memory_order_seq_cst)) {
      t.published.fetch_sub(count, std::memory_order_acq_rel);
      t.core->retry_retire();  // this reservation may be all that kept it draining
      return revoked_status(t.id);
    }
    PublishOptions ring;
    ring.keep_result = false;  // the pump delivers kept results (origin tag)
    const auto now = Clock::now();
    ring.on_full = options.timeout == Nanoseconds::zero() ? OnFull::kFail : OnFull::kWait;
    ring.timeout = deadline > now ? Nanoseconds(deadline - now) : Nanoseconds(0);
    const detail::Origin origin{t.id, options.keep_result};
    // Results travel only in completion records: ask for them when wait()
    // or the on_completion callback will read them.
    const bool want_record = options.keep_result || static_cast<bool>(t.on_completion);
    Ticket ticket;
    Status st;
    if (t.core->closed()) {
      st = Status(Result::kShutdown, "tenant registry closed");
    } else if (t.core->manual() && ring.on_full == OnFull::kWait) {
      // Manual pump: nobody else frees positions while we wait, so pump
      // between short attempts instead of blocking in the ring.
      PublishOptions attempt = ring;
      attempt.on_full = OnFull::kFail;
      for (;;) {
        st = RuntimeInternals::publish_tagged(t.core->runtime(), global, count, origin, want_record,
                                               &ticket, attempt);
        if (st || st.code() != Result::kRingFull || Clock::now() > deadline) break;
        if (t.core->pump_once() == 0) std::this_thread::yield();
      }
    } else {
      st = RuntimeInternals::publish_tagged(t.core->runtime(), global, count, origin, want_record,
                                             &ticket, ring);
    }
    if (!st) {
      t.published.fetch_sub(count, std::memory_order_acq_rel);  // roll back the reservation
      t.pipeline_errors.fetch_add(1, std::memory_order_relaxed);
      if (t.revoked.load()) t.core->retry_retire();
      return st;
    }
    if (options.keep_result) {
      std::lock_guard<std::mutex> lock(t.kept_mutex);
      for (uint32_t i = 0; i < count; ++i)
        if (t.kept_results.count(ticket.value + i) == 0) t.kept_pending.insert(ticket.value + i);
    }
    *first = Ticket{ticket.value, options.keep_result};
    return Status();
  });
}

Status TenantHandle::wait(const Ticket& ticket, Completion* completion,
                          Nanoseconds timeout) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    if (completion == nullptr) return Status(Result::kInvalidArgument, "completion is null");
    if (!detail::valid_timeout(timeout)) return negative_timeout("wait timeout");
    if (!ticket.kept)
      return Status(Result::kInvalidArgument,
                    "ticket " + std::to_string(ticket.value) + " was published without keep_result");
    detail::TenantState& t = *state_;
    const auto deadline = deadline_after(timeout);
    std::unique_lock<std::mutex> lock(t.kept_mutex);
    for (;;) {
      auto it = t.kept_results.find(ticket.value);
      if (it != t.kept_results.end()) {
        *completion = it->second;
        t.kept_results.erase(it);
        return Status();
      }
      if (t.kept_pending.count(ticket.value) == 0)
        return Status(Result::kInvalidArgument,
                      "ticket " + std::to_string(ticket.value) +
                          " is not pending for this tenant (not kept, already read or released)");
      if (t.core->closed()) {
        // No pump will ever deliver it: this answer is final, so the ticket
        // stops being pending (a later wait or release of it is refused, as
        // for any ticket already read).
        t.kept_pending.erase(ticket.value);
        return Status(Result::kRevoked, "the registry was destroyed before ticket " +
                                            std::to_string(ticket.value) + " drained");
      }
      if (Clock::now() > deadline)
        return Status(Result::kTimeout,
                      "ticket " + std::to_string(ticket.value) + " not completed in time");
      if (t.core->manual()) {
        lock.unlock();
        if (t.core->pump_once() == 0) std::this_thread::yield();
        lock.lock();
      } else {
        const auto step = std::min(deadline, Clock::now() + std::chrono::milliseconds(10));
        t.kept_cv.wait_until(lock, step);
      }
    }
  });
}

Status TenantHandle::release(const Ticket& ticket) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.kept_mutex);
    if (t.kept_results.erase(ticket.value) != 0) return Status();
    if (ticket.kept && t.kept_pending.erase(ticket.value) != 0) {
      t.kept_released.insert(ticket.value);  // the pump drops it on delivery
      return Status();
    }
    return Status(Result::kInvalidArgument,
                  "ticket " + std::to_string(ticket.value) + " is not pending for this tenant");
  });
}

namespace {
// A quota check and its refusal: `used + amount` within `limit`, or `over`
// with the amount in use as value() and the quota as limit().
Status check_quota(uint64_t used, uint64_t amount, uint64_t limit, Result over,
                   const char* what) {
  if (detail::fits_quota(used, amount, limit)) return Status();
  return Status(over,
                std::string(what) + ": " + std::to_string(used) + " in use + " +
                    std::to_string(amount) + " asked > quota " + std::to_string(limit),
                used, limit);
}
// Giving back more than was reserved: value() what is reserved, limit()
// what the caller gave back.
Status underflow(const char* what, uint64_t amount, uint64_t reserved) {
  return Status(Result::kResourceUnderflow,
                std::string(what) + ": releasing " + std::to_string(amount) + " but only " +
                    std::to_string(reserved) + " reserved",
                reserved, amount);
}
}  // namespace

Status TenantHandle::reserve_staging_bytes(uint64_t bytes) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.quota_mutex);
    if (t.revoked.load()) return revoked_status(t.id);
    Status st = check_quota(t.staging_reserved, bytes, t.quotas.staging_bytes,
                            Result::kStagingBackpressure, "staging bytes");
    if (st) t.staging_reserved += bytes;
    return st;
  });
}
Status TenantHandle::release_staging_bytes(uint64_t bytes) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.quota_mutex);
    if (t.revoked.load()) return revoked_status(t.id);
    if (bytes > t.staging_reserved) return underflow("staging bytes", bytes, t.staging_reserved);
    t.staging_reserved -= bytes;
    return Status();
  });
}
Status TenantHandle::reserve_resident_handles(uint64_t count) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.quota_mutex);
    if (t.revoked.load()) return revoked_status(t.id);
    Status st = check_quota(t.resident_in_use_locked(), count, t.quotas.resident_handles,
                            Result::kResidentBackpressure, "resident handles");
    if (st) t.resident_reserved += count;
    return st;
  });
}
Status TenantHandle::release_resident_handles(uint64_t count) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    std::lock_guard<std::mutex> lock(t.quota_mutex);
    if (t.revoked.load()) return revoked_status(t.id);
    // Only explicit reservations: a buffer's handle goes back with free_buffer.
    if (count > t.resident_reserved)
      return underflow("resident handles", count, t.resident_reserved);
    t.resident_reserved -= count;
    return Status();
  });
}

// The buffer's resident handle is counted from the quota check on (as
// `allocating`), so concurrent calls cannot both pass a full quota. The
// revocation check after the allocation is under quota_mutex, which
// unregister takes after setting `revoked`: either unregister sweeps the new
// buffer, or this call sees the revocation and frees it.
Status TenantHandle::alloc_buffer(uint64_t bytes, BufferHandle* handle) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    if (handle == nullptr) return Status(Result::kInvalidArgument, "handle is null");
    detail::TenantState& t = *state_;
    {
      std::lock_guard<std::mutex> lock(t.quota_mutex);
      if (t.revoked.load()) return revoked_status(t.id);
      Status q = check_quota(t.resident_in_use_locked(), 1, t.quotas.resident_handles,
                             Result::kResidentBackpressure, "resident handles");
      if (!q) return q;
      ++t.allocating;
    }
    BufferHandle h = 0;
    Status st = RuntimeInternals::alloc_owned_buffer(t.core->runtime(), bytes, t.id, &h);
    std::unique_lock<std::mutex> lock(t.quota_mutex);
    --t.allocating;
    if (!st) return st;
    if (!t.revoked.load()) {
      try {
        t.buffers.insert(h);
      } catch (...) {
        lock.unlock();
        (void)t.core->runtime().free_buffer(h);
        throw;
      }
      *handle = h;
      return Status();
    }
    lock.unlock();
    (void)t.core->runtime().free_buffer(h);
    return revoked_status(t.id);
  });
}

Status TenantHandle::free_buffer(BufferHandle handle) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    {
      std::lock_guard<std::mutex> lock(t.quota_mutex);
      if (t.revoked.load()) return revoked_status(t.id);
      if (t.buffers.erase(handle) == 0)
        return Status(Result::kInvalidArgument,
                      "buffer " + std::to_string(handle) + " is not this tenant's");
    }
    Status st = t.core->runtime().free_buffer(handle);
    if (!st) {
      // Still live in the runtime: the tenant still holds it.
      std::lock_guard<std::mutex> lock(t.quota_mutex);
      if (!t.revoked.load()) t.buffers.insert(handle);
    }
    return st;
  });
}

namespace {
// A live tenant that owns `handle`, or why not.
Status check_owned(const detail::TenantState* state, BufferHandle handle) {
  if (state == nullptr) return empty_handle();
  std::lock_guard<std::mutex> lock(state->quota_mutex);
  if (state->revoked.load()) return revoked_status(state->id);
  if (state->buffers.count(handle) == 0)
    return Status(Result::kInvalidArgument,
                  "buffer " + std::to_string(handle) + " is not this tenant's");
  return Status();
}
}  // namespace

Status TenantHandle::write_buffer(BufferHandle handle, uint64_t offset, const void* src,
                                  uint64_t bytes) const {
  return guarded([&]() -> Status {
    Status st = check_owned(state_.get(), handle);
    if (!st) return st;
    return state_->core->runtime().write_buffer(handle, offset, src, bytes);
  });
}

Status TenantHandle::read_buffer(BufferHandle handle, uint64_t offset, void* dst,
                                 uint64_t bytes) const {
  return guarded([&]() -> Status {
    Status st = check_owned(state_.get(), handle);
    if (!st) return st;
    return state_->core->runtime().read_buffer(handle, offset, dst, bytes);
  });
}

TenantQuotaCounters TenantHandle::quota_counters() const {
  TenantQuotaCounters c;
  if (!state_) return c;
  const detail::TenantState& t = *state_;
  c.max_outstanding_slots = t.quotas.max_outstanding_slots;
  c.outstanding_slots = t.outstanding();
  c.staging_bytes_limit = t.quotas.staging_bytes;
  c.resident_handles_limit = t.quotas.resident_handles;
  std::lock_guard<std::mutex> lock(t.quota_mutex);  // one consistent cut of the quotas
  c.staging_bytes_in_use = t.staging_reserved;
  c.resident_handles_in_use = t.resident_in_use_locked();
  c.resident_handles_reserved = t.resident_reserved;
  c.resident_buffers = t.buffers.size();
  return c;
}

TenantRuntimeCounters TenantHandle::runtime_counters() const {
  TenantRuntimeCounters c;
  if (!state_) return c;
  detail::TenantState& t = *state_;
  c.drained = t.drained.load(std::memory_order_acquire);
  c.published = t.published.load(std::memory_order_acquire);
  c.completed_ok = t.completed_ok.load(std::memory_order_relaxed);
  c.faulted = t.faulted.load(std::memory_order_relaxed);
  c.revoked = t.revoked_completions.load(std::memory_order_relaxed);
  c.aborted = t.aborted.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < MR_FAULT_CODE_COUNT; ++i)
    c.faults_by_code[i] = t.faults_by_code[i].load(std::memory_order_relaxed);
  c.backpressure_events = t.backpressure_events.load(std::memory_order_relaxed);
  c.pipeline_errors = t.pipeline_errors.load(std::memory_order_relaxed);
  try {
    const mr_tenant_counters d = t.core->device_counters(t);
    c.device_admitted = d.admitted;
    c.device_out_of_window = d.out_of_window;
    c.device_revoked = d.revoked;
  } catch (...) {
  }
  return c;
}

Status TenantHandle::note_drained(uint64_t count) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    detail::TenantState& t = *state_;
    // Only what the pump has delivered can be drained, so a caller's count and
    // the pump's never add up to more than really completed (no early reuse of
    // the tenant's id, no outstanding count below zero).
    uint64_t d = t.drained.load(std::memory_order_acquire);
    do {
      const uint64_t delivered = t.delivered.load(std::memory_order_acquire);
      const uint64_t undrained = delivered - std::min(delivered, d);
      if (count > undrained)
        return Status(Result::kResourceUnderflow,
                      "draining " + std::to_string(count) + " but only " +
                          std::to_string(undrained) + " delivered and not yet drained",
                      undrained, count);
    } while (!t.drained.compare_exchange_weak(d, d + count, std::memory_order_acq_rel));
    return Status();
  });
}

Status TenantHandle::quiesce(Nanoseconds timeout) const {
  return guarded([&]() -> Status {
    if (!state_) return empty_handle();
    if (!detail::valid_timeout(timeout)) return negative_timeout("quiesce timeout");
    MR_NVTX_RANGE("megaring::quiesce");
    detail::TenantState& t = *state_;
    const auto deadline = deadline_after(timeout);
    detail::HostWaiter waiter;
    for (;;) {
      const uint64_t outstanding = t.outstanding();
      if (outstanding == 0) return Status();
      if (t.core->closed())
        return Status(Result::kRevoked,
                      "the registry was destroyed with " + std::to_string(outstanding) +
                          " slots of this tenant undrained",
                      outstanding, t.quotas.max_outstanding_slots);
      if (Clock::now() > deadline)
        return Status(Result::kQuiesceTimeout,
                      std::to_string(outstanding) + " slots still outstanding",
                      outstanding, t.quotas.max_outstanding_slots);
      if (t.core->manual() && t.core->pump_once() != 0) continue;
      waiter.pause();
    }
  });
}

// ---------------------------------------------------------------------------
// TenantRegistry
// ---------------------------------------------------------------------------
TenantRegistry::TenantRegistry(std::shared_ptr<detail::RegistryCore> core) : core_(std::move(core)) {}

TenantRegistry::~TenantRegistry() {
  try {
    core_->close();
  } catch (...) {
  }
}

Status TenantRegistry::create(Runtime& runtime, const RegistryConfig& config,
                              std::unique_ptr<TenantRegistry>* out) noexcept {
  if (out == nullptr) return Status(Result::kInvalidArgument, "out is null");
  return guarded([&]() -> Status {
    auto core = std::make_shared<detail::RegistryCore>(runtime, config);
    Status st = core->init();
    if (!st) return st;
    out->reset(new TenantRegistry(std::move(core)));
    return Status::ok();
  });
}

Status TenantRegistry::register_tenant(const TenantConfig& config, TenantHandle* out) noexcept {
  return guarded([&] { return core_->register_tenant(config, out); });
}

Status TenantRegistry::unregister_tenant(const TenantHandle& tenant) noexcept {
  return guarded([&]() -> Status {
    if (!tenant.state_) return empty_handle();
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
