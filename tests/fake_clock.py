"""A fake clock for the monitor's budget: time moves only when a test says so."""

from __future__ import annotations


class FakeClock:
    """Seconds that advance by hand (``advance``), or by ``tick`` at every reading."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
