// SPDX-License-Identifier: Apache-2.0
// Internal: writing to megaring's log (megaring/log.hpp). log_enabled() is
// one relaxed load, so a disabled level costs no formatting; callers log
// lifecycle events only, never per slot.
#pragma once

#include <string>

#include "megaring/log.hpp"

namespace megaring::detail {

// Whether a message at `level` goes anywhere now.
bool log_enabled(LogLevel level) noexcept;
// Sends one message (no newline) at `level`, if enabled. Never throws.
// While a LogHold lives on this thread (or the thread is inside the user's
// callback), a message for the user's callback waits in a per-thread queue
// and is delivered when the outermost hold ends: a megaring call may log
// while it holds its own locks, and the callback may call megaring
// functions that take them. The MEGARING_DEBUG output runs no user code and
// is written at once.
void log_message(LogLevel level, const std::string& message) noexcept;

// Holds this thread's messages for the callback until the outermost hold
// ends (guarded() holds one for every public entry point; a destructor or a
// library thread that logs under a lock holds its own), then delivers them.
class LogHold {
 public:
  LogHold() noexcept;
  ~LogHold();
  LogHold(const LogHold&) = delete;
  LogHold& operator=(const LogHold&) = delete;
};

}  // namespace megaring::detail

// Formats `expr` (a std::string expression) only when `level` is enabled.
#define MR_LOG(level, expr)                                                        \
  do {                                                                             \
    if (::megaring::detail::log_enabled(level)) {                                  \
      try {                                                                        \
        ::megaring::detail::log_message(level, (expr));                            \
      } catch (...) { /* no memory to format: the message is lost, nothing else */ \
      }                                                                            \
    }                                                                              \
  } while (0)
