"""The one jittered backoff (aiconexus_gateway.backoff) and the SDK's policy on top of it."""

from __future__ import annotations

import random

import pytest

from aiconexus_gateway.backoff import backoff
from aiconexus_gateway.client.reconnect import ReconnectPolicy, backoff_delay


def test_the_ceiling_doubles_from_base_up_to_the_cap() -> None:
    ceilings = [backoff(n, base=0.1, cap=2.0, jitter=lambda: 1.0) for n in range(7)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])


def test_equal_jitter_keeps_half_the_ceiling_as_a_floor() -> None:
    assert backoff(3, base=0.1, cap=2.0, jitter=lambda: 0.0) == pytest.approx(0.4)
    assert backoff(3, base=0.1, cap=2.0, jitter=lambda: 0.5) == pytest.approx(0.6)


def test_a_huge_attempt_number_waits_the_cap_and_does_not_overflow() -> None:
    assert backoff(10**6, base=0.1, cap=2.0, jitter=lambda: 1.0) == 2.0
    assert backoff(10**6, base=1.0, cap=30.0, multiplier=1e9, jitter=lambda: 0.0) == 15.0


def test_the_multiplier_sets_the_growth() -> None:
    assert [backoff(n, base=1.0, cap=100.0, multiplier=3.0, jitter=lambda: 1.0)
            for n in range(4)] == [1.0, 3.0, 9.0, 27.0]


def test_many_clients_are_spread_apart() -> None:
    source = random.Random(7)
    delays = {round(backoff(0, base=1.0, cap=1.0, jitter=source.random), 3) for _ in range(200)}
    assert len(delays) > 100 and min(delays) >= 0.5 and max(delays) <= 1.0


@pytest.mark.parametrize(("attempt", "base", "cap", "multiplier", "spread"), [
    (-1, 0.1, 2.0, 2.0, 0.5),
    (0, 0.0, 2.0, 2.0, 0.5),
    (0, 3.0, 2.0, 2.0, 0.5),
    (0, 0.1, float("inf"), 2.0, 0.5),
    (0, 0.1, 2.0, 0.5, 0.5),
    (0, 0.1, 2.0, 2.0, 1.5),
    (0, 0.1, 2.0, 2.0, -0.1),
])
def test_nonsense_is_refused(attempt: int, base: float, cap: float, multiplier: float,
                             spread: float) -> None:
    with pytest.raises(ValueError):
        backoff(attempt, base=base, cap=cap, multiplier=multiplier, jitter=lambda: spread)


def test_the_backoff_module_imports_only_the_stdlib() -> None:
    import ast
    import sys
    from pathlib import Path

    import aiconexus_gateway.backoff as module

    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)


# -- the SDK's reconnection policy -----------------------------------------------------------------


def test_sdk_backoff_follows_its_policy() -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=8.0, multiplier=2.0)
    highs = [backoff_delay(policy, n, jitter=lambda: 1.0) for n in range(8)]
    lows = [backoff_delay(policy, n, jitter=lambda: 0.0) for n in range(8)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    assert lows == [h / 2 for h in highs]


def test_sdk_backoff_honours_retry_after_up_to_max_delay() -> None:
    policy = ReconnectPolicy(initial_delay=0.1, max_delay=30.0)
    assert backoff_delay(policy, 0, retry_after=5.0, jitter=lambda: 1.0) == 5.0
    assert backoff_delay(policy, 0, retry_after=500.0, jitter=lambda: 1.0) == 30.0
    assert backoff_delay(policy, 0, retry_after=0.01, jitter=lambda: 1.0) == 0.1


def test_reconnect_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ReconnectPolicy(initial_delay=0)
    with pytest.raises(ValueError):
        ReconnectPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        ReconnectPolicy(multiplier=0.5)
