# SPDX-License-Identifier: Apache-2.0
"""samples/python_server.py runs, serves every request and checks every sum."""
import pathlib
import subprocess
import sys

import pytest

import megaring

SAMPLE = pathlib.Path(__file__).resolve().parents[2] / "samples" / "python_server.py"


def serve_300_requests(backend, timeout):
    """Runs the sample: 3 clients x 100 requests; returns its stdout."""
    out = subprocess.run(
        [sys.executable, str(SAMPLE), "--backend", backend, "--clients", "3", "--requests", "100"],
        capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert ", 0 wrong;" in out.stdout
    return out.stdout


def test_python_server_sample():
    assert "300 requests served on the cpu backend" in serve_300_requests("cpu", 300)


def test_python_server_refuses_bad_arguments():
    out = subprocess.run([sys.executable, str(SAMPLE), "--clients", "0"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "must be positive" in out.stderr


@pytest.mark.gpu
def test_python_server_sample_on_a_gpu_with_torch():
    """The same loop with CUDA tensors beside the megakernel: nothing in it
    may wait for the device (a hang fails by the timeout)."""
    if not megaring.cuda_device_available():
        pytest.skip("no CUDA GPU")
    pytest.importorskip("torch")
    out = serve_300_requests("cuda", 120)
    assert "300 requests served on the cuda backend with torch (cuda) tensors" in out
