"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared reference data folder (``$QAGENT_DATA_DIR`` or ``../shared/data``); skips when absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    path = Path(os.environ.get("QAGENT_DATA_DIR") or default)
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}; set QAGENT_DATA_DIR")
    return path
