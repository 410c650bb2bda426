"""Fixtures for the executor tests: gates, markers and leak checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from exec_helpers import Gate, Leaks


@pytest.fixture
def leaks() -> Leaks:
    return Leaks()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    g = Gate(tmp_path)
    yield g
    g.open()  # never leave a task waiting
