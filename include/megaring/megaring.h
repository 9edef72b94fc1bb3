/* SPDX-License-Identifier: Apache-2.0 */
/*
 * megaring's C API: a stable C ABI over the C++ API (runtime.hpp,
 * producer.hpp, tenant.hpp), for servers written in C, Rust, Go or Python.
 * It compiles as C99 and as C++; nothing here throws, and no exception
 * crosses it.
 *
 * Conventions (NCCL's, for the most part):
 *   - Every fallible call returns an mr_result_t; MR_RESULT_SUCCESS is 0 and
 *     the values are the C++ megaring::Result numbers. On failure the out
 *     parameters are left unchanged and mr_last_error() names what failed.
 *   - Every pointer argument is checked: NULL is MR_RESULT_INVALID_ARGUMENT
 *     (with a message), a NULL handle included. A handle used after it was
 *     destroyed cannot be detected: that is the caller's bug, as with free().
 *   - Times are int64_t nanoseconds: 0 = do not wait (one look),
 *     MR_FOREVER = never expire, negative = MR_RESULT_INVALID_ARGUMENT.
 *   - Structs a call reads or fills that may grow (configs, counters) carry
 *     their size first: set `struct_size = sizeof(the struct)` (the *_init
 *     functions do it for configs). The library reads or writes only that
 *     many bytes; a size below the first version's or above 4096 (never
 *     initialised) is refused, and one larger than the library knows is
 *     accepted when the bytes it does not know are zero (configs) / are
 *     zeroed (outputs).
 *   - Ownership: a create/open/register call hands the caller a handle that
 *     the matching destroy/close call frees; nothing else frees a handle.
 *   - Threads: a runtime's and a tenant's calls may be made from any number
 *     of threads at once, except the destroy calls, which must not race
 *     with any other call on the same handle; a producer is one thread's at
 *     a time. Each call below says where it differs.
 */
#ifndef MEGARING_MEGARING_H_
#define MEGARING_MEGARING_H_

#include <stddef.h>
#include <stdint.h>

#include "megaring/slot_abi.h" /* MR_OP_*, MR_STATUS_*, MR_FAULT_*, MR_SLOT_ARGS */
#include "megaring/version.h"  /* MEGARING_VERSION* of these headers */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Results and errors ------------------------------------------------- */

/* The same numbers as megaring::Result (status.hpp says which call returns
 * which); new values are only ever appended. */
typedef enum mr_result_t {
  MR_RESULT_SUCCESS = 0,
  MR_RESULT_INVALID_ARGUMENT = 1,
  MR_RESULT_RING_FULL = 2,
  MR_RESULT_TIMEOUT = 3,
  MR_RESULT_NO_DEVICE = 4,
  MR_RESULT_CUDA_ERROR = 5,
  MR_RESULT_SHUTDOWN = 6,
  MR_RESULT_ABORTED = 7,
  MR_RESULT_OUT_OF_MEMORY = 8,
  MR_RESULT_INTERNAL = 9,
  MR_RESULT_IO_ERROR = 10,
  MR_RESULT_REVOKED = 11,
  MR_RESULT_OPCODE_OUT_OF_RANGE = 12,
  MR_RESULT_BACKPRESSURE = 13,
  MR_RESULT_STAGING_BACKPRESSURE = 14,
  MR_RESULT_RESIDENT_BACKPRESSURE = 15,
  MR_RESULT_RESOURCE_UNDERFLOW = 16,
  MR_RESULT_QUIESCE_TIMEOUT = 17,
  MR_RESULT_REGISTRY_FULL = 18,
  MR_RESULT_IN_USE = 19,
  MR_RESULT_MAX_ENUM_ = 0x7FFFFFFF /* not a result: keeps the enum 32 bits wide */
} mr_result_t;

/* A short stable name ("ring full"); "unknown result" for other values.
 * Static storage; thread-safe. */
const char* mr_result_string(mr_result_t result);
/* The message of the last call on this thread that failed ("" if none):
 * "<function>: <result>: <detail>". Valid until this thread's next failing
 * call; thread-safe (each thread has its own). */
const char* mr_last_error(void);
/* The amount and the limit the last failed call on this thread hit (quota
 * refusals: MR_RESULT_*BACKPRESSURE, OPCODE_OUT_OF_RANGE, RESOURCE_UNDERFLOW,
 * QUIESCE_TIMEOUT); 0 where none applies. Either pointer may be NULL. */
void mr_last_error_values(uint64_t* value, uint64_t* limit);

/* ---- Version ------------------------------------------------------------ */

/* The linked library's version: MEGARING_VERSION's encoding (major * 10000 +
 * minor * 100 + patch), and "major.minor.patch" (static storage). Compare
 * with the MEGARING_VERSION macro to detect a header/library mismatch. */
int mr_version(void);
const char* mr_version_string(void);
/* The three numbers; any pointer may be NULL. */
void mr_version_numbers(int* major, int* minor, int* patch);

/* ---- Common types ------------------------------------------------------- */

#define MR_FOREVER INT64_MAX /* a timeout that never expires */

#define MR_BACKEND_AUTO 0 /* CUDA when a usable GPU is present, else CPU */
#define MR_BACKEND_CUDA 1 /* the persistent megakernel; NO_DEVICE without a GPU */
#define MR_BACKEND_CPU 2  /* host worker threads running the same protocol */

/* One slot to publish (slot_abi.h gives each opcode's arguments). Fixed
 * layout: `reserved` must be 0. */
typedef struct mr_slot_request_t {
  uint32_t opcode;
  uint32_t tenant; /* 0 = no tenant; a tenant publish stamps its own */
  uint32_t flags;  /* MR_SLOT_FLAG_*; the keep bit comes from the publish flags */
  uint32_t reserved;
  uint64_t args[MR_SLOT_ARGS];
} mr_slot_request_t;

typedef struct mr_ticket_t {
  uint64_t value; /* free-running, per ring */
  uint32_t kept;  /* 1: published with MR_PUBLISH_KEEP_RESULT; wait or release it */
  uint32_t reserved;
} mr_ticket_t;

typedef struct mr_completion_t {
  uint64_t ticket;
  uint64_t result;
  uint16_t status; /* MR_STATUS_* */
  uint16_t fault;  /* MR_FAULT_* when status is MR_STATUS_FAULT */
  uint32_t reserved;
} mr_completion_t;

/* Publish flags. Unknown bits are MR_RESULT_INVALID_ARGUMENT. */
#define MR_PUBLISH_KEEP_RESULT 1u /* keep the completion for wait() / release() */
#define MR_PUBLISH_FAIL_IF_FULL 2u /* RING_FULL at once instead of waiting (runtime, producer) */

/* ---- Runtime ------------------------------------------------------------ */

typedef struct mr_runtime_s mr_runtime_t;

#define MR_RUNTIME_CONFIG_VERSION 2u
/* megaring::Config (runtime.hpp documents every field and its bounds).
 * Version 2 appends the fields after count_costs; a version-1 caller (80
 * bytes, struct_version 1) gets their defaults. A struct_version needs at
 * least that version's size, and its bytes past that size must be 0. */
typedef struct mr_runtime_config_t {
  uint32_t struct_size;    /* sizeof(mr_runtime_config_t) */
  uint32_t struct_version; /* MR_RUNTIME_CONFIG_VERSION */
  int32_t backend;         /* MR_BACKEND_* */
  int32_t device;          /* CUDA device ordinal */
  uint32_t ring_capacity;  /* slots, a power of two */
  uint32_t workers;        /* executors; 0 = the backend's default */
  uint32_t max_buffers;
  uint32_t max_tenants;
  uint64_t initial_ticket;
  uint32_t poll_backoff_min_ns;
  uint32_t poll_backoff_max_ns;
  uint32_t fetch_warps;
  uint32_t producer_rings;
  uint32_t heartbeat_interval_ns;
  uint32_t force_eager_module_loading; /* 0 or 1 */
  int64_t abort_timeout_ns;
  uint32_t timeline_capacity;
  uint32_t count_costs; /* 0 or 1 */
  /* version 2; zero in any of them means the default */
  uint64_t staging_arena_bytes; /* 0 = no staging arena (megaring_staging.h) */
  uint32_t max_regions;         /* region-table entries; 0 = the default (256) */
  uint32_t dump_on_wait_timeout; /* 0 or 1: a timed-out wait logs dump_state */
  int64_t control_timeout_ns;   /* control operations' bound; 0 = the default (1 s) */
} mr_runtime_config_t;

/* Fills `config` with the defaults of megaring::Config, struct_size and
 * struct_version included. Use mr_runtime_config_init (it passes the size of
 * the struct your code was compiled with); bindings that cannot call an
 * inline function (ctypes, cgo) call the _sized form with their struct's
 * size. Thread-safe. Create refuses a struct_version of 0 or above the
 * library's. */
mr_result_t mr_runtime_config_init_sized(mr_runtime_config_t* config, uint32_t struct_size);
static inline mr_result_t mr_runtime_config_init(mr_runtime_config_t* config) {
  return mr_runtime_config_init_sized(config, (uint32_t)sizeof(*config));
}

/* Creates and starts a runtime with the built-in opcodes. The caller owns
 * *out and frees it with mr_runtime_destroy. */
mr_result_t mr_runtime_create(const mr_runtime_config_t* config, mr_runtime_t** out);
/* Graceful stop (Runtime::shutdown): refuse new publishes, drain every
 * published slot, stop the consumer. On timeout it aborts and returns
 * MR_RESULT_TIMEOUT. The handle stays valid: waits and counters still
 * answer. Thread-safe (publishers then get SHUTDOWN). */
mr_result_t mr_runtime_finalize(mr_runtime_t* runtime, int64_t timeout_ns);
/* Immediate stop: every slot not completed reads MR_STATUS_ABORTED. */
mr_result_t mr_runtime_abort(mr_runtime_t* runtime);
/* Suspension (Runtime::suspend / resume; README, "Beside PyTorch"). Both
 * block and touch the device. mr_runtime_suspend stops the consumer: it
 * returns SUCCESS once the consumer exited (on the GPU the persistent
 * kernel has returned, so cudaDeviceSynchronize no longer waits on it),
 * after every slot it had staged completed. Rings, buffers, regions,
 * tenants and grants stay; publishing goes on (the slots wait in their
 * rings) and waits wait. SUCCESS at once when already suspended; TIMEOUT
 * when a staged slot still runs at the timeout (the runtime stays
 * suspending: suspend again to wait again). mr_runtime_resume starts the
 * consumer again where each ring stopped (every ticket runs once, in its
 * ring's order), after waiting for a suspension in progress;
 * INVALID_ARGUMENT when not suspended. After finalize/abort: SHUTDOWN or
 * ABORTED. Finalize of a suspended runtime resumes it and drains. */
mr_result_t mr_runtime_suspend(mr_runtime_t* runtime, int64_t timeout_ns);
mr_result_t mr_runtime_resume(mr_runtime_t* runtime);
typedef enum mr_consumer_phase_t {
  MR_CONSUMER_LIVE = 0,
  MR_CONSUMER_SUSPENDING = 1,
  MR_CONSUMER_SUSPENDED = 2
} mr_consumer_phase_t;
/* The consumer's phase while running (MR_CONSUMER_LIVE otherwise). */
mr_result_t mr_runtime_consumer_phase(mr_runtime_t* runtime, mr_consumer_phase_t* phase);
/* Frees the runtime (aborting it if it still runs). Close its producers
 * and stop publishing through its tenants first; a registry or tenant
 * handle may outlive it (their calls then fail with REVOKED). Must not race
 * with any other call on `runtime`. */
mr_result_t mr_runtime_destroy(mr_runtime_t* runtime);

typedef struct mr_runtime_info_t {
  uint32_t struct_size;    /* set by the caller: sizeof(mr_runtime_info_t) */
  int32_t backend;         /* MR_BACKEND_CUDA or MR_BACKEND_CPU */
  uint32_t capacity;       /* ring slots */
  uint32_t consumer_units; /* executors, without the I/O unit */
  const char* device_name; /* the GPU's name or "cpu"; valid while the runtime lives */
} mr_runtime_info_t;
mr_result_t mr_runtime_get_info(mr_runtime_t* runtime, mr_runtime_info_t* info);

/* Publishes one slot / `count` slots with consecutive tickets (*first is the
 * batch's first) on ring 0. flags: MR_PUBLISH_*. When the ring is full it
 * waits up to timeout_ns for space (or fails at once with
 * MR_PUBLISH_FAIL_IF_FULL). A count of 0 or above the ring's capacity is
 * INVALID_ARGUMENT. */
mr_result_t mr_runtime_publish(mr_runtime_t* runtime, const mr_slot_request_t* request,
                               uint32_t flags, int64_t timeout_ns, mr_ticket_t* ticket);
mr_result_t mr_runtime_publish_batch(mr_runtime_t* runtime, const mr_slot_request_t* requests,
                                     uint32_t count, uint32_t flags, int64_t timeout_ns,
                                     mr_ticket_t* first);
/* Waits for a kept ticket and reads its completion (once). A FAULT or
 * ABORTED completion is a successful wait: look at completion->status. */
mr_result_t mr_runtime_wait(mr_runtime_t* runtime, const mr_ticket_t* ticket, int64_t timeout_ns,
                            mr_completion_t* completion);
/* Waits until the ticket and every one before it completed (ABORTED for an
 * aborted ticket). */
mr_result_t mr_runtime_wait_done(mr_runtime_t* runtime, const mr_ticket_t* ticket,
                                 int64_t timeout_ns);
/* Drops a kept ticket's completion without waiting for it. */
mr_result_t mr_runtime_release(mr_runtime_t* runtime, const mr_ticket_t* ticket);
/* Publish with MR_PUBLISH_KEEP_RESULT, then wait. */
mr_result_t mr_runtime_call(mr_runtime_t* runtime, const mr_slot_request_t* request,
                            int64_t timeout_ns, mr_completion_t* completion);

/* Ring 0's DONE_COUNT (absolute ticket value) and the consumer heartbeat. */
mr_result_t mr_runtime_done_count(mr_runtime_t* runtime, uint64_t* done_count);
mr_result_t mr_runtime_heartbeat_ns(mr_runtime_t* runtime, uint64_t* heartbeat_ns);

/* megaring::RuntimeStats: counts of ring 0's completions below DONE_COUNT
 * (wait_done the last ticket first for exact counts). */
typedef struct mr_runtime_stats_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_runtime_stats_t) */
  uint32_t reserved;
  uint64_t published;
  uint64_t done_count;
  uint64_t reaped;
  uint64_t completed_ok;
  uint64_t faulted;
  uint64_t aborted;
  uint64_t revoked;
  /* by MR_FAULT_* code; 64 entries whatever MR_FAULT_CODE_COUNT is (fault
   * codes are 6 bits), so new codes never change the struct */
  uint64_t faults_by_code[MR_FAULT_MAX + 1];
  uint64_t ring_full_events;
  uint64_t protocol_errors; /* a bug in megaring if non-zero */
  uint64_t parked_results;
} mr_runtime_stats_t;
mr_result_t mr_runtime_stats(mr_runtime_t* runtime, mr_runtime_stats_t* stats);

/* megaring::ConsumerCounters: the consumer's own diagnostics. */
typedef struct mr_consumer_counters_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_consumer_counters_t) */
  uint32_t reserved;
  uint64_t fetch_rounds;
  uint64_t tickets_fetched;
  uint64_t header_rounds;
  uint64_t idle_polls;
  uint64_t flushes;
  uint64_t records_written;
} mr_consumer_counters_t;
mr_result_t mr_runtime_consumer_counters(mr_runtime_t* runtime, mr_consumer_counters_t* counters);

/* Timeline mode (timeline_capacity > 0): writes a Chrome trace (JSON). */
mr_result_t mr_runtime_write_timeline_trace(mr_runtime_t* runtime, const char* path);

/* ---- Buffers (consumer-side memory slots name by handle) ----------------
 * Runtime::alloc_buffer and friends: allocated buffers are zero-filled and
 * owned by the runtime until mr_buffer_free; registered memory stays the
 * caller's, who keeps it alive until mr_buffer_unregister returns SUCCESS.
 * Ranges are checked without overflow. Reads and writes are not ordered
 * with slots in flight on the same buffer: wait for those first. */
mr_result_t mr_buffer_alloc(mr_runtime_t* runtime, uint64_t bytes, uint32_t* handle);
mr_result_t mr_buffer_free(mr_runtime_t* runtime, uint32_t handle);
mr_result_t mr_buffer_write(mr_runtime_t* runtime, uint32_t handle, uint64_t offset,
                            const void* src, uint64_t bytes);
mr_result_t mr_buffer_read(mr_runtime_t* runtime, uint32_t handle, uint64_t offset, void* dst,
                           uint64_t bytes);
mr_result_t mr_buffer_register(mr_runtime_t* runtime, void* memory, uint64_t bytes,
                               uint32_t* handle);
mr_result_t mr_buffer_unregister(mr_runtime_t* runtime, uint32_t handle, int64_t timeout_ns);
/* mr_buffer_unregister with flags (MR_UNREGISTER_*; unknown bits are
 * INVALID_ARGUMENT). MR_UNREGISTER_FAIL_IF_IN_USE (WhileInUse::kFail): while
 * any slot published before the call is not yet completed (megaring does not
 * read slot arguments, so "may use the buffer" is "is outstanding"), return
 * MR_RESULT_IN_USE at once and leave the buffer registered; without it, wait
 * as mr_buffer_unregister does. Blocks (up to timeout_ns) only without it. */
#define MR_UNREGISTER_FAIL_IF_IN_USE 1u
mr_result_t mr_buffer_unregister_ex(mr_runtime_t* runtime, uint32_t handle, int64_t timeout_ns,
                                    uint32_t flags);

/* ---- Control operations (runtime.hpp, "Control operations") ------------
 * Changes to the consumer's tables that queued slots could see (a tenant's
 * grants: mr_tenant_set_grants) park every executor between slots, apply,
 * release; one at a time, each bounded by control_timeout_ns. Counted since
 * create (megaring::ControlStats); a copy, no device access, never blocks. */
typedef struct mr_control_stats_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_control_stats_t) */
  uint32_t reserved;
  uint64_t operations;  /* applied */
  uint64_t rolled_back; /* a step failed; undone */
  uint64_t cancelled;   /* the token or the executors not in time, or the runtime closed */
  uint64_t last_ns;     /* the last operation's duration (any outcome) */
  uint64_t max_ns;
  uint64_t total_ns;
} mr_control_stats_t;
mr_result_t mr_runtime_control_stats(mr_runtime_t* runtime, mr_control_stats_t* stats);

/* ---- The operator's view (megaring/health.hpp, megaring/log.hpp) -------
 * Nothing here publishes a slot; every call is safe after finalize too. */
#define MR_RUNTIME_STATE_RUNNING 0  /* megaring::RuntimeState's numbers */
#define MR_RUNTIME_STATE_DRAINING 1
#define MR_RUNTIME_STATE_STOPPED 2
#define MR_RUNTIME_STATE_ABORTED 3
#define MR_RUNTIME_STATE_FAILED 4   /* the consumer died */
#define MR_RUNTIME_STATE_WEDGED 5   /* the consumer could not be stopped */
#define MR_AGE_SOURCE_NONE 0        /* megaring::AgeSource's numbers */
#define MR_AGE_SOURCE_SAME_CLOCK 1
#define MR_AGE_SOURCE_CALIBRATED 2
#define MR_AGE_SOURCE_RECORDED 3
#define MR_AGE_SOURCE_OBSERVED 4    /* a lower bound */

/* megaring::Health. */
typedef struct mr_health_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_health_t) */
  int32_t state;        /* MR_RUNTIME_STATE_* */
  uint32_t consumer_alive;
  int32_t heartbeat_age_source; /* MR_AGE_SOURCE_* */
  uint64_t heartbeat_ns;        /* the consumer's stamp, on its clock */
  int64_t heartbeat_age_ns;     /* host ns, -1 if unknown */
  int32_t last_error;           /* mr_result_t; MR_RESULT_SUCCESS if none */
  uint32_t reserved;
  int64_t last_error_age_ns;    /* -1 if none */
  char last_error_message[256]; /* NUL-terminated, cut to fit */
} mr_health_t;
mr_result_t mr_runtime_health(mr_runtime_t* runtime, mr_health_t* health);

/* Text: Runtime::dump_state and Runtime::metrics_text (Prometheus text
 * exposition). Writes at most `capacity` bytes, NUL included (cut to fit);
 * *length (may be NULL) gets the whole text's length without the NUL, so a
 * call with buffer NULL and capacity 0 asks how much room it needs. The
 * text changes from call to call (counters, ages): give room to spare, and
 * call again if *length >= capacity. */
mr_result_t mr_runtime_dump_state(mr_runtime_t* runtime, char* buffer, size_t capacity,
                                  size_t* length);
mr_result_t mr_runtime_metrics_text(mr_runtime_t* runtime, char* buffer, size_t capacity,
                                    size_t* length);

/* The log (megaring::set_log_callback): messages at `level` (MR_LOG_*) and
 * more severe go to callback(level, message, user); callback NULL or level
 * MR_LOG_NONE goes back to MEGARING_DEBUG's output. A message reaches the
 * callback on the thread whose call logged it, when that call returns,
 * never while the library holds a lock: the callback may call any mr_
 * function, mr_set_log_callback included. */
#define MR_LOG_NONE 0
#define MR_LOG_WARN 1
#define MR_LOG_INFO 2
#define MR_LOG_TRACE 3
typedef void (*mr_log_callback_t)(int32_t level, const char* message, void* user);
mr_result_t mr_set_log_callback(int32_t level, mr_log_callback_t callback, void* user);

#ifdef __cplusplus
} /* extern "C" */
#endif

#include "megaring/megaring_tenants.h" /* registries, tenants, producers */
#include "megaring/megaring_staging.h" /* staging regions, descriptors, their slots */

#endif /* MEGARING_MEGARING_H_ */
