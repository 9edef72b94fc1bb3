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
void log_message(LogLevel level, const std::string& message) noexcept;

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
