"""Fixtures for the events tests."""

from __future__ import annotations

import pytest
from events_helpers import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
