"""The registry: one peer per DID, registration order, removal only of the current peer."""

from __future__ import annotations

from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.messages import MessageFactory
from aiconexus_gateway.peer import AgentRecord, Peer
from aiconexus_gateway.registry import Registry, agent_view
from aiconexus_gateway.session import Session, SessionSettings
from tests.support.memory import MemoryConnection

from .support import GATEWAY

CLOCK = ManualClock()
FACTORY = MessageFactory(GATEWAY, CLOCK.wall)


def _peer(did: str, at: float = 0.0) -> Peer:
    session = Session(FACTORY, SessionSettings(30.0, 300.0, 20.0), nonce=bytes(32),
                      session_id=f"s-{did}-{at}", now=0.0)
    session.did = did
    peer = Peer(MemoryConnection(), session, 0.0)
    peer.record = AgentRecord(at, {"name": did})
    return peer


def test_new_record_starts_with_zero_counters_and_activity_at_connection() -> None:
    record = _peer("a", 5.0).record
    assert record is not None
    assert (record.messages_sent, record.messages_received) == (0, 0)
    assert record.last_activity == record.connected_at == 5.0


def test_add_get_contains_len_and_iteration_in_registration_order() -> None:
    registry = Registry()
    peers = [_peer(d) for d in "cab"]
    for peer in peers:
        assert registry.add(str(peer.did), peer) is None
    assert len(registry) == 3
    assert "a" in registry and "z" not in registry
    assert registry.get("a") is peers[1] and registry.get("z") is None
    assert list(registry) == peers


def test_iteration_is_a_snapshot_that_survives_removal() -> None:
    registry = Registry()
    for did in "abc":
        registry.add(did, _peer(did))
    for peer in registry:
        registry.remove(str(peer.did), peer)
    assert len(registry) == 0


def test_adding_a_did_again_replaces_and_returns_the_old_peer_and_moves_it_last() -> None:
    registry = Registry()
    old, other, new = _peer("a", 1), _peer("b", 2), _peer("a", 3)
    registry.add("a", old)
    registry.add("b", other)
    assert registry.add("a", new) is old
    assert registry.get("a") is new
    assert list(registry) == [other, new]


def test_removing_a_replaced_peer_leaves_the_new_one() -> None:
    registry = Registry()
    old, new = _peer("a", 1), _peer("a", 2)
    registry.add("a", old)
    registry.add("a", new)
    assert registry.remove("a", old) is False
    assert registry.get("a") is new
    assert registry.remove("a", new) is True
    assert registry.remove("a", new) is False
    assert len(registry) == 0


def test_page_slices_in_registration_order_and_any_offset_past_the_end_is_empty() -> None:
    registry = Registry()
    peers = [_peer(str(i)) for i in range(5)]
    for peer in peers:
        registry.add(str(peer.did), peer)
    assert registry.page(2, 0) == peers[:2]
    assert registry.page(2, 3) == peers[3:]
    assert registry.page(10, 5) == []
    assert registry.page(0, 0) == []
    assert registry.page(100, 10**30) == []  # no slice of an index that cannot exist


def test_agent_view_formats_times_as_iso_utc() -> None:
    peer = _peer("did:key:z6Mk", 1_790_000_000.25)
    assert agent_view(peer) == {"did": "did:key:z6Mk", "connected_at": "2026-09-21T14:13:20.250Z",
                                "last_activity": "2026-09-21T14:13:20.250Z", "messages_sent": 0,
                                "messages_received": 0, "metadata": {"name": "did:key:z6Mk"}}
