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


if __name__ == "__main__":
    main()
