"""The mailbox through the real gateway and the SDK, over real sockets (one instance)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClientConnection

from aiconexus_gateway.client import DIDKey, GatewayClient, GatewayError, Message
from aiconexus_gateway.errors import Ending
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent, read_json
from tests.e2e.wire import registered, signed
from tests.support.sdk import next_of_type
from tests.support.waiting import wait_until


async def _read_until(ws: WebSocketClientConnection, type: str) -> dict[str, Any]:
    while True:
        frame = await read_json(ws)
        assert frame is not None, f"closed before a {type}"
        if frame["type"] == type:
            return frame


def _metric(gateway: Gateway, name: str, **labels: str) -> float | None:
    return gateway.hub.metrics.registry.get_sample_value(name, labels)


@pytest.mark.gen_test(timeout=30)
async def test_offline_recipient_gets_its_messages_in_order_then_the_sender_gets_receipts(
        gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    ids = [await alice.send(bob_key.did, "INTENT", {"n": i}, ttl=60) for i in range(5)]
    for message_id in ids:  # each one answered QUEUED, with its id
        queued = await next_of_type(alice, "QUEUED")
        assert (queued.sender, queued.correlation_id) == (gateway.did, message_id)
        assert queued.payload["id"] == message_id and queued.payload["to"] == bob_key.did
    assert _metric(gateway, "aiconexus_mailbox_held_messages") == 5
    agent = gateway.hub.agent(alice.did)
    assert agent is not None and "mailbox" not in agent  # nothing waits for alice

    bob = GatewayClient(gateway.ws_url, bob_key)
    got: list[Message] = []
    bob.on_message(got.append)
    await bob.connect()
    later = await alice.send(bob_key.did, "INTENT", {"n": "later"})  # no ttl: routed as ever
    await wait_until(lambda: len(got) == 6, 5, lambda: f"bob got {got}")
    assert [m.id for m in got] == [*ids, later]  # what waited first, in the order sent
    assert [m.payload["n"] for m in got[:5]] == [0, 1, 2, 3, 4]
    for message_id in ids:
        assert await alice.receipt(message_id, timeout=15) == "DELIVERED"
    await wait_until(lambda: _metric(gateway, "aiconexus_mailbox_held_messages") == 0, 5,
                     "the acknowledged messages to leave the mailbox")
    assert _metric(gateway, "aiconexus_mailbox_messages_total", event="delivered") == 5
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_recipient_online_gets_it_at_once_and_the_sender_still_gets_delivered(
        gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    sent = await alice.send(bob.did, "EXEC_REQUEST", {"x": 1}, ttl=30)
    received = await bob.receive(timeout=5)
    assert (received.id, received.fields["ttl"]) == (sent, 30)
    receipt = await next_of_type(alice, "RECEIPT")  # no QUEUED: it did not have to wait
    assert receipt.payload == {"id": sent, "to": bob.did, "status": "DELIVERED"}
    assert receipt.correlation_id == sent
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_stored_frame_is_byte_identical_and_comes_again_until_acknowledged(
        gateway: Gateway) -> None:
    alice_ws, alice_key = await registered(gateway)
    bob_key = DIDKey.generate()
    frame = json.loads(signed(alice_key, "OFFER", bob_key.did, {"sdp": "v=0\r\n", "é": "é"},
                              extra={"ttl": 60}))
    text = json.dumps(frame, indent=1, ensure_ascii=True)
    await alice_ws.write_message(text)
    queued = await _read_until(alice_ws, "QUEUED")
    assert queued["correlation_id"] == frame["id"]

    first, _ = await registered(gateway, bob_key)  # reads it, disconnects without an ACK
    assert await first.read_message() == text
    first.close()
    await wait_until(lambda: gateway.hub.registry.get(bob_key.did) is None, 5, "bob to leave")

    bob = await connect_agent(gateway, bob_key)  # the SDK: gets it again, acknowledges it
    again = await bob.receive(timeout=5)
    assert again.raw == text
    receipt = await _read_until(alice_ws, "RECEIPT")
    assert receipt["payload"]["status"] == "DELIVERED" and receipt["correlation_id"] == frame["id"]
    await bob.close()
    await wait_until(lambda: gateway.hub.registry.get(bob_key.did) is None, 5, "bob to leave")
    third, _ = await registered(gateway, bob_key)  # acknowledged: gone, nothing comes again
    probe = signed(bob_key, "PING", gateway.did, {"probe": 1})
    await third.write_message(probe)
    pong = await read_json(third)
    assert pong is not None and pong["type"] == "PONG"  # the first frame after REGISTERED
    third.close()
    alice_ws.close()


@pytest.mark.gen_test(timeout=30)
async def test_the_sdk_hands_a_message_received_twice_to_the_application_once(
        gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    sent = await alice.send(bob_key.did, "INTENT", {"once": True}, ttl=60)
    await next_of_type(alice, "QUEUED")
    bob = await connect_agent(gateway, bob_key, reconnect=True)
    await wait_until(lambda: _metric(gateway, "aiconexus_mailbox_messages_total", event="written")
                     == 1, 5, "the gateway to write the message to bob")
    peer = gateway.hub.registry.get(bob_key.did)
    assert peer is not None
    gateway.hub.end(peer, Ending.GOING_AWAY)  # cut before the application took it: no ACK yet
    await wait_until(lambda: bob.duplicates == 1, 10, "bob to reconnect and get it again")
    assert (await bob.receive(timeout=5)).id == sent  # now the application has it: ACK
    assert await alice.receipt(sent, timeout=15) == "DELIVERED"
    marker = await alice.send(bob_key.did, "INTENT", {"marker": True})
    assert (await bob.receive(timeout=5)).id == marker  # and not the repeat before it
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_offline_sender_finds_its_receipts_when_it_returns(gateway: Gateway) -> None:
    alice_key, bob_key = DIDKey.generate(), DIDKey.generate()
    alice = await connect_agent(gateway, alice_key)
    sent = await alice.send(bob_key.did, "INTENT", {}, ttl=60)
    await next_of_type(alice, "QUEUED")
    await alice.close()
    bob = await connect_agent(gateway, bob_key)
    assert (await bob.receive(timeout=5)).id == sent
    await wait_until(lambda: _metric(gateway, "aiconexus_mailbox_held_receipts") == 1, 5,
                     "the receipt to wait for alice")
    alice = await connect_agent(gateway, alice_key)
    assert await alice.receipt(sent, timeout=15) == "DELIVERED"
    await wait_until(lambda: _metric(gateway, "aiconexus_mailbox_held_receipts") == 0, 5,
                     "alice to acknowledge the receipt")
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_message_nobody_collects_expires_and_its_sender_is_told(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    absent = DIDKey.generate().did
    started = time.monotonic()
    sent = await alice.send(absent, "INTENT", {}, ttl=1)
    assert await alice.receipt(sent, timeout=15) == "EXPIRED"
    assert time.monotonic() - started >= 0.9
    assert _metric(gateway, "aiconexus_mailbox_messages_total", event="expired") == 1
    assert _metric(gateway, "aiconexus_mailbox_held_messages") == 0
    await alice.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(mailbox_max_per_sender=2, mailbox_max_messages=3,
                            mailbox_max_ttl=120)
async def test_bounds_answer_mailbox_full_and_store_nothing(gateway: Gateway) -> None:
    mallory, carol, dave = [await connect_agent(gateway) for _ in range(3)]
    bob = DIDKey.generate().did
    for _ in range(2):
        await mallory.send(bob, "INTENT", {}, ttl=60)
        await next_of_type(mallory, "QUEUED")
    over = await mallory.send(bob, "INTENT", {}, ttl=60)
    error = await next_of_type(mallory, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MAILBOX_FULL", over)
    assert error.payload["details"] == {"reason": "pair_messages", "to": bob}
    await carol.send(bob, "INTENT", {}, ttl=60)  # a hostile sender did not fill bob's mailbox
    await next_of_type(carol, "QUEUED")
    await dave.send(bob, "INTENT", {}, ttl=60)
    assert (await next_of_type(dave, "ERROR", "QUEUED")).error_code == "MAILBOX_FULL"  # 3 per recipient
    too_long = await carol.send(bob, "INTENT", {}, ttl=121)
    error = await next_of_type(carol, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MALFORMED_MESSAGE", too_long)
    assert _metric(gateway, "aiconexus_mailbox_held_messages") == 3
    assert _metric(gateway, "aiconexus_mailbox_refused_total", reason="pair_messages") == 1
    assert _metric(gateway, "aiconexus_mailbox_refused_total", reason="recipient_messages") == 1
    for client in (mallory, carol, dave):
        await client.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_recipient_can_disable_its_mailbox_and_refuse_senders(gateway: Gateway) -> None:
    alice, carol = await connect_agent(gateway), await connect_agent(gateway)
    bob_key = DIDKey.generate()
    bob = await connect_agent(gateway, bob_key)
    view = await bob.mailbox(enabled=True, blocked=[carol.did])
    assert (view["enabled"], view["blocked"], view["messages"]) == (True, [carol.did], 0)
    await bob.close()
    refused = await carol.send(bob_key.did, "INTENT", {}, ttl=60)
    error = await next_of_type(carol, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MAILBOX_REFUSED", refused)
    assert error.payload["details"]["reason"] == "blocked"
    await alice.send(bob_key.did, "INTENT", {}, ttl=60)
    await next_of_type(alice, "QUEUED")

    bob = await connect_agent(gateway, bob_key)
    await next_of_type(bob, "INTENT")
    view = await bob.mailbox(enabled=False)
    assert view["enabled"] is False
    detail = gateway.hub.agent(bob_key.did)
    assert detail is not None and detail["mailbox"]["enabled"] is False
    await bob.close()
    await alice.send(bob_key.did, "INTENT", {}, ttl=60)
    error = await next_of_type(alice, "ERROR")
    assert error.error_code == "MAILBOX_REFUSED" and error.payload["details"]["reason"] == "disabled"
    with pytest.raises(ValueError):
        await alice.mailbox(blocked=["not a did"])
    for client in (alice, carol):
        await client.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(mailbox_max_ttl=0)
async def test_without_a_mailbox_a_ttl_is_refused_clearly(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    sent = await alice.send(bob.did, "INTENT", {}, ttl=5)
    error = await next_of_type(alice, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MAILBOX_REFUSED", sent)
    assert error.payload["details"]["reason"] == "unavailable"
    with pytest.raises(GatewayError) as refused:
        await alice.mailbox()
    assert refused.value.code == "MAILBOX_REFUSED"
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_mailbox_series_and_depth_are_served(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    await alice.send(bob_key.did, "INTENT", {"x": "y" * 100}, ttl=60)
    await next_of_type(alice, "QUEUED")
    metrics = await _fetch(f"{gateway.http_url}/metrics")
    assert "aiconexus_mailbox_held_messages 1.0" in metrics
    assert 'aiconexus_mailbox_messages_total{event="queued"} 1.0' in metrics
    bob_ws, _ = await registered(gateway, bob_key)  # reads, does not acknowledge
    await bob_ws.read_message()
    detail = json.loads(await _fetch(f"{gateway.http_url}/agents/{bob_key.did}"))
    assert detail["mailbox"]["messages"] == 1 and detail["mailbox"]["bytes"] > 100
    page = json.loads(await _fetch(f"{gateway.http_url}/agents"))
    listed = {agent["did"]: agent.get("mailbox") for agent in page["agents"]}
    assert listed[bob_key.did] == detail["mailbox"] and listed[alice.did] is None
    bob_ws.close()
    await alice.close()


async def _fetch(url: str) -> str:
    response = await AsyncHTTPClient().fetch(url)
    return str(response.body.decode())


@pytest.mark.gen_test(timeout=60)
@pytest.mark.gateway_config(mailbox_max_per_sender=400)
async def test_many_waiting_messages_are_acknowledged_within_the_rate_limit(
        gateway: Gateway) -> None:
    """300 messages waiting, the limit 100 frames/s with a burst of 200: the SDK paces its ACKs,
    so none is refused RATE_LIMITED and every sender gets its DELIVERED."""
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    ids = [await alice.send(bob_key.did, "INTENT", {"n": n}, ttl=120) for n in range(300)]
    bob = await connect_agent(gateway, bob_key)
    got = [(await next_of_type(bob, "INTENT", "ERROR")) for _ in ids]
    assert [m.id for m in got] == ids
    statuses = [await alice.receipt(message_id, timeout=20) for message_id in ids]
    assert statuses == ["DELIVERED"] * 300
    assert _metric(gateway, "aiconexus_rate_limited_frames_total") == 0
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.gateway_config(max_outbound_buffer=65536)
async def test_a_backlog_larger_than_the_outbound_buffer_is_written_as_it_is_acknowledged(
        gateway: Gateway) -> None:
    """40 messages of 4 KB wait (160 KB) for an agent whose connection may hold 64 KB unsent:
    written all at once they would close it as a slow consumer on every return; the gateway
    writes a window and the rest as the acknowledgements come."""
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    ids = [await alice.send(bob_key.did, "INTENT", {"n": n, "data": "x" * 4000}, ttl=120)
           for n in range(40)]
    bob = await connect_agent(gateway, bob_key)
    got = [(await next_of_type(bob, "INTENT")).id for _ in ids]
    assert got == ids and bob.reconnects == 0
    assert [await alice.receipt(i, timeout=15) for i in ids] == ["DELIVERED"] * 40
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_encrypted_message_waits_like_any_other_and_opens_on_arrival(
        gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    sent = await alice.send(bob_key.did, "INTENT", {"secret": "42"}, encrypt=True, ttl=60)
    await next_of_type(alice, "QUEUED")
    bob = await connect_agent(gateway, bob_key)
    received = await next_of_type(bob, "INTENT")
    assert (received.id, received.encrypted, received.payload) == (sent, True, {"secret": "42"})
    assert await alice.receipt(sent, timeout=15) == "DELIVERED"
    await alice.close()
    await bob.close()
