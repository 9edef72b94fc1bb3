# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the megaring Python tests (CPU backend unless marked gpu)."""
import pytest

import megaring


@pytest.fixture
def rt():
    """A CPU-backend runtime with two workers, shut down after the test."""
    with megaring.Runtime(backend="cpu", ring_capacity=256, workers=2) as runtime:
        yield runtime


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped without one)")
