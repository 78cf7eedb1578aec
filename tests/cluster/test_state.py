"""The pure cluster state (backends/state.py): one session per DID under every interleaving.

Two instances register the same DID at nearly the same time. Redis runs each REGISTER script
atomically (a new generation; a Takeover to the previous owner's inbox), but when each instance
hears its own script's answer, and when the Takeover arrives, can be in any order. Every order is
played here, deterministically, on the ClusterState of each instance.
"""

from __future__ import annotations

from itertools import permutations

import pytest

from aiconexus_gateway.backends.state import ClusterState
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.messages import MessageFactory
from aiconexus_gateway.peer import AgentRecord, Peer
from aiconexus_gateway.session import Session, SessionSettings
from tests.support.memory import MemoryConnection

from .support import ALICE, GATEWAY

DID = ALICE.did
FACTORY = MessageFactory(GATEWAY, ManualClock().wall)


def _peer(name: str) -> Peer:
    session = Session(FACTORY, SessionSettings(30.0, 300.0, 20.0), nonce=bytes(32),
                      session_id=name, now=0.0)
    session.did = DID
    peer = Peer(MemoryConnection(), session, 0.0)
    peer.record = AgentRecord(0.0, {})
    return peer


class Instance:
    """One instance as far as takeovers go: its state, its registry entry, who it closed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = ClusterState()
        self.registered: Peer | None = None
        self.closed: list[Peer] = []

    def evict(self, peer: Peer) -> None:
        self.closed.append(peer)
        self.state.forget(DID, peer)
        if self.registered is peer:
            self.registered = None

    def published(self, peer: Peer, generation: int) -> None:
        why = self.state.published(DID, peer, generation)
        self.registered = peer  # REGISTERED is sent, then the comparison closes it if older
        if why is not None:
            self.evict(peer)

    def takeover(self, generation: int, origin: str) -> None:
        for peer, _ in self.state.takeover(DID, generation, origin, self.registered):
            self.evict(peer)


class Redis:
    """The REGISTER script's effect on routing: a generation each, a Takeover for the owner."""

    def __init__(self) -> None:
        self.generation = 0
        self.owner: str | None = None
        self.inbox: dict[str, list[tuple[int, str]]] = {"A": [], "B": []}

    def register(self, instance: str) -> int:
        self.generation += 1
        if self.owner is not None and self.owner != instance:
            self.inbox[self.owner].append((self.generation, instance))
        self.owner = instance
        return self.generation


EVENTS = ("script A", "script B", "answer A", "answer B", "takeover")


def _orders() -> list[tuple[str, ...]]:
    """Every order in which the events can happen: an answer after its script, the takeover
    after both scripts (the second one sends it)."""
    valid = []
    for order in permutations(EVENTS):
        at = {event: i for i, event in enumerate(order)}
        if (at["answer A"] > at["script A"] and at["answer B"] > at["script B"]
                and at["takeover"] > max(at["script A"], at["script B"])):
            valid.append(order)
    return valid


@pytest.mark.parametrize("order", _orders(), ids=lambda order: ", ".join(order))
def test_two_registrations_of_one_did_leave_exactly_the_newest_session(order: tuple[str, ...]
                                                                       ) -> None:
    redis = Redis()
    instances = {"A": Instance("A"), "B": Instance("B")}
    peers = {"A": _peer("a"), "B": _peer("b")}
    generations: dict[str, int] = {}
    for name, instance in instances.items():
        instance.state.publishing(DID, peers[name])
    for event in order:
        kind, _, name = event.partition(" ")
        if kind == "script":
            generations[name] = redis.register(name)
        elif kind == "answer":
            instances[name].published(peers[name], generations[name])
        else:
            ((owner, messages),) = [(n, m) for n, m in redis.inbox.items() if m]
            generation, origin = messages.pop()
            instances[owner].takeover(generation, origin)
    newest = max(generations, key=generations.__getitem__)
    live = [name for name in instances if peers[name] not in instances[name].closed]
    assert live == [newest]
    assert instances[newest].registered is peers[newest]


def test_there_are_interleavings_to_play() -> None:
    assert len(_orders()) == 16


def test_a_takeover_for_a_published_session_closes_it_only_when_newer() -> None:
    state, peer = ClusterState(), _peer("a")
    state.publishing(DID, peer)
    assert state.published(DID, peer, 5) is None
    assert state.takeover(DID, 3, "gw-b", peer) == []
    evictions = state.takeover(DID, 7, "gw-b", peer)
    assert [p for p, _ in evictions] == [peer] and "gw-b" in evictions[0][1]
    assert state.generation(DID, peer) is None


def test_a_takeover_for_a_did_not_held_here_is_ignored() -> None:
    state = ClusterState()
    assert state.takeover(DID, 7, "gw-b", None) == []
    peer = _peer("a")
    state.publishing(DID, peer)
    assert state.published(DID, peer, 9) is None  # nothing was deferred for it


def test_an_older_session_is_closed_at_once_and_a_newer_one_in_flight_waits() -> None:
    state, old, new = ClusterState(), _peer("old"), _peer("new")
    state.publishing(DID, old)
    state.published(DID, old, 2)
    state.publishing(DID, new)
    assert [p for p, _ in state.takeover(DID, 4, "gw-b", old)] == [old]
    assert state.published(DID, new, 3) is not None  # 3 < 4: the other instance's is newer


def test_a_registration_that_could_not_be_published_waits_for_the_restore() -> None:
    state, peer = ClusterState(), _peer("a")
    state.publishing(DID, peer)
    state.not_published(DID, peer)  # the bus went down: registered locally
    assert state.takeover(DID, 4, "gw-b", peer) == []  # deferred until the restore
    assert state.published(DID, peer, 6) is None  # the restore gave it a newer generation


def test_losing_a_restore_closes_the_session() -> None:
    state, peer = ClusterState(), _peer("a")
    assert state.published(DID, peer, -1) is not None
    assert state.generation(DID, peer) is None
