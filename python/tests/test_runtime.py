# SPDX-License-Identifier: Apache-2.0
"""Runtime basics: publish / wait / call, batches from several threads with
the GIL released, stats, context-manager shutdown."""
import threading
import time

import pytest

import megaring
from megaring import ops


def test_nop_echo(rt):
    assert rt.backend == "cpu"
    c = rt.call(ops.nop(7))
    assert c.ok and c.status == megaring.STATUS_OK and c.result == 7
    t = rt.publish(megaring.OP_NOP, 2**64 - 1, keep=True)
    assert t.kept
    c = rt.wait(t, timeout=30)
    assert c.ok and c.result == 2**64 - 1 and c.ticket == t.value
    # An opcode with its words, the same as the builder's slot.
    assert rt.call(megaring.Slot(megaring.OP_NOP, 99)).result == 99
    rt.wait_done(rt.publish(ops.nop(1)), timeout=30)
    s = rt.stats()
    assert s["published"] == 4 and s["completed_ok"] == 4 and s["faulted"] == 0


def test_fill_then_read_back(rt):
    buf = rt.alloc_buffer(4096)
    assert buf.read() == bytes(4096)  # zero-filled
    c = rt.call(ops.fill(buf, 100, 200, 0xAB))
    assert c.ok and c.result == 200
    data = buf.read()
    assert data[100:300] == b"\xab" * 200
    assert data[:100] == bytes(100) and data[300:] == bytes(4096 - 300)
    buf.write(b"\x01\x02\x03\x04", offset=1000)
    assert rt.call(ops.copy(buf, 2000, buf, 1000, 4)).ok
    assert buf.read(2000, 4) == b"\x01\x02\x03\x04"
    np = pytest.importorskip("numpy")
    out = np.zeros(4, dtype=np.uint8)
    buf.read_into(out, offset=2000)
    assert out.tolist() == [1, 2, 3, 4]
    with pytest.raises(megaring.InvalidArgument):
        buf.read(4000, 200)  # past the end
    buf.free()
    with pytest.raises(megaring.InvalidArgument):
        buf.read()


def test_batch_conservation_from_threads():
    threads, batches, per_batch = 4, 40, 16
    errors = []
    results = {}
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=2) as rt:

        def producer(k):
            try:
                got = []
                for b in range(batches):
                    base = (k * batches + b) * per_batch
                    slots = [ops.nop(base + i) for i in range(per_batch)]
                    keep = b % 2 == 0
                    tickets = rt.publish_batch(slots, keep=keep, timeout=60)
                    assert len(tickets) == per_batch
                    assert [t.value for t in tickets] == list(
                        range(tickets[0].value, tickets[0].value + per_batch))
                    if keep:
                        got += [rt.wait(t, timeout=60).result for t in tickets]
                    else:
                        rt.wait_done(tickets[-1], timeout=60)
                results[k] = got
            except Exception as e:  # reported below
                errors.append(e)

        workers = [threading.Thread(target=producer, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert not errors, errors
        last = rt.publish(ops.fence(), keep=True)
        rt.wait(last, timeout=60)
        rt.wait_done(last, timeout=60)
        s = rt.stats()
    total = threads * batches * per_batch + 1
    assert s["published"] == total
    assert s["reaped"] == total and s["completed_ok"] == total
    assert s["faulted"] == 0 and s["aborted"] == 0 and s["protocol_errors"] == 0
    for k in range(threads):  # every kept echo came back once, in order
        want = []
        for b in range(0, batches, 2):
            base = (k * batches + b) * per_batch
            want += list(range(base, base + per_batch))
        assert results[k] == want


@pytest.mark.parametrize("how", ["wait", "call"])
def test_wait_releases_the_gil(how):
    """While one thread waits, another runs Python: here it aborts the
    runtime, which ends the wait at once with ABORTED. Were the GIL held
    through the wait, the aborting thread could not run until the wait
    ended by itself (30 s of work later) with the slot OK."""
    rt = megaring.Runtime(backend="cpu", workers=1)
    for _ in range(30):  # 30 s of work on one worker, ahead of the waited slot
        rt.publish(ops.delay_ns(1_000_000_000))
    entered = threading.Event()
    out = {}

    def waiter():
        if how == "wait":
            t = rt.publish(ops.nop(1), keep=True)
            entered.set()
            out["c"] = rt.wait(t, timeout=120)
        else:
            entered.set()
            out["c"] = rt.call(ops.nop(1), timeout=120)

    w = threading.Thread(target=waiter)
    w.start()
    entered.wait()
    time.sleep(0.2)  # let it block in the wait (sleep releases the GIL)
    rt.abort()
    w.join()
    assert out["c"].status == megaring.STATUS_ABORTED


def test_context_manager_shuts_down():
    with megaring.Runtime(backend="cpu") as rt:
        t = rt.publish(ops.nop(5), keep=True)
    with pytest.raises(megaring.Shutdown) as err:
        rt.publish(ops.nop(1))
    assert err.value.code == megaring.Result.SHUTDOWN
    assert rt.wait(t, timeout=10).result == 5  # still answers after shutdown
    rt.shutdown()  # again: a no-op

    with pytest.raises(RuntimeError, match="boom"):
        with megaring.Runtime(backend="cpu") as rt2:
            raise RuntimeError("boom")
    with pytest.raises(megaring.Shutdown):
        rt2.publish(ops.nop(1))


def test_a_long_wait_answers_ctrl_c():
    """wait() sleeps in slices and looks for signals between them."""
    import _thread
    import signal

    # A process started in the background by a non-interactive shell (as CI
    # may start this one) inherits SIGINT ignored, and then Python neither
    # installs its handler nor lets interrupt_main() do anything: install it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    rt = megaring.Runtime(backend="cpu", workers=1)
    try:
        for _ in range(30):  # 30 s of work on one worker
            rt.publish(ops.delay_ns(1_000_000_000))
        last = rt.publish(ops.nop(1), keep=True)
        timer = threading.Timer(0.3, _thread.interrupt_main)
        t0 = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            rt.wait(last)
        # Generous: the work queued ahead takes 30 s; an interrupt seen only
        # when the wait ends would take that long.
        assert time.monotonic() - t0 < 20
        timer.join()
    finally:
        rt.abort()
        signal.signal(signal.SIGINT, previous)
