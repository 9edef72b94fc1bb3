# SPDX-License-Identifier: Apache-2.0
"""Helpers for the gpu-marked tests that use PyTorch beside a megaring runtime.

Two rules from the README ("Beside PyTorch") that a test must follow itself:

* Every torch kernel a test launches while the megakernel runs must already
  be loaded. CUDA loads modules lazily (torch asks for it, and CUDA is
  initialised before megaring could ask for eager loading), and a kernel
  first launched beside a persistent kernel waits for it to end (seen on the
  H100, bench/NOTES.md "Lazy module loading"). `warm_up(torch)` runs the
  tests' torch operations once, and synchronizes, before any runtime exists.
* A hang must fail the test, not eat the GPU session: `within(seconds, fn)`
  runs a test's body on a thread of its own with a bound.
"""
import threading

import pytest

import megaring


def gpu_torch():
    """torch, or a skip without a CUDA GPU or without torch."""
    if not megaring.cuda_device_available():
        pytest.skip("no CUDA GPU")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no GPU")
    warm_up(torch)
    return torch


def warm_up(torch):
    """The kernels the gpu tests launch, launched once with no megakernel
    running (same operations, same dtypes), then a device synchronize."""
    for dtype in (torch.uint8, torch.int32, torch.float32):
        a = torch.zeros(64, dtype=dtype, device="cuda")
        b = torch.ones(64, dtype=dtype, device="cuda")
        c = torch.full_like(a, 3)
        _ = (a == 2).all().item()
        _ = torch.equal(b, c)
        d = torch.empty_like(a)
        d.copy_(b * 2)
        d.copy_(b * 3)
        d.zero_()
        _ = d[1].item()
    # Bounded: a megakernel an earlier test left running (its body timed
    # out) would hold a device-wide synchronize forever.
    ok, error, _ = bounded(torch.cuda.synchronize, 20)
    assert ok, "torch.cuda.synchronize() waits: a megakernel from an earlier test still runs"
    if error:
        raise error[0]


def bounded(fn, seconds):
    """Runs fn on a daemon thread: (returned within `seconds`, [its
    exception], the thread)."""
    done = threading.Event()
    error = []

    def run():
        try:
            fn()
        except BaseException as e:  # reported by the caller
            error.append(e)
        finally:
            done.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    returned = done.wait(seconds)
    return returned, error, t


def within(seconds, fn):
    """Runs a test body with a bound: fails the test if it has not returned
    by then (the thread is left behind: the process is ending badly anyway),
    and re-raises what it raised."""
    returned, error, _ = bounded(fn, seconds)
    assert returned, f"the test body did not finish within {seconds} s (a hang beside the megakernel?)"
    if error:
        raise error[0]
