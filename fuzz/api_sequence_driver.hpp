// SPDX-License-Identifier: Apache-2.0
// Internal to fuzz/: the API-sequence driver (api_sequence.hpp says what it
// checks). This header holds the input reader (Bytes), the reference model
// (staging regions, tenants, producers, the runtime's lifecycle) and the
// Driver class with its members and small helpers; its step functions are
// defined by area:
//   api_sequence.cpp          run_api_sequence, the run loop and the step
//                             dispatch, tenants, publishing and waiting, the
//                             invariants and the final conservation check;
//   api_sequence_buffers.cpp  staging and resident reservations, buffers,
//                             grants and global opcodes;
//   api_sequence_regions.cpp  staging regions and descriptor slots;
//   api_sequence_runtime.cpp  producers, the lifecycle (shutdown, abort,
//                             suspend, destruction) and closing the registry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <megaring/producer.hpp>
#include <megaring/tenant.hpp>

namespace megaring::fuzz::detail {

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
inline uint64_t region_lines(uint64_t bytes) {
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

  std::string run();

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
  // What a Producer call answers once the runtime shut down, aborted or went.
  Result closed_result() const {
    return runtime_gone_ || life_ == Life::kShutDown ? Result::kShutdown : Result::kAborted;
  }

  // --- tenants, publishing, waiting, invariants (api_sequence.cpp) ----------
  void one_step();
  void register_tenant(TenantModel& t);
  void revoke_in_model(TenantModel& t);
  void unregister(TenantModel& t);
  void publish(TenantModel& t);
  void plain_publish();
  void wait_kept(TenantModel& t, bool release);
  void note_and_quiesce(TenantModel& t);
  void check_invariants();
  void finish();

  // --- reservations, buffers, grants (api_sequence_buffers.cpp) ---------------
  void staging(TenantModel& t, bool reserve);
  void resident(TenantModel& t, bool reserve);
  void alloc_buffer(TenantModel& t);
  void free_buffer(TenantModel& t);
  void copy_buffer(TenantModel& t);
  void global_opcode(TenantModel& t);
  void set_grants(TenantModel& t);

  // --- producers and the lifecycle (api_sequence_runtime.cpp) ----------------
  void producer_step(ProducerModel& p);
  void wait_oldest_kept(ProducerModel& p, const char* call);
  void lifecycle();
  void suspend_and_resume();
  void close_registry();

  // --- staging regions and descriptor slots (api_sequence_regions.cpp) --------
  RegionModel* find_region(RegionHandle h, int* owner);
  RegionHandle pick_region(const TenantModel& t);
  Result runtime_create_result(uint32_t policy, uint64_t bytes, bool* may_oom) const;
  void create_region(TenantModel& t);
  void region_io(TenantModel& t);
  void free_region(TenantModel& t);
  void descriptor_slot(TenantModel& t);

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

}  // namespace megaring::fuzz::detail
