// SPDX-License-Identifier: Apache-2.0
// The test side of the NVTX recorder: the `Nvtx` fixture (checks that NVTX
// loaded libmegaring_nvtx_recorder.so through NVTX_INJECTION64_PATH, binds
// its query functions, resets it) and the record read back as C++ values:
// events, their extended payloads, the payload schemas registered. Used by
// tests/test_nvtx.cpp and tests/test_nvtx_payload.cpp.
#pragma once

#include <dlfcn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <nvtx3/nvtx3.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "backend_fixture.hpp"
#include "nvtx_injection/recorder.h"

namespace nvtx_test {

constexpr const char* kInjectionVar = "NVTX_INJECTION64_PATH";
constexpr const char* kDomain = "megaring";

inline uint64_t this_tid() { return static_cast<uint64_t>(::syscall(SYS_gettid)); }

// The recorder's query functions, from the library NVTX loaded.
struct Recorder {
  mr_nvtx_init_count_fn init_count = nullptr;
  mr_nvtx_reset_fn reset = nullptr;
  mr_nvtx_count_fn count = nullptr;
  mr_nvtx_domain_creates_fn domain_creates = nullptr;
  mr_nvtx_open_ranges_fn open_ranges = nullptr;
  mr_nvtx_event_count_fn event_count = nullptr;
  mr_nvtx_event_fn event = nullptr;
  mr_nvtx_payload_init_count_fn payload_init_count = nullptr;
  mr_nvtx_schema_count_fn schema_count = nullptr;
  mr_nvtx_schema_fn schema = nullptr;
  mr_nvtx_schema_entry_fn schema_entry = nullptr;
  mr_nvtx_event_payload_count_fn event_payload_count = nullptr;
  mr_nvtx_event_payload_fn event_payload = nullptr;

  struct Payload {
    uint64_t schema_id = 0;
    bool schema_registered = false;
    size_t size = 0;
    std::vector<uint8_t> bytes;
  };
  struct Event {
    std::string domain, message;
    int kind = 0;
    int message_type = 0;
    uint64_t tid = 0;
    std::vector<Payload> payloads;
  };
  std::vector<Event> events() const {
    std::vector<Event> out;
    const size_t n = event_count();
    for (size_t i = 0; i < n; ++i) {
      const char* d = nullptr;
      const char* m = nullptr;
      Event e;
      if (!event(i, &d, &m, &e.kind, &e.message_type, &e.tid)) break;
      e.domain = d;
      e.message = m;
      const size_t payloads = event_payload_count(i);
      for (size_t p = 0; p < payloads; ++p) {
        Payload pl;
        int registered = 0;
        uint8_t buffer[4096];
        pl.size = event_payload(i, p, &pl.schema_id, &registered, buffer, sizeof(buffer));
        pl.schema_registered = registered != 0;
        pl.bytes.assign(buffer, buffer + std::min(pl.size, sizeof(buffer)));
        e.payloads.push_back(std::move(pl));
      }
      out.push_back(std::move(e));
    }
    return out;
  }

  struct SchemaEntry {
    std::string name;
    uint64_t type = 0, flags = 0, offset = 0;
  };
  struct Schema {
    std::string domain, name;
    uint64_t id = 0, type = 0;
    size_t static_size = 0;
    std::vector<SchemaEntry> entries;
  };
  // Every registration since the library was loaded, oldest first.
  std::vector<Schema> schemas() const {
    std::vector<Schema> out;
    const size_t n = schema_count();
    for (size_t i = 0; i < n; ++i) {
      const char* d = nullptr;
      const char* name = nullptr;
      Schema s;
      size_t entries = 0;
      if (!schema(i, &d, &name, &s.id, &s.type, &s.static_size, &entries)) break;
      s.domain = d;
      s.name = name;
      for (size_t e = 0; e < entries; ++e) {
        const char* en = nullptr;
        SchemaEntry entry;
        if (!schema_entry(i, e, &en, &entry.type, &entry.flags, &entry.offset)) break;
        entry.name = en;
        s.entries.push_back(std::move(entry));
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  // Ranges opened (push or start) / closed (pop or end) named `message` in `domain`.
  size_t opened(const char* domain, const char* message) const {
    return count(domain, message, MR_NVTX_PUSH) + count(domain, message, MR_NVTX_START);
  }
  size_t closed(const char* domain, const char* message) const {
    return count(domain, message, MR_NVTX_POP) + count(domain, message, MR_NVTX_END);
  }
};

template <class Fn>
void load_symbol(void* handle, const char* name, Fn* out) {
  *out = reinterpret_cast<Fn>(dlsym(handle, name));
  ASSERT_NE(*out, nullptr) << "recorder library lacks " << name << ": " << dlerror();
}

// Everything recorded, per (domain, message): "opened/closed [kinds]".
inline std::string summary(const std::vector<Recorder::Event>& events) {
  std::map<std::pair<std::string, std::string>, std::map<int, size_t>> by_name;
  for (const auto& e : events) ++by_name[{e.domain, e.message}][e.kind];
  static const char* const kinds[] = {"push", "pop", "start", "end", "mark"};
  std::ostringstream os;
  os << events.size() << " NVTX events recorded:";
  for (const auto& entry : by_name) {
    os << "\n  [" << (entry.first.first.empty() ? "<global>" : entry.first.first) << "] "
       << entry.first.second << ":";
    for (const auto& k : entry.second) os << " " << kinds[k.first] << "=" << k.second;
  }
  return os.str();
}

inline bool starts_with(const std::string& s, const char* prefix) {
  return s.compare(0, std::strlen(prefix), prefix) == 0;
}

class Nvtx : public ::testing::Test {
 protected:
  void SetUp() override {
    watchdog_ = std::make_unique<megaring_test::Watchdog>(megaring_test::current_test_name(),
                                                          megaring_test::Watchdog::default_limit());
    const char* path = std::getenv(kInjectionVar);
    ASSERT_TRUE(path != nullptr && *path != '\0')
        << kInjectionVar << " is not set: run this test through ctest, which sets it to the "
        << "path of libmegaring_nvtx_recorder.so (tests/CMakeLists.txt), or set it by hand";
    // The first NVTX call in the process loads the injection library named by
    // the variable; RTLD_NOLOAD then proves NVTX (not this test) loaded it.
    nvtxInitialize(nullptr);
    void* handle = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    ASSERT_NE(handle, nullptr) << "NVTX did not load the injection library " << path << ": "
                               << dlerror();
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_init_count", &rec_.init_count));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_reset", &rec_.reset));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_count", &rec_.count));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_domain_creates", &rec_.domain_creates));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_open_ranges", &rec_.open_ranges));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_event_count", &rec_.event_count));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_event", &rec_.event));
    ASSERT_NO_FATAL_FAILURE(
        load_symbol(handle, "mr_nvtx_payload_init_count", &rec_.payload_init_count));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_schema_count", &rec_.schema_count));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_schema", &rec_.schema));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_schema_entry", &rec_.schema_entry));
    ASSERT_NO_FATAL_FAILURE(
        load_symbol(handle, "mr_nvtx_event_payload_count", &rec_.event_payload_count));
    ASSERT_NO_FATAL_FAILURE(load_symbol(handle, "mr_nvtx_event_payload", &rec_.event_payload));
    // The handle stays open (NVTX holds the library for the process anyway).
    ASSERT_GE(rec_.init_count(), 1)
        << "the recorder was loaded but NVTX never called its InitializeInjectionNvtx2";
    rec_.reset();
  }
  void TearDown() override { watchdog_.reset(); }

  Recorder rec_;

 private:
  std::unique_ptr<megaring_test::Watchdog> watchdog_;
};

}  // namespace nvtx_test
