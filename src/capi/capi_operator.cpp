// SPDX-License-Identifier: Apache-2.0
// C API: the operator's view (megaring/megaring.h, "The operator's view"):
// health, the state dump and the metrics as text, the log callback.
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "capi/capi_internal.hpp"
#include "megaring/log.hpp"

using megaring::Status;
using megaring::capi::entry;

namespace {

constexpr uint32_t kHealthV1Size = 304;
static_assert(sizeof(mr_health_t) == kHealthV1Size, "mr_health_t v1 is 304 bytes");
static_assert(static_cast<int>(megaring::RuntimeState::kWedged) == MR_RUNTIME_STATE_WEDGED &&
                  static_cast<int>(megaring::RuntimeState::kAborted) == MR_RUNTIME_STATE_ABORTED &&
                  static_cast<int>(megaring::AgeSource::kObserved) == MR_AGE_SOURCE_OBSERVED &&
                  static_cast<int>(megaring::AgeSource::kRecorded) == MR_AGE_SOURCE_RECORDED &&
                  static_cast<int>(megaring::LogLevel::kTrace) == MR_LOG_TRACE,
              "the MR_* numbers are the C++ enums'");

// Copies `text` into the caller's buffer as the header says.
Status write_text(const std::string& text, char* buffer, size_t capacity, size_t* length) {
  if (buffer == nullptr && capacity != 0)
    return Status(megaring::Result::kInvalidArgument, "buffer is NULL with a capacity");
  if (length != nullptr) *length = text.size();
  if (capacity == 0) return Status::ok();
  const size_t n = text.size() < capacity - 1 ? text.size() : capacity - 1;
  std::memcpy(buffer, text.data(), n);
  buffer[n] = '\0';
  return Status::ok();
}

// The C callback behind a C++ one: the user's function and pointer, never
// changed once made. A delivery on one thread may still use the target
// another thread just replaced, and a callback may replace its own target
// (set_log_callback returns at once there), so no target is ever freed:
// each distinct (function, pointer) pair is made once and kept.
struct CLogTarget {
  mr_log_callback_t callback = nullptr;
  void* user = nullptr;
};

// The target for (callback, user). A leaf lock: held only to look up or
// append, never while the log runs anything (which would order it against
// the log's own lock in both directions: a callback may call
// mr_set_log_callback).
const CLogTarget* log_target(mr_log_callback_t callback, void* user) {
  static std::mutex mutex;
  static auto* const targets = new std::vector<std::unique_ptr<CLogTarget>>;  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);
  for (const auto& t : *targets)
    if (t->callback == callback && t->user == user) return t.get();
  targets->push_back(std::make_unique<CLogTarget>(CLogTarget{callback, user}));
  return targets->back().get();
}

void forward_log(megaring::LogLevel level, const char* message, void* user) {
  const auto* target = static_cast<const CLogTarget*>(user);
  target->callback(static_cast<int32_t>(level), message, target->user);
}

}  // namespace

extern "C" {

mr_result_t mr_runtime_health(mr_runtime_t* runtime, mr_health_t* health) {
  return entry("mr_runtime_health", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    MR_CAPI_REQUIRE(health);
    megaring::Health h;
    Status st = runtime->runtime->health(&h);
    if (!st) return st;
    mr_health_t full{};
    full.state = static_cast<int32_t>(h.state);
    full.consumer_alive = h.consumer_alive ? 1u : 0u;
    full.heartbeat_age_source = static_cast<int32_t>(h.heartbeat_age_source);
    full.heartbeat_ns = h.heartbeat_ns;
    full.heartbeat_age_ns = h.heartbeat_age_ns;
    full.last_error = static_cast<int32_t>(h.last_error.code());
    full.last_error_age_ns = h.last_error_age_ns;
    const std::string& message = h.last_error.message();
    const size_t n = message.size() < sizeof(full.last_error_message) - 1
                         ? message.size()
                         : sizeof(full.last_error_message) - 1;
    std::memcpy(full.last_error_message, message.data(), n);
    full.last_error_message[n] = '\0';
    return megaring::capi::write_sized(health, &full, kHealthV1Size, sizeof full, "mr_health_t");
  });
}

mr_result_t mr_runtime_dump_state(mr_runtime_t* runtime, char* buffer, size_t capacity,
                                  size_t* length) {
  return entry("mr_runtime_dump_state", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    std::string text;
    Status st = runtime->runtime->dump_state(&text);
    if (!st) return st;
    return write_text(text, buffer, capacity, length);
  });
}

mr_result_t mr_runtime_metrics_text(mr_runtime_t* runtime, char* buffer, size_t capacity,
                                    size_t* length) {
  return entry("mr_runtime_metrics_text", [&]() -> Status {
    MR_CAPI_REQUIRE(runtime);
    std::string text;
    Status st = runtime->runtime->metrics_text(&text);
    if (!st) return st;
    return write_text(text, buffer, capacity, length);
  });
}

mr_result_t mr_registry_metrics_text(mr_registry_t* registry, char* buffer, size_t capacity,
                                     size_t* length) {
  return entry("mr_registry_metrics_text", [&]() -> Status {
    MR_CAPI_REQUIRE(registry);
    std::string text;
    Status st = registry->registry->metrics_text(&text);
    if (!st) return st;
    return write_text(text, buffer, capacity, length);
  });
}

mr_result_t mr_set_log_callback(int32_t level, mr_log_callback_t callback, void* user) {
  return entry("mr_set_log_callback", [&]() -> Status {
    if (level < MR_LOG_NONE || level > MR_LOG_TRACE)
      return Status(megaring::Result::kInvalidArgument, "level is not an MR_LOG_* value");
    if (callback == nullptr || level == MR_LOG_NONE) {
      megaring::set_log_callback(megaring::LogLevel::kNone, nullptr);
      return Status::ok();
    }
    megaring::set_log_callback(static_cast<megaring::LogLevel>(level), &forward_log,
                               const_cast<CLogTarget*>(log_target(callback, user)));
    return Status::ok();
  });
}

}  // extern "C"
