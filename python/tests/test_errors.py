# SPDX-License-Identifier: Apache-2.0
"""Errors: each result code raises its class, with the code; slot faults are
completions with their fault code."""
import re

import pytest

import megaring
from megaring import ops


def test_result_codes_match_the_library():
    def letters(s):
        return re.sub("[^a-z]", "", s.lower())[:4]

    for code in megaring.Result:  # same numbers: the names agree
        assert letters(megaring._core.result_string(code.value)) == letters(code.name)
    # Every code the library has, this package has (a new one needs a class).
    assert megaring._core.result_string(len(megaring.Result)) == "unknown result"
    err = megaring.Error(megaring.Result.SHUTDOWN, "closed")
    assert str(err) == "shut down: closed"


def test_invalid_arguments():
    with pytest.raises(megaring.InvalidArgument) as err:
        megaring.Runtime(backend="cpu", ring_capacity=3)  # not a power of two
    assert err.value.code == megaring.Result.INVALID_ARGUMENT
    assert isinstance(err.value, ValueError) and isinstance(err.value, megaring.Error)
    with pytest.raises(megaring.InvalidArgument):
        megaring.Runtime(backend="gpux")
    with pytest.raises(megaring.InvalidArgument, match="unknown config"):
        megaring.Runtime(backend="cpu", ring_capacty=8)
    with pytest.raises(megaring.InvalidArgument):
        megaring.Runtime(backend="cpu", workers=-1)


def test_runtime_errors(rt):
    t = rt.publish(ops.nop(1))  # not kept: nothing to wait() for
    with pytest.raises(megaring.InvalidArgument):
        rt.wait(t, timeout=1)
    with pytest.raises(megaring.InvalidArgument):
        rt.wait(rt.publish(ops.nop(1), keep=True), timeout=-1)
    slow = rt.publish(ops.delay_ns(300_000_000), keep=True)
    with pytest.raises(megaring.Timeout) as err:
        rt.wait(slow, timeout=0)
    assert isinstance(err.value, TimeoutError) and err.value.code == megaring.Result.TIMEOUT
    assert rt.wait(slow, timeout=30).result == 300_000_000
    with pytest.raises(megaring.InvalidArgument):
        megaring.Slot(megaring.OP_NOP, 1, 2, 3, 4, 5, 6)  # six words
    with pytest.raises(megaring.InvalidArgument):
        rt.publish(ops.nop(1), 2)  # a Slot takes no more words
    with pytest.raises(megaring.InvalidArgument):
        rt.publish(megaring.OP_NOP, "7")
    with pytest.raises(megaring.InvalidArgument):
        rt.publish(megaring.OP_NOP, 2**64)


def test_ring_full_when_not_blocking():
    with megaring.Runtime(backend="cpu", ring_capacity=4, workers=1) as rt:
        rt.publish(ops.delay_ns(500_000_000))
        with pytest.raises(megaring.RingFull) as err:
            for _ in range(64):
                rt.publish(ops.nop(0), block=False)
        assert err.value.code == megaring.Result.RING_FULL


def test_faults_are_completions(rt):
    buf = rt.alloc_buffer(64)
    c = rt.call(ops.store_u32(buf, 2, 1))  # misaligned
    assert not c.ok and c.status == megaring.STATUS_FAULT
    assert megaring.FAULT_NAMES[c.fault] == "misaligned"
    c = rt.call(ops.fill(buf, 60, 8, 0))  # out of bounds
    assert megaring.FAULT_NAMES[c.fault] == "out of bounds"
    c = rt.call(megaring.Slot(200))  # unused built-in opcode
    assert megaring.FAULT_NAMES[c.fault] == "unknown opcode"
    buf.free()
    c = rt.call(ops.store_u32(buf.handle, 0, 1))  # freed handle
    assert megaring.FAULT_NAMES[c.fault] == "bad handle"
    s = rt.stats()
    assert s["faulted"] == 4 and s["faults_by_code"][c.fault] == 1


# Out-of-range or wrongly typed Python values raise megaring.InvalidArgument
# naming the argument (or the argument parser's TypeError), never a bare
# RuntimeError carrying "std::bad_cast" from inside the binding.
BAD_VALUES = {
    "ops_handle_negative": ("buffer handle", lambda rt, buf, reg, ten, region: ops.store_u32(-1, 0, 1)),
    "ops_handle_2_32": ("buffer handle", lambda rt, buf, reg, ten, region: ops.store_u32(2**32, 0, 1)),
    "region_handle_2_32": ("region handle",
                           lambda rt, buf, reg, ten, region: megaring.StagingDescriptor(2**32, 0, 1)),
    "timeout_str": ("timeout", lambda rt, buf, reg, ten, region: rt.wait_done(rt.publish(ops.nop(0)),
                                                                              timeout="1")),
    "timeout_huge_negative_int": ("timeout", lambda rt, buf, reg, ten, region: rt.wait_done(
        rt.publish(ops.nop(0)), timeout=-10**400)),
    "buffer_read_negative_nbytes": ("nbytes", lambda rt, buf, reg, ten, region: buf.read(0, -1)),
    "buffer_read_nbytes_2_64": ("nbytes", lambda rt, buf, reg, ten, region: buf.read(0, 2**64)),
    "buffer_read_str_nbytes": ("nbytes", lambda rt, buf, reg, ten, region: buf.read(0, "4")),
    "region_read_negative_nbytes": ("nbytes", lambda rt, buf, reg, ten, region: region.read(0, -1)),
    "region_descriptor_nbytes_2_64": ("nbytes",
                                      lambda rt, buf, reg, ten, region: region.descriptor(0, 2**64)),
    "set_grants_negative": ("opcodes", lambda rt, buf, reg, ten, region: ten.set_grants([-1])),
    "set_grants_not_iterable": ("opcodes", lambda rt, buf, reg, ten, region: ten.set_grants(5)),
    "register_grants_negative": ("grants", lambda rt, buf, reg, ten, region: reg.register("u", grants=[-1])),
    "register_grants_2_32": ("grants", lambda rt, buf, reg, ten, region: reg.register("u", grants=[2**32])),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_out_of_range_values_raise_invalid_argument_naming_the_argument(case):
    word, call = BAD_VALUES[case]
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=1,
                          staging_arena_bytes=1 << 16) as rt:
        buf = rt.alloc_buffer(64)
        region = rt.create_region("mutable", 64)
        with megaring.TenantRegistry(rt, pump="manual") as registry:
            tenant = registry.register("t")
            with pytest.raises(megaring.InvalidArgument, match=word):
                call(rt, buf, registry, tenant, region)
            assert tenant.grants() is None  # a refused set_grants changed nothing
            assert registry.stats()["live_tenants"] == 1  # nor did a refused register
        region.free()
        buf.free()


def test_a_timeout_past_a_floats_range_is_forever(rt):
    # Anything past a century is forever, an int too large for a float too.
    rt.wait_done(rt.publish(ops.nop(0)), timeout=10**400)
    assert rt.call(ops.nop(3), timeout=float("inf")).result == 3
