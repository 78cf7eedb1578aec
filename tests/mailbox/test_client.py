"""The SDK's side of the mailbox without sockets: repeats dropped, ACKs once the application is
done, ttl checked (client/mailbox.py through ClientSession)."""

from __future__ import annotations

import json

import pytest

from aiconexus_gateway.client.mailbox import Acknowledgements, Seen
from aiconexus_gateway.client.session import ClientSession, Deliver, Send
from aiconexus_gateway.messages import build
from tests.client.test_session import AGENT, GATEWAY, PEER, WALL, new_session, register


def _letter(message_id: str = "m-1", ttl: int | None = 60) -> str:
    text, _ = build(PEER, "INTENT", AGENT.did, {"n": 1}, message_id=message_id, now=WALL,
                    extra={"ttl": ttl} if ttl is not None else None)
    return text


def _registered() -> ClientSession:
    session = new_session()
    register(session)
    return session


def test_a_mailbox_message_is_delivered_once_and_acknowledged_when_handled() -> None:
    session = _registered()
    first = session.receive(_letter(), 1.0)
    assert isinstance(first, Deliver)
    assert session.receive(_letter(), 1.1) is None  # a repeat while the application has it
    ack = session.handled(first.message)
    assert ack is not None
    sent = json.loads(ack)
    assert (sent["type"], sent["to"], sent["from"]) == ("ACK", GATEWAY.did, AGENT.did)
    assert sent["payload"] == {"from": PEER.did, "id": "m-1"}
    assert session.handled(first.message) is None  # once
    again = session.receive(_letter(), 2.0)  # the ACK was lost: it comes again after a reconnect
    assert isinstance(again, Send) and json.loads(again.text)["payload"] == sent["payload"]
    assert session.acks.duplicates == 2


def test_messages_without_ttl_are_neither_acknowledged_nor_deduplicated() -> None:
    session = _registered()
    first = session.receive(_letter(ttl=None), 1.0)
    assert isinstance(first, Deliver) and session.handled(first.message) is None
    assert isinstance(session.receive(_letter(ttl=None), 1.0), Deliver)


def test_a_receipt_from_the_gateway_is_acknowledged_by_its_own_id() -> None:
    session = _registered()
    text, receipt_id = build(GATEWAY, "RECEIPT", AGENT.did,
                             {"id": "m-9", "to": PEER.did, "status": "DELIVERED"},
                             correlation_id="m-9", now=WALL)
    delivered = session.receive(text, 1.0)
    assert isinstance(delivered, Deliver)
    ack = session.handled(delivered.message)
    assert ack is not None
    assert json.loads(ack)["payload"] == {"from": GATEWAY.did, "id": receipt_id}


def test_send_with_ttl_signs_it_as_a_top_level_member() -> None:
    session = _registered()
    _, text = session.send(PEER.did, "INTENT", {}, None, 1.0, ttl=30)
    assert text is not None and json.loads(text)["ttl"] == 30
    for bad in (0, -5, 1.5, "30", True):
        with pytest.raises(ValueError, match="ttl"):
            session.send(PEER.did, "INTENT", {}, None, 1.0, ttl=bad)  # type: ignore[arg-type]


def test_the_memory_of_seen_messages_is_bounded() -> None:
    acks = Acknowledgements(memory=2)
    for n in range(3):
        assert acks.arrived("did:key:a", f"m{n}") is Seen.NEW
    assert acks.arrived("did:key:a", "m0") is Seen.NEW  # forgotten: the oldest went first
    assert acks.arrived("did:key:a", "m2") is Seen.HANDLING


def test_the_mailbox_benchmark_runs_and_measures_each_step() -> None:
    from benchmarks.mailbox import run

    results = run(50, 20)
    assert set(results) == {"direct_us", "store_us", "deliver_ack_us", "bytes_per_waiting",
                            "frame_bytes"}
    assert all(value > 0 for value in results.values())
