// SPDX-License-Identifier: Apache-2.0
// The NVTX recorder's state, shared by its core callbacks (recorder.cpp) and
// its payload-extension callbacks (payload_ext.cpp). Everything is guarded
// by Recorder::mutex.
#pragma once

#define NVTX_NO_IMPL  // types and declarations only: a tool, not an NVTX user
#include <nvtx3/nvToolsExt.h>
#include <nvtx3/nvToolsExtPayload.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

// The opaque handle types NVTX leaves to the tool to define.
struct nvtxDomainRegistration_st {
  const char* name;  // interned
};
struct nvtxStringRegistration_st {
  const char* value;  // interned
};

namespace mr_nvtx_recorder {

// One extended payload of an event (nvtxPayloadData_t), copied.
struct Payload {
  uint64_t schema_id = 0;
  size_t size = 0;             // as the caller gave it
  std::vector<uint8_t> bytes;  // its first min(size, kMaxPayloadBytes) bytes
  bool schema_registered = false;  // schema_id was registered in the event's domain before
};
constexpr size_t kMaxPayloadBytes = 4096;
constexpr int32_t kMaxPayloads = 16;

struct Event {
  const char* domain;   // interned
  const char* message;  // interned
  int kind;
  int message_type;
  uint64_t tid;
  std::vector<Payload> payloads;  // NVTX_PAYLOAD_TYPE_EXT attributes only
};

struct OpenRange {
  const char* domain;
  const char* message;
};

struct SchemaEntry {
  const char* name;  // interned; "" if none
  uint64_t type;
  uint64_t flags;
  uint64_t offset;
};

// One nvtxPayloadSchemaRegister call, copied.
struct Schema {
  const nvtxDomainRegistration_st* domain_handle;
  const char* domain;  // interned
  const char* name;    // interned; "" if none
  uint64_t id;         // the id handed back (the static id asked for, or a dynamic one)
  uint64_t type;       // NVTX_PAYLOAD_SCHEMA_TYPE_*
  uint64_t flags;
  size_t static_size;
  std::vector<SchemaEntry> entries;
};

struct Recorder {
  std::mutex mutex;
  // Interned strings: node-based, so the c_str()s stay put for good.
  std::unordered_set<std::string> strings;
  std::unordered_map<std::string, std::unique_ptr<nvtxDomainRegistration_st>> domains;
  std::unordered_map<std::string, size_t> domain_creates;
  // Registered strings handed out, keyed by handle (to validate handles).
  std::unordered_map<const nvtxStringRegistration_st*, std::unique_ptr<nvtxStringRegistration_st>>
      registered;
  std::vector<Event> events;
  // Push/pop stacks per (thread, domain); start/end ranges by id.
  std::map<std::pair<uint64_t, const nvtxDomainRegistration_st*>, std::vector<const char*>> stacks;
  std::unordered_map<nvtxRangeId_t, OpenRange> started;
  nvtxRangeId_t next_range_id = 1;
  int init_count = 0;
  // Payload extension: its initialisations, and the schemas registered
  // (kept across mr_nvtx_reset, like the domains).
  int payload_init_count = 0;
  std::vector<Schema> schemas;
  uint64_t next_dynamic_schema_id = NVTX_PAYLOAD_SCHEMA_ID_DYNAMIC_START;

  const char* intern(const std::string& s) { return strings.insert(s).first->c_str(); }
};

// Never destroyed: NVTX may call in from other libraries' static destructors
// at exit. Reachable through the static pointer, so not a leak for LSan.
inline Recorder& rec() {
  static Recorder* r = new Recorder;
  return *r;
}

// The extended payloads an event's attributes carry (payloadType
// NVTX_PAYLOAD_TYPE_EXT: reserved0 nvtxPayloadData_t at payload.ullValue);
// none otherwise. Caller holds the mutex. (payload_ext.cpp)
std::vector<Payload> payloads_of(Recorder& r, nvtxDomainHandle_t domain,
                                 const nvtxEventAttributes_t* attributes);

}  // namespace mr_nvtx_recorder
