#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes the seed corpus of fuzz/consumer_fuzz.cpp into fuzz/corpus/consumer/.

Deterministic: the same files every run (stdlib only). Each file is one slot
against one buffer table and one tenant table, in the input layout described
at the top of consumer_fuzz.cpp, and is named by what it covers. Rerun after
changing the layout or the cases:

    python3 fuzz/make_consumer_seeds.py [OUT_DIR]

Every file in OUT_DIR is replaced (files this script does not write are
removed, so the directory holds exactly these seeds).
"""
import os
import struct
import sys

# slot_abi.h
OP_NOP, OP_STORE_U32, OP_ATOMIC_ADD, OP_FILL, OP_COPY = 1, 2, 3, 4, 5
OP_REDUCE_ADD_U32, OP_FENCE, OP_DELAY_NS, OP_READ_CLOCK = 6, 7, 8, 9
OP_STAGE_TO_BUFFER, OP_BUFFER_TO_STAGING, OP_AXPY_F32 = 10, 11, 12
F32_TWO_AND_HALF = 0x40200000  # 2.5f
OP_USER_BASE = 256
OP_TENANT_BASE = 0x00100000
TENANT_FREE, TENANT_ACTIVE, TENANT_REVOKED = 0, 1, 2
DELAY_MAX_NS = 1_000_000_000
U64 = (1 << 64) - 1

# consumer_fuzz.cpp's layout
SLOT_BYTES = 64
BUFFER_RECORDS = 80
BUFFER_RECORD_BYTES = 24
TENANT_RECORDS = BUFFER_RECORDS + 8 * BUFFER_RECORD_BYTES
TENANT_RECORD_BYTES = 24
REGION_COUNT = TENANT_RECORDS + 8 * TENANT_RECORD_BYTES
REGION_RECORDS = REGION_COUNT + 8
REGION_RECORD_BYTES = 32
INPUT_BYTES = REGION_RECORDS + 6 * REGION_RECORD_BYTES
assert INPUT_BYTES == 664
IMMUTABLE, APPEND_ONLY, MUTABLE = 1, 2, 3  # MR_REGION_*
# Record modes (see consumer_fuzz.cpp). The seeds write index-consistent ids
# in full and let the "derived" modes recompute them, which changes nothing;
# the hostile seeds set the raw bits.
BUF_RAW_HANDLE, BUF_OWNER_IS_SLOT_TENANT = 1, 2
TEN_RAW_ID, TEN_BASE_FROM_SLOT = 1, 2


def handle(index, generation):
    return (generation << 16) | index


def tenant_id(index, generation):
    return (generation << 16) | index


T1 = tenant_id(1, 1)  # ACTIVE, window [0x100000, +256)
T2 = tenant_id(2, 1)  # REVOKED
T3 = tenant_id(3, 2)  # ACTIVE, window [0x100100, +16)

# The default tables:
# (size, content seed, handle, owner, retire ticket (0 = live), mode)
BUFFERS = [
    (256, 0x11, handle(0, 1), 0, 0, 0),     # 0: runtime's, live
    (64, 0x22, handle(1, 2), T1, 0, 0),     # 1: tenant T1's
    (4096, 0x33, handle(2, 1), 0, 100, 0),  # 2: runtime's, freed at ticket 100
    (0, 0x44, handle(3, 3), 0, 0, 0),       # 3: empty buffer
    (16, 0x55, 0, 0, 0, BUF_RAW_HANDLE),    # 4: free entry (handle word 0)
    (13, 0x66, handle(5, 1), T3, 0, 0),     # 5: tenant T3's, odd size
]
# (tenant id, state, base opcode, cap, mode[, grant seed]); index 0 is never
# a tenant. Grant seed 0 (the default) grants every opcode; another seeds the
# grant words (consumer_fuzz.cpp, grant_words).
TENANTS = [
    (0, TENANT_FREE, 0, 0, TEN_RAW_ID),
    (T1, TENANT_ACTIVE, OP_TENANT_BASE, 256, 0),
    (T2, TENANT_REVOKED, OP_TENANT_BASE + 0x100, 256, 0),
    (T3, TENANT_ACTIVE, OP_TENANT_BASE + 0x100, 16, 0),
]
B0, B1, B2, B3, B4, B5 = (b[2] for b in BUFFERS)
B4 = handle(4, 1)  # what a slot names at the free entry
# Staging regions: (size, content seed, handle, owner, policy, committed,
# retire ticket (0 = live), mode); modes as the buffers'.
REGIONS = [
    (200, 0x71, handle(0, 5), 0, IMMUTABLE, 200, 0, 0),   # R0: runtime's, sealed
    (128, 0x72, handle(1, 2), 0, APPEND_ONLY, 40, 0, 0),  # R1: 40 of 128 bytes committed
    (96, 0x73, handle(2, 1), 0, MUTABLE, 0, 0, 0),        # R2: runtime's, mutable
    (64, 0x74, handle(3, 9), 0, IMMUTABLE, 64, 50, 0),    # R3: freed at ticket 50
    (64, 0x75, handle(4, 1), T1, IMMUTABLE, 64, 0, 0),    # R4: T1's, sealed
    (32, 0x76, handle(5, 3), T1, MUTABLE, 0, 0, 0),       # R5: T1's, mutable
]
R0, R1, R2, R3, R4, R5 = (r[2] for r in REGIONS)


def make_input(opcode, args=(), tenant=0, flags=0, reserved=0, ticket=42,
               buffers=BUFFERS, tenants=TENANTS, regions=REGIONS):
    args = list(args) + [0] * (5 - len(args))
    out = bytearray(INPUT_BYTES)
    struct.pack_into("<QIIII5Q", out, 0, 0, opcode, tenant, flags, reserved,
                     *[a & U64 for a in args])
    struct.pack_into("<Q", out, 64, ticket)
    out[72] = len(buffers) - 1
    out[73] = len(tenants) - 1
    for i, (size, seed, h, owner, retire, mode) in enumerate(buffers):
        struct.pack_into("<HBBIIIQ", out, BUFFER_RECORDS + i * BUFFER_RECORD_BYTES,
                         size, seed, mode, h, owner, 0, retire)
    for i, (t, state, base, cap, mode, *grant) in enumerate(tenants):
        at = TENANT_RECORDS + i * TENANT_RECORD_BYTES
        struct.pack_into("<IIIIB", out, at, t, state, base, cap, mode)
        out[at + 17:at + 24] = (grant[0] if grant else 0).to_bytes(7, "little")
    out[REGION_COUNT] = len(regions)
    for i, (size, seed, h, owner, policy, committed, retire, mode) in enumerate(regions):
        struct.pack_into("<HBBIIIQQ", out, REGION_RECORDS + i * REGION_RECORD_BYTES,
                         size, seed, mode, h, owner, policy, committed & U64, retire)
    return bytes(out)


def local(tenant_base, op):
    return tenant_base + op


SEEDS = {
    # Zero bytes: opcode 0, tenant 0, one buffer and one tenant entry.
    "zero_input": b"",
    # Built-ins, tenant-less, valid.
    "nop-echo": make_input(OP_NOP, [0x0123456789ABCDEF]),
    "store_u32-ok": make_input(OP_STORE_U32, [B0, 8, 0xDEADBEEF]),
    "atomic_add-ok": make_input(OP_ATOMIC_ADD, [B0, 16, 5]),
    "fill-ok": make_input(OP_FILL, [B0, 3, 100, 0xA5]),
    "fill-empty_buffer_zero_bytes": make_input(OP_FILL, [B3, 0, 0, 1]),
    "copy-same_buffer_adjacent": make_input(OP_COPY, [B0, 0, B0, 64, 64]),
    "copy-across_buffers": make_input(OP_COPY, [B2, 4000, B0, 0, 96], ticket=99),
    "reduce_add_u32-ok": make_input(OP_REDUCE_ADD_U32, [B2, 64, 1000]),
    "fence": make_input(OP_FENCE, ticket=(1 << 40) + 7),
    "delay_ns-zero": make_input(OP_DELAY_NS, [0]),
    "delay_ns-abandoned_on_abort": make_input(OP_DELAY_NS, [DELAY_MAX_NS]),
    "read_clock": make_input(OP_READ_CLOCK),
    "axpy_f32-across_buffers": make_input(OP_AXPY_F32, [B2, 64, B0, 8, (F32_TWO_AND_HALF << 32) | 50]),
    "axpy_f32-same_range": make_input(OP_AXPY_F32, [B0, 0, B0, 0, (F32_TWO_AND_HALF << 32) | 16]),
    # No region table: every region is unknown.
    "stage_to_buffer-no_region": make_input(OP_STAGE_TO_BUFFER, [1, 0, 8, B0, 0], regions=[]),
    "buffer_to_staging-no_region": make_input(OP_BUFFER_TO_STAGING, [1, 0, 8, B0, 0], regions=[]),
    # Staging regions (slot_abi.h order: BAD_REGION, REGION_POLICY,
    # OUT_OF_BOUNDS for the region, then the buffer's BAD_HANDLE, OUT_OF_BOUNDS).
    "stage_to_buffer-immutable_ok": make_input(OP_STAGE_TO_BUFFER, [R0, 10, 100, B0, 5]),
    "stage_to_buffer-immutable_whole": make_input(OP_STAGE_TO_BUFFER, [R0, 0, 200, B2, 3000]),
    "stage_to_buffer-append_within_committed": make_input(OP_STAGE_TO_BUFFER, [R1, 0, 40, B0, 0]),
    "stage_to_buffer-append_past_committed": make_input(OP_STAGE_TO_BUFFER, [R1, 0, 41, B0, 0]),
    "stage_to_buffer-append_empty_at_committed": make_input(OP_STAGE_TO_BUFFER, [R1, 40, 0, B3, 0]),
    "stage_to_buffer-mutable_policy": make_input(OP_STAGE_TO_BUFFER, [R2, 0, 1, B0, 0]),
    "stage_to_buffer-unknown_policy": make_input(
        OP_STAGE_TO_BUFFER, [R2, 0, 1, B0, 0],
        regions=REGIONS[:2] + [(96, 0x73, R2, 0, 7, 96, 0, 0)] + REGIONS[3:]),
    "stage_to_buffer-committed_over_size": make_input(
        OP_STAGE_TO_BUFFER, [R0, 0, 201, B0, 0],
        regions=[(200, 0x71, R0, 0, IMMUTABLE, U64, 0, 0)] + REGIONS[1:]),
    "stage_to_buffer-unsealed": make_input(
        OP_STAGE_TO_BUFFER, [R0, 0, 1, B0, 0],
        regions=[(200, 0x71, R0, 0, IMMUTABLE, 0, 0, 0)] + REGIONS[1:]),
    "stage_to_buffer-offset_wraps": make_input(OP_STAGE_TO_BUFFER, [R0, U64, 2, B0, 0]),
    "stage_to_buffer-retired": make_input(OP_STAGE_TO_BUFFER, [R3, 0, 8, B0, 0], ticket=50),
    "stage_to_buffer-before_retire": make_input(OP_STAGE_TO_BUFFER, [R3, 0, 8, B0, 0], ticket=49),
    "stage_to_buffer-generation_mismatch": make_input(OP_STAGE_TO_BUFFER, [handle(0, 6), 0, 8, B0, 0]),
    "stage_to_buffer-index_past_table": make_input(OP_STAGE_TO_BUFFER, [handle(6, 1), 0, 8, B0, 0]),
    "stage_to_buffer-region_over_32_bits": make_input(OP_STAGE_TO_BUFFER, [R0 | (1 << 32), 0, 8, B0, 0]),
    "stage_to_buffer-region_policy_before_bad_buffer": make_input(OP_STAGE_TO_BUFFER, [R2, 0, 8, 0, 0]),
    "stage_to_buffer-bad_buffer": make_input(OP_STAGE_TO_BUFFER, [R0, 0, 8, handle(0, 2), 0]),
    "stage_to_buffer-buffer_out_of_bounds": make_input(OP_STAGE_TO_BUFFER, [R0, 0, 100, B1, 0]),
    "stage_to_buffer-tenant_own_region": make_input(
        local(OP_TENANT_BASE, OP_STAGE_TO_BUFFER), [R4, 4, 60, B1, 2], tenant=T1),
    "stage_to_buffer-tenant_runtime_region": make_input(
        local(OP_TENANT_BASE, OP_STAGE_TO_BUFFER), [R0, 0, 8, B1, 0], tenant=T1),
    "stage_to_buffer-tenant_foreign_region": make_input(
        local(OP_TENANT_BASE + 0x100, OP_STAGE_TO_BUFFER), [R4, 0, 8, B5, 0], tenant=T3),
    "buffer_to_staging-mutable_ok": make_input(OP_BUFFER_TO_STAGING, [R2, 16, 80, B0, 100]),
    "buffer_to_staging-mutable_past_size": make_input(OP_BUFFER_TO_STAGING, [R2, 90, 7, B0, 0]),
    "buffer_to_staging-immutable_policy": make_input(OP_BUFFER_TO_STAGING, [R0, 0, 1, B0, 0]),
    "buffer_to_staging-append_policy": make_input(OP_BUFFER_TO_STAGING, [R1, 40, 1, B0, 0]),
    "buffer_to_staging-bad_buffer": make_input(OP_BUFFER_TO_STAGING, [R2, 0, 1, B4, 0]),
    "buffer_to_staging-buffer_retired": make_input(OP_BUFFER_TO_STAGING, [R2, 0, 8, B2, 0], ticket=100),
    "buffer_to_staging-tenant_own_region": make_input(
        local(OP_TENANT_BASE, OP_BUFFER_TO_STAGING), [R5, 0, 32, B1, 32], tenant=T1),
    "buffer_to_staging-tenant_runtime_region": make_input(
        local(OP_TENANT_BASE, OP_BUFFER_TO_STAGING), [R2, 0, 8, B1, 0], tenant=T1),
    "buffer_to_staging-owner_from_slot": make_input(
        local(OP_TENANT_BASE + 0x100, OP_BUFFER_TO_STAGING), [R2, 0, 13, B5, 0], tenant=T3,
        regions=REGIONS[:2] + [(96, 0x73, R2, 0, MUTABLE, 0, 0, 2)] + REGIONS[3:]),
    # Bad arguments.
    "store_u32-value_over_32_bits": make_input(OP_STORE_U32, [B0, 8, 1 << 32]),
    "fill-byte_over_8_bits": make_input(OP_FILL, [B0, 0, 4, 0x100]),
    "copy-overlap_by_one_byte": make_input(OP_COPY, [B0, 10, B0, 25, 16]),
    "axpy_f32-shifted_overlap": make_input(OP_AXPY_F32, [B0, 0, B0, 4, 8]),
    "axpy_f32-misaligned": make_input(OP_AXPY_F32, [B0, 2, B2, 0, 1]),
    "delay_ns-over_max": make_input(OP_DELAY_NS, [DELAY_MAX_NS + 1]),
    # Bounds and alignment.
    "store_u32-out_of_bounds_by_one": make_input(OP_STORE_U32, [B0, 253, 1]),
    "fill-length_wraps_offset": make_input(OP_FILL, [B0, 1, U64, 0]),
    "reduce_add_u32-count_overflows_bytes": make_input(OP_REDUCE_ADD_U32, [B0, 0, 1 << 62]),
    "atomic_add-misaligned": make_input(OP_ATOMIC_ADD, [B0, 12, 1]),

    # Bad handles.
    "bad_handle-zero": make_input(OP_STORE_U32, [0, 0, 1]),
    "bad_handle-over_32_bits": make_input(OP_STORE_U32, [B0 | (1 << 32), 0, 1]),
    "bad_handle-index_past_table": make_input(OP_FILL, [handle(6, 1), 0, 1, 0]),
    "bad_handle-generation_mismatch": make_input(OP_FILL, [handle(1, 3), 0, 1, 0]),
    "bad_handle-free_entry": make_input(OP_FILL, [B4, 0, 1, 0]),
    # Entry 4 holds a raw handle word whose index bits say 0 (entry 0's
    # handle): a slot naming index 4 never matches it.
    "bad_handle-entry_index_mismatch": make_input(
        OP_STORE_U32, [handle(4, 1), 0, 1],
        buffers=BUFFERS[:4] + [(16, 0x55, B0, 0, 0, BUF_RAW_HANDLE)] + BUFFERS[5:]),
    "bad_handle-retired": make_input(OP_REDUCE_ADD_U32, [B2, 0, 4], ticket=100),
    "bad_handle-copy_src": make_input(OP_COPY, [B0, 0, handle(2, 9), 0, 8]),
    # Tenants.
    "tenant-store_own_buffer": make_input(local(OP_TENANT_BASE, OP_STORE_U32),
                                          [B1, 60, 0xFFFFFFFF], tenant=T1),
    "tenant-foreign_buffer": make_input(local(OP_TENANT_BASE, OP_ATOMIC_ADD),
                                        [B0, 0, 1], tenant=T1),
    # T3's window placed by the derived mode: base = slot opcode - FILL.
    "tenant-fill_whole_odd_buffer": make_input(
        0x00ABCDEF, [B5, 0, 13, 7], tenant=T3,
        tenants=TENANTS[:3] + [(T3, TENANT_ACTIVE, OP_FILL, 16, TEN_BASE_FROM_SLOT)]),
    "tenant-revoked": make_input(local(OP_TENANT_BASE + 0x100, OP_NOP), [1], tenant=T2),
    "tenant-out_of_window": make_input(OP_TENANT_BASE + 16, tenant=T3),
    # Grants (seeds chosen with grant_words: seed 1 denies NOP and grants
    # user opcode 257, seed 2 the reverse for NOP and denies every opcode
    # the bitmap does not name, seed 3 denies NOP and 257).
    "tenant-not_granted-builtin": make_input(
        local(OP_TENANT_BASE, OP_NOP), [5], tenant=T1,
        tenants=TENANTS[:1] + [(T1, TENANT_ACTIVE, OP_TENANT_BASE, 512, 0, 1)]),
    "tenant-granted-builtin": make_input(
        local(OP_TENANT_BASE, OP_NOP), [5], tenant=T1,
        tenants=TENANTS[:1] + [(T1, TENANT_ACTIVE, OP_TENANT_BASE, 512, 0, 2)]),
    "tenant-not_granted-user": make_input(
        local(OP_TENANT_BASE, OP_USER_BASE + 1), tenant=T1,
        tenants=TENANTS[:1] + [(T1, TENANT_ACTIVE, OP_TENANT_BASE, 512, 0, 3)]),
    "tenant-granted-user": make_input(
        local(OP_TENANT_BASE, OP_USER_BASE + 1), tenant=T1,
        tenants=TENANTS[:1] + [(T1, TENANT_ACTIVE, OP_TENANT_BASE, 512, 0, 1)]),
    "tenant-not_granted-unnamed": make_input(
        local(OP_TENANT_BASE, 100), tenant=T1,
        tenants=TENANTS[:1] + [(T1, TENANT_ACTIVE, OP_TENANT_BASE, 512, 0, 2)]),
    "tenant-stale_generation": make_input(local(OP_TENANT_BASE, OP_NOP), tenant=tenant_id(1, 7)),
    "tenant-index_past_table": make_input(OP_TENANT_BASE, tenant=tenant_id(5, 1)),
    "tenantless-opcode_in_tenant_range": make_input(OP_TENANT_BASE + 2, [B0, 0, 1]),
    # Fixed fields and unknown opcodes.
    "reserved_flags": make_input(OP_NOP, flags=1 << 16),
    "reserved_word": make_input(OP_NOP, reserved=1),
    "unknown_opcode-user": make_input(OP_USER_BASE + 1),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "consumer")
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        if name not in SEEDS:
            os.remove(os.path.join(out_dir, name))
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {out_dir}")


if __name__ == "__main__":
    main()
