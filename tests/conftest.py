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
