/* SPDX-License-Identifier: Apache-2.0 */
/*
 * megaring's C API, third part: staging regions (Runtime::create_region and
 * friends), descriptors and the staging opcodes' slots. Include
 * megaring/megaring.h, which includes this; its conventions hold here too.
 * runtime.hpp ("Staging regions") and slot_abi.h ("Staging") say what each
 * call does in full.
 *
 * A region is cut from the runtime's staging arena (host memory the consumer
 * reaches; mr_runtime_config_t.staging_arena_bytes, version 2) in 64-byte
 * lines and named by a handle ([15:0] index, [31:16] generation, never 0).
 * Its policy (MR_REGION_*, slot_abi.h) fixes what may change its bytes:
 *   MR_REGION_IMMUTABLE   write until mr_region_seal, never after; a
 *                         descriptor reads nothing before the seal;
 *   MR_REGION_APPEND_ONLY mr_region_append at the committed end only;
 *   MR_REGION_MUTABLE     anyone, anytime (MR_OP_BUFFER_TO_STAGING writes
 *                         results here); never named by a descriptor.
 * None of these calls publishes a slot or waits for one; the host's reads
 * and writes are not ordered with slots in flight on the same region: wait
 * for those first. Ranges are checked without overflow.
 */
#ifndef MEGARING_MEGARING_STAGING_H_
#define MEGARING_MEGARING_STAGING_H_

#include "megaring/megaring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Regions of the runtime (tenant-less) ------------------------------- */

/* bytes in [1, the arena's size]; OUT_OF_MEMORY when the arena (there is none
 * with staging_arena_bytes 0) or the region table is full; INVALID_ARGUMENT
 * for bytes 0 or another policy. */
mr_result_t mr_region_create(mr_runtime_t* runtime, uint32_t policy, uint64_t bytes,
                             uint32_t* handle);
/* Retires the handle (slots published after it fault MR_FAULT_BAD_REGION;
 * the bytes go back to the arena once every earlier slot completed). */
mr_result_t mr_region_free(mr_runtime_t* runtime, uint32_t handle);
/* Immutable (before the seal) or mutable regions. */
mr_result_t mr_region_write(mr_runtime_t* runtime, uint32_t handle, uint64_t offset,
                            const void* src, uint64_t bytes);
mr_result_t mr_region_seal(mr_runtime_t* runtime, uint32_t handle);
/* Append-only regions: adds at the committed end (published after the
 * bytes); *offset (may be NULL) gets where the bytes went. */
mr_result_t mr_region_append(mr_runtime_t* runtime, uint32_t handle, const void* src,
                             uint64_t bytes, uint64_t* offset);
/* Any region (results: after the slots that write them completed). */
mr_result_t mr_region_read(mr_runtime_t* runtime, uint32_t handle, uint64_t offset, void* dst,
                           uint64_t bytes);

/* ---- Regions of a tenant ------------------------------------------------
 * As above; each region holds one of the tenant's resident handles
 * (RESIDENT_BACKPRESSURE past the quota) and is charged its size rounded up
 * to 64-byte lines (the arena's granule) to the staging_bytes quota
 * (STAGING_BACKPRESSURE past it) until freed. Only the tenant's slots (and
 * tenant-less ones) may name them; another tenant's handle is
 * INVALID_ARGUMENT here, and mr_region_free refuses a live tenant's region
 * (INVALID_ARGUMENT: free it here). Unregistering the tenant frees them. */
mr_result_t mr_tenant_region_create(mr_tenant_t* tenant, uint32_t policy, uint64_t bytes,
                                    uint32_t* handle);
mr_result_t mr_tenant_region_free(mr_tenant_t* tenant, uint32_t handle);
mr_result_t mr_tenant_region_write(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                   const void* src, uint64_t bytes);
mr_result_t mr_tenant_region_seal(mr_tenant_t* tenant, uint32_t handle);
mr_result_t mr_tenant_region_append(mr_tenant_t* tenant, uint32_t handle, const void* src,
                                    uint64_t bytes, uint64_t* offset);
mr_result_t mr_tenant_region_read(mr_tenant_t* tenant, uint32_t handle, uint64_t offset,
                                  void* dst, uint64_t bytes);

/* ---- Descriptors and the staging opcodes' slots --------------------------
 * A descriptor names staged bytes without a copy: the consumer checks it
 * (handle, generation, owner, policy, range within what is committed) before
 * it reads a byte. The builders fill *out as megaring::ops does (tenant 0,
 * flags 0); publish it on a runtime, a producer, or a tenant (whose window
 * runs the built-in opcodes under their own numbers). They only fill a
 * struct: nothing is checked but the pointers and `reserved`. */
typedef struct mr_staging_descriptor_t {
  uint32_t region;   /* a region handle */
  uint32_t reserved; /* must be 0 */
  uint64_t offset;
  uint64_t bytes;
} mr_staging_descriptor_t;

/* MR_OP_STAGE_TO_BUFFER: the descriptor's bytes into buffer dst at dst_offset. */
mr_result_t mr_op_stage_to_buffer(const mr_staging_descriptor_t* source, uint32_t dst,
                                  uint64_t dst_offset, mr_slot_request_t* out);
/* MR_OP_BUFFER_TO_STAGING: bytes of buffer src at src_offset into a mutable
 * region at region_offset. */
mr_result_t mr_op_buffer_to_staging(uint32_t src, uint64_t src_offset, uint32_t region,
                                    uint64_t region_offset, uint64_t bytes,
                                    mr_slot_request_t* out);
/* MR_OP_AXPY_F32: y[i] = fmaf(alpha, x[i], y[i]) for `count` f32 elements
 * (4-aligned offsets; the ranges are the same or disjoint). */
mr_result_t mr_op_axpy_f32(uint32_t y, uint64_t y_offset, uint32_t x, uint64_t x_offset,
                           uint32_t count, float alpha, mr_slot_request_t* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MEGARING_MEGARING_STAGING_H_ */
