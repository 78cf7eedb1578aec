"""The directory through the Hub, with in-memory connections: DISCOVER, WATCH, PRESENCE."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from aiconexus_gateway.cards import check_proof
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.directory import DirectorySettings, RemoteAgent, profile_document
from aiconexus_gateway.errors import CloseCode
from aiconexus_gateway.hub import Hub, HubSettings, Peer
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.session import SessionSettings
from tests.core.support import ALICE, BOB, CAROL, GATEWAY, NONCE, NONCE_B64URL, frame
from tests.support.memory import MemoryConnection

Timer = tuple[float, Callable[[], None]]


class Timers:
    """The directory's timers, run by hand."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.pending: list[Timer] = []

    def schedule(self, delay: float, callback: Callable[[], None]) -> None:
        self.pending.append((self.clock.monotonic() + delay, callback))

    def run_due(self) -> None:
        due = [timer for timer in self.pending if timer[0] <= self.clock.monotonic()]
        self.pending = [timer for timer in self.pending if timer[0] > self.clock.monotonic()]
        for _, callback in due:
            callback()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def timers(clock: ManualClock) -> Timers:
    return Timers(clock)


@pytest.fixture
def hub(clock: ManualClock, timers: Timers) -> Hub:
    settings = HubSettings(SessionSettings(30.0, 300.0, 20.0),
                           directory=DirectorySettings(watch_limit=3, coalesce=1.0,
                                                       discover_rate=1.0, discover_burst=3))
    hub = Hub(settings, GATEWAY, clock=clock, nonce_source=lambda n: NONCE[:n])
    hub.directory.schedule = timers.schedule
    return hub


def register(hub: Hub, key: DIDKey, **payload: Any) -> tuple[Peer, MemoryConnection]:
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.receive(peer, frame(key, "REGISTER", hub.did, {"nonce": NONCE_B64URL, **payload})[0])
    assert connection.last(signed_by=GATEWAY)["type"] == "REGISTERED", connection.sent[-1]
    return peer, connection


def ask(hub: Hub, peer: Peer, key: DIDKey, type: str, payload: dict[str, Any]) -> dict[str, Any]:
    connection = peer.connection
    assert isinstance(connection, MemoryConnection)
    text, message_id = frame(key, type, hub.did, payload)
    hub.receive(peer, text)
    answer = connection.last(signed_by=GATEWAY)
    assert answer["correlation_id"] == message_id
    return answer


def presence(connection: MemoryConnection) -> list[tuple[str, str]]:
    return [(f["payload"]["did"], f["payload"]["event"]) for f in connection.frames()
            if f["type"] == "PRESENCE"]


def test_discover_returns_signed_cards_that_verify_against_their_dids(hub: Hub) -> None:
    card = {"name": "Translator", "capabilities": ["translate"], "version": "2"}
    register(hub, BOB, card=card)
    register(hub, CAROL, card={"name": "Other", "capabilities": ["summarize"]})
    alice, _ = register(hub, ALICE)
    answer = ask(hub, alice, ALICE, "DISCOVER", {"capability": "translate"})
    assert answer["type"] == "DISCOVERED" and answer["to"] == ALICE.did
    [entry] = answer["payload"]["agents"]
    assert entry["did"] == BOB.did and entry["card"] == card
    check_proof(BOB.did, entry["card"], entry["register"])
    assert answer["payload"]["next"] is None


def test_a_bad_card_fails_the_registration_saying_why(hub: Hub) -> None:
    connection = MemoryConnection()
    peer = hub.open(connection)
    hub.receive(peer, frame(BOB, "REGISTER", hub.did,
                            {"nonce": NONCE_B64URL, "card": {"name": "x", "capabilities": [1]}})[0])
    error = connection.last(signed_by=GATEWAY)
    assert error["payload"]["code"] == "MALFORMED_MESSAGE"
    assert "card.capabilities[0]" in error["payload"]["message"]
    assert connection.closed_with is not None and connection.closed_with[0] == CloseCode(4400)


def test_unlisted_agents_are_routable_but_never_discovered(hub: Hub) -> None:
    register(hub, BOB, card={"name": "Hidden", "capabilities": ["x"]}, unlisted=True)
    alice, _ = register(hub, ALICE)
    for query in ({}, {"capability": "x"}, {"dids": [BOB.did]}, {"name_prefix": "hid"}):
        answer = ask(hub, alice, ALICE, "DISCOVER", query)
        assert BOB.did not in json.dumps(answer), query


def test_a_malformed_query_is_answered_and_the_session_stays(hub: Hub) -> None:
    alice, connection = register(hub, ALICE)
    error = ask(hub, alice, ALICE, "DISCOVER", {"limit": "ten"})
    assert error["type"] == "ERROR" and error["payload"]["code"] == "MALFORMED_MESSAGE"
    assert "'limit'" in error["payload"]["message"]
    assert connection.closed_with is None


def test_discover_is_rate_limited(hub: Hub, clock: ManualClock) -> None:
    alice, _ = register(hub, ALICE)
    for _ in range(3):
        assert ask(hub, alice, ALICE, "DISCOVER", {})["type"] == "DISCOVERED"
    error = ask(hub, alice, ALICE, "DISCOVER", {})
    assert error["payload"]["code"] == "RATE_LIMITED"
    clock.advance(1.0)
    assert ask(hub, alice, ALICE, "DISCOVER", {})["type"] == "DISCOVERED"


def test_watch_tells_the_current_state_then_events(hub: Hub, clock: ManualClock) -> None:
    alice, to_alice = register(hub, ALICE)
    bob, _ = register(hub, BOB)
    answer = ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did, CAROL.did]})
    assert answer["type"] == "WATCHING"
    assert answer["payload"] == {"agents": [{"did": BOB.did, "state": "online"},
                                            {"did": CAROL.did, "state": "offline"}],
                                 "watching": 2}
    register(hub, CAROL)
    hub.closed(bob, 1000, "bye")
    assert presence(to_alice) == [(CAROL.did, "online"), (BOB.did, "offline")]


def test_a_replaced_session_is_one_replaced_event(hub: Hub, clock: ManualClock) -> None:
    alice, to_alice = register(hub, ALICE)
    bob, _ = register(hub, BOB)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    clock.advance(5)
    register(hub, BOB)
    hub.closed(bob, CloseCode.SESSION_REPLACED, "SESSION_REPLACED")
    assert presence(to_alice) == [(BOB.did, "replaced")]


def test_a_flapping_agent_is_coalesced(hub: Hub, clock: ManualClock, timers: Timers) -> None:
    alice, to_alice = register(hub, ALICE)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    for _ in range(20):
        bob, _ = register(hub, BOB)
        clock.advance(0.01)
        hub.closed(bob, 1000, "bye")
    assert presence(to_alice) == [(BOB.did, "online")]
    clock.advance(1.0)
    timers.run_due()
    assert presence(to_alice) == [(BOB.did, "online"), (BOB.did, "offline")]
    assert to_alice.frames()[-1]["payload"]["changes"] == 39


def test_the_watch_bound_is_enforced(hub: Hub) -> None:
    alice, _ = register(hub, ALICE)
    others = [DIDKey.from_seed(bytes([i]) * 32).did for i in range(40, 44)]
    error = ask(hub, alice, ALICE, "WATCH", {"dids": others})
    assert error["payload"]["code"] == "MALFORMED_MESSAGE"
    assert "1-3 DIDs" in error["payload"]["message"]
    assert ask(hub, alice, ALICE, "WATCH", {"dids": others[:2]})["payload"]["watching"] == 2
    error = ask(hub, alice, ALICE, "WATCH", {"dids": others[1:]})
    assert "watches at most 3 DIDs; it watches 2 and this WATCH adds 2" in error["payload"]["message"]
    assert error["payload"]["details"] == {"limit": 3, "watching": 2}
    assert ask(hub, alice, ALICE, "UNWATCH", {"dids": others[:1]})["payload"]["watching"] == 1


def test_unwatch_stops_events(hub: Hub) -> None:
    alice, to_alice = register(hub, ALICE)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    assert ask(hub, alice, ALICE, "UNWATCH", {"dids": [BOB.did]})["payload"]["watching"] == 0
    register(hub, BOB)
    assert presence(to_alice) == []


def test_unlisted_presence_is_shown_only_to_those_it_watches(hub: Hub, clock: ManualClock,
                                                             timers: Timers) -> None:
    alice, to_alice = register(hub, ALICE)
    carol, to_carol = register(hub, CAROL)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    ask(hub, carol, CAROL, "WATCH", {"dids": [BOB.did]})
    bob, _ = register(hub, BOB, unlisted=True)
    assert presence(to_alice) == [] and presence(to_carol) == []
    assert ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})["payload"]["agents"] == [
        {"did": BOB.did, "state": "offline"}]
    ask(hub, bob, BOB, "WATCH", {"dids": [ALICE.did]})  # Bob shows himself to Alice
    assert presence(to_alice) == [(BOB.did, "online")]
    hub.closed(bob, 1000, "bye")  # within the window of its registration: held
    clock.advance(1.0)
    timers.run_due()
    assert presence(to_alice) == [(BOB.did, "online"), (BOB.did, "offline")]
    assert presence(to_carol) == []


def test_a_closed_watcher_is_forgotten(hub: Hub) -> None:
    alice, _ = register(hub, ALICE)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    hub.closed(alice, 1000, "bye")
    assert not hub.directory.watches.watched(BOB.did)
    register(hub, BOB)
    assert hub.directory.events_sent == 0


def test_directory_types_cannot_be_sent_to_agents(hub: Hub) -> None:
    alice, connection = register(hub, ALICE)
    register(hub, BOB)
    hub.receive(alice, frame(ALICE, "DISCOVER", BOB.did, {})[0])
    error = json.loads(connection.sent[-1])
    assert error["payload"]["code"] == "MALFORMED_MESSAGE"


# -- cluster mode: the replica of the other instances' agents ---------------------------------

def remote(did: str, session: str, *, instance: str = "gw-2", card: dict[str, Any] | None = None,
           unlisted: bool = False, audience: tuple[str, ...] = ()) -> RemoteAgent:
    profile: dict[str, Any] = ({"unlisted": True, "audience": list(audience)} if unlisted
                               else {"card": card, "register": {"signature": "s"}})
    return RemoteAgent.of(did, instance, session, profile)


def test_remote_agents_are_discovered_and_watched(hub: Hub, clock: ManualClock) -> None:
    alice, to_alice = register(hub, ALICE)
    hub.directory.remote_online(BOB.did, remote(BOB.did, "s1", card={"name": "Bob",
                                                                      "capabilities": ["x"]}))
    page = ask(hub, alice, ALICE, "DISCOVER", {"capability": "x"})["payload"]
    assert [entry["did"] for entry in page["agents"]] == [BOB.did]
    answer = ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})["payload"]
    assert answer["agents"] == [{"did": BOB.did, "state": "online"}]
    clock.advance(5)
    hub.directory.remote_online(BOB.did, remote(BOB.did, "s2"))  # a new session elsewhere
    clock.advance(5)
    hub.directory.remote_offline(BOB.did, "s1")  # the old one's late offline: ignored
    hub.directory.remote_offline(BOB.did, "s2")
    assert presence(to_alice) == [(BOB.did, "replaced"), (BOB.did, "offline")]
    assert ask(hub, alice, ALICE, "DISCOVER", {"capability": "x"})["payload"]["agents"] == []


def test_the_agents_of_a_dead_instance_go_offline(hub: Hub) -> None:
    alice, to_alice = register(hub, ALICE)
    hub.directory.remote_sync({BOB.did: remote(BOB.did, "s1", instance="gw-2"),
                               CAROL.did: remote(CAROL.did, "s2", instance="gw-3")})
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did, CAROL.did]})
    hub.directory.remote_alive(frozenset({"gw-1", "gw-3"}))
    assert presence(to_alice) == [(BOB.did, "offline")]
    hub.directory.remote_sync({})
    assert presence(to_alice) == [(BOB.did, "offline"), (CAROL.did, "offline")]


def test_a_remote_unlisted_agent_is_shown_only_to_its_audience(hub: Hub) -> None:
    alice, to_alice = register(hub, ALICE)
    carol, to_carol = register(hub, CAROL)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    ask(hub, carol, CAROL, "WATCH", {"dids": [BOB.did]})
    hub.directory.remote_online(BOB.did, remote(BOB.did, "s1", unlisted=True))
    assert presence(to_alice) == [] and presence(to_carol) == []
    assert ask(hub, alice, ALICE, "DISCOVER", {})["payload"]["agents"][0]["did"] != BOB.did
    hub.directory.remote_online(BOB.did, remote(BOB.did, "s1", unlisted=True,
                                                audience=(ALICE.did,)))
    assert presence(to_alice) == [(BOB.did, "online")] and presence(to_carol) == []
    assert ask(hub, carol, CAROL, "WATCH", {"dids": [BOB.did]})["payload"]["agents"] == [
        {"did": BOB.did, "state": "offline"}]


def test_a_local_unlisted_agent_announces_its_audience(hub: Hub) -> None:
    announced: list[str | None] = []
    hub.directory.announce = lambda peer: announced.append(peer.did)
    bob, _ = register(hub, BOB, unlisted=True)
    ask(hub, bob, BOB, "WATCH", {"dids": [ALICE.did]})
    assert announced == [BOB.did]
    assert profile_document(bob.session.profile, frozenset({ALICE.did})) == {
        "unlisted": True, "audience": [ALICE.did], "card": None}


def test_requests_and_events_are_counted(hub: Hub) -> None:
    alice, _ = register(hub, ALICE)
    ask(hub, alice, ALICE, "WATCH", {"dids": [BOB.did]})
    ask(hub, alice, ALICE, "DISCOVER", {"limit": 0})  # refused: counted too
    register(hub, BOB, card={"name": "b"})

    def sample(name: str, **labels: str) -> float | None:
        value: float | None = hub.metrics.registry.get_sample_value(name, labels)
        return value

    assert sample("aiconexus_directory_requests_total", type="WATCH") == 1
    assert sample("aiconexus_directory_requests_total", type="DISCOVER") == 1
    assert sample("aiconexus_presence_events_total") == 1
    assert sample("aiconexus_discovery_listed_agents") == 2
    assert sample("aiconexus_presence_watched_dids") == 1


def test_watches_belong_to_the_session_that_made_them(hub: Hub) -> None:
    old, _ = register(hub, ALICE)
    ask(hub, old, ALICE, "WATCH", {"dids": [BOB.did]})
    new, _ = register(hub, ALICE)  # replaces the old session: its watches go
    assert not hub.directory.watches.watched(BOB.did)
    ask(hub, new, ALICE, "WATCH", {"dids": [CAROL.did]})
    hub.closed(old, 4409, "SESSION_REPLACED")  # the old one closing later keeps the new ones
    assert hub.directory.watches.watching(ALICE.did) == {CAROL.did}
    hub.closed(new, 1000, "bye")
    assert not hub.directory.watches.watched(CAROL.did)
