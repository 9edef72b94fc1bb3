# SPDX-License-Identifier: Apache-2.0
"""Staging from Python: a job end to end (stage inputs in an immutable
region, copy them to buffers by descriptor, axpy, copy the result back to a
mutable region, read and compare), append-only regions, a tenant's regions
and quota, and what is refused."""
import pytest

import megaring
from megaring import ops

np = pytest.importorskip("numpy")


@pytest.fixture
def srt():
    """A CPU-backend runtime with a 64 KiB staging arena."""
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=2,
                          staging_arena_bytes=64 * 1024, max_regions=8) as runtime:
        yield runtime


def ok(rt, slot):
    c = rt.call(slot, timeout=60)
    assert c.ok, (slot, c)
    return c


def test_a_staging_job_end_to_end(srt):
    n = 1000
    x = (np.arange(n, dtype=np.float32) % 97) * np.float32(0.25) - np.float32(5)
    y = np.float32(1) / (np.arange(n, dtype=np.float32) + np.float32(3))
    alpha = np.float32(-2.5)
    inputs = srt.create_region("immutable", 2 * x.nbytes)
    assert inputs.policy == "immutable" and inputs.nbytes == 2 * x.nbytes and inputs.live
    inputs.write(x)                  # numpy arrays through the buffer protocol
    inputs.write(y.tobytes(), x.nbytes)  # and bytes
    # Before the seal a descriptor reads nothing.
    bx, by = srt.alloc_buffer(x.nbytes), srt.alloc_buffer(y.nbytes)
    c = srt.call(ops.stage_to_buffer(inputs.descriptor(0, x.nbytes), bx), timeout=60)
    assert megaring.FAULT_NAMES[c.fault] == "out of bounds"
    inputs.seal()
    with pytest.raises(megaring.InvalidArgument):
        inputs.write(b"late")
    results = srt.create_region(megaring.REGION_MUTABLE, y.nbytes)
    ok(srt, ops.stage_to_buffer(inputs.descriptor(0, x.nbytes), bx, 0))
    ok(srt, ops.stage_to_buffer(megaring.StagingDescriptor(inputs, x.nbytes, y.nbytes), by))
    ok(srt, ops.axpy_f32(by, 0, bx, 0, n, float(alpha)))
    assert ok(srt, ops.buffer_to_staging(by, 0, results, 0, y.nbytes)).result == y.nbytes
    got = np.frombuffer(results.read(), dtype=np.float32)
    # fmaf, bit for bit: the product of two floats is exact in double.
    want = (np.float64(alpha) * x.astype(np.float64) + y.astype(np.float64)).astype(np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    into = np.empty(n, dtype=np.float32)
    results.read_into(into)
    assert np.array_equal(into.view(np.uint32), got.view(np.uint32))
    assert results.read(4, 4) == got[1:2].tobytes()
    # Policy: a descriptor into a mutable region faults; a freed region too.
    c = srt.call(ops.stage_to_buffer(results.descriptor(), bx), timeout=60)
    assert megaring.FAULT_NAMES[c.fault] == "region policy"
    handle = inputs.handle
    inputs.free()
    assert not inputs.live
    inputs.free()  # twice is harmless
    c = srt.call(ops.stage_to_buffer(megaring.StagingDescriptor(handle, 0, 4), bx), timeout=60)
    assert megaring.FAULT_NAMES[c.fault] == "bad region"
    with pytest.raises(megaring.InvalidArgument, match="freed"):
        inputs.read()


def test_the_fused_multiply_add_bit_for_bit(srt):
    # fmaf rounds once: pick values where that differs from a*x then +y.
    x = np.array([1.0 + 2.0 ** -23] * 4, dtype=np.float32)
    y = np.array([-(1.0 + 2.0 ** -22)] * 4, dtype=np.float32)
    alpha = 1.0 + 2.0 ** -23
    region = srt.create_region("immutable", 32)
    region.write(np.concatenate([x, y]))
    region.seal()
    out = srt.create_region("mutable", 16)
    bx, by = srt.alloc_buffer(16), srt.alloc_buffer(16)
    ok(srt, ops.stage_to_buffer(region.descriptor(0, 16), bx))
    ok(srt, ops.stage_to_buffer(region.descriptor(16, 16), by))
    ok(srt, ops.axpy_f32(by, 0, bx, 0, 4, alpha))
    ok(srt, ops.buffer_to_staging(by, 0, out, 0, 16))
    got = np.frombuffer(out.read(), dtype=np.float32)
    exact = float(x[0]) * alpha + float(y[0])  # in double: exact here, as fmaf's one rounding
    assert got[0] == np.float32(exact) and got[0] == 2.0 ** -46
    assert np.all(got == got[0])


def test_append_only_regions(srt):
    log = srt.create_region("append_only", 256)
    buf = srt.alloc_buffer(256)
    assert log.append(b"first;") == 0
    assert log.append(bytearray(b"second")) == 6
    c = srt.call(ops.stage_to_buffer(log.descriptor(0, 13), buf), timeout=60)
    assert megaring.FAULT_NAMES[c.fault] == "out of bounds"  # only 12 committed
    ok(srt, ops.stage_to_buffer(log.descriptor(0, 12), buf))
    assert buf.read(0, 12) == b"first;second"
    assert log.read(6, 6) == b"second"
    with pytest.raises(megaring.InvalidArgument):
        log.write(b"x")
    with pytest.raises(megaring.InvalidArgument):
        log.seal()


def test_regions_refuse_bad_arguments(srt):
    with pytest.raises(megaring.InvalidArgument, match="policy"):
        srt.create_region("readonly", 64)
    with pytest.raises(megaring.InvalidArgument, match="policy"):
        srt.create_region(7, 64)
    with pytest.raises(megaring.InvalidArgument):
        srt.create_region("mutable", 0)
    with pytest.raises(megaring.OutOfMemory):
        srt.create_region("mutable", 2 ** 64 - 1)
    with pytest.raises(TypeError):  # nanobind refuses a negative size before the call
        srt.create_region("mutable", -1)
    r = srt.create_region("mutable", 64)
    with pytest.raises(megaring.InvalidArgument, match="past the end"):
        r.write(b"x" * 65)
    with pytest.raises(megaring.InvalidArgument, match="past the end"):
        r.write(b"x", 64)
    with pytest.raises(megaring.InvalidArgument, match="past the end"):
        r.read(1, 2 ** 64 - 1)
    with pytest.raises(megaring.InvalidArgument, match="past the end"):
        r.read(65)
    with pytest.raises(megaring.InvalidArgument, match="past the end"):
        r.descriptor(60, 5)
    with pytest.raises(megaring.InvalidArgument, match="buffer-protocol"):
        r.write("text")
    with pytest.raises(megaring.InvalidArgument, match="writable"):
        r.read_into(b"immutable bytes")
    with pytest.raises(megaring.InvalidArgument):
        r.seal()  # a mutable region is never sealed
    with pytest.raises(megaring.InvalidArgument):
        megaring.StagingDescriptor("region", 0, 1)
    # The arena is 64 KiB and the table 8 entries.
    with pytest.raises(megaring.OutOfMemory):
        srt.create_region("mutable", 64 * 1024)
    assert r.read(0, 0) == b""


def test_no_arena_no_regions(rt):
    with pytest.raises(megaring.OutOfMemory, match="no staging arena"):
        rt.create_region("mutable", 64)


def test_a_tenants_regions(srt):
    with megaring.TenantRegistry(srt) as registry:
        a = registry.register("a", staging_bytes=1024)
        b = registry.register("b")
        r = a.create_region("immutable", 600)  # charged its 64-byte lines: 640
        with pytest.raises(megaring.StagingBackpressure) as err:
            a.create_region("mutable", 385)  # 448 more
        assert err.value.limit == 1024 and err.value.value == 640
        q = a.quota_counters()
        assert q["staging_region_bytes"] == 640 and q["staging_regions"] == 1
        assert q["staging_bytes_in_use"] == 640 and q["resident_handles_in_use"] == 1
        r.write(b"tenant a's bytes")
        r.seal()
        assert r.read(0, 16) == b"tenant a's bytes"
        # A tenant-less slot may read it; a's slots may not name a runtime buffer.
        buf = srt.alloc_buffer(64)
        ok(srt, ops.stage_to_buffer(r.descriptor(0, 16), buf))
        assert buf.read(0, 16) == b"tenant a's bytes"
        t = a.publish(ops.stage_to_buffer(r.descriptor(0, 16), buf), keep=True, timeout=30)
        assert megaring.FAULT_NAMES[a.wait(t, timeout=30).fault] == "bad handle"
        # b's slots cannot reach a's region.
        t = b.publish(ops.stage_to_buffer(r.descriptor(0, 16), buf), keep=True, timeout=30)
        assert megaring.FAULT_NAMES[b.wait(t, timeout=30).fault] == "bad region"
        r.free()
        assert a.quota_counters()["staging_region_bytes"] == 0
        a.create_region("append_only", 1024)  # the whole quota back
        registry.unregister(a)
        with pytest.raises(megaring.Revoked):
            a.create_region("mutable", 8)
