// SPDX-License-Identifier: Apache-2.0
// megaring's log (megaring/log.hpp, support/log.hpp): the level, the
// MEGARING_DEBUG / MEGARING_DEBUG_FILE output and the user's callback.
#include "support/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace megaring {
namespace {

// Everything below is process-wide. The level is read on every log call
// site, so it is an atomic of its own; the rest changes under the mutex.
struct LogState {
  std::once_flag env_once;
  LogLevel env_level = LogLevel::kNone;  // MEGARING_DEBUG (set once, in env_once)
  std::string env_value;                 // for the "not understood" note
  bool env_known = true;
  std::mutex mutex;  // serialises output; guards what follows
  LogCallback callback = nullptr;
  void* user = nullptr;
  std::FILE* file = nullptr;  // MEGARING_DEBUG_FILE, or null: stderr
  bool file_tried = false;
};

// Never destroyed: a message logged from a static destructor still works.
LogState& state() {
  static LogState* s = new LogState;
  return *s;
}
// Relaxed: the level is a filter, ordering nothing; a message sent just as
// it changes goes to the old destination or the new one, under the mutex.
std::atomic<int> g_level{-1};  // -1: MEGARING_DEBUG not read yet
// Whether a callback is set. Relaxed: it only picks whether a message waits
// for the end of a hold; the delivery reads the callback under the mutex.
std::atomic<bool> g_has_callback{false};

// This thread's holds (LogHold) and the messages waiting for their end.
struct HeldMessage {
  LogLevel level;
  std::string text;
};
thread_local uint32_t t_hold_depth = 0;
thread_local bool t_delivering = false;  // inside deliver(): the mutex is ours
thread_local std::vector<HeldMessage> t_held;

// MEGARING_DEBUG_FILE with %h (host name) and %p (process id) replaced.
std::string debug_file_name(const char* pattern) {
  std::string out;
  for (const char* c = pattern; *c != '\0'; ++c) {
    if (c[0] == '%' && c[1] == 'h') {
      char host[256] = {};
      if (gethostname(host, sizeof(host) - 1) == 0) out += host;
      ++c;
    } else if (c[0] == '%' && c[1] == 'p') {
      out += std::to_string(static_cast<long>(getpid()));
      ++c;
    } else {
      out += *c;
    }
  }
  return out;
}

// The environment's destination; under the mutex.
std::FILE* env_output(LogState& s) {
  if (!s.file_tried) {
    s.file_tried = true;
    const char* pattern = std::getenv("MEGARING_DEBUG_FILE");
    if (pattern != nullptr && pattern[0] != '\0')
      s.file = std::fopen(debug_file_name(pattern).c_str(), "a");  // null: stderr
  }
  return s.file != nullptr ? s.file : stderr;
}

void read_environment() {
  LogState& s = state();
  std::call_once(s.env_once, [&s] {
    const char* value = std::getenv("MEGARING_DEBUG");
    s.env_level = parse_log_level(value, &s.env_known);
    if (value != nullptr) s.env_value = value;
    int expected = -1;  // a callback set meanwhile keeps its level
    g_level.compare_exchange_strong(expected, static_cast<int>(s.env_level),
                                    std::memory_order_relaxed);
    if (!s.env_known) {
      std::lock_guard<std::mutex> lock(s.mutex);
      std::fprintf(env_output(s),
                   "megaring %ld WARN MEGARING_DEBUG=%s not understood (NONE, WARN, INFO, TRACE): using WARN\n",
                   static_cast<long>(getpid()), s.env_value.c_str());
    }
  });
}

void write_line(std::FILE* out, LogLevel level, const char* message) {
  std::fprintf(out, "megaring %ld %s %s\n", static_cast<long>(getpid()), log_level_name(level),
               message);
  std::fflush(out);
}

// One message to the callback, or to MEGARING_DEBUG's output.
void deliver(LogLevel level, const std::string& message) noexcept {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  // Again under the mutex: set_log_callback may have changed it.
  if (static_cast<int>(level) > g_level.load(std::memory_order_relaxed)) return;
  if (s.callback != nullptr) {
    t_delivering = true;
    try {
      s.callback(level, message.c_str(), s.user);
    } catch (...) {  // the caller's exception must not leave a noexcept megaring call
    }
    t_delivering = false;
    return;
  }
  write_line(env_output(s), level, message.c_str());
}

// Delivers this thread's held messages, in order, those the callback causes
// included. Inside the callback it leaves them to the delivery under way.
void deliver_held() noexcept {
  if (t_delivering) return;
  while (!t_held.empty()) {
    std::vector<HeldMessage> batch;
    batch.swap(t_held);
    for (const HeldMessage& m : batch) deliver(m.level, m.text);
  }
}

}  // namespace

const char* log_level_name(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kNone: return "NONE";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kTrace: return "TRACE";
  }
  return "?";
}

LogLevel parse_log_level(const char* value, bool* known) noexcept {
  if (known != nullptr) *known = true;
  if (value == nullptr || value[0] == '\0') return LogLevel::kNone;
  const auto is = [value](const char* name) { return strcasecmp(value, name) == 0; };
  if (is("NONE")) return LogLevel::kNone;
  if (is("WARN")) return LogLevel::kWarn;
  if (is("INFO")) return LogLevel::kInfo;
  if (is("TRACE")) return LogLevel::kTrace;
  if (known != nullptr) *known = false;
  return LogLevel::kWarn;  // asked for output, in words we do not know
}

void set_log_callback(LogLevel level, LogCallback callback, void* user) noexcept {
  read_environment();
  LogState& s = state();
  const bool use = callback != nullptr && level != LogLevel::kNone;
  const auto set = [&] {
    s.callback = use ? callback : nullptr;
    s.user = use ? user : nullptr;
    g_has_callback.store(use, std::memory_order_relaxed);
    g_level.store(static_cast<int>(use ? level : s.env_level), std::memory_order_relaxed);
  };
  if (t_delivering) {  // from the callback, on the thread that holds the mutex
    set();
    return;
  }
  std::lock_guard<std::mutex> lock(s.mutex);  // no call of the old callback runs after this
  set();
}

namespace detail {

bool log_enabled(LogLevel level) noexcept {
  int current = g_level.load(std::memory_order_relaxed);
  if (current < 0) {
    read_environment();
    current = g_level.load(std::memory_order_relaxed);
  }
  return level != LogLevel::kNone && static_cast<int>(level) <= current;
}

void log_message(LogLevel level, const std::string& message) noexcept {
  if (!log_enabled(level)) return;
  // Inside the callback this thread holds the mutex: hold the message
  // whatever the destination (the callback may have just turned itself off).
  if (t_delivering || (t_hold_depth > 0 && g_has_callback.load(std::memory_order_relaxed))) {
    try {
      t_held.push_back(HeldMessage{level, message});
    } catch (...) {  // no memory: the message is lost, nothing else
    }
    return;
  }
  deliver(level, message);
  deliver_held();  // what the callback's own calls logged meanwhile
}

LogHold::LogHold() noexcept { ++t_hold_depth; }

LogHold::~LogHold() {
  if (--t_hold_depth == 0) deliver_held();
}

}  // namespace detail
}  // namespace megaring
