// SPDX-License-Identifier: Apache-2.0
// The API-sequence driver's steps on a tenant's resources (see
// api_sequence_driver.hpp): staging and resident reservations, buffers
// (alloc, free, host copies), opcode grants and global opcodes.
#include <algorithm>

#include "api_sequence_driver.hpp"

namespace megaring::fuzz::detail {

void Driver::staging(TenantModel& t, bool reserve) {
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

void Driver::resident(TenantModel& t, bool reserve) {
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

void Driver::alloc_buffer(TenantModel& t) {
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

void Driver::free_buffer(TenantModel& t) {
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

void Driver::copy_buffer(TenantModel& t) {
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

void Driver::global_opcode(TenantModel& t) {
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
void Driver::set_grants(TenantModel& t) {
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
  // A change the checks allow may still time out: an executor that does not
  // reach a point between slots within the control bound (a DELAY slot, a
  // loaded machine) cancels it, the tables unchanged (runtime.hpp,
  // "Control operations").
  if (want == Result::kSuccess)
    expect(st, {Result::kSuccess, Result::kTimeout});
  else
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

}  // namespace megaring::fuzz::detail
