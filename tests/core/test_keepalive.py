"""The ping wheel's decisions (aiconexus_gateway/keepalive.py), without sockets or timers."""

from __future__ import annotations

import pytest

from aiconexus_gateway.keepalive import MAX_SLOTS, MIN_SLOTS, KeepAlive


def run(wheel: KeepAlive[str], ticks: int) -> list[tuple[int, list[str], list[str]]]:
    """Tick `ticks` times: (tick number, pinged, given up on) for each tick that did something."""
    out = []
    for number in range(ticks):
        ping, give_up = wheel.tick()
        if ping or give_up:
            out.append((number, sorted(ping), sorted(give_up)))
    return out


def test_the_interval_is_cut_into_slots_of_at_most_a_twentieth_of_a_second() -> None:
    wheel: KeepAlive[str] = KeepAlive(20.0)
    assert wheel.slots == 400 and wheel.tick_seconds == pytest.approx(0.05)
    assert KeepAlive[str](0.1).slots == MIN_SLOTS  # a short interval is still spread
    assert KeepAlive[str](3600.0).slots == MAX_SLOTS
    assert KeepAlive[str](3600.0).tick_seconds == pytest.approx(3600.0 / MAX_SLOTS)
    with pytest.raises(ValueError):
        KeepAlive[str](0)


def test_a_new_connection_is_first_pinged_one_to_two_intervals_later_then_every_interval() -> None:
    wheel: KeepAlive[str] = KeepAlive(1.0, tick=0.25)  # 4 slots
    wheel.add("a")  # slot 0: visited by ticks 0, 4, 8...
    wheel.tick()
    wheel.add("b")  # slot 1, which the hand reaches next: visited by ticks 1, 5, 9...
    pings: dict[str, list[int]] = {"a": [], "b": []}
    for number in range(1, 14):
        ping, give_up = wheel.tick()
        assert give_up == []
        for key in ping:
            pings[key].append(number)
            wheel.answered(key)
    # ticks of 0.25 s: each is left alone on its first visit (which may come at once) and pinged
    # on its second, an interval later; then every interval (every 4th tick)
    assert pings == {"a": [4, 8, 12], "b": [5, 9, 13]}


def test_no_pong_within_one_interval_of_the_ping_gives_up_and_the_connection_leaves() -> None:
    wheel: KeepAlive[str] = KeepAlive(1.0, tick=0.25)  # 4 slots
    wheel.add("quiet")
    wheel.add("alive")
    events = []
    for number in range(12):
        ping, give_up = wheel.tick()
        if ping or give_up:
            events.append((number, sorted(ping), give_up))
        if "alive" in ping:
            wheel.answered("alive")
    # "quiet" sits in slot 0, "alive" in slot 1: pinged on their second visit, given up on the
    # visit after, one interval (4 ticks) after the unanswered ping
    assert events[:3] == [(4, ["quiet"], []), (5, ["alive"], []), (8, [], ["quiet"])]
    assert "quiet" not in wheel and "alive" in wheel and len(wheel) == 1
    assert all(give_up == [] for _, _, give_up in events[3:])


def test_a_pong_before_the_ping_does_not_count_for_the_next_one() -> None:
    wheel: KeepAlive[str] = KeepAlive(1.0, tick=0.25)  # 4 slots
    wheel.add("a")
    wheel.answered("a")  # unsolicited: it must not spare the connection the first ping's check
    events = run(wheel, 9)
    assert events == [(4, ["a"], []), (8, [], ["a"])]


def test_closed_connections_leave_at_once_and_unknown_ones_are_ignored() -> None:
    wheel: KeepAlive[str] = KeepAlive(1.0, tick=0.25)  # 4 slots
    for name in ("a", "b", "c"):
        wheel.add(name)
    wheel.add("a")  # twice: still once
    assert len(wheel) == 3
    wheel.remove("b")
    wheel.remove("b")
    wheel.remove("never added")
    wheel.answered("never added")
    assert len(wheel) == 2 and "b" not in wheel
    events = run(wheel, 12)
    assert all("b" not in ping and "b" not in give_up for _, ping, give_up in events)
    wheel.remove("a")
    wheel.remove("c")
    assert len(wheel) == 0
    assert all(not bucket for bucket in wheel._wheel)  # nothing left behind in any bucket
    assert run(wheel, 12) == []


def test_a_burst_of_connections_is_spread_over_the_interval() -> None:
    wheel: KeepAlive[int] = KeepAlive(20.0)  # 400 slots
    for key in range(8000):  # all at once
        wheel.add(key)
    per_tick = []
    for _ in range(2 * wheel.slots):
        ping, _ = wheel.tick()
        per_tick.append(len(ping))
        for key in ping:
            wheel.answered(key)
    assert sum(per_tick) == 8000  # each pinged once in its second interval
    assert max(per_tick[wheel.slots:]) == 20  # 8000 / 400 per tick, never all at once
