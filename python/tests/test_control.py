# SPDX-License-Identifier: Apache-2.0
"""The control plane from Python: the new config keys, control_stats(),
opcode grants at registration and after (grants()), and Buffer.free's
while_in_use='fail' (megaring.InUse while a slot may still use it)."""

import pytest

import megaring
from megaring import ops

np = pytest.importorskip("numpy")

DELAY_MAX_NS = 1_000_000_000


def test_new_config_keys():
    with megaring.Runtime(backend="cpu", ring_capacity=64, dump_on_wait_timeout=True,
                          control_timeout=2.5, staging_arena_bytes=4096, max_regions=1) as rt:
        rt.create_region("mutable", 64)
        with pytest.raises(megaring.OutOfMemory):
            rt.create_region("mutable", 64)  # max_regions=1 reached the runtime
    for bad in ({"control_timeout": 0}, {"control_timeout": 7200}, {"control_timeout": -1},
                {"dump_on_wait_timeout": "yes"}, {"staging_arena_bytes": 2 ** 41},
                {"max_regions": 0}):
        with pytest.raises(megaring.InvalidArgument):
            megaring.Runtime(backend="cpu", **bad)


def test_grants_at_registration_then_set(rt):
    with megaring.TenantRegistry(rt) as registry:
        t = registry.register("g", grants=[megaring.OP_NOP, megaring.OP_NOP])
        assert t.grants() == [megaring.OP_NOP]
        assert t.wait(t.publish(ops.nop(3), keep=True, timeout=30), timeout=30).result == 3
        c = t.wait(t.publish(ops.fence(), keep=True, timeout=30), timeout=30)
        assert megaring.FAULT_NAMES[c.fault] == "not granted"
        assert t.counters()["device_not_granted"] == 1
        before = rt.control_stats()
        t.set_grants([megaring.OP_FENCE, megaring.OP_READ_CLOCK, megaring.OP_FENCE])
        assert t.grants() == [megaring.OP_FENCE, megaring.OP_READ_CLOCK]
        assert t.wait(t.publish(ops.fence(), keep=True, timeout=30), timeout=30).ok
        t.set_grants(None)
        assert t.grants() is None
        after = rt.control_stats()
        assert after["operations"] == before["operations"] + 2
        assert after["rolled_back"] == after["cancelled"] == 0
        assert 0 < after["last_ns"] <= after["max_ns"] <= after["total_ns"]
        with pytest.raises(megaring.OpcodeOutOfRange):
            t.set_grants([16])  # the window is 16 wide
        with pytest.raises(megaring.OpcodeOutOfRange):
            registry.register("bad", grants=[99])
        assert t.grants() is None and rt.control_stats()["operations"] == after["operations"]
        empty = registry.register("none", grants=[])
        assert empty.grants() == []
        c = empty.wait(empty.publish(ops.nop(1), keep=True, timeout=30), timeout=30)
        assert megaring.FAULT_NAMES[c.fault] == "not granted"
        registry.unregister(t)
        with pytest.raises(megaring.Revoked):
            t.set_grants(None)
        assert t.grants() is None  # still answers


def test_free_fails_while_a_slot_may_use_the_buffer():
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=1) as rt:
        arr = np.zeros(16, dtype=np.uint32)
        buf = rt.register_buffer(arr)
        # Two one-second DELAY slots hold the only worker.
        rt.publish(megaring.OP_DELAY_NS, DELAY_MAX_NS)
        last = rt.publish(megaring.OP_DELAY_NS, DELAY_MAX_NS)
        with pytest.raises(megaring.InUse) as err:
            buf.free(while_in_use="fail")
        assert err.value.code == megaring.Result.IN_USE
        assert buf.live
        with pytest.raises(megaring.InvalidArgument, match="while_in_use"):
            buf.free(while_in_use="later")
        rt.wait_done(last, timeout=60)
        assert rt.call(ops.store_u32(buf, 4, 0xC0FFEE), timeout=60).ok  # still registered
        assert arr[1] == 0xC0FFEE
        buf.free(while_in_use="fail")  # nothing outstanding: at once
        assert not buf.live
        c = rt.call(ops.store_u32(buf.handle, 8, 1), timeout=60)
        assert megaring.FAULT_NAMES[c.fault] == "bad handle" and arr[2] == 0
