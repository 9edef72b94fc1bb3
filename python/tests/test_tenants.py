# SPDX-License-Identifier: Apache-2.0
"""Tenants: publish / wait / quiesce, counters, and the completion callback
that the pump thread runs with the GIL taken."""
import sys
import threading

import pytest

import megaring
from megaring import ops


def test_callback_counts_and_counters(rt):
    seen = {"a": [], "b": []}
    with megaring.TenantRegistry(rt) as registry:
        a = registry.register("a", on_completion=lambda c: seen["a"].append(c.result))
        b = registry.register("b", on_completion=lambda c: seen["b"].append(c.result),
                              max_outstanding_slots=8)
        assert a.label == "a" and a.id != b.id
        assert a.base_opcode != b.base_opcode and a.global_opcode(1) == a.base_opcode + 1
        kept = []
        for i in range(100):
            t = a.publish(megaring.OP_NOP, i, keep=(i % 10 == 0), timeout=30)
            if t.kept:
                kept.append((i, t))
            b.publish(ops.nop(1000 + i), timeout=30)  # quota of 8: waits on the pump
        for i, t in kept:
            assert a.wait(t, timeout=30).result == i
        a.quiesce(timeout=30)
        b.quiesce(timeout=30)
        assert seen["a"] == list(range(100))  # every completion once, in ticket order
        assert seen["b"] == list(range(1000, 1100))
        ca = a.counters()
        assert ca["published"] == ca["drained"] == ca["completed_ok"] == 100
        assert ca["device_admitted"] == 100 and ca["faulted"] == 0
        assert b.quota_counters()["outstanding_slots"] == 0
        assert registry.stats()["live_tenants"] == 2
        registry.unregister(b)
        assert b.revoked
        with pytest.raises(megaring.Revoked) as err:
            b.publish(ops.nop(0))
        assert err.value.code == megaring.Result.REVOKED


def test_callback_errors_do_not_stop_the_pump(rt, monkeypatch):
    calls = []
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.append(u.exc_value))

    def bad(c):
        calls.append(c.result)
        raise ValueError("callback bug")

    with megaring.TenantRegistry(rt) as registry:
        t = registry.register("bad", on_completion=bad)
        for i in range(5):
            t.publish(ops.nop(i), timeout=30)
        t.quiesce(timeout=30)
        assert calls == list(range(5))
        assert len(reported) == 5 and all(isinstance(e, ValueError) for e in reported)
        assert t.counters()["drained"] == 5


def test_tenant_faults_and_quota_errors(rt):
    with megaring.TenantRegistry(rt) as registry:
        t = registry.register("t", opcode_cap=16, max_outstanding_slots=1)
        with pytest.raises(megaring.OpcodeOutOfRange) as err:
            t.publish(megaring.Slot(20))  # outside its window of 16
        assert err.value.value == 20 and err.value.limit == 16
        t.set_grants([megaring.OP_NOP])
        c = t.wait(t.publish(ops.delay_ns(1000), keep=True, timeout=30), timeout=30)
        assert megaring.FAULT_NAMES[c.fault] == "not granted"
        t.set_grants(None)  # the whole window again
        slow = t.publish(ops.delay_ns(300_000_000), keep=True, timeout=30)
        with pytest.raises(megaring.Backpressure) as err:
            t.publish(ops.nop(0), timeout=0)
        assert err.value.value == 1 and err.value.limit == 1
        assert t.wait(slow, timeout=30).ok
        t.quiesce(timeout=30)


def test_manual_pump_and_threads(rt):
    count = []
    lock = threading.Lock()

    def on_completion(c):
        with lock:
            count.append(c.ticket)

    with megaring.TenantRegistry(rt, pump="manual") as registry:
        t = registry.register("m", on_completion=on_completion, max_outstanding_slots=64)

        def producer():
            for i in range(50):
                t.wait(t.publish(ops.nop(i), keep=True, timeout=30), timeout=30)

        workers = [threading.Thread(target=producer) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        t.quiesce(timeout=30)
        assert len(count) == 150 and len(set(count)) == 150


def test_close_races_pump_once_and_register_from_threads():
    # close() against calls other threads have in flight on the registry:
    # each call holds the registry until it returns, so close() never frees
    # it under them; a call that starts after close() raises Revoked.
    # (Before the fix the registry could be freed under a pump_once; the
    # race rarely shows as a crash on a 2-core machine: this is a stress.)
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=1) as rt:
        for _ in range(200):
            registry = megaring.TenantRegistry(rt, pump="manual")
            tenant = registry.register("base")
            tenant.publish(megaring.OP_NOP, 1)
            start = threading.Barrier(4)
            errors = []

            def hammer(call):
                start.wait()
                try:
                    for _ in range(200):
                        call()
                except megaring.Revoked:
                    pass  # closed: the registry answers, it is not freed
                except Exception as e:  # noqa: BLE001  anything else is a failure
                    errors.append(e)

            threads = [threading.Thread(target=hammer, args=(c,)) for c in (
                registry.pump_once,
                lambda: registry.unregister(registry.register("x")),
                lambda: registry.stats())]
            for t in threads:
                t.start()
            start.wait()
            registry.close()
            for t in threads:
                t.join()
            assert errors == []
            assert tenant.revoked  # destroyed by close() or by the last call in flight
            with pytest.raises(megaring.Revoked):
                registry.pump_once()
