# SPDX-License-Identifier: Apache-2.0
"""samples/python_server.py runs, serves every request and checks every sum."""
import pathlib
import subprocess
import sys

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
