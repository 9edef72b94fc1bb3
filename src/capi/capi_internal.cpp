// SPDX-License-Identifier: Apache-2.0
// The C API's shared machinery (capi_internal.hpp): last error, checks and
// conversions between the C structs and the C++ ones.
#include "capi/capi_internal.hpp"

#include <cstring>
#include <string>

namespace megaring::capi {
namespace {

struct LastError {
  std::string message;
  uint64_t value = 0;
  uint64_t limit = 0;
};
thread_local LastError t_last_error;

uint32_t first_word(const void* p) {
  uint32_t word = 0;
  std::memcpy(&word, p, sizeof word);
  return word;
}

}  // namespace

mr_result_t finish(const char* function, const Status& status) noexcept {
  if (status.is_ok()) return MR_RESULT_SUCCESS;
  LastError& last = t_last_error;
  last.value = status.value();
  last.limit = status.limit();
  try {
    last.message = std::string(function) + ": " + status.to_string();
  } catch (...) {  // no memory for the message: keep the code, say so
    last.message.clear();
  }
  return static_cast<mr_result_t>(status.code());
}

const char* last_error_message() noexcept { return t_last_error.message.c_str(); }
void last_error_values(uint64_t* value, uint64_t* limit) noexcept {
  if (value != nullptr) *value = t_last_error.value;
  if (limit != nullptr) *limit = t_last_error.limit;
}

Status null_argument(const char* name) {
  return Status(Result::kInvalidArgument, std::string(name) + " is NULL");
}

Status to_request(const mr_slot_request_t& in, SlotRequest* out) {
  if (in.reserved != 0)
    return Status(Result::kInvalidArgument, "mr_slot_request_t.reserved must be 0");
  out->opcode = in.opcode;
  out->tenant = in.tenant;
  out->flags = in.flags;
  for (uint32_t i = 0; i < MR_SLOT_ARGS; ++i) out->args[i] = in.args[i];
  return Status::ok();
}

Status to_requests(const mr_slot_request_t* in, uint32_t count, uint32_t capacity,
                   std::vector<SlotRequest>* out) {
  if (count == 0) return Status(Result::kInvalidArgument, "a batch needs count > 0");
  if (count > capacity)
    return Status(Result::kInvalidArgument, "batch of " + std::to_string(count) +
                                                " slots exceeds the ring capacity " +
                                                std::to_string(capacity));
  out->resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    Status st = to_request(in[i], &(*out)[i]);
    if (!st) return Status(st.code(), "request " + std::to_string(i) + ": " + st.message());
  }
  return Status::ok();
}

Status check_flags(uint32_t flags, uint32_t allowed) {
  if ((flags & ~allowed) != 0)
    return Status(Result::kInvalidArgument,
                  "unknown publish flags " + std::to_string(flags & ~allowed));
  return Status::ok();
}

PublishOptions publish_options(uint32_t flags, int64_t timeout_ns) {
  PublishOptions options;
  options.keep_result = (flags & MR_PUBLISH_KEEP_RESULT) != 0;
  options.on_full = (flags & MR_PUBLISH_FAIL_IF_FULL) != 0 ? OnFull::kFail : OnFull::kWait;
  options.timeout = to_duration(timeout_ns);
  return options;
}

Status to_ticket(const mr_ticket_t& in, Ticket* out) {
  if (in.kept > 1 || in.reserved != 0)
    return Status(Result::kInvalidArgument,
                  "mr_ticket_t: kept must be 0 or 1 and reserved 0 (use the ticket as returned)");
  out->value = in.value;
  out->kept = in.kept != 0;
  return Status::ok();
}

mr_ticket_t from_ticket(const Ticket& ticket) noexcept {
  mr_ticket_t out{};
  out.value = ticket.value;
  out.kept = ticket.kept ? 1u : 0u;
  return out;
}

mr_completion_t from_completion(const Completion& completion) noexcept {
  mr_completion_t out{};
  out.ticket = completion.ticket;
  out.result = completion.result;
  out.status = completion.status;
  out.fault = completion.fault;
  return out;
}

namespace {
// No version of any sized struct comes near this: a larger struct_size is
// garbage (a struct never initialised), and reading or clearing that many
// of the caller's bytes would run far past the struct.
constexpr uint32_t kMaxStructSize = 4096;

Status refuse_oversized(uint32_t size, const char* type) {
  return Status(Result::kInvalidArgument,
                std::string(type) + ".struct_size " + std::to_string(size) +
                    " is past any version's (at most " + std::to_string(kMaxStructSize) +
                    "): set it to sizeof the struct");
}
}  // namespace

Status read_sized_config(const void* in, uint32_t min_size, uint32_t known_size,
                         uint32_t known_version, const char* type, void* out) {
  const uint32_t size = first_word(in);
  uint32_t version = 0;
  std::memcpy(&version, static_cast<const unsigned char*>(in) + sizeof(uint32_t), sizeof version);
  const std::string name(type);
  if (size < min_size)
    return Status(Result::kInvalidArgument,
                  name + ".struct_size " + std::to_string(size) + " is below the first version's " +
                      std::to_string(min_size) + " (initialise it with the _init call)");
  if (size > kMaxStructSize) return refuse_oversized(size, type);
  if (version == 0 || version > known_version)
    return Status(Result::kInvalidArgument, name + ".struct_version " + std::to_string(version) +
                                                " is not one this library knows (1.." +
                                                std::to_string(known_version) + ")");
  // Larger than this library knows: a newer caller's fields must all be off.
  const auto* bytes = static_cast<const unsigned char*>(in);
  for (uint64_t i = known_size; i < size; ++i)
    if (bytes[i] != 0)
      return Status(Result::kInvalidArgument,
                    name + ": byte " + std::to_string(i) + " is set, beyond the " +
                        std::to_string(known_size) + " bytes this library (" +
                        MEGARING_VERSION_STRING + ") knows");
  std::memcpy(out, in, size < known_size ? size : known_size);
  return Status::ok();
}

namespace {
Status copy_sized(unsigned char* out, uint32_t size, const void* full, uint32_t min_size,
                  uint32_t known_size, const char* type) {
  if (size < min_size)
    return Status(Result::kInvalidArgument,
                  std::string(type) + ".struct_size " + std::to_string(size) +
                      " is below the first version's " + std::to_string(min_size) +
                      " (set it to sizeof the struct)");
  if (size > kMaxStructSize) return refuse_oversized(size, type);
  const uint32_t copied = size < known_size ? size : known_size;
  std::memcpy(out + sizeof(uint32_t), static_cast<const unsigned char*>(full) + sizeof(uint32_t),
              copied - sizeof(uint32_t));
  std::memset(out + copied, 0, size - copied);
  std::memcpy(out, &size, sizeof size);
  return Status::ok();
}
}  // namespace

Status write_sized(void* out, const void* full, uint32_t min_size, uint32_t known_size,
                   const char* type) {
  return copy_sized(static_cast<unsigned char*>(out), first_word(out), full, min_size, known_size,
                    type);
}

Status init_sized_config(void* out, uint32_t struct_size, const void* defaults,
                         uint32_t min_size, uint32_t known_size, const char* type) {
  return copy_sized(static_cast<unsigned char*>(out), struct_size, defaults, min_size, known_size,
                    type);
}

Status to_grants(uint32_t mode, const uint32_t* opcodes, uint32_t count, const char* list_name,
                 OpcodeGrants* out) {
  if (mode == MR_GRANTS_ALL) {
    if (count != 0)
      return Status(Result::kInvalidArgument, "MR_GRANTS_ALL takes no opcode list (count " +
                                                  std::to_string(count) + ")");
    *out = OpcodeGrants::everything();
    return Status::ok();
  }
  if (mode != MR_GRANTS_ONLY)
    return Status(Result::kInvalidArgument,
                  "grants mode " + std::to_string(mode) + " is not MR_GRANTS_ALL or MR_GRANTS_ONLY");
  if (count > MR_GRANTS_MAX_LIST)
    return Status(Result::kInvalidArgument, "a grant list of " + std::to_string(count) +
                                                " opcodes exceeds MR_GRANTS_MAX_LIST");
  if (count > 0 && opcodes == nullptr) return null_argument(list_name);
  std::vector<uint32_t> list(opcodes, opcodes + count);
  *out = OpcodeGrants::only(std::move(list));
  return Status::ok();
}

Status read_versioned_config(const void* in, const uint32_t* version_sizes, uint32_t versions,
                             const char* type, void* out) {
  const uint32_t size = first_word(in);
  uint32_t version = 0;
  std::memcpy(&version, static_cast<const unsigned char*>(in) + sizeof(uint32_t), sizeof version);
  uint32_t version_size = version_sizes[versions - 1];  // a bad version is refused below
  if (version >= 1 && version <= versions) {
    version_size = version_sizes[version - 1];
    if (size >= version_sizes[0] && size < version_size)
      return Status(Result::kInvalidArgument,
                    std::string(type) + ".struct_version " + std::to_string(version) +
                        " needs struct_size >= " + std::to_string(version_size) + ", not " +
                        std::to_string(size));
  }
  return read_sized_config(in, version_sizes[0], version_size, versions, type, out);
}

Status init_versioned_config(void* out, uint32_t struct_size, const void* defaults,
                             const uint32_t* version_sizes, uint32_t versions, const char* type) {
  uint32_t version = 1;
  while (version < versions && version_sizes[version] <= struct_size) ++version;
  Status st = init_sized_config(out, struct_size, defaults, version_sizes[0],
                                version_sizes[version - 1], type);
  if (st)
    std::memcpy(static_cast<unsigned char*>(out) + sizeof(uint32_t), &version, sizeof version);
  return st;
}

}  // namespace megaring::capi
