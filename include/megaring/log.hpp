// SPDX-License-Identifier: Apache-2.0
// megaring's log: lifecycle events (create, shutdown, abort, a consumer that
// died, wait timeouts, tenant registration), never anything per slot.
// Silent by default. As NCCL_DEBUG does for NCCL, the MEGARING_DEBUG
// environment variable turns it on, read once, at the first message:
//   unset, empty or NONE   nothing
//   WARN                   what went wrong (consumer death, timeouts, aborts)
//   INFO                   WARN and the lifecycle (create with its config,
//                          shutdown, tenants registered and unregistered)
//   TRACE                  INFO and the rarer internals
// (case does not matter; any other value means WARN, and says so once).
// Lines go to stderr as "megaring <pid> <LEVEL> <message>", or appended to
// the file MEGARING_DEBUG_FILE names (%h: the host name, %p: the process id,
// as NCCL_DEBUG_FILE), falling back to stderr if it cannot be opened.
//
// set_log_callback() sends messages to a function of yours instead, at the
// level you give it, whatever MEGARING_DEBUG says.
#pragma once

namespace megaring {

enum class LogLevel : int {
  kNone = 0,
  kWarn = 1,
  kInfo = 2,
  kTrace = 3,
};
// "NONE", "WARN", "INFO", "TRACE".
const char* log_level_name(LogLevel level) noexcept;

// What a MEGARING_DEBUG value means (null, empty and "NONE": kNone; an
// unknown value: kWarn). `known`, if not null, says whether the value was
// one of the names.
LogLevel parse_log_level(const char* value, bool* known = nullptr) noexcept;

// `message` is one line without its newline, valid during the call.
using LogCallback = void (*)(LogLevel level, const char* message, void* user);

// Messages at `level` and more severe go to `callback(level, message,
// user)` from now on. Calls are serialised (one message at a time). A
// message a megaring call logs reaches the callback on the calling thread
// when that call returns (the outermost one, if it called others), never
// while megaring holds a lock of its own: the callback may call any megaring
// function, set_log_callback included (messages those calls log follow once
// it returns). `callback` null (or level kNone with a callback) goes back to
// MEGARING_DEBUG's output, which is written at once. Returns once no call of
// the previous callback runs (from inside the callback: at once).
void set_log_callback(LogLevel level, LogCallback callback, void* user = nullptr) noexcept;

}  // namespace megaring
