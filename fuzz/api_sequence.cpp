// SPDX-License-Identifier: Apache-2.0
// See api_sequence.hpp. The pump is manual, so tenants' drained counts move
// only inside calls that pump (pump_once, tenant wait and quiesce); consumer
// threads still complete slots concurrently, which the checks allow for.
#include "api_sequence.hpp"

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <vector>

#include <megaring/producer.hpp>
#include <megaring/tenant.hpp>

namespace megaring::fuzz {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kMax = ~0ull;
constexpr size_t kTenants = 3;
constexpr size_t kProducers = 2;  // Config::producer_rings: each may hold a Producer
constexpr uint64_t kScratchBytes = 4096;  // the largest buffer the driver allocates
// The staging arena and region table: small, so that both fill up. Every
// region fits the scratch buffers (kArenaBytes <= kScratchBytes).
constexpr uint64_t kArenaBytes = 4096;
constexpr uint32_t kMaxRegions = 6;

// Reads the input; past its end every read is 0.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint64_t raw64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return v;
  }
  // Sizes, offsets and counts: mostly small, often at an edge.
  uint64_t hostile() {
    switch (u8() % 12) {
      case 0: return 0;
      case 1: return 1;
      case 2: return kMax;
      case 3: return kMax - 1;
      case 4: return 1ull << 63;
      case 5: return (1ull << 32) - 1;
      case 6: return (1ull << 32) + 1;
      case 7: return raw64();
      default: return u8() % 70;  // around a 64-byte buffer
    }
  }
  // Buffer sizes: small, or at or past kMaxBufferBytes, which fails at once
  // (never a large allocation that would succeed and take the machine).
  // Region sizes: small, the arena's edge (kArenaBytes), or hostile (zero,
  // past the arena, or a size whose 64-byte rounding wraps).
  uint64_t region_size() {
    switch (u8() % 10) {
      case 0: return 0;
      case 1: return kMax;
      case 2: return kMax - 63;  // rounds to 2^64 - 64: no wrap, over any arena
      case 3: return kMax - 62;  // rounding wraps: charged everything
      case 4: return 4096;
      case 5: return 4097;
      case 6: return 1ull << 63;
      case 7: return 1 + (u8() | (u8() % 4) << 8);  // 1 .. 1024
      default: return 1 + u8() % 128;
    }
  }
  // Offsets and lengths within a small region, half the time; else hostile().
  uint64_t region_range() { return (u8() & 1) ? u8() % 80 : hostile(); }
  uint64_t buffer_size() {
    switch (u8() % 8) {
      case 0: return kMaxBufferBytes;
      case 1: return kMaxBufferBytes + 1;
      case 2: return kMax;
      case 3: return 1ull << 63;
      default: return u8() % (kScratchBytes / 64) * 64 + (u8() % 2);  // < kScratchBytes
    }
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// What the model knows of one staging region: every byte, since only the
// host and the driver's own (waited-for) descriptor slots write them.
struct RegionModel {
  RegionPolicy policy = RegionPolicy::kMutable;
  uint64_t bytes = 0;
  uint64_t committed = 0;  // what a descriptor may read
  bool sealed = false;
  std::vector<uint8_t> content;
};

// The arena lines a region of `bytes` takes, as the quota charges them
// (README "Staging"): rounded up to 64 bytes, everything if that wraps.
uint64_t region_lines(uint64_t bytes) {
  const unsigned __int128 r = (static_cast<unsigned __int128>(bytes) + 63) / 64 * 64;
  return r > kMax ? kMax : static_cast<uint64_t>(r);
}

// What the model knows of one tenant.
struct TenantModel {
  TenantHandle handle;
  TenantQuotas quotas;
  bool live = false;     // registered and not revoked
  uint64_t staging = 0;  // reserved staging bytes
  uint64_t reserved = 0; // explicitly reserved resident handles
  std::map<BufferHandle, uint64_t> buffers;  // live buffers and their sizes
  std::vector<BufferHandle> freed;           // handles it freed (stale now)
  std::map<RegionHandle, RegionModel> regions;  // its live staging regions
  std::vector<Ticket> kept;                  // kept tickets not yet waited or released
  std::set<uint64_t> published;              // every ticket it published

  uint64_t region_bytes() const {  // live regions' lines (each at most 4096)
    uint64_t sum = 0;
    for (const auto& r : regions) sum += region_lines(r.second.bytes);
    return sum;
  }
  // Staging in use: explicit reservations + region lines (u128: the
  // reservations may be near 2^64).
  unsigned __int128 staging_in_use() const { return static_cast<unsigned __int128>(staging) + region_bytes(); }
  uint64_t handles_in_use() const { return reserved + buffers.size() + regions.size(); }
};

// What the model knows of one Producer slot.
struct ProducerModel {
  std::unique_ptr<Producer> producer;
  std::vector<std::pair<Ticket, uint64_t>> kept;  // kept NOPs not yet waited or released, echo
  bool published = false;                         // any ticket since it was opened
  Ticket last;                                    // the last ticket published
};

enum class Life { kRunning, kShutDown, kAborted };

class Driver {
 public:
  explicit Driver(Bytes in) : in_(in) {}
  // The registry first: closing it delivers completions to callbacks that
  // use members declared after it.
  ~Driver() {
    registry_.reset();
    for (ProducerModel& p : producers_) p.producer.reset();
    rt_.reset();
  }

  std::string run() {
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

 private:
  // --- checks ----------------------------------------------------------------
  void fail(const std::string& what) {
    if (!failure_.empty()) return;
    std::ostringstream s;
    s << "step " << step_ << " (" << call_ << "): " << what;
    failure_ = s.str();
  }
  void expect(const Status& st, std::initializer_list<Result> allowed) {
    for (Result r : allowed)
      if (st.code() == r) return;
    fail("unexpected " + st.to_string());
  }
  bool registry_open() const { return registry_ != nullptr && rt_ != nullptr; }

  // --- the calls ---------------------------------------------------------------
  void one_step() {
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

  void register_tenant(TenantModel& t) {
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

  void revoke_in_model(TenantModel& t) {
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

  void unregister(TenantModel& t) {
    call_ = "unregister_tenant";
    if (!t.handle.valid() || registry_ == nullptr) return;
    const Status st = registry_->unregister_tenant(t.handle);
    if (!t.live) return expect(st, {Result::kRevoked});
    // The runtime's error: it stopped, so the consumer's table could not be
    // told; the host side revoked it all the same.
    if (st.code() != Result::kSuccess && life_ == Life::kRunning) fail("unexpected " + st.to_string());
    revoke_in_model(t);
  }

  void publish(TenantModel& t) {
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

  void plain_publish() {
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

  void wait_kept(TenantModel& t, bool release) {
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

  void staging(TenantModel& t, bool reserve) {
    call_ = reserve ? "reserve_staging_bytes" : "release_staging_bytes";
    if (!t.handle.valid()) return;
    const uint64_t amount = in_.hostile();
    const Status st =
        reserve ? t.handle.reserve_staging_bytes(amount) : t.handle.release_staging_bytes(amount);
    if (!t.live) return expect(st, {Result::kRevoked});
    if (reserve) {
      const bool fits = amount <= t.quotas.staging_bytes && t.staging_in_use() <= t.quotas.staging_bytes - amount;
      expect(st, {fits ? Result::kSuccess : Result::kStagingBackpressure});
      if (st) t.staging += amount;
    } else {
      expect(st, {amount <= t.staging ? Result::kSuccess : Result::kResourceUnderflow});
      if (st) t.staging -= amount;
    }
  }

  void resident(TenantModel& t, bool reserve) {
    call_ = reserve ? "reserve_resident_handles" : "release_resident_handles";
    if (!t.handle.valid()) return;
    const uint64_t amount = in_.hostile();
    const Status st = reserve ? t.handle.reserve_resident_handles(amount)
                              : t.handle.release_resident_handles(amount);
    if (!t.live) return expect(st, {Result::kRevoked});
    const uint64_t in_use = t.handles_in_use();
    if (reserve) {
      const uint64_t limit = t.quotas.resident_handles;
      const bool fits = amount <= limit && in_use <= limit - amount;
      expect(st, {fits ? Result::kSuccess : Result::kResidentBackpressure});
      if (st) t.reserved += amount;
    } else {
      // A buffer's handle is never released this way.
      expect(st, {amount <= t.reserved ? Result::kSuccess : Result::kResourceUnderflow});
      if (st) t.reserved -= amount;
    }
  }

  void alloc_buffer(TenantModel& t) {
    call_ = "tenant alloc_buffer";
    if (!t.handle.valid()) return;
    const uint64_t bytes = in_.buffer_size();
    BufferHandle h = 0;
    const Status st = t.handle.alloc_buffer(bytes, &h);
    if (!t.live) return expect(st, {Result::kRevoked});
    if (t.handles_in_use() + 1 > t.quotas.resident_handles)
      return expect(st, {Result::kResidentBackpressure});
    if (bytes > kMaxBufferBytes) return expect(st, {Result::kInvalidArgument});
    if (life_ != Life::kRunning)
      return expect(st, {life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted});
    // kOutOfMemory: the table (max_buffers) is full, or the size is too big.
    expect(st, {Result::kSuccess, Result::kOutOfMemory});
    if (st) t.buffers[h] = bytes;
  }

  void free_buffer(TenantModel& t) {
    call_ = "tenant free_buffer";
    if (!t.handle.valid()) return;
    BufferHandle h = static_cast<BufferHandle>(in_.raw64());
    bool own = false;
    switch (in_.u8() % 4) {
      case 0:
        if (!t.buffers.empty()) { h = t.buffers.begin()->first; own = true; }
        break;
      case 1:
        if (!t.freed.empty()) h = t.freed.back();  // double free, or stale
        break;
      case 2:  // another tenant's buffer
        for (const TenantModel& o : tenants_)
          if (&o != &t && !o.buffers.empty()) h = o.buffers.begin()->first;
        break;
      default: break;
    }
    own = own || t.buffers.count(h) != 0;
    const Status st = t.handle.free_buffer(h);
    if (!t.live) return expect(st, {Result::kRevoked});
    if (!own) return expect(st, {Result::kInvalidArgument});
    expect(st, {Result::kSuccess});
    t.buffers.erase(h);
    t.freed.push_back(h);
  }

  void copy_buffer(TenantModel& t) {
    call_ = "tenant write_buffer / read_buffer";
    if (!t.handle.valid()) return;
    const bool write = (in_.u8() & 1) != 0;
    const uint64_t offset = in_.hostile();
    const uint64_t bytes = in_.hostile();
    BufferHandle h = static_cast<BufferHandle>(in_.raw64());
    if (!t.buffers.empty() && (in_.u8() & 1)) h = t.buffers.begin()->first;
    // Host copies are not ordered with slots in flight on the same buffer
    // (runtime.hpp): only this tenant's slots can name its buffers, so
    // its drained slots are all it must wait for.
    if (t.live) expect(t.handle.quiesce(seconds(30)), {Result::kSuccess});
    const Status st = write ? t.handle.write_buffer(h, offset, scratch_, bytes)
                            : t.handle.read_buffer(h, offset, scratch_, bytes);
    if (!t.live) return expect(st, {Result::kRevoked});
    const auto it = t.buffers.find(h);
    if (it == t.buffers.end()) return expect(st, {Result::kInvalidArgument});
    const bool within = offset <= it->second && bytes <= it->second - offset;
    if (!within) return expect(st, {Result::kInvalidArgument});
    expect(st, {Result::kSuccess});
  }

  void note_and_quiesce(TenantModel& t) {
    call_ = "note_drained / quiesce";
    if (!t.handle.valid()) return;
    // The pump counts every delivery as drained, so nothing is left to note.
    const uint64_t count = in_.hostile();
    expect(t.handle.note_drained(count), {count == 0 ? Result::kSuccess : Result::kResourceUnderflow});
    const Status st = t.handle.quiesce(milliseconds(0));
    expect(st, {Result::kSuccess, Result::kQuiesceTimeout, Result::kRevoked});
  }

  void global_opcode(TenantModel& t) {
    call_ = "global_opcode";
    if (!t.handle.valid()) return;
    const uint32_t local = static_cast<uint32_t>(in_.hostile());
    uint32_t global = 0;
    const Status st = t.handle.global_opcode(local, (in_.u8() & 1) ? &global : nullptr);
    (void)st;  // its codes are the matrix's; here it must only not disturb anything
  }

  // Grants: all, or a few opcodes (in and around the window, or hostile).
  // Bad opcodes are refused first (outside the window, then beyond the
  // grant limits), then a gone tenant, registry or runtime; a refusal
  // changes nothing. The slots' fault codes are not modelled: an ungranted
  // slot is one more FAULT, which the invariants allow.
  void set_grants(TenantModel& t) {
    call_ = "set_grants";
    if (!t.handle.valid()) return;
    OpcodeGrants grants;
    grants.all = in_.u8() % 4 == 0;
    if (!grants.all)
      for (uint32_t n = in_.u8() % 4; n > 0; --n)
        grants.opcodes.push_back((in_.u8() & 1) ? in_.u8() % 24
                                                : static_cast<uint32_t>(in_.hostile()));
    Result want = Result::kSuccess;
    for (const uint32_t op : grants.opcodes) {
      if (op >= t.quotas.opcode_cap) {
        want = Result::kOpcodeOutOfRange;
        break;
      }
      if (op == 0 || (op >= kGrantSystemEnd && op < MR_OP_USER_BASE) || op >= kGrantUserEnd) {
        want = Result::kInvalidArgument;
        break;
      }
    }
    if (want == Result::kSuccess && (!t.live || registry_ == nullptr || rt_ == nullptr))
      want = Result::kRevoked;
    // A control operation needs a running consumer (runtime.hpp, "Control
    // operations"): after an abort it is refused, the grants unchanged.
    if (want == Result::kSuccess && life_ == Life::kAborted) want = Result::kAborted;
    OpcodeGrants before;
    expect(t.handle.grants(&before), {Result::kSuccess});
    const Status st = t.handle.set_grants(grants);
    expect(st, {want});
    OpcodeGrants after;
    expect(t.handle.grants(&after), {Result::kSuccess});
    if (!st) {
      if (after.all != before.all || after.opcodes != before.opcodes) fail("a refused set_grants changed the grants");
      return;
    }
    std::vector<uint32_t> sorted = grants.opcodes;
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    if (after.all != grants.all || after.opcodes != sorted) fail("grants() does not report what was set");
  }

  // Rare (1 in 16 of its draws): shutdown, abort, the registry or the
  // runtime destroyed. Later calls must then fail cleanly.
  // A Producer's calls, on its own ring, against what the lifecycle allows:
  // running, every call works (or finds its ring full); after shutdown
  // every ticket it published completed OK; after abort each ends OK or
  // ABORTED; after the runtime is gone, kShutdown.
  Result closed_result() const {
    return runtime_gone_ || life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted;
  }
  void producer_step(ProducerModel& p) {
    const uint8_t what = in_.u8() % 8;
    if (p.producer == nullptr) {
      call_ = "Runtime::open_producer";
      if (rt_ == nullptr) return;
      const Status st = rt_->open_producer(&p.producer);
      if (life_ == Life::kRunning ? !st : st.code() != closed_result()) fail("unexpected " + st.to_string());
      p.kept.clear();
      p.published = false;
      return;
    }
    if (what == 0) {
      call_ = "~Producer";
      p.producer.reset();
      return;
    }
    if (what <= 3) {
      call_ = "Producer::publish_batch";
      const uint32_t n = 1 + in_.u8() % 4;  // the smallest ring holds 4
      const uint64_t echo = static_cast<uint64_t>(step_) << 8;
      std::vector<SlotRequest> batch;
      for (uint32_t i = 0; i < n; ++i) batch.push_back(ops::nop(echo + i));
      PublishOptions o;
      o.keep_result = (in_.u8() & 1) != 0;
      o.on_full = OnFull::kFail;
      Ticket first;
      const Status st = p.producer->publish_batch(batch.data(), n, &first, o);
      if (runtime_gone_ || life_ != Life::kRunning) {
        if (st.code() != closed_result()) fail("unexpected " + st.to_string());
        return;
      }
      if (st.code() == Result::kRingFull) return;
      if (!st) return fail("unexpected " + st.to_string());
      if (p.published && first.value != p.last.value + 1) fail("a ring's tickets skipped or repeated");
      for (uint32_t i = 0; o.keep_result && i < n; ++i)
        p.kept.push_back({Ticket{first.value + i, true}, echo + i});
      p.published = true;
      p.last = Ticket{first.value + n - 1, false};
      return;
    }
    if (what == 4 && !p.kept.empty()) return wait_oldest_kept(p, "Producer::wait");
    if (what == 5 && !p.kept.empty()) {
      const Ticket ticket = p.kept.front().first;
      p.kept.erase(p.kept.begin());
      call_ = "Producer::release";
      const Status st = p.producer->release(ticket);
      if (runtime_gone_ ? st.code() != Result::kShutdown : !st) fail("unexpected " + st.to_string());
      return;
    }
    if (p.published) {
      call_ = "Producer::wait_done";
      const Status st = p.producer->wait_done(p.last, seconds(30));
      if (runtime_gone_) {
        if (st.code() != Result::kShutdown) fail("unexpected " + st.to_string());
      } else if (!st && !(life_ == Life::kAborted && st.code() == Result::kAborted)) {
        fail("unexpected " + st.to_string());
      } else if (st && p.producer->done_count() <= p.last.value) {
        fail("wait_done returned before DONE_COUNT passed the ticket");
      }
    }
  }

  // Waits for p's oldest kept ticket: its own echo, or ABORTED after an
  // abort; kShutdown once the runtime is gone.
  void wait_oldest_kept(ProducerModel& p, const char* call) {
    const auto [ticket, echo] = p.kept.front();
    p.kept.erase(p.kept.begin());
    call_ = call;
    Completion c;
    const Status st = p.producer->wait(ticket, &c, seconds(30));
    if (runtime_gone_) {
      if (st.code() != Result::kShutdown) fail("unexpected " + st.to_string());
      return;
    }
    if (!st) return fail("unexpected " + st.to_string());
    if (c.ticket != ticket.value) fail("a completion for another ticket");
    const bool ran = c.status == MR_STATUS_OK && c.result == echo;
    if (!ran && !(life_ == Life::kAborted && c.status == MR_STATUS_ABORTED))
      fail("kept NOP ended with status " + std::to_string(c.status) + ", result " + std::to_string(c.result));
  }

  void lifecycle() {
    const uint8_t which = in_.u8();
    if (which % 16 == 8 && rt_ != nullptr) return suspend_and_resume();
    if (which % 16 != 0 || rt_ == nullptr) return;
    switch ((which / 16) % 4) {
      case 0:
        call_ = "Runtime::shutdown";
        if (life_ != Life::kRunning) return;
        if (registry_) {  // the pump drains: the manual pump must run meanwhile
          close_registry();
          if (!failure_.empty()) return;
        }
        if (!rt_->shutdown(seconds(30))) return fail("shutdown failed");
        life_ = Life::kShutDown;
        return;
      case 1:
        call_ = "Runtime::abort";
        if (life_ == Life::kRunning) {
          (void)rt_->abort();
          life_ = Life::kAborted;
        }
        return;
      case 2:
        call_ = "~TenantRegistry";
        return close_registry();
      default:
        call_ = "~Runtime (before its registry)";
        rt_.reset();
        runtime_gone_ = true;
        for (TenantModel& t : tenants_)
          if (t.live) revoke_in_model(t);
        runtime_regions_.clear();
        return;
    }
  }

  // A suspension and a resume, back to back: slots in flight finish, the
  // rest wait and then run, and nothing the model knows changes.
  void suspend_and_resume() {
    call_ = "Runtime::suspend";
    const Status st = rt_->suspend(seconds(30));
    if (life_ != Life::kRunning) return expect(st, {Result::kShutdown, Result::kAborted});
    expect(st, {Result::kSuccess});
    if (!st) return;
    if (rt_->consumer_phase() != megaring::ConsumerPhase::kSuspended) return fail("suspended, but not so reported");
    call_ = "Runtime::resume";
    expect(rt_->resume(), {Result::kSuccess});
  }

  // Destroys the registry: every tenant revoked, queued slots drained.
  void close_registry() {
    if (registry_ == nullptr) return;
    registry_.reset();
    for (TenantModel& t : tenants_)
      if (t.live) revoke_in_model(t);
    registry_closed_ = true;
  }

  // --- staging regions -----------------------------------------------------------
  // A region of the model by handle: a live tenant's (its index in *owner),
  // the runtime's (*owner = -1), or nullptr.
  RegionModel* find_region(RegionHandle h, int* owner) {
    for (size_t i = 0; i < kTenants; ++i) {
      auto it = tenants_[i].regions.find(h);
      if (it != tenants_[i].regions.end()) {
        *owner = static_cast<int>(i);
        return &it->second;
      }
    }
    *owner = -1;
    auto it = runtime_regions_.find(h);
    return it == runtime_regions_.end() ? nullptr : &it->second;
  }
  // A region handle as a caller might pass one: its own, another tenant's,
  // the runtime's, a freed one, a revoked tenant's, or any word.
  RegionHandle pick_region(const TenantModel& t) {
    const auto nth = [&](const auto& container) {
      auto it = container.begin();
      std::advance(it, in_.u8() % container.size());
      return *it;
    };
    switch (in_.u8() % 10) {
      case 0:
      case 1:
      case 2:
      case 3:
      case 4:
        break;  // its own, if any (below)
      case 5:
        for (const TenantModel& o : tenants_)
          if (&o != &t && !o.regions.empty()) return o.regions.begin()->first;
        break;
      case 6:
        if (!runtime_regions_.empty()) return nth(runtime_regions_).first;
        break;
      case 7:
        if (!stale_regions_.empty()) return nth(stale_regions_);
        break;
      case 8:
        if (!orphan_regions_.empty()) return nth(orphan_regions_);
        break;
      default: return static_cast<RegionHandle>(in_.raw64());
    }
    if (!t.regions.empty()) return nth(t.regions).first;
    if (!runtime_regions_.empty()) return nth(runtime_regions_).first;
    return static_cast<RegionHandle>(in_.raw64());
  }
  // The runtime's create_region refusals, in its order (runtime.hpp).
  // Sets *may_oom when the arena or table may be full (a freed range comes
  // back only once the slots before its free completed), *must_oom when
  // the regions the model knows leave no room.
  Result runtime_create_result(uint32_t policy, uint64_t bytes, bool* may_oom) const {
    *may_oom = false;
    if (life_ != Life::kRunning) return life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted;
    if (policy < MR_REGION_IMMUTABLE || policy > MR_REGION_MUTABLE) return Result::kInvalidArgument;
    if (bytes == 0) return Result::kInvalidArgument;
    uint64_t lines = 0, count = runtime_regions_.size();
    for (const auto& r : runtime_regions_) lines += region_lines(r.second.bytes);
    for (const TenantModel& o : tenants_) {
      lines += o.region_bytes();
      count += o.regions.size();
    }
    const bool must_oom = count >= kMaxRegions || region_lines(bytes) > kArenaBytes - lines;
    if (must_oom) return Result::kOutOfMemory;
    *may_oom = regions_freed_ || !orphan_regions_.empty();
    return Result::kSuccess;
  }

  // create_region by the tenant (quotas first: staging lines, then one
  // resident handle) or by the runtime.
  void create_region(TenantModel& t) {
    const bool by_runtime = (in_.u8() % 4) == 0;
    const uint8_t p = in_.u8() % 8;
    const uint32_t policy = p == 0 ? 0 : p == 7 ? in_.u8() : 1 + (p - 1) / 2;
    const uint64_t bytes = in_.region_size();
    RegionHandle h = 0;
    Status st;
    Result want = Result::kSuccess;
    bool may_oom = false;
    if (by_runtime) {
      call_ = "Runtime::create_region";
      if (rt_ == nullptr) return;
      st = rt_->create_region(static_cast<RegionPolicy>(policy), bytes, &h);
      want = runtime_create_result(policy, bytes, &may_oom);
    } else {
      call_ = "tenant create_region";
      if (!t.handle.valid()) return;
      st = t.handle.create_region(static_cast<RegionPolicy>(policy), bytes, &h);
      const uint64_t charge = region_lines(bytes);
      if (!t.live) {
        want = Result::kRevoked;
      } else if (charge > t.quotas.staging_bytes || t.staging_in_use() > t.quotas.staging_bytes - charge) {
        want = Result::kStagingBackpressure;
      } else if (t.handles_in_use() + 1 > t.quotas.resident_handles) {
        want = Result::kResidentBackpressure;
      } else {
        want = runtime_create_result(policy, bytes, &may_oom);
      }
    }
    if (may_oom) {
      expect(st, {want, Result::kOutOfMemory});
    } else {
      expect(st, {want});
    }
    if (!st || !failure_.empty()) return;
    int owner = 0;
    if (h == 0 || find_region(h, &owner) != nullptr || stale_regions_.count(h) || orphan_regions_.count(h))
      return fail("create_region handed out a handle in use, freed or 0");
    RegionModel r;
    r.policy = static_cast<RegionPolicy>(policy);
    r.bytes = bytes;
    r.content.assign(bytes, 0);  // a new region starts zeroed
    (by_runtime ? runtime_regions_ : t.regions)[h] = std::move(r);
  }

  // write / append / seal / read, by the tenant or the runtime, with hostile
  // offsets and lengths; a read must return the model's bytes.
  void region_io(TenantModel& t) {
    const bool by_runtime = (in_.u8() % 4) == 0;
    const uint8_t what = in_.u8() % 4;
    const RegionHandle h = pick_region(t);
    const uint64_t offset = what == 1 ? 0 : in_.region_range();
    const uint64_t bytes = in_.region_range();
    for (uint64_t i = 0; i < kScratchBytes; ++i) scratch_[i] = static_cast<uint8_t>(step_ * 31 + i * 7 + 1);
    uint64_t at = ~0ull;
    static const char* const kCalls[2][4] = {
        {"tenant write_region", "tenant append_region", "tenant seal_region", "tenant read_region"},
        {"Runtime::write_region", "Runtime::append_region", "Runtime::seal_region", "Runtime::read_region"}};
    call_ = kCalls[by_runtime][what];
    if (by_runtime ? rt_ == nullptr : !t.handle.valid()) return;
    const auto run = [&](auto& target) {
      switch (what) {
        case 0: return target.write_region(h, offset, scratch_, bytes);
        case 1: return target.append_region(h, scratch_, bytes, &at);
        case 2: return target.seal_region(h);
        default: return target.read_region(h, offset, readback_, bytes);
      }
    };
    const Status st = by_runtime ? run(*rt_) : run(t.handle);
    int owner = 0;
    RegionModel* r = find_region(h, &owner);
    if (!by_runtime) {
      if (!t.live) return expect(st, {Result::kRevoked});
      if (t.regions.count(h) == 0) return expect(st, {Result::kInvalidArgument});  // not its own
    } else if (r == nullptr) {
      if (orphan_regions_.count(h) != 0) return;  // still in the table, or not
      return expect(st, {Result::kInvalidArgument});
    }
    const auto within = [&](uint64_t off, uint64_t len) {
      return static_cast<unsigned __int128>(off) + len <= r->bytes;
    };
    switch (what) {
      case 0: {
        const bool ok = r->policy != RegionPolicy::kAppendOnly && !r->sealed && within(offset, bytes);
        expect(st, {ok ? Result::kSuccess : Result::kInvalidArgument});
        if (st) std::memcpy(r->content.data() + offset, scratch_, bytes);
        return;
      }
      case 1: {
        const bool ok = r->policy == RegionPolicy::kAppendOnly && within(r->committed, bytes);
        expect(st, {ok ? Result::kSuccess : Result::kInvalidArgument});
        if (!st) return;
        if (at != r->committed) return fail("append_region put the bytes elsewhere than the committed end");
        std::memcpy(r->content.data() + at, scratch_, bytes);
        r->committed += bytes;
        return;
      }
      case 2:
        expect(st, {r->policy == RegionPolicy::kImmutable ? Result::kSuccess : Result::kInvalidArgument});
        if (st) {
          r->sealed = true;
          r->committed = r->bytes;
        }
        return;
      default:
        expect(st, {within(offset, bytes) ? Result::kSuccess : Result::kInvalidArgument});
        if (st && bytes != 0 && std::memcmp(readback_, r->content.data() + offset, bytes) != 0)
          fail("read_region returned other bytes than were written");
        return;
    }
  }

  // free_region: the tenant frees its own; the runtime frees its own, and
  // must refuse a live tenant's.
  void free_region(TenantModel& t) {
    const bool by_runtime = (in_.u8() % 2) == 0;
    const RegionHandle h = pick_region(t);
    int owner = 0;
    RegionModel* r = find_region(h, &owner);
    if (by_runtime) {
      call_ = "Runtime::free_region";
      if (rt_ == nullptr) return;
      const Status st = rt_->free_region(h);
      if (r == nullptr && orphan_regions_.count(h) != 0) {
        expect(st, {Result::kSuccess, Result::kInvalidArgument});
        if (st) {
          orphan_regions_.erase(h);
          stale_regions_.insert(h);
          regions_freed_ = true;
        }
        return;
      }
      // A live tenant's region: only its TenantHandle frees it.
      expect(st, {r != nullptr && owner < 0 ? Result::kSuccess : Result::kInvalidArgument});
      if (st && owner < 0) runtime_regions_.erase(h);
    } else {
      call_ = "tenant free_region";
      if (!t.handle.valid()) return;
      const Status st = t.handle.free_region(h);
      if (!t.live) return expect(st, {Result::kRevoked});
      expect(st, {t.regions.count(h) != 0 ? Result::kSuccess : Result::kInvalidArgument});
      if (st) t.regions.erase(h);
    }
    if (failure_.empty() && r != nullptr && find_region(h, &owner) == nullptr) {
      stale_regions_.insert(h);
      regions_freed_ = true;
    }
  }

  // A descriptor slot of the tenant (STAGE_TO_BUFFER, BUFFER_TO_STAGING),
  // waited for: its outcome must be the one slot_abi.h orders (region:
  // BAD_REGION, REGION_POLICY, OUT_OF_BOUNDS; then the buffer: BAD_HANDLE,
  // OUT_OF_BOUNDS), and the bytes must have moved.
  void descriptor_slot(TenantModel& t) {
    call_ = "tenant descriptor slot";
    if (!t.handle.valid()) return;
    const bool to_buffer = (in_.u8() & 1) != 0;
    const uint64_t region = (in_.u8() % 8 == 0) ? in_.raw64() : pick_region(t);
    const uint64_t region_offset = in_.region_range();
    const uint64_t bytes = in_.region_range();
    uint64_t buffer = in_.raw64();
    const bool own_buffer = (in_.u8() % 4) != 0;
    if (!t.buffers.empty() && own_buffer) buffer = t.buffers.begin()->first;
    const uint64_t buffer_offset = in_.region_range();
    SlotRequest req;
    req.opcode = to_buffer ? MR_OP_STAGE_TO_BUFFER : MR_OP_BUFFER_TO_STAGING;
    req.args[0] = region;
    req.args[1] = region_offset;
    req.args[2] = bytes;
    req.args[3] = buffer;
    req.args[4] = buffer_offset;
    // The tenant's earlier slots (FILLs, ADDs) drain first: the buffer's
    // bytes are then what this slot reads or overwrites.
    if (t.live) expect(t.handle.quiesce(seconds(30)), {Result::kSuccess});
    const auto b = t.buffers.find(static_cast<BufferHandle>(buffer));
    const bool buffer_ok = buffer <= 0xFFFFFFFFull && b != t.buffers.end();
    const bool buffer_within = buffer_ok && static_cast<unsigned __int128>(buffer_offset) + bytes <= b->second;
    std::vector<uint8_t> before;
    if (t.live && buffer_within && !to_buffer) {
      before.resize(bytes);
      expect(t.handle.read_buffer(b->first, buffer_offset, before.data(), bytes), {Result::kSuccess});
    }
    TenantPublishOptions keep;
    keep.keep_result = true;
    Ticket ticket;
    const Status st = t.handle.publish_slot(req, &ticket, keep);
    if (!t.live) return expect(st, {Result::kRevoked});
    if (req.opcode >= t.quotas.opcode_cap) return expect(st, {Result::kOpcodeOutOfRange});
    if (life_ != Life::kRunning)
      return expect(st, {life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted});
    expect(st, {Result::kSuccess, Result::kRingFull});
    if (!st) return;
    if (!t.published.insert(ticket.value).second) return fail("a ticket was handed out twice");
    Completion c;
    expect(t.handle.wait(ticket, &c, seconds(30)), {Result::kSuccess});
    if (!failure_.empty()) return;
    // What slot_abi.h says, in its order.
    OpcodeGrants grants;
    expect(t.handle.grants(&grants), {Result::kSuccess});
    const bool granted = grants.all || std::count(grants.opcodes.begin(), grants.opcodes.end(), req.opcode) != 0;
    const auto r = t.regions.find(static_cast<RegionHandle>(region));
    uint16_t want = MR_FAULT_NONE;
    if (!granted) {
      want = MR_FAULT_NOT_GRANTED;
    } else if (region > 0xFFFFFFFFull || r == t.regions.end()) {
      want = MR_FAULT_BAD_REGION;  // unknown, freed, the runtime's or another tenant's
    } else if (to_buffer ? r->second.policy == RegionPolicy::kMutable : r->second.policy != RegionPolicy::kMutable) {
      want = MR_FAULT_REGION_POLICY;
    } else if (static_cast<unsigned __int128>(region_offset) + bytes >
               (to_buffer ? r->second.committed : r->second.bytes)) {
      want = MR_FAULT_OUT_OF_BOUNDS;
    } else if (!buffer_ok) {
      want = MR_FAULT_BAD_HANDLE;
    } else if (!buffer_within) {
      want = MR_FAULT_OUT_OF_BOUNDS;
    }
    const uint16_t want_status = want == MR_FAULT_NONE ? MR_STATUS_OK : MR_STATUS_FAULT;
    if (c.status != want_status || c.fault != want || (want == MR_FAULT_NONE && c.result != bytes))
      return fail("descriptor slot ended status " + std::to_string(c.status) + " fault " +
                  std::to_string(c.fault) + " result " + std::to_string(c.result) + ", the model says fault " +
                  std::to_string(want));
    if (want != MR_FAULT_NONE || bytes == 0) return;
    RegionModel& model = r->second;
    if (to_buffer) {
      std::vector<uint8_t> got(bytes);
      expect(t.handle.read_buffer(b->first, buffer_offset, got.data(), bytes), {Result::kSuccess});
      if (std::memcmp(got.data(), model.content.data() + region_offset, bytes) != 0)
        fail("STAGE_TO_BUFFER moved other bytes than the region's");
    } else {
      std::memcpy(model.content.data() + region_offset, before.data(), bytes);
      expect(t.handle.read_region(r->first, region_offset, readback_, bytes), {Result::kSuccess});
      if (std::memcmp(readback_, before.data(), bytes) != 0)
        fail("BUFFER_TO_STAGING moved other bytes than the buffer's");
    }
  }

  // --- invariants --------------------------------------------------------------
  void check_invariants() {
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
  void finish() {
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

  Bytes in_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<TenantRegistry> registry_;
  TenantModel tenants_[kTenants];
  ProducerModel producers_[kProducers];
  std::mutex delivered_mutex_;
  std::map<uint64_t, int> delivered_[kTenants];  // ticket -> deliveries, per tenant
  Life life_ = Life::kRunning;
  bool runtime_gone_ = false;
  bool registry_closed_ = false;
  uint64_t plain_published_ = 0;
  uint8_t scratch_[kScratchBytes] = {};
  uint8_t readback_[kScratchBytes] = {};
  std::map<RegionHandle, RegionModel> runtime_regions_;  // the runtime's own live regions
  std::set<RegionHandle> stale_regions_;   // freed for certain: every call refuses them
  std::set<RegionHandle> orphan_regions_;  // a revoked tenant's, maybe still in the table
  bool regions_freed_ = false;             // a freed range may still be pending

  int step_ = 0;
  const char* call_ = "";
  std::string failure_;
};

}  // namespace

std::string run_api_sequence(const uint8_t* data, size_t size) {
  Driver driver(Bytes(data, size));
  return driver.run();
}

}  // namespace megaring::fuzz
