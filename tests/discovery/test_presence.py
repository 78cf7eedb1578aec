"""presence.py: watch sets and their bound, transitions, and coalescing with time passed in."""

from __future__ import annotations

import pytest

from aiconexus_gateway.errors import ErrorCode, ProtocolError
from aiconexus_gateway.presence import OFFLINE, Coalescer, Event, Seen, Watches, transition


def test_transitions_name_what_changed() -> None:
    assert transition(OFFLINE, Seen("s")) == "online"
    assert transition(Seen("s"), OFFLINE) == "offline"
    assert transition(Seen("s"), Seen("t")) == "replaced"
    assert transition(Seen("s"), Seen("s")) is None
    assert transition(OFFLINE, OFFLINE) is None


def test_watch_sets_are_kept_both_ways_and_forgotten() -> None:
    watches = Watches(limit=3)
    assert watches.watch("w", ("a", "b")) == ["a", "b"]
    assert watches.watch("w", ("b", "c")) == ["c"]
    assert watches.watchers("b") == {"w"}
    assert watches.unwatch("w", ("a", "zz")) == ["a"]
    assert not watches.watched("a")
    assert sorted(watches.forget("w")) == ["b", "c"]
    assert not watches.watched("b") and watches.watching("w") == frozenset()


def test_the_watch_bound_refuses_the_whole_request() -> None:
    watches = Watches(limit=3)
    watches.watch("w", ("a", "b"))
    with pytest.raises(ProtocolError) as raised:
        watches.watch("w", ("c", "d"), "m")
    assert raised.value.code is ErrorCode.MALFORMED_MESSAGE
    assert raised.value.details == {"limit": 3, "watching": 2}
    assert watches.watching("w") == {"a", "b"}


def test_a_single_change_is_announced_at_once() -> None:
    coalescer = Coalescer(window=1.0)
    assert coalescer.changed("a", Seen("s"), now=0.0) == Event("a", "online")
    assert coalescer.changed("a", Seen("s"), now=5.0) is None
    assert coalescer.changed("a", OFFLINE, now=5.0) == Event("a", "offline")


def test_flapping_is_coalesced_into_one_event_per_window() -> None:
    coalescer = Coalescer(window=1.0)
    assert coalescer.changed("a", Seen("s1"), now=0.0) == Event("a", "online")
    assert coalescer.changed("a", OFFLINE, now=0.1) == 1.0  # held: call due at 1.0
    for step in range(2, 51):
        session = OFFLINE if step % 2 else Seen(f"s{step}")
        assert coalescer.changed("a", session, now=0.1 + step / 100) is None
    assert coalescer.due("a", now=0.5) == 1.0  # too early
    event = coalescer.due("a", now=1.0)
    assert event == Event("a", "replaced", changes=50)
    assert coalescer.changed("a", OFFLINE, now=1.5) == 2.0  # the next window holds too
    assert coalescer.due("a", now=2.0) == Event("a", "offline")


def test_a_flap_that_ends_where_it_began_says_nothing() -> None:
    coalescer = Coalescer(window=1.0)
    coalescer.track("a", Seen("s"))
    assert coalescer.changed("a", OFFLINE, now=0.0) == Event("a", "offline")
    assert coalescer.changed("a", Seen("t"), now=0.2) == 1.0
    assert coalescer.changed("a", OFFLINE, now=0.3) is None
    assert coalescer.due("a", now=1.0) is None
    assert not coalescer.pending("a")


def test_forgetting_a_did_clears_its_window() -> None:
    coalescer = Coalescer(window=1.0)
    coalescer.changed("a", Seen("s"), now=0.0)
    coalescer.changed("a", OFFLINE, now=0.1)
    coalescer.forget("a")
    assert coalescer.due("a", now=2.0) is None
    assert coalescer.changed("a", Seen("t"), now=2.0) == Event("a", "online")
