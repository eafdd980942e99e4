"""The monitor's tests run on a fake clock (no timed assertions)."""

from __future__ import annotations

import pytest
from fake_clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
