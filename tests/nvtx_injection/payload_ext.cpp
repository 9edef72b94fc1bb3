// SPDX-License-Identifier: Apache-2.0
// The recorder's side of the NVTX payload extension (nvToolsExtPayload.h):
// schema registrations, and the extended payloads events carry.
//
// How an extension attaches (nvtx3/nvtxDetail/nvtxExtInit.h,
// nvtxExtImplPayload_v1.h): the first call of an extension function in an
// NVTX instance (here nvtxPayloadSchemaRegister) loads the same
// $NVTX_INJECTION64_PATH and calls its InitializeInjectionNvtxExtension with
// an nvtxExtModuleInfo_t: module id NVTX_EXT_PAYLOAD_MODULEID, one segment
// whose functionSlots are indexed by NVTX3EXT_CBID_*; the tool writes its
// functions there. Slots left alone become no-ops. The payloads themselves
// travel in the core API: event attributes with payloadType
// NVTX_PAYLOAD_TYPE_EXT, reserved0 nvtxPayloadData_t at payload.ullValue.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "recorder.h"
#include "recorder_state.hpp"

#define MR_RECORDER_API __attribute__((visibility("default")))

namespace mr_nvtx_recorder {

namespace {

const char* domain_name(Recorder& r, nvtxDomainHandle_t domain) {
  return domain == nullptr ? r.intern("") : domain->name;
}

bool registered_in(const Recorder& r, nvtxDomainHandle_t domain, uint64_t id) {
  return std::any_of(r.schemas.begin(), r.schemas.end(), [&](const Schema& s) {
    return s.domain_handle == domain && s.id == id;
  });
}

uint64_t NVTX_API PayloadSchemaRegister(nvtxDomainHandle_t domain,
                                        const nvtxPayloadSchemaAttr_t* attr) {
  if (attr == nullptr) return 0;
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  const uint64_t mask = attr->fieldMask;
  Schema s{};
  s.domain_handle = domain;
  s.domain = domain_name(r, domain);
  s.name = r.intern((mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_NAME) && attr->name ? attr->name : "");
  s.type = (mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_TYPE) ? attr->type : 0;
  s.flags = (mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_FLAGS) ? attr->flags : 0;
  s.static_size = (mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_STATIC_SIZE) ? attr->payloadStaticSize : 0;
  const size_t n = (mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_NUM_ENTRIES) ? attr->numEntries : 0;
  if ((mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_ENTRIES) && attr->entries != nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const nvtxPayloadSchemaEntry_t& e = attr->entries[i];
      s.entries.push_back({r.intern(e.name ? e.name : ""), e.type, e.flags, e.offset});
    }
  }
  // A static id must lie in [STATIC_START, DYNAMIC_START) (nvToolsExtPayload.h);
  // without one the tool makes one up.
  if (mask & NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_SCHEMA_ID) {
    if (attr->schemaId < NVTX_PAYLOAD_SCHEMA_ID_STATIC_START ||
        attr->schemaId >= NVTX_PAYLOAD_SCHEMA_ID_DYNAMIC_START)
      return 0;
    s.id = attr->schemaId;
  } else {
    s.id = r.next_dynamic_schema_id++;
  }
  r.schemas.push_back(std::move(s));
  return r.schemas.back().id;
}

uint8_t NVTX_API DomainIsEnabled(nvtxDomainHandle_t) { return 1; }

}  // namespace

std::vector<Payload> payloads_of(Recorder& r, nvtxDomainHandle_t domain,
                                 const nvtxEventAttributes_t* a) {
  std::vector<Payload> out;
  if (a == nullptr || a->payloadType != NVTX_PAYLOAD_TYPE_EXT || a->payload.ullValue == 0)
    return out;
  const auto* data = reinterpret_cast<const nvtxPayloadData_t*>(
      static_cast<uintptr_t>(a->payload.ullValue));
  const int32_t n = std::min(a->reserved0, kMaxPayloads);
  for (int32_t i = 0; i < n; ++i) {
    Payload p;
    p.schema_id = data[i].schemaId;
    p.size = data[i].size;
    p.schema_registered = registered_in(r, domain, p.schema_id);
    if (data[i].payload != nullptr) {
      const auto* bytes = static_cast<const uint8_t*>(data[i].payload);
      p.bytes.assign(bytes, bytes + std::min(p.size, kMaxPayloadBytes));
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace mr_nvtx_recorder

using mr_nvtx_recorder::Recorder;
using mr_nvtx_recorder::rec;

extern "C" {

MR_RECORDER_API int InitializeInjectionNvtxExtension(nvtxExtModuleInfo_t* info) {
  if (info == nullptr || info->moduleId != NVTX_EXT_PAYLOAD_MODULEID ||
      info->segmentsCount < 1 || info->segments == nullptr)
    return 0;  // not an extension we record: NVTX makes its functions no-ops
  nvtxExtModuleSegment_t& segment = info->segments[0];
  if (segment.functionSlots == nullptr || segment.slotCount <= NVTX3EXT_CBID_nvtxDomainIsEnabled)
    return 0;
  segment.functionSlots[NVTX3EXT_CBID_nvtxPayloadSchemaRegister] =
      reinterpret_cast<intptr_t>(&mr_nvtx_recorder::PayloadSchemaRegister);
  segment.functionSlots[NVTX3EXT_CBID_nvtxDomainIsEnabled] =
      reinterpret_cast<intptr_t>(&mr_nvtx_recorder::DomainIsEnabled);
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  ++r.payload_init_count;
  return 1;
}

MR_RECORDER_API int mr_nvtx_payload_init_count(void) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.payload_init_count;
}

MR_RECORDER_API size_t mr_nvtx_schema_count(void) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  return r.schemas.size();
}

MR_RECORDER_API int mr_nvtx_schema(size_t index, const char** domain, const char** name,
                                   uint64_t* schema_id, uint64_t* schema_type,
                                   size_t* static_size, size_t* entry_count) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (index >= r.schemas.size()) return 0;
  const mr_nvtx_recorder::Schema& s = r.schemas[index];
  if (domain) *domain = s.domain;
  if (name) *name = s.name;
  if (schema_id) *schema_id = s.id;
  if (schema_type) *schema_type = s.type;
  if (static_size) *static_size = s.static_size;
  if (entry_count) *entry_count = s.entries.size();
  return 1;
}

MR_RECORDER_API int mr_nvtx_schema_entry(size_t index, size_t entry, const char** name,
                                         uint64_t* type, uint64_t* flags, uint64_t* offset) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (index >= r.schemas.size() || entry >= r.schemas[index].entries.size()) return 0;
  const mr_nvtx_recorder::SchemaEntry& e = r.schemas[index].entries[entry];
  if (name) *name = e.name;
  if (type) *type = e.type;
  if (flags) *flags = e.flags;
  if (offset) *offset = e.offset;
  return 1;
}

MR_RECORDER_API size_t mr_nvtx_event_payload_count(size_t event) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  return event < r.events.size() ? r.events[event].payloads.size() : 0;
}

MR_RECORDER_API size_t mr_nvtx_event_payload(size_t event, size_t index, uint64_t* schema_id,
                                             int* schema_registered, void* out,
                                             size_t capacity) {
  Recorder& r = rec();
  std::lock_guard<std::mutex> lock(r.mutex);
  if (event >= r.events.size() || index >= r.events[event].payloads.size()) return 0;
  const mr_nvtx_recorder::Payload& p = r.events[event].payloads[index];
  if (schema_id) *schema_id = p.schema_id;
  if (schema_registered) *schema_registered = p.schema_registered ? 1 : 0;
  if (out != nullptr) std::memcpy(out, p.bytes.data(), std::min(capacity, p.bytes.size()));
  return p.size;
}

}  // extern "C"
