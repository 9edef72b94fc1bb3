// SPDX-License-Identifier: Apache-2.0
// Internal: the NVTX payload a ticket-carrying range holds (which tickets,
// whose), through the NVTX payload extension (nvtx3/nvToolsExtPayload.h).
// Included by support/nvtx.hpp when MEGARING_NVTX is on; use its
// MR_NVTX_TICKETS_RANGE.
//
// One static schema, registered once in the "megaring" domain before the
// first payload is sent, describes NvtxTickets; each range passes its
// NvtxTickets by event attributes (payloadType NVTX_PAYLOAD_TYPE_EXT on
// nvtxDomainRangePushEx, the way NCCL attaches its payloads). A tool copies
// the bytes during the push. Without a tool attached a range costs what an
// MR_NVTX_RANGE costs plus filling two small structs on the stack: no
// allocation, no formatting, the schema registration is a one-time static.
#pragma once

#include <nvtx3/nvToolsExtPayload.h>
#include <nvtx3/nvtx3.hpp>

#include <cstddef>
#include <cstdint>

namespace megaring::detail {

struct NvtxDomain {
  static constexpr const char* name{"megaring"};
};

// The payload's layout; the schema below names each field for the tool.
struct NvtxTickets {
  uint64_t first_ticket;  // the first ticket the call is about
  uint32_t count;         // how many consecutive tickets from first_ticket
  uint32_t tenant;        // the publishing tenant's id; 0: none (a plain runtime call)
  uint32_t ring;          // 0: the shared ring; n > 0: producer ring n
};

// A static schema id (>= NVTX_PAYLOAD_SCHEMA_ID_STATIC_START, unique in the
// domain): payloads name it before, and whether or not, a tool registered it.
inline constexpr uint64_t kNvtxTicketsSchemaId = NVTX_PAYLOAD_SCHEMA_ID_STATIC_START + 0x4d52;

// Registers the schema with the domain the first time it runs; every later
// call returns the cached id (a function-local static: once per process).
inline uint64_t nvtx_tickets_schema() noexcept {
  static const uint64_t id = [] {
    static const nvtxPayloadSchemaEntry_t entries[] = {
        {0, NVTX_PAYLOAD_ENTRY_TYPE_UINT64, "first_ticket", "first ticket of the call",
         0, offsetof(NvtxTickets, first_ticket), nullptr, nullptr},
        {0, NVTX_PAYLOAD_ENTRY_TYPE_UINT32, "count", "consecutive tickets from first_ticket",
         0, offsetof(NvtxTickets, count), nullptr, nullptr},
        {0, NVTX_PAYLOAD_ENTRY_TYPE_UINT32, "tenant", "publishing tenant id (0: none)",
         0, offsetof(NvtxTickets, tenant), nullptr, nullptr},
        {0, NVTX_PAYLOAD_ENTRY_TYPE_UINT32, "ring", "ring (0: shared ring, n: producer ring n)",
         0, offsetof(NvtxTickets, ring), nullptr, nullptr},
    };
    nvtxPayloadSchemaAttr_t attr{};
    attr.fieldMask = NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_NAME | NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_TYPE |
                     NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_ENTRIES |
                     NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_NUM_ENTRIES |
                     NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_STATIC_SIZE |
                     NVTX_PAYLOAD_SCHEMA_ATTR_FIELD_SCHEMA_ID;
    attr.name = "megaring tickets";
    attr.type = NVTX_PAYLOAD_SCHEMA_TYPE_STATIC;
    attr.entries = entries;
    attr.numEntries = sizeof(entries) / sizeof(entries[0]);
    attr.payloadStaticSize = sizeof(NvtxTickets);
    attr.schemaId = kNvtxTicketsSchemaId;
    // Returns 0 without a tool; the static id is used either way.
    (void)nvtxPayloadSchemaRegister(nvtx3::domain::get<NvtxDomain>(), &attr);
    return kNvtxTicketsSchemaId;
  }();
  return id;
}

// A scoped push/pop range in the megaring domain, named by a registered
// string, carrying `tickets` (read during the constructor only).
class NvtxTicketsRange {
 public:
  NvtxTicketsRange(const nvtx3::registered_string_in<NvtxDomain>& name,
                   const NvtxTickets& tickets) noexcept {
    const nvtxPayloadData_t payload{nvtx_tickets_schema(), sizeof(NvtxTickets), &tickets};
    nvtxEventAttributes_t attr{};
    attr.version = NVTX_VERSION;
    attr.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    attr.messageType = NVTX_MESSAGE_TYPE_REGISTERED;
    attr.message.registered = name.get_handle();
    attr.payloadType = NVTX_PAYLOAD_TYPE_EXT;
    attr.reserved0 = 1;  // the number of nvtxPayloadData_t at payload.ullValue
    attr.payload.ullValue = NVTX_POINTER_AS_PAYLOAD_ULLVALUE(&payload);
    nvtxDomainRangePushEx(nvtx3::domain::get<NvtxDomain>(), &attr);
  }
  ~NvtxTicketsRange() { nvtxDomainRangePop(nvtx3::domain::get<NvtxDomain>()); }
  NvtxTicketsRange(const NvtxTicketsRange&) = delete;
  NvtxTicketsRange& operator=(const NvtxTicketsRange&) = delete;
};

}  // namespace megaring::detail
