"""Time, passed in rather than read from globals, so tests can fix it."""

from __future__ import annotations

import time


class Clock:
    """Monotonic time for timeouts, wall time for timestamps people read."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


class ManualClock(Clock):
    """A clock that moves only when told to (tests)."""

    __slots__ = ("_now", "_wall_offset")

    def __init__(self, now: float = 1000.0, wall_offset: float = 1_790_000_000.0) -> None:
        self._now = now
        self._wall_offset = wall_offset

    def advance(self, seconds: float) -> None:
        self._now += seconds

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset
