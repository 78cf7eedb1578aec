"""Clocks: the real one reads the system, the manual one moves only when told."""

from __future__ import annotations

import time

from aiconexus_gateway.clock import Clock, ManualClock


def test_real_clock_reads_monotonic_and_wall_time() -> None:
    clock = Clock()
    assert abs(clock.wall() - time.time()) < 5
    first = clock.monotonic()
    assert clock.monotonic() >= first


def test_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock(now=10.0, wall_offset=1000.0)
    assert (clock.monotonic(), clock.wall()) == (10.0, 1010.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.wall()) == (12.5, 1012.5)


def test_manual_clock_defaults_to_a_fixed_2026_wall_time() -> None:
    assert ManualClock().wall() == 1_790_001_000.0
