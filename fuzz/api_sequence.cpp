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

// What the model knows of one tenant.
struct TenantModel {
  TenantHandle handle;
  TenantQuotas quotas;
  bool live = false;     // registered and not revoked
  uint64_t staging = 0;  // reserved staging bytes
  uint64_t reserved = 0; // explicitly reserved resident handles
  std::map<BufferHandle, uint64_t> buffers;  // live buffers and their sizes
  std::vector<BufferHandle> freed;           // handles it freed (stale now)
  std::vector<Ticket> kept;                  // kept tickets not yet waited or released
  std::set<uint64_t> published;              // every ticket it published
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
    switch (op % 20) {
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
      const bool fits = amount <= t.quotas.staging_bytes && t.staging <= t.quotas.staging_bytes - amount;
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
    const uint64_t in_use = t.reserved + t.buffers.size();
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
    if (t.reserved + t.buffers.size() + 1 > t.quotas.resident_handles)
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

  // --- invariants --------------------------------------------------------------
  void check_invariants() {
    call_ = "invariants";
    for (size_t i = 0; i < kTenants; ++i) {
      const TenantModel& t = tenants_[i];
      if (!t.handle.valid()) continue;
      const TenantQuotaCounters q = t.handle.quota_counters();
      if (q.staging_bytes_in_use > q.staging_bytes_limit) fail("staging in use over its quota");
      if (q.resident_handles_in_use > q.resident_handles_limit) fail("resident handles over the quota");
      if (q.staging_bytes_in_use != t.staging) fail("staging in use differs from the reservations");
      if (q.resident_handles_reserved != t.reserved) fail("resident reservations differ");
      if (q.resident_buffers != t.buffers.size()) fail("resident buffers differ from the live buffers");
      if (q.resident_handles_in_use != t.reserved + t.buffers.size())
        fail("resident handles in use != reservations + buffers");
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
