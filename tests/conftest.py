"""Shared fixtures: the host target, and an isolated cache per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/kernels.py


@pytest.fixture(scope="session")
def host():
    from tlm_core.ir.target import resolve_target

    return resolve_target("host")


@pytest.fixture(autouse=True)
def _tvm_pool_size_restored():
    """A Measurer, search or bench sets TVM_NUM_THREADS for the processes it starts: not for the next test."""
    import os

    before = os.environ.get("TVM_NUM_THREADS")
    yield
    if before is None:
        os.environ.pop("TVM_NUM_THREADS", None)
    else:
        os.environ["TVM_NUM_THREADS"] = before
