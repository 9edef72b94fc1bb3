// SPDX-License-Identifier: Apache-2.0
// The API-sequence driver's staging-region steps (see api_sequence_driver.hpp):
// create, write / append / seal / read and free, by a tenant or the runtime,
// with the model's handles, others' handles and hostile ones; and descriptor
// slots (STAGE_TO_BUFFER, BUFFER_TO_STAGING) checked against slot_abi.h's
// fault order and the bytes moved.
#include <algorithm>
#include <cstring>
#include <iterator>

#include "api_sequence_driver.hpp"

namespace megaring::fuzz::detail {

// A region of the model by handle: a live tenant's (its index in *owner),
// the runtime's (*owner = -1), or nullptr.
RegionModel* Driver::find_region(RegionHandle h, int* owner) {
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
RegionHandle Driver::pick_region(const TenantModel& t) {
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
Result Driver::runtime_create_result(uint32_t policy, uint64_t bytes, bool* may_oom) const {
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
void Driver::create_region(TenantModel& t) {
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
void Driver::region_io(TenantModel& t) {
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
void Driver::free_region(TenantModel& t) {
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
void Driver::descriptor_slot(TenantModel& t) {
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

}  // namespace megaring::fuzz::detail
