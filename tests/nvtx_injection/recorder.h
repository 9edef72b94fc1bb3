// SPDX-License-Identifier: Apache-2.0
// megaring_nvtx_recorder: an NVTX injection library for tests. Point
// NVTX_INJECTION64_PATH at libmegaring_nvtx_recorder.so and the first NVTX
// call in the process loads it (nvtx3/nvtxDetail/nvtxInit.h); from then on it
// records, in memory, every domain created and every push/pop, start/end and
// mark, in any domain (the global one included, as domain ""), with its
// message resolved (ASCII, wide, or a string registered through it) and the
// Linux thread id that emitted it. It also takes the NVTX payload extension
// (payload_ext.cpp): the schemas registered, and each event's extended
// payloads (event attributes with payloadType NVTX_PAYLOAD_TYPE_EXT), copied.
// A test dlopen()s the same path and reads the record through the extern "C"
// functions below (declared here; typedefs for dlsym follow). Thread-safe;
// no nsys needed.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Event kinds. A pop or end event carries the message of the range it closes
// (the recorder tracks a push/pop stack per thread and domain, and start/end
// ids), or MR_NVTX_UNMATCHED when nothing was open.
enum {
  MR_NVTX_PUSH = 0,
  MR_NVTX_POP = 1,
  MR_NVTX_START = 2,
  MR_NVTX_END = 3,
  MR_NVTX_MARK = 4,
};
#define MR_NVTX_KIND_ANY (-1)
#define MR_NVTX_UNMATCHED "<unmatched>"

// Message types (nvtxMessageType_t values; 0 for pops, ends and no message).
enum {
  MR_NVTX_MSG_NONE = 0,
  MR_NVTX_MSG_ASCII = 1,
  MR_NVTX_MSG_UNICODE = 2,
  MR_NVTX_MSG_REGISTERED = 3,
};

// How many times NVTX called InitializeInjectionNvtx2 (once per NVTX
// instance, i.e. per module that includes the NVTX headers).
int mr_nvtx_init_count(void);
// Drops the recorded events and open-range state. Domains and registered
// strings stay (their handles stay valid), and so do their creation counts.
void mr_nvtx_reset(void);
// Events matching all filters: domain and message NULL = any, kind
// MR_NVTX_KIND_ANY = any. The global domain is "".
size_t mr_nvtx_count(const char* domain, const char* message, int kind);
// nvtxDomainCreate calls for `name` since the library was loaded (not reset).
size_t mr_nvtx_domain_creates(const char* name);
// Ranges pushed or started and not yet popped or ended (since the reset).
size_t mr_nvtx_open_ranges(void);
size_t mr_nvtx_event_count(void);
// Event `index` (0 = oldest since the reset); returns 0 if out of range.
// The strings stay valid for the life of the process. Any out pointer may be
// NULL.
int mr_nvtx_event(size_t index, const char** domain, const char** message, int* kind,
                  int* message_type, uint64_t* thread_id);

// --- Payload extension (nvToolsExtPayload.h) ---------------------------------
// How many times NVTX called InitializeInjectionNvtxExtension for the payload
// extension (once per NVTX instance that called one of its functions).
int mr_nvtx_payload_init_count(void);
// nvtxPayloadSchemaRegister calls since the library was loaded (not reset),
// oldest first; a call refused (a static id out of range) is not counted.
size_t mr_nvtx_schema_count(void);
// Registration `index`: its domain ("" = global), name ("" if none), the id
// handed back, NVTX_PAYLOAD_SCHEMA_TYPE_*, static payload size (0 if not
// given) and number of entries. Returns 0 if out of range. Strings stay
// valid for the life of the process; any out pointer may be NULL.
int mr_nvtx_schema(size_t index, const char** domain, const char** name, uint64_t* schema_id,
                   uint64_t* schema_type, size_t* static_size, size_t* entry_count);
// Entry `entry` of registration `index`: name ("" if none),
// NVTX_PAYLOAD_ENTRY_TYPE_*, NVTX_PAYLOAD_ENTRY_FLAG_* and offset as given.
int mr_nvtx_schema_entry(size_t index, size_t entry, const char** name, uint64_t* type,
                         uint64_t* flags, uint64_t* offset);
// Extended payloads of event `event` (0 for an event without, or out of range).
size_t mr_nvtx_event_payload_count(size_t event);
// Payload `index` of event `event`: its schema id, whether that id was
// registered in the event's domain before the event, and its bytes (up to
// `capacity`, and up to 4096, copied to `out`). Returns the payload's size
// as the caller gave it; 0 if there is no such payload.
size_t mr_nvtx_event_payload(size_t event, size_t index, uint64_t* schema_id,
                             int* schema_registered, void* out, size_t capacity);

typedef int (*mr_nvtx_init_count_fn)(void);
typedef void (*mr_nvtx_reset_fn)(void);
typedef size_t (*mr_nvtx_count_fn)(const char*, const char*, int);
typedef size_t (*mr_nvtx_domain_creates_fn)(const char*);
typedef size_t (*mr_nvtx_open_ranges_fn)(void);
typedef size_t (*mr_nvtx_event_count_fn)(void);
typedef int (*mr_nvtx_event_fn)(size_t, const char**, const char**, int*, int*, uint64_t*);
typedef int (*mr_nvtx_payload_init_count_fn)(void);
typedef size_t (*mr_nvtx_schema_count_fn)(void);
typedef int (*mr_nvtx_schema_fn)(size_t, const char**, const char**, uint64_t*, uint64_t*,
                                 size_t*, size_t*);
typedef int (*mr_nvtx_schema_entry_fn)(size_t, size_t, const char**, uint64_t*, uint64_t*,
                                       uint64_t*);
typedef size_t (*mr_nvtx_event_payload_count_fn)(size_t);
typedef size_t (*mr_nvtx_event_payload_fn)(size_t, size_t, uint64_t*, int*, void*, size_t);

#ifdef __cplusplus
}  // extern "C"
#endif
