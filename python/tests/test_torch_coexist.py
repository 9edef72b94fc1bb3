# SPDX-License-Identifier: Apache-2.0
"""Life beside PyTorch (issue 17, item 3), on a GPU with torch.

A persistent kernel in PyTorch's context makes torch.cuda.synchronize() and
torch.cuda.empty_cache() wait for it. Runtime.suspend() stops the consumer
with the rings and tables intact, so those calls return; resume() goes on
where it stopped. Every blocking torch call here runs on a thread of its own
with a bound, and each gpu test's body too (gpu_torch.py): a hang fails the
test instead of hanging the suite. gpu_torch() also loads, before any runtime
starts, every torch kernel the tests launch (lazy loading beside a persistent
kernel would wait for it).

The first test runs on the CPU backend too (the binding's contract); the rest
need a CUDA GPU and torch, and skip without them.
"""
import threading
import time

import pytest

import megaring
from megaring import ops
from gpu_torch import bounded, gpu_torch, within


def test_suspend_resume_binding_cpu():
    with megaring.Runtime(backend="cpu", ring_capacity=64, workers=2) as rt:
        assert rt.call(ops.nop(1)).result == 1
        assert not rt.is_suspended
        rt.suspend(timeout=30)
        assert rt.is_suspended
        t = rt.publish(ops.nop(42), keep=True)
        # Nothing runs while suspended: the slot is still outstanding.
        with pytest.raises(megaring.Timeout):
            rt.wait(t, timeout=0.05)
        rt.suspend(timeout=30)  # idempotent once suspended
        assert rt.consumer_phase == "suspended"
        rt.resume()
        assert not rt.is_suspended
        assert rt.wait(t, timeout=30).result == 42
        assert rt.consumer_phase == "live"
        with pytest.raises(megaring.InvalidArgument):
            rt.resume()  # not suspended
        with rt.paused():
            assert rt.is_suspended
            t = rt.publish(ops.nop(7), keep=True)
        assert rt.wait(t, timeout=30).result == 7
        # A paused() whose suspend times out (a DELAY slot still runs) raises
        # Timeout and leaves the runtime live, not suspending.
        # (The DELAYs must have been staged before the suspend: a few tries.)
        timed_out = False
        for _ in range(5):
            rt.publish(ops.delay_ns(300_000_000))
            rt.publish(ops.delay_ns(300_000_000))
            time.sleep(0.05)
            try:
                with rt.paused(timeout=0.01):
                    pass
            except megaring.Timeout:
                timed_out = True
                break
        assert timed_out
        assert rt.consumer_phase == "live"
        assert rt.call(ops.nop(8), timeout=30).result == 8
        # paused() leaves a runtime shut down inside it alone.
        with rt.paused():
            rt.shutdown()
        assert rt.consumer_phase == "live"
    with pytest.raises(megaring.Shutdown):
        rt.suspend(timeout=1)


@pytest.mark.gpu
def test_synchronize_and_empty_cache_return_while_suspended():
    torch = gpu_torch()
    # A cached block for empty_cache() to cudaFree, allocated before the
    # megakernel runs (the allocation itself is not what is tested).
    scratch = torch.empty(1 << 24, dtype=torch.uint8, device="cuda")
    del scratch

    def body():
        rt = megaring.Runtime(backend="cuda")
        try:
            t = torch.zeros(16, dtype=torch.int32, device="cuda")
            buf = rt.register_buffer(t)
            assert rt.call(ops.store_u32(buf, 4, 77)).ok
            with rt.paused():
                ok, err, _ = bounded(lambda: (torch.cuda.synchronize(), torch.cuda.empty_cache()), 20)
                assert ok, "torch.cuda.synchronize()/empty_cache() still waits while suspended"
                assert not err, err
                # Slots published meanwhile wait for resume().
                pending = rt.publish(ops.store_u32(buf, 8, 99), keep=True)
            assert rt.wait(pending, timeout=30).ok
            assert t[1].item() == 77 and t[2].item() == 99
            assert rt.call(ops.nop(5)).result == 5
            buf.free()
        finally:
            rt.shutdown()

    within(90, body)


@pytest.mark.gpu
def test_synchronize_waits_for_a_running_megakernel():
    """The hazard suspend() exists for (README, Beside PyTorch): if this ever
    stops holding, the README's advice is out of date."""
    torch = gpu_torch()

    def body():
        rt = megaring.Runtime(backend="cuda")
        try:
            assert rt.call(ops.nop(1), timeout=30).ok
            ok, _, thread = bounded(torch.cuda.synchronize, 2)
            assert not ok, "torch.cuda.synchronize() returned beside the running megakernel"
        finally:
            rt.shutdown()  # the kernel exits, and the synchronize returns
        thread.join(30)
        assert not thread.is_alive()

    within(60, body)


@pytest.mark.gpu
def test_graph_capture_of_torch_work_while_suspended():
    """torch.cuda.graph() synchronizes the device and empties the cache before
    it captures, so a capture happens inside paused(); while another thread
    keeps publishing (its slots wait), and megaring's host side keeps running
    beside the capture (global capture mode, torch's default). The capture
    must succeed, its replay beside the running megakernel must be right, and
    every slot must complete with its own result."""
    torch = gpu_torch()

    def body():
        with megaring.Runtime(backend="cuda") as rt:
            stop = threading.Event()
            results = []
            errors = []

            def feed():
                k = 0
                try:
                    while not stop.is_set():
                        results.append((k, rt.call(ops.nop(k), timeout=60).result))
                        k += 1
                except Exception as e:
                    errors.append(e)

            feeder = threading.Thread(target=feed)
            feeder.start()
            try:
                x = torch.ones(1024, device="cuda")
                y = torch.empty_like(x)
                side = torch.cuda.Stream()
                graph = torch.cuda.CUDAGraph()

                def capture():
                    with torch.cuda.stream(side):
                        y.copy_(x * 2)  # warm-up outside the capture
                    side.synchronize()
                    with torch.cuda.graph(graph, stream=side):
                        y.copy_(x * 3)

                with rt.paused():
                    ok, err, _ = bounded(capture, 30)
                    assert ok, "the capture waited while megaring was suspended"
                    assert not err, err
                    # The graph's first launch (its upload) with nothing
                    # else running; then cleared for the replay below.
                    graph.replay()
                    torch.cuda.current_stream().synchronize()
                    assert torch.equal(y, torch.full_like(x, 3))
                    y.zero_()
                    torch.cuda.current_stream().synchronize()
                # Beside the running megakernel again, on torch's current
                # stream, which the comparison's .item() waits for.
                graph.replay()
                assert torch.equal(y, torch.full_like(x, 3))
            finally:
                stop.set()
                feeder.join(60)
            assert not errors, errors
            assert results and all(k == r for k, r in results)

    within(120, body)
