# SPDX-License-Identifier: Apache-2.0
"""Ctrl-C: every blocking call that releases the GIL lets a signal handler
raise within it (the binding waits in slices and checks for signals between
them), and a slice that ran out had no effect: an interrupted publish
published nothing.

Each test blocks the call on a suspended runtime and raises from a SIGALRM
handler. A watchdog thread resumes the runtime after WATCHDOG_S so that a
call that cannot be interrupted ends instead of hanging; the handler records
whether the watchdog had fired when it ran: it must not have (the signal
interrupted the call, not its end).
"""
import signal
import threading

import pytest

import megaring
from megaring import ops

WATCHDOG_S = 15.0
ALARM_S = 0.3  # a few of the binding's 100 ms slices


class Interrupted(Exception):
    pass


def _interrupt_while(rt, blocking_call):
    """Runs blocking_call() with an alarm pending; returns whether the
    watchdog (which resumes rt) had fired when the alarm's handler ran."""
    fired = threading.Event()
    done = threading.Event()
    seen = {}

    def watchdog():
        if not done.wait(WATCHDOG_S):
            fired.set()
            rt.resume()

    def handler(signum, frame):
        seen["watchdog_fired"] = fired.is_set()
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    dog = threading.Thread(target=watchdog)
    dog.start()
    try:
        signal.setitimer(signal.ITIMER_REAL, ALARM_S)
        with pytest.raises(Interrupted):
            blocking_call()
            # A call that returned: give the pending handler its turn here.
            threading.Event().wait(2 * ALARM_S)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        done.set()
        dog.join()
    return seen["watchdog_fired"]


@pytest.fixture
def suspended():
    """A one-worker CPU runtime with a producer ring, suspended: nothing
    completes until the test resumes it."""
    rt = megaring.Runtime(backend="cpu", ring_capacity=64, workers=1, producer_rings=1)
    rt.suspend(timeout=60)
    try:
        yield rt
    finally:
        if rt.is_suspended:
            rt.resume()
        rt.shutdown()


def test_wait_is_interruptible(suspended):
    # The positive control: Runtime.wait was sliced before the others were.
    t = suspended.publish(ops.nop(1), keep=True)
    assert not _interrupt_while(suspended, lambda: suspended.wait(t, timeout=None))


@pytest.mark.parametrize("publisher", ["runtime", "producer"])
@pytest.mark.parametrize("call", ["publish", "publish_batch"])
def test_publish_on_a_full_ring_is_interruptible_and_publishes_nothing(suspended, publisher, call):
    rt = suspended
    target = rt if publisher == "runtime" else rt.open_producer()
    first = target.publish(ops.nop(0), keep=True)
    for i in range(1, rt.capacity):
        target.publish(ops.nop(i))
    with pytest.raises(megaring.RingFull):
        target.publish(ops.nop(0), block=False)
    if call == "publish":
        blocked = lambda: target.publish(ops.nop(0), timeout=None)  # noqa: E731
    else:
        blocked = lambda: target.publish_batch([ops.nop(0), ops.nop(1)], timeout=None)  # noqa: E731
    assert not _interrupt_while(rt, blocked)
    rt.resume()
    # The interrupted call's slices took no ticket: the next one follows the
    # ring's last, and every slot before it runs once.
    assert target.wait(first, timeout=60).ok
    after = target.publish(ops.nop(7), keep=True)
    assert after.value == first.value + rt.capacity
    assert target.wait(after, timeout=60).result == 7
    if publisher == "runtime":
        assert rt.stats()["published"] == rt.capacity + 1
    else:
        target.close()


@pytest.mark.parametrize("call", ["publish", "publish_batch"])
def test_tenant_publish_waiting_for_quota_is_interruptible_and_publishes_nothing(suspended, call):
    rt = suspended
    with megaring.TenantRegistry(rt) as registry:
        tenant = registry.register("t", max_outstanding_slots=2)
        first = tenant.publish(megaring.OP_NOP, 1, keep=True)
        tenant.publish(megaring.OP_NOP, 2)
        with pytest.raises(megaring.Backpressure):
            tenant.publish(megaring.OP_NOP, 3, timeout=0)
        if call == "publish":
            blocked = lambda: tenant.publish(megaring.OP_NOP, 3, timeout=None)  # noqa: E731
        else:
            blocked = lambda: tenant.publish_batch(  # noqa: E731
                [megaring.Slot(megaring.OP_NOP, 3)], timeout=None)
        assert not _interrupt_while(rt, blocked)
        assert tenant.published_count == 2
        assert tenant.quota_counters()["outstanding_slots"] == 2
        rt.resume()
        assert tenant.wait(first, timeout=60).result == 1
        tenant.quiesce(timeout=60)
        assert tenant.published_count == 2 and tenant.drained_count == 2
        assert rt.stats()["published"] == 2


@pytest.mark.parametrize("owner", ["runtime", "tenant"])
def test_buffer_free_waiting_for_a_slot_is_interruptible(suspended, owner):
    rt = suspended
    with megaring.TenantRegistry(rt) as registry:
        tenant = registry.register("t")
        buf = (rt if owner == "runtime" else tenant).alloc_buffer(64)
        if owner == "runtime":
            rt.publish(ops.store_u32(buf, 0, 7))  # outstanding while suspended
        else:
            tenant.publish(megaring.OP_STORE_U32, buf, 0, 7)
        assert not _interrupt_while(rt, lambda: buf.free(timeout=None))
        assert buf.live  # interrupted: free() again waits on
        rt.resume()
        buf.free(timeout=60)
        assert not buf.live
