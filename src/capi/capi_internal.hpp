// SPDX-License-Identifier: Apache-2.0
// Internal: what the C API's entry points (src/capi/*.cpp) share: the
// handles behind the opaque C types, the one guard every entry point runs
// its body in (no exception crosses the C ABI; a failure is recorded as this
// thread's last error), and the conversions between the C structs and the
// C++ ones, each checking what the caller passed.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "megaring/megaring.h"
#include "megaring/producer.hpp"
#include "megaring/runtime.hpp"
#include "megaring/tenant.hpp"
#include "support/api_guard.hpp"

struct mr_runtime_s {
  std::unique_ptr<megaring::Runtime> runtime;
};
struct mr_producer_s {
  std::unique_ptr<megaring::Producer> producer;
  uint32_t capacity = 0;  // the runtime's ring capacity: a batch never exceeds it
};
struct mr_registry_s {
  std::unique_ptr<megaring::TenantRegistry> registry;
  uint32_t capacity = 0;
};
struct mr_tenant_s {
  megaring::TenantHandle handle;
  uint32_t capacity = 0;
};

namespace megaring::capi {

// Records a failed `status` as this thread's last error ("<function>:
// <result>: <message>", value, limit) and returns its code.
mr_result_t finish(const char* function, const Status& status) noexcept;

// Every entry point: runs `body` (returning a Status) under the API's one
// exception guard, then finish().
template <class Body>
mr_result_t entry(const char* function, Body&& body) noexcept {
  return finish(function, detail::guarded(std::forward<Body>(body)));
}

// This thread's last failure (mr_last_error, mr_last_error_values).
const char* last_error_message() noexcept;
void last_error_values(uint64_t* value, uint64_t* limit) noexcept;

// kInvalidArgument "<name> is NULL".
Status null_argument(const char* name);
#define MR_CAPI_REQUIRE(pointer) \
  if ((pointer) == nullptr) return ::megaring::capi::null_argument(#pointer)

// Timeouts: Nanoseconds(ns); the C++ calls refuse a negative one.
inline Nanoseconds to_duration(int64_t ns) noexcept { return Nanoseconds(ns); }

// A request's fields; kInvalidArgument when `reserved` is not 0.
Status to_request(const mr_slot_request_t& in, SlotRequest* out);
// `count` requests, refused before anything is allocated when count is 0 or
// above `capacity` (no batch can be larger than the ring).
Status to_requests(const mr_slot_request_t* in, uint32_t count, uint32_t capacity,
                   std::vector<SlotRequest>* out);
// Publish flags: kInvalidArgument for a bit outside `allowed`.
Status check_flags(uint32_t flags, uint32_t allowed);
PublishOptions publish_options(uint32_t flags, int64_t timeout_ns);

// A ticket from the caller: kInvalidArgument unless kept is 0 or 1 and
// reserved is 0.
Status to_ticket(const mr_ticket_t& in, Ticket* out);
mr_ticket_t from_ticket(const Ticket& ticket) noexcept;
mr_completion_t from_completion(const Completion& completion) noexcept;

// The bodies of mr_runtime_* and mr_producer_* publish, publish_batch,
// wait_done and release: every argument checked, then the owner's call
// (Runtime and Producer have the same ones), the ticket copied out on
// success.
inline constexpr uint32_t kPublishFlags = MR_PUBLISH_KEEP_RESULT | MR_PUBLISH_FAIL_IF_FULL;

template <class Owner>
Status publish_on(Owner& owner, const mr_slot_request_t& request, uint32_t flags,
                  int64_t timeout_ns, mr_ticket_t* ticket) {
  SlotRequest cpp;
  Status st = to_request(request, &cpp);
  if (!st) return st;
  if (!(st = check_flags(flags, kPublishFlags))) return st;
  Ticket t;
  st = owner.publish(cpp, &t, publish_options(flags, timeout_ns));
  if (st) *ticket = from_ticket(t);
  return st;
}

// `capacity`: the owner's ring's, which no batch may exceed.
template <class Owner>
Status publish_batch_on(Owner& owner, uint32_t capacity, const mr_slot_request_t* requests,
                        uint32_t count, uint32_t flags, int64_t timeout_ns, mr_ticket_t* first) {
  Status st = check_flags(flags, kPublishFlags);
  if (!st) return st;
  std::vector<SlotRequest> cpp;
  if (!(st = to_requests(requests, count, capacity, &cpp))) return st;
  Ticket t;
  st = owner.publish_batch(cpp.data(), count, &t, publish_options(flags, timeout_ns));
  if (st) *first = from_ticket(t);
  return st;
}

template <class Owner>
Status wait_done_on(Owner& owner, const mr_ticket_t& ticket, int64_t timeout_ns) {
  Ticket t;
  Status st = to_ticket(ticket, &t);
  if (!st) return st;
  return owner.wait_done(t, to_duration(timeout_ns));
}

template <class Owner>
Status release_on(Owner& owner, const mr_ticket_t& ticket) {
  Ticket t;
  Status st = to_ticket(ticket, &t);
  if (!st) return st;
  return owner.release(t);
}

// The body of mr_runtime_wait, mr_producer_wait and mr_tenant_wait: the
// ticket checked, the owner's wait, the completion copied out on success.
template <class Owner>
Status wait_on(Owner& owner, const mr_ticket_t& ticket, int64_t timeout_ns,
               mr_completion_t* completion) {
  Ticket t;
  Status st = to_ticket(ticket, &t);
  if (!st) return st;
  Completion c;
  st = owner.wait(t, &c, to_duration(timeout_ns));
  if (st) *completion = from_completion(c);
  return st;
}

// Sized structs: struct_size is the first word (configs: struct_version
// the second). `min_size` is the first version's size, `known_size` this
// library's; a caller's size between them is an older caller's.
//
// A config from the caller: refuses a size below min_size, a version of 0 or
// above `known_version`, and a larger size whose bytes beyond known_size are
// not all zero (a newer caller's fields this library cannot honour); else
// copies min(size, known_size) bytes over `*out`, which holds the defaults.
Status read_sized_config(const void* in, uint32_t min_size, uint32_t known_size,
                         uint32_t known_version, const char* type, void* out);
// Fills a caller's struct (its struct_size set by the caller): refuses a
// size below min_size; copies min(size, known_size) bytes of `full` (the
// caller's struct_size kept) and zeroes the caller's bytes beyond known_size.
Status write_sized(void* out, const void* full, uint32_t min_size, uint32_t known_size,
                   const char* type);
// A config's defaults for a caller's struct of `struct_size` bytes: as
// write_sized, with struct_size written too (fields this library does not
// know are zero, which every version defines as "off" / "default").
Status init_sized_config(void* out, uint32_t struct_size, const void* defaults,
                         uint32_t min_size, uint32_t known_size, const char* type);

// Opcode grants from the caller (MR_GRANTS_*, a list of `count` local
// opcodes): kInvalidArgument for another mode, a list with MR_GRANTS_ALL, a
// NULL list with count > 0 (named `list_name`), or count > MR_GRANTS_MAX_LIST.
// The C++ call checks the opcodes themselves.
Status to_grants(uint32_t mode, const uint32_t* opcodes, uint32_t count, const char* list_name,
                 OpcodeGrants* out);

// Versioned configs: version v (1-based) is version_sizes[v - 1] bytes,
// each a prefix of the next. A caller's struct claims a version: it must be
// at least that version's size, and is read as read_sized_config reads a
// struct of that size (bytes beyond it must be zero: fields its version
// does not have), so an older caller's missing fields keep the defaults.
Status read_versioned_config(const void* in, const uint32_t* version_sizes, uint32_t versions,
                             const char* type, void* out);
// init_sized_config for a versioned config: the newest version that fits in
// struct_size, written into struct_version.
Status init_versioned_config(void* out, uint32_t struct_size, const void* defaults,
                             const uint32_t* version_sizes, uint32_t versions, const char* type);

}  // namespace megaring::capi
