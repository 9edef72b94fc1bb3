# SPDX-License-Identifier: Apache-2.0
"""Producers from Python (Runtime.open_producer): rings of their own with a
priority class, their calls' results, batches, closing, the ring limit,
and that a producer's wait lets other Python threads run."""
import threading

import pytest

import megaring
from megaring import ops

DELAY_MAX_NS = 1_000_000_000


@pytest.fixture
def prt():
    """A CPU runtime with two producer rings."""
    with megaring.Runtime(backend="cpu", ring_capacity=256, workers=2, producer_rings=2) as runtime:
        yield runtime


def test_producer_calls_return_their_results(prt):
    with prt.open_producer() as p:
        assert p.ring in (1, 2) and p.priority == "normal"
        assert [p.call(ops.nop(i), timeout=30).result for i in (0, 7, 2 ** 64 - 1)] == [0, 7, 2 ** 64 - 1]
        t = p.publish(megaring.OP_NOP, 41, keep=True)
        assert p.wait(t, timeout=30).result == 41
        with pytest.raises(megaring.InvalidArgument):
            p.wait(t, timeout=30)  # a kept result is read once
        buf = prt.alloc_buffer(64)
        c = p.call(ops.store_u32(buf, 8, 0xC0FFEE), timeout=30)
        assert c.ok and c.result == 0xC0FFEE
        assert buf.read(8, 4) == (0xC0FFEE).to_bytes(4, "little")
        released = p.publish(ops.nop(9), keep=True)
        p.release(released)
        with pytest.raises(megaring.InvalidArgument):
            p.wait(released, timeout=30)
    assert prt.stats()["published"] == 0  # nothing went through ring 0


def test_batch_tickets_complete_exactly_once(prt):
    with prt.open_producer() as p:
        before = p.done_count
        tickets = p.publish_batch([ops.nop(100 + i) for i in range(50)], keep=True)
        assert [t.value for t in tickets] == list(range(before, before + 50))
        assert [p.wait(t, timeout=30).result for t in tickets] == [100 + i for i in range(50)]
        plain = p.publish_batch([ops.nop(i) for i in range(200)])  # not kept: counted only
        p.wait_done(plain[-1], timeout=30)
        assert p.done_count == before + 250 == plain[-1].value + 1
        assert p.call(ops.fence(), timeout=30).ok
        assert p.done_count == before + 251


def test_priority_round_trip_and_set_priority(prt):
    for name in ("critical", "bulk", "normal"):
        with prt.open_producer(name) as p:
            assert p.priority == name
            assert p.call(ops.nop(3), timeout=30).result == 3
    with prt.open_producer("bulk") as p:
        for name in ("critical", "normal", "bulk", "critical"):
            p.set_priority(name)
            assert p.priority == name
        with pytest.raises(megaring.InvalidArgument) as err:
            p.set_priority("urgent")
        assert isinstance(err.value, ValueError) and err.value.code == megaring.Result.INVALID_ARGUMENT
        assert p.priority == "critical"  # unchanged
        assert p.call(ops.nop(4), timeout=30).result == 4
    with pytest.raises(megaring.InvalidArgument):
        prt.open_producer("high")
    with prt.open_producer() as a, prt.open_producer() as b:  # the bad name took no ring
        assert {a.ring, b.ring} == {1, 2}


def test_closed_producer_raises(prt):
    with prt.open_producer() as p:
        t = p.publish(ops.nop(1), keep=True)
        assert not p.closed
    assert p.closed and "closed" in repr(p)
    calls = [lambda: p.publish(ops.nop(1)), lambda: p.publish_batch([ops.nop(1)]),
             lambda: p.wait(t, timeout=1), lambda: p.wait_done(t, timeout=1),
             lambda: p.release(t), lambda: p.call(ops.nop(1), timeout=1),
             lambda: p.done_count, lambda: p.priority, lambda: p.ring,
             lambda: p.set_priority("bulk")]
    for call in calls:
        with pytest.raises(megaring.InvalidArgument, match="closed") as err:
            call()
        assert err.value.code == megaring.Result.INVALID_ARGUMENT
    p.close()  # again: nothing to do


def test_too_many_producers():
    with megaring.Runtime(backend="cpu", ring_capacity=64, producer_rings=1) as rt:
        p = rt.open_producer()
        with pytest.raises(megaring.RingFull) as err:
            rt.open_producer("critical")
        assert err.value.code == megaring.Result.RING_FULL
        p.close()  # gives the ring back
        with rt.open_producer("critical") as q:
            assert q.ring == 1 and q.call(ops.nop(8), timeout=30).result == 8
    with megaring.Runtime(backend="cpu", ring_capacity=64) as rt:  # producer_rings=0
        with pytest.raises(megaring.InvalidArgument):
            rt.open_producer()


def test_critical_call_completes_while_bulk_keeps_the_consumer_busy(prt):
    with prt.open_producer("bulk") as bulk, prt.open_producer("critical") as critical:
        busy = bulk.publish_batch([ops.delay_ns(200_000) for _ in range(200)])
        assert critical.call(ops.nop(77), timeout=60).result == 77
        buf = prt.alloc_buffer(8)
        assert critical.call(ops.atomic_add(buf, 0, 5), timeout=60).ok
        assert buf.read(0, 8) == (5).to_bytes(8, "little")
        bulk.wait_done(busy[-1], timeout=120)
        assert bulk.done_count == busy[-1].value + 1


def test_wait_releases_the_gil():
    """A thread waits on the last of twenty one-second slots (ten seconds on
    two workers) while this thread aborts the runtime: only if the wait let
    go of the GIL can abort() run before they complete, and the wait then
    answers ABORTED instead of the slot's result."""
    rt = megaring.Runtime(backend="cpu", ring_capacity=64, workers=2, producer_rings=1)
    p = rt.open_producer()
    p.publish_batch([ops.delay_ns(DELAY_MAX_NS) for _ in range(19)])
    last = p.publish(ops.delay_ns(DELAY_MAX_NS), keep=True)
    started = threading.Event()
    outcome = {}

    def waiter():
        started.set()
        try:
            outcome["completion"] = p.wait(last, timeout=60)
        except megaring.Error as e:
            outcome["error"] = e

    thread = threading.Thread(target=waiter)
    thread.start()
    assert started.wait(60)
    rt.abort()
    thread.join(90)
    assert not thread.is_alive()
    if "error" in outcome:
        assert outcome["error"].code in (megaring.Result.ABORTED, megaring.Result.SHUTDOWN)
    else:
        assert outcome["completion"].status == megaring.STATUS_ABORTED
    p.close()


def test_threads_share_a_producer(prt):
    """Calls from several threads are serialised (the C++ Producer takes one
    thread at a time): every result is its own."""
    with prt.open_producer() as p:
        results = {}

        def worker(k):
            results[k] = [p.call(ops.nop(k * 1000 + i), timeout=60).result for i in range(100)]

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert all(not t.is_alive() for t in threads)
        assert results == {k: [k * 1000 + i for i in range(100)] for k in range(3)}
        assert p.done_count == 300


def test_producer_after_shutdown():
    rt = megaring.Runtime(backend="cpu", ring_capacity=64, producer_rings=1)
    p = rt.open_producer("bulk")
    t = p.publish(ops.nop(3), keep=True)
    rt.shutdown()  # completes what the producer published before
    assert p.wait(t, timeout=30).result == 3
    for call in (lambda: p.publish(ops.nop(1)), lambda: p.call(ops.nop(1), timeout=1),
                 lambda: p.set_priority("critical")):
        with pytest.raises(megaring.Shutdown) as err:
            call()
        assert err.value.code == megaring.Result.SHUTDOWN
    assert p.priority == "bulk" and p.done_count == t.value + 1
    del rt  # the producer holds the runtime: its calls still answer
    assert p.priority == "bulk"
    p.close()
