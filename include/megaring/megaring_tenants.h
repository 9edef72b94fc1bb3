/* SPDX-License-Identifier: Apache-2.0 */
/*
 * megaring's C API, second part: producers (a ring of your own), tenant
 * registries and tenants. Include megaring/megaring.h, which includes this;
 * its conventions (results, NULL checks, timeouts, struct_size, ownership,
 * threads) hold here too. tenant.hpp and producer.hpp say what each call
 * does in full.
 */
#ifndef MEGARING_MEGARING_TENANTS_H_
#define MEGARING_MEGARING_TENANTS_H_

#include "megaring/megaring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Producers: a ring of one's own (megaring::Producer) ----------------
 * Needs mr_runtime_config_t.producer_rings > 0. A producer is used by one
 * thread at a time (hand it over with the usual synchronisation); its
 * tickets are its own ring's. Close every producer before destroying its
 * runtime. */
typedef struct mr_producer_s mr_producer_t;

/* RING_FULL when every producer ring is taken; INVALID_ARGUMENT when there
 * are none. The caller owns *out and frees it with mr_producer_close. */
mr_result_t mr_producer_open(mr_runtime_t* runtime, mr_producer_t** out);
/* The same, with the ring's class (megaring::Priority): MR_RING_CLASS_NORMAL,
 * _CRITICAL or _BULK (slot_abi.h, "Priorities"; mr_producer_open: normal);
 * INVALID_ARGUMENT for another value. The ring is normal again once the
 * producer is closed. */
mr_result_t mr_producer_open_class(mr_runtime_t* runtime, uint32_t ring_class, mr_producer_t** out);
/* Its class (MR_RING_CLASS_*): the one it was opened with, or the last set. */
mr_result_t mr_producer_class(mr_producer_t* producer, uint32_t* ring_class);
/* Changes the ring's class while the runtime runs (Producer::set_priority: a
 * control operation). Blocks until every executor acknowledged it, at most
 * the runtime's control_timeout (TIMEOUT then, the class unchanged); writes
 * to the device. INVALID_ARGUMENT for a value that is not MR_RING_CLASS_*. */
mr_result_t mr_producer_set_class(mr_producer_t* producer, uint32_t ring_class);
/* Gives the ring back (unread kept results are dropped) and frees it. */
mr_result_t mr_producer_close(mr_producer_t* producer);
mr_result_t mr_producer_ring(mr_producer_t* producer, uint32_t* ring);
mr_result_t mr_producer_publish(mr_producer_t* producer, const mr_slot_request_t* request,
                                uint32_t flags, int64_t timeout_ns, mr_ticket_t* ticket);
mr_result_t mr_producer_publish_batch(mr_producer_t* producer, const mr_slot_request_t* requests,
                                      uint32_t count, uint32_t flags, int64_t timeout_ns,
                                      mr_ticket_t* first);
mr_result_t mr_producer_wait(mr_producer_t* producer, const mr_ticket_t* ticket,
                             int64_t timeout_ns, mr_completion_t* completion);
mr_result_t mr_producer_wait_done(mr_producer_t* producer, const mr_ticket_t* ticket,
                                  int64_t timeout_ns);
mr_result_t mr_producer_release(mr_producer_t* producer, const mr_ticket_t* ticket);

/* ---- Tenant registries (megaring::TenantRegistry) ----------------------- */
typedef struct mr_registry_s mr_registry_t;

#define MR_PUMP_THREAD 0 /* the registry drains on a thread of its own */
#define MR_PUMP_MANUAL 1 /* the caller drains with mr_registry_pump (wait/quiesce pump too) */

#define MR_REGISTRY_CONFIG_VERSION 1u
typedef struct mr_registry_config_t {
  uint32_t struct_size;    /* sizeof(mr_registry_config_t) */
  uint32_t struct_version; /* MR_REGISTRY_CONFIG_VERSION */
  uint32_t max_tenants;    /* 0 = as many as the runtime's tenant table holds */
  uint32_t opcode_begin;   /* window space, in [MR_OP_TENANT_BASE, MR_OP_TENANT_END] */
  uint32_t opcode_end;
  int32_t pump;            /* MR_PUMP_* */
  int64_t pump_idle_sleep_max_ns;
  int64_t close_timeout_ns; /* how long destroy waits for revoked tenants to drain */
} mr_registry_config_t;

mr_result_t mr_registry_config_init_sized(mr_registry_config_t* config, uint32_t struct_size);
static inline mr_result_t mr_registry_config_init(mr_registry_config_t* config) {
  return mr_registry_config_init_sized(config, (uint32_t)sizeof(*config));
}

/* Attaches a registry to `runtime` (one per runtime; while it exists only its
 * pump reaps the runtime's completions). The caller owns *out and frees it
 * with mr_registry_destroy, which revokes every tenant and drains their
 * slots (bounded by close_timeout_ns); stop publishing through its tenants
 * first, and do not race it with other calls on the registry. The registry
 * may outlive the runtime, and tenant handles the registry (their calls then
 * fail with REVOKED). Every other registry and tenant call is thread-safe. */
mr_result_t mr_registry_create(mr_runtime_t* runtime, const mr_registry_config_t* config,
                               mr_registry_t** out);
mr_result_t mr_registry_destroy(mr_registry_t* registry);
/* One pass of the drain pump; *drained (may be NULL) = tickets drained. */
mr_result_t mr_registry_pump(mr_registry_t* registry, uint64_t* drained);

typedef struct mr_registry_stats_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_registry_stats_t) */
  uint32_t live_tenants;
  uint32_t draining_tenants;
  uint32_t reserved;
  uint64_t drained_slots;
  uint64_t untenanted_slots;
} mr_registry_stats_t;
mr_result_t mr_registry_stats(mr_registry_t* registry, mr_registry_stats_t* stats);
/* TenantRegistry::metrics_text, written as mr_runtime_metrics_text writes. */
mr_result_t mr_registry_metrics_text(mr_registry_t* registry, char* buffer, size_t capacity,
                                     size_t* length);

/* ---- Tenants (megaring::TenantHandle) ----------------------------------- */
typedef struct mr_tenant_s mr_tenant_t;

/* Called by the drain pump for each completion of the tenant, on the pump's
 * thread (or inside mr_registry_pump / wait / quiesce in manual mode). It
 * must be quick, must not wait on the registry, and must not unwind (C++
 * exceptions, longjmp) through megaring. */
typedef void (*mr_completion_fn)(void* user_data, const mr_completion_t* completion);

/* Opcode grants (tenant.hpp, "Opcode grants"): which local opcodes of its
 * window a tenant may run; a slot with another faults MR_FAULT_NOT_GRANTED. */
#define MR_GRANTS_ALL 0u  /* every local opcode of the window (the default) */
#define MR_GRANTS_ONLY 1u /* exactly the listed local opcodes (none if the list is empty) */
#define MR_GRANTS_MAX_LIST 65536u /* longest list a call takes, duplicates included */

/* Version 2 appends the grants at registration; a version-1 caller (64 bytes
 * on LP64) gets MR_GRANTS_ALL. */
#define MR_TENANT_CONFIG_VERSION 2u
typedef struct mr_tenant_config_t {
  uint32_t struct_size;    /* sizeof(mr_tenant_config_t) */
  uint32_t struct_version; /* MR_TENANT_CONFIG_VERSION */
  const char* label;       /* copied; NULL = "" */
  uint32_t opcode_cap;     /* window size: local opcodes [0, opcode_cap) */
  uint32_t reserved;
  uint64_t max_outstanding_slots;
  uint64_t staging_bytes;    /* regions count the 64-byte lines they take */
  uint64_t resident_handles; /* buffers and regions count one each */
  mr_completion_fn on_completion; /* may be NULL */
  void* user_data;                /* passed to on_completion */
  /* version 2 */
  uint32_t grants_mode;           /* MR_GRANTS_ALL or MR_GRANTS_ONLY */
  uint32_t grant_count;           /* MR_GRANTS_ONLY: entries of grant_opcodes */
  const uint32_t* grant_opcodes;  /* local opcodes, copied; NULL only with grant_count 0 */
} mr_tenant_config_t;

mr_result_t mr_tenant_config_init_sized(mr_tenant_config_t* config, uint32_t struct_size);
static inline mr_result_t mr_tenant_config_init(mr_tenant_config_t* config) {
  return mr_tenant_config_init_sized(config, (uint32_t)sizeof(*config));
}

/* Registers a tenant: REGISTRY_FULL when no id or window is free. The caller
 * owns *out and frees it with mr_tenant_destroy. */
mr_result_t mr_tenant_register(mr_registry_t* registry, const mr_tenant_config_t* config,
                               mr_tenant_t** out);
/* Revokes the tenant: its new publishes fail with REVOKED, its queued slots
 * complete MR_STATUS_REVOKED, its buffers are freed. REVOKED if it already
 * was. The handle stays valid (counters, quiesce) until mr_tenant_destroy. */
mr_result_t mr_tenant_unregister(mr_registry_t* registry, mr_tenant_t* tenant);
/* Frees the handle (the tenant stays registered until unregistered or its
 * registry goes). Must not race with any other call on `tenant`. */
mr_result_t mr_tenant_destroy(mr_tenant_t* tenant);

typedef struct mr_tenant_info_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_tenant_info_t) */
  uint32_t id;          /* the slot's tenant field */
  uint32_t base_opcode; /* window [base_opcode, base_opcode + opcode_cap) */
  uint32_t opcode_cap;
  uint32_t revoked;     /* 1 once unregistered (or its registry or runtime gone) */
  uint32_t reserved;
} mr_tenant_info_t;
mr_result_t mr_tenant_get_info(mr_tenant_t* tenant, mr_tenant_info_t* info);

/* Publishes with tenant-local opcodes (request.tenant must be 0 or this
 * tenant's id). flags: MR_PUBLISH_KEEP_RESULT only. timeout_ns bounds the
 * wait for the outstanding-slot quota and then ring space; 0 fails at once
 * with BACKPRESSURE or RING_FULL. */
mr_result_t mr_tenant_publish(mr_tenant_t* tenant, const mr_slot_request_t* request,
                              uint32_t flags, int64_t timeout_ns, mr_ticket_t* ticket);
mr_result_t mr_tenant_publish_batch(mr_tenant_t* tenant, const mr_slot_request_t* requests,
                                    uint32_t count, uint32_t flags, int64_t timeout_ns,
                                    mr_ticket_t* first);
mr_result_t mr_tenant_wait(mr_tenant_t* tenant, const mr_ticket_t* ticket, int64_t timeout_ns,
                           mr_completion_t* completion);
mr_result_t mr_tenant_release(mr_tenant_t* tenant, const mr_ticket_t* ticket);
/* Waits until every published slot has drained; QUIESCE_TIMEOUT first. */
mr_result_t mr_tenant_quiesce(mr_tenant_t* tenant, int64_t timeout_ns);

/* Replaces the tenant's grants (TenantHandle::set_grants), a control
 * operation: it blocks until every executor parked between slots (at most
 * the runtime's control_timeout_ns; then TIMEOUT and nothing changed); no
 * slot runs under a mix of old and new grants. mode MR_GRANTS_ALL takes no
 * list (count 0); MR_GRANTS_ONLY takes `count` local opcodes (opcodes NULL
 * only with count 0, count at most MR_GRANTS_MAX_LIST). OPCODE_OUT_OF_RANGE
 * for an opcode outside the window, INVALID_ARGUMENT for one past the grant
 * limits (MR_GRANT_SYSTEM_END, MR_GRANT_USER_END); REVOKED once unregistered. */
mr_result_t mr_tenant_set_grants(mr_tenant_t* tenant, uint32_t mode, const uint32_t* opcodes,
                                 uint32_t count);
/* The grants as last set (TenantHandle::grants; still answers once revoked):
 * *mode, and for MR_GRANTS_ONLY the opcodes sorted without duplicates: the
 * first min(*count, capacity) of them into `opcodes` (NULL only with
 * capacity 0) and their number into *count (0 for MR_GRANTS_ALL); call again
 * with more room if *count > capacity. Never blocks. */
mr_result_t mr_tenant_get_grants(mr_tenant_t* tenant, uint32_t* mode, uint32_t* opcodes,
                                 uint32_t capacity, uint32_t* count);

/* TenantQuotaCounters and TenantRuntimeCounters in one struct. */
typedef struct mr_tenant_counters_t {
  uint32_t struct_size; /* set by the caller: sizeof(mr_tenant_counters_t) */
  uint32_t reserved;
  /* quotas (one consistent cut) */
  uint64_t max_outstanding_slots;
  uint64_t outstanding_slots;
  uint64_t staging_bytes_limit;
  uint64_t staging_bytes_in_use;
  uint64_t resident_handles_limit;
  uint64_t resident_handles_in_use;
  uint64_t resident_handles_reserved;
  uint64_t resident_buffers;
  /* the drain pump's attribution of the tenant's publishes */
  uint64_t published;
  uint64_t drained;
  uint64_t completed_ok;
  uint64_t faulted;
  uint64_t revoked;
  uint64_t aborted;
  /* by MR_FAULT_* code; 64 entries whatever MR_FAULT_CODE_COUNT is (fault
   * codes are 6 bits), so new codes never change the struct */
  uint64_t faults_by_code[MR_FAULT_MAX + 1];
  uint64_t backpressure_events;
  uint64_t pipeline_errors;
  /* the consumer's counts of slots carrying the tenant's id */
  uint64_t device_admitted;
  uint64_t device_out_of_window;
  uint64_t device_revoked;
  uint64_t device_not_granted; /* faulted MR_FAULT_NOT_GRANTED (opcode grants) */
  /* appended (an older caller's smaller struct gets the fields above) */
  uint64_t staging_region_bytes; /* sizes of the tenant's live staging regions */
  uint64_t staging_regions;      /* live staging regions of the tenant */
} mr_tenant_counters_t;
mr_result_t mr_tenant_get_counters(mr_tenant_t* tenant, mr_tenant_counters_t* counters);

/* Quota reservations (0 is a no-op; a refusal changes nothing). */
mr_result_t mr_tenant_reserve_staging_bytes(mr_tenant_t* tenant, uint64_t bytes);
mr_result_t mr_tenant_release_staging_bytes(mr_tenant_t* tenant, uint64_t bytes);
mr_result_t mr_tenant_reserve_resident_handles(mr_tenant_t* tenant, uint64_t count);
mr_result_t mr_tenant_release_resident_handles(mr_tenant_t* tenant, uint64_t count);

/* The tenant's own buffers, as the mr_buffer_* calls; each holds a resident
 * handle (as each of its regions does), and only this tenant's (and
 * tenant-less) slots may name them. Only these calls free them:
 * mr_buffer_free and mr_buffer_unregister* refuse a live tenant's buffer
 * (INVALID_ARGUMENT). */
mr_result_t mr_tenant_buffer_alloc(mr_tenant_t* tenant, uint64_t bytes, uint32_t* handle);
mr_result_t mr_tenant_buffer_free(mr_tenant_t* tenant, uint32_t handle);
mr_result_t mr_tenant_buffer_write(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                   const void* src, uint64_t bytes);
mr_result_t mr_tenant_buffer_read(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                  void* dst, uint64_t bytes);
mr_result_t mr_tenant_buffer_register(mr_tenant_t* tenant, void* memory, uint64_t bytes,
                                      uint32_t* handle);
mr_result_t mr_tenant_buffer_unregister(mr_tenant_t* tenant, uint32_t handle,
                                        int64_t timeout_ns);
/* With flags, as mr_buffer_unregister_ex (MR_UNREGISTER_FAIL_IF_IN_USE). */
mr_result_t mr_tenant_buffer_unregister_ex(mr_tenant_t* tenant, uint32_t handle,
                                           int64_t timeout_ns, uint32_t flags);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MEGARING_MEGARING_TENANTS_H_ */
