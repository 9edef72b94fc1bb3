// SPDX-License-Identifier: Apache-2.0
// megaring host API errors: one result enum for the whole API, runtime and
// tenants alike, with a string function (NCCL's ncclResult_t style) and a
// Status value that carries the code, a message and, for quota refusals, the
// amount and the limit it hit. No exception escapes the public API; every
// fallible call returns a Status.
//
// Which calls return which codes (besides kSuccess):
//   kInvalidArgument       any call: a bad config, null out-pointer, negative
//                          timeout, bad or stale ticket or handle, range out
//                          of bounds, a mode that is off (timeline,
//                          consumer_costs), an empty TenantHandle, a buffer
//                          that is not the tenant's, a tenant batch over
//                          max_outstanding_slots (value() = count, limit() = cap)
//   kRingFull              publish*, call (OnFull::kFail, or a tenant publish
//                          with timeout 0); open_producer: every ring taken
//   kTimeout               wait, wait_done, call, publish* waiting for ring
//                          space (tenant publishes too), TenantHandle::wait;
//                          shutdown (it then aborts), abort (consumer did not
//                          stop); unregister_buffer (the memory is still in use)
//   kNoDevice              Runtime::create: kCuda without a usable GPU
//   kCudaError             create, and any call once the consumer died
//   kShutdown              publish*, open_producer, alloc_buffer,
//                          register_buffer and Producer calls once the
//                          runtime is stopping or gone; tenant publishes
//                          then, or once the registry closed
//   kAborted               publish*, open_producer after abort(); wait_done of
//                          an aborted ticket
//   kOutOfMemory           any call: a host allocation failed; alloc_buffer,
//                          register_buffer: the buffer table is full
//   kInternal              any call: a broken invariant (a bug in megaring)
//   kIoError               write_timeline_trace
//   kRevoked               every TenantHandle call and register/unregister
//                          once the tenant was unregistered, its registry
//                          destroyed or its runtime destroyed
//   kOpcodeOutOfRange      global_opcode, tenant publish*, register_tenant
//                          and set_grants (a grant outside the window)
//   kBackpressure          tenant publish*
//   kStagingBackpressure   reserve_staging_bytes
//   kResidentBackpressure  reserve_resident_handles, tenant alloc_buffer and
//                          register_buffer
//   kResourceUnderflow     release_staging_bytes, release_resident_handles,
//                          note_drained
//   kQuiesceTimeout        TenantHandle::quiesce
//   kRegistryFull          TenantRegistry::register_tenant
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace megaring {

// New codes go at the end: the numbers of existing ones never change.
enum class Result : int {
  kSuccess = 0,
  kInvalidArgument,  // bad config, bad ticket, bad handle, out-of-bounds range
  kRingFull,         // back-pressure: no free position and the caller chose not to wait
  kTimeout,          // a bounded wait ran out
  kNoDevice,         // CUDA backend asked for, but no usable GPU or driver
  kCudaError,        // a CUDA call failed; the message names it
  kShutdown,         // the runtime is draining or stopped: no new work
  kAborted,          // the runtime was aborted; the ticket never ran
  kOutOfMemory,
  kInternal,         // a broken invariant: a bug in megaring
  kIoError,          // a file could not be written (write_timeline_trace)
  // Tenants (megaring/tenant.hpp).
  kRevoked,               // the tenant was unregistered (or its registry destroyed)
  kOpcodeOutOfRange,      // local opcode >= opcode_cap: value() = opcode, limit() = cap
  kBackpressure,          // outstanding slots at the quota: value() = outstanding, limit() = cap
  kStagingBackpressure,   // staging bytes over the quota: value() = in use, limit() = quota
  kResidentBackpressure,  // resident handles over the quota: value() = in use, limit() = quota
  kResourceUnderflow,     // released / drained more than reserved / published:
                          // value() = what there is, limit() = what was asked
  kQuiesceTimeout,        // the bound passed with slots outstanding: value() = outstanding
  kRegistryFull,          // no tenant id or opcode window left
  // Control plane.
  kInUse,  // unregister_buffer(..., WhileInUse::kFail): slots published before may still use it
};

// Short stable name of a result, e.g. "ring full".
const char* result_string(Result result) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // success
  Status(Result code, std::string message, uint64_t value = 0, uint64_t limit = 0)
      : code_(code), message_(std::move(message)), value_(value), limit_(limit) {}

  static Status ok() noexcept { return {}; }

  bool is_ok() const noexcept { return code_ == Result::kSuccess; }
  explicit operator bool() const noexcept { return is_ok(); }
  Result code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // The amount and the limit a refusal hit (see Result); 0 where none applies.
  uint64_t value() const noexcept { return value_; }
  uint64_t limit() const noexcept { return limit_; }
  // "<result>: <message>" for logs.
  std::string to_string() const;

 private:
  Result code_ = Result::kSuccess;
  std::string message_;
  uint64_t value_ = 0;
  uint64_t limit_ = 0;
};

}  // namespace megaring
