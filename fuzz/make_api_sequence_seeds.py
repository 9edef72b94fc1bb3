#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes fuzz/corpus/api_sequence/: seeds for the API-sequence fuzzer.

Each seed is a byte string that api_sequence.cpp replays as calls; these are
deterministic pseudo-random strings of several lengths (the driver gives
every byte string a meaning), plus a few shaped ones that reach the rare
lifecycle calls. Run from anywhere: python3 fuzz/make_api_sequence_seeds.py
"""
import pathlib
import random

OUT = pathlib.Path(__file__).resolve().parent / "corpus" / "api_sequence"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(13)
    for length in (64, 128, 256, 512, 768, 1024, 1536, 2048):
        for k in range(2):
            (OUT / f"random-{length}-{k}").write_bytes(bytes(rng.randrange(256) for _ in range(length)))
    # Publishing-heavy: op 2 (publish) on every tenant, NOP batches, then pump.
    publish = bytearray()
    for i in range(120):
        publish += bytes([2, i % 3, 0, 1 + i % 3, 0, 0, 1, 0, 0])
        if i % 5 == 4:
            publish += bytes([7, 0])
    (OUT / "publish-and-pump").write_bytes(bytes(publish))
    # Each lifecycle call (op 17, draw 0 mod 16) after some traffic.
    for which, name in ((0, "shutdown"), (16, "abort"), (32, "registry-gone"), (48, "runtime-gone")):
        (OUT / f"lifecycle-{name}").write_bytes(bytes(publish[:300]) + bytes([17, 0, which]) +
                                               bytes(publish[:200]))
    write_region_seeds()


# Staging regions (api_sequence.cpp, steps 20 .. 23): shaped sequences that
# reach what random bytes rarely chain up (a tenant with a sealed or
# appended region and a buffer, a descriptor slot that moves bytes).
TENANT_CONFIG = bytes([1, 12, 7, 2, 3])  # window 16, 8 outstanding, staging 2^64-1, 3 handles
IMMUTABLE, APPEND_ONLY, MUTABLE = 1, 3, 5  # policy selectors
OWN, OTHERS, RUNTIMES, STALE = [0, 0], [5], [6, 0], [7, 0]  # pick_region


def small(n):  # region_range: n < 80
    return [1, n]


def create(t, policy, size, runtime=False):  # size: 1 .. 128
    return [20, t, 0 if runtime else 1, policy, 8, size - 1]


def io(t, what, pick=OWN, offset=0, length=0, runtime=False):  # 0 write, 1 append, 2 seal, 3 read
    return [21, t, 0 if runtime else 1, what] + pick + ([] if what == 1 else small(offset)) + small(length)


def free(t, pick=OWN, runtime=False):
    return [22, t, 0 if runtime else 1] + pick


def alloc_buffer(t, lines=2):
    return [13, t, 4, lines, 0]


def write_buffer(t, length):
    return [15, t, 1, 8, 0, 8, length] + [0] * 8 + [1]


def descriptor(t, to_buffer, pick=OWN, offset=0, length=0, buffer_offset=0):
    return ([23, t, 1 if to_buffer else 0, 1] + pick + small(offset) + small(length) + [0] * 8 +
            [1] + small(buffer_offset))


def write_region_seeds():
    prefix = [5] + list(TENANT_CONFIG) * 3
    seeds = {
        "regions-immutable": create(0, IMMUTABLE, 100) + io(0, 0, offset=4, length=60) +
        descriptor(0, True, length=8) +  # not sealed: nothing committed, OUT_OF_BOUNDS
        io(0, 2) + alloc_buffer(0) + descriptor(0, True, offset=2, length=70, buffer_offset=3) +
        descriptor(0, True, offset=40, length=61) + io(0, 0, length=1) + io(0, 3, offset=1, length=77) +
        descriptor(0, False, length=4) + free(0, runtime=True) + free(0) + descriptor(0, True, pick=STALE),
        "regions-append-only": create(1, APPEND_ONLY, 64) + io(1, 1, length=30) + alloc_buffer(1) +
        descriptor(1, True, offset=10, length=20) + descriptor(1, True, offset=10, length=21) +
        io(1, 1, length=34) + io(1, 1, length=1) + descriptor(1, True, length=64, buffer_offset=64) +
        io(1, 0, length=1) + io(1, 2) + io(1, 3, offset=0, length=64),
        "regions-mutable": create(2, MUTABLE, 128) + alloc_buffer(2) + io(2, 0, offset=0, length=50) +
        write_buffer(2, 100) + descriptor(2, False, offset=7, length=77, buffer_offset=5) +
        io(2, 3, offset=0, length=79) + descriptor(2, True, length=1) +
        descriptor(2, False, offset=60, length=69) + io(2, 1, length=1) + io(2, 2),
        "regions-runtime-and-strangers": create(0, IMMUTABLE, 90, runtime=True) +
        create(0, MUTABLE, 20) + io(0, 0, pick=RUNTIMES, length=5, runtime=True) +
        io(0, 2, pick=RUNTIMES, runtime=True) + io(1, 3, pick=OTHERS, length=1) +
        descriptor(1, True, pick=OTHERS) + alloc_buffer(0) + descriptor(0, True, pick=RUNTIMES, length=5) +
        free(1, pick=OTHERS) + free(1, pick=OTHERS, runtime=True) + free(0, pick=RUNTIMES, runtime=True) +
        free(0, pick=STALE, runtime=True) + create(1, IMMUTABLE, 128) * 3 + create(2, MUTABLE, 128) * 6,
        "regions-revoked": create(1, IMMUTABLE, 33) + create(1, APPEND_ONLY, 65) + io(1, 1, pick=[0, 1], length=9) +
        free(1, runtime=True) + [1, 1, 0] + free(1, pick=STALE, runtime=True) + io(1, 3, pick=STALE) +
        free(1, pick=STALE) + descriptor(1, True, pick=STALE) + create(1, MUTABLE, 1) + create(0, MUTABLE, 1) + free(0, pick=STALE, runtime=True),
    }
    for name, steps in seeds.items():
        (OUT / name).write_bytes(bytes(prefix + steps))


if __name__ == "__main__":
    main()
