"""Fixtures for the distributed-training tests: a warm 2-node Local pool."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import skyward as sky


@pytest.fixture(scope="module")
def pool() -> Iterator[sky.ComputePool]:
    """Two Local nodes with one slot each: one rank per node."""
    with sky.ComputePool(provider=sky.Local(), nodes=2) as pool:
        yield pool
