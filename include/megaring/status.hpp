// megaring host API errors: one result enum with a string function (NCCL's
// ncclResult_t style) and a Status value that carries the code and a message.
// No exception escapes the public API; every fallible call returns a Status.
#pragma once

#include <string>
#include <utility>

namespace megaring {

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
};

// Short stable name of a result, e.g. "ring full".
const char* result_string(Result result) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // success
  Status(Result code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return {}; }

  bool is_ok() const noexcept { return code_ == Result::kSuccess; }
  explicit operator bool() const noexcept { return is_ok(); }
  Result code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // "<result>: <message>" for logs.
  std::string to_string() const;

 private:
  Result code_ = Result::kSuccess;
  std::string message_;
};

}  // namespace megaring
