# SPDX-License-Identifier: Apache-2.0
"""samples/python_server.py runs, serves every request and checks every sum."""
import pathlib
import subprocess
import sys

import pytest

import megaring

SAMPLE = pathlib.Path(__file__).resolve().parents[2] / "samples" / "python_server.py"


def test_python_server_sample():
    out = subprocess.run(
        [sys.executable, str(SAMPLE), "--backend", "cpu", "--clients", "3", "--requests", "100"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "300 requests served on the cpu backend" in out.stdout
    assert ", 0 wrong;" in out.stdout


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
    out = subprocess.run(
        [sys.executable, str(SAMPLE), "--backend", "cuda", "--clients", "3", "--requests", "100"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "300 requests served on the cuda backend with torch (cuda) tensors" in out.stdout
    assert ", 0 wrong;" in out.stdout
