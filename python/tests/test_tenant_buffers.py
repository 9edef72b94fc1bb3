# SPDX-License-Identifier: Apache-2.0
"""A tenant's buffers from Python (Tenant.alloc_buffer / register_buffer):
charged to its resident-handle quota, usable by its slots only, a numpy
array registered without a copy, and what a buffer does once its tenant,
registry or runtime is gone."""
import gc

import pytest

import megaring
from megaring import ops

np = pytest.importorskip("numpy")

DELAY_MAX_NS = 1_000_000_000


def run(tenant, slot):
    return tenant.wait(tenant.publish(slot, keep=True, timeout=30), timeout=30)


def test_quota_counts_tenant_buffers(rt):
    with megaring.TenantRegistry(rt) as registry:
        t = registry.register("q", resident_handles=3)
        a, b = t.alloc_buffer(64), t.alloc_buffer(0)
        arr = np.zeros(4, dtype=np.uint32)
        c = t.register_buffer(arr)
        assert a.tenant_owned and c.tenant_owned and c.external and not a.external
        q = t.quota_counters()
        assert (q["resident_buffers"], q["resident_handles_in_use"]) == (3, 3)
        for make in (lambda: t.alloc_buffer(64), lambda: t.register_buffer(np.zeros(4, np.uint8))):
            with pytest.raises(megaring.ResidentBackpressure) as err:
                make()
            assert err.value.code == megaring.Result.RESIDENT_BACKPRESSURE
            assert (err.value.value, err.value.limit) == (3, 3)
        assert rt.alloc_buffer(64).tenant_owned is False  # the runtime's own: no tenant quota
        b.free()
        assert t.quota_counters()["resident_buffers"] == 2
        d = t.alloc_buffer(16)  # the freed handle's place
        assert t.quota_counters()["resident_handles_in_use"] == 3
        for buf in (a, c, d):
            buf.free()
        assert t.quota_counters()["resident_handles_in_use"] == 0


def test_tenant_slots_use_its_buffer(rt):
    with megaring.TenantRegistry(rt) as registry:
        t = registry.register("fill")
        buf = t.alloc_buffer(256)
        c = run(t, ops.fill(buf, 16, 64, 0x5A))
        assert c.ok and c.result == 64
        assert buf.read() == bytes(16) + b"\x5a" * 64 + bytes(176)
        src = t.alloc_buffer(32)
        src.write(bytes(range(32)))
        assert run(t, ops.copy(buf, 200, src, 0, 32)).ok
        assert buf.read(200, 32) == bytes(range(32))
        view = np.from_dlpack(buf)  # the binding's memory: a zero-copy view
        assert view[16] == 0x5A and bytes(view[200:232]) == bytes(range(32))


def test_another_tenants_slot_faults(rt):
    with megaring.TenantRegistry(rt) as registry:
        owner, other = registry.register("owner"), registry.register("other")
        buf = owner.alloc_buffer(64)
        c = run(other, ops.fill(buf, 0, 64, 0xEE))
        assert c.status == megaring.STATUS_FAULT
        assert megaring.FAULT_NAMES[c.fault] == "bad handle"
        other.quiesce(timeout=30)
        assert other.counters()["faults_by_code"][c.fault] == 1
        assert buf.read() == bytes(64)  # untouched
        assert run(owner, ops.fill(buf, 0, 64, 0x11)).ok  # its owner's slot may
        assert buf.read(0, 2) == b"\x11\x11"


def test_register_a_numpy_array(rt):
    with megaring.TenantRegistry(rt) as registry:
        t = registry.register("np")
        arr = np.zeros(16, dtype=np.uint32)
        buf = t.register_buffer(arr)
        assert buf.nbytes == 64 and buf.external
        assert run(t, ops.store_u32(buf, 8, 0xDEADBEEF)).result == 0xDEADBEEF
        assert arr[2] == 0xDEADBEEF and arr.sum() == 0xDEADBEEF  # the array itself: no copy
        arr[5] = 41
        assert run(t, ops.reduce_add_u32(buf, 0, 16)).result == 0xDEADBEEF + 41
        assert buf.read(20, 4) == np.uint32(41).tobytes()
        assert t.quota_counters()["resident_buffers"] == 1
        buf.free()
        assert not buf.live and t.quota_counters()["resident_buffers"] == 0
        c = run(t, ops.store_u32(buf.handle, 0, 1))
        assert megaring.FAULT_NAMES[c.fault] == "bad handle"
        assert arr[0] == 0  # never touched again


def test_free_fails_while_a_slot_may_use_the_buffer():
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=1) as rt:
        with megaring.TenantRegistry(rt) as registry:
            t = registry.register("busy")
            arr = np.zeros(4, dtype=np.uint32)
            buf = t.register_buffer(arr)
            # Two one-second DELAY slots hold the only worker.
            t.publish(ops.delay_ns(DELAY_MAX_NS), timeout=30)
            last = t.publish(ops.delay_ns(DELAY_MAX_NS), keep=True, timeout=30)
            with pytest.raises(megaring.InUse) as err:
                buf.free(while_in_use="fail")
            assert err.value.code == megaring.Result.IN_USE
            assert buf.live and t.quota_counters()["resident_buffers"] == 1
            assert t.wait(last, timeout=60).ok
            assert run(t, ops.store_u32(buf, 4, 7)).ok and arr[1] == 7  # still registered
            buf.free(while_in_use="fail")
            assert not buf.live and t.quota_counters()["resident_buffers"] == 0


def test_buffers_outlive_their_tenant_registry_and_runtime_reference():
    rt = megaring.Runtime(backend="cpu", ring_capacity=64, workers=2)
    registry = megaring.TenantRegistry(rt)
    t = registry.register("gone")
    arr = np.zeros(4, dtype=np.uint32)
    ext, own = t.register_buffer(arr), t.alloc_buffer(64)
    del rt
    gc.collect()  # the tenant and its buffers keep the runtime
    assert run(t, ops.store_u32(ext, 0, 3)).ok and arr[0] == 3
    registry.unregister(t)
    for call in (lambda: own.read(), lambda: own.write(b"x"), lambda: t.alloc_buffer(8),
                 lambda: t.register_buffer(np.zeros(4, np.uint8))):
        with pytest.raises(megaring.Revoked) as err:
            call()
        assert err.value.code == megaring.Result.REVOKED
    ext.free(timeout=30)  # the revoked tenant retired them: the memory comes back
    own.free(timeout=30)
    assert not ext.live and not own.live
    t2 = registry.register("closed")
    buf = t2.alloc_buffer(64)
    registry.close()
    with pytest.raises(megaring.Revoked):
        buf.read()
    buf.free(timeout=30)
    assert not buf.live
    with pytest.raises(megaring.Revoked):
        registry.register("late")  # the registry is closed: no new tenants
    assert arr[0] == 3


def test_tenant_buffer_after_shutdown(rt):
    registry = megaring.TenantRegistry(rt)
    t = registry.register("late")
    buf = t.alloc_buffer(64)
    rt.shutdown()
    try:
        buf.read()  # an error or the bytes, never a crash
    except megaring.Error as e:
        assert e.code in (megaring.Result.SHUTDOWN, megaring.Result.REVOKED)
    buf.free()
    assert not buf.live
    registry.close()
