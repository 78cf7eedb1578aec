"""Routing between registered agents over real sockets: delivery, ordering, and every error."""

from __future__ import annotations

import asyncio
import json

import pytest

from aiconexus_gateway.client import DIDKey
from aiconexus_gateway.messages import ROUTABLE_TYPES
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent, read_json
from tests.e2e.wire import expect_close, expect_error, registered, signed
from tests.support.waiting import wait_until


@pytest.mark.gen_test
@pytest.mark.parametrize("message_type", sorted(ROUTABLE_TYPES))
async def test_every_routable_type_is_delivered_verified(gateway: Gateway, message_type: str) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    sent_id = await alice.send(bob.did, message_type, {"k": message_type, "n": 1.25})
    received = await bob.receive(timeout=5)
    assert (received.type, received.id, received.sender) == (message_type, sent_id, alice.did)
    assert received.payload == {"k": message_type, "n": 1.25}
    await alice.close()
    await bob.close()


@pytest.mark.gen_test
async def test_forwarded_frame_is_byte_identical_to_what_was_sent(gateway: Gateway) -> None:
    sender_ws, sender_key = await registered(gateway)
    receiver_ws, receiver_key = await registered(gateway)
    # Odd but valid JSON: spacing, key order, escapes, an extra top-level field; all signed.
    frame = json.loads(signed(sender_key, "OFFER", receiver_key.did,
                              {"sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1", "é": "\u00e9"},
                              extra={"x-trace": [1, 2.5, None]}))
    text = json.dumps(frame, indent=2, ensure_ascii=True)
    await sender_ws.write_message(text)
    received = await asyncio.wait_for(receiver_ws.read_message(), 5)
    assert received == text
    sender_ws.close()
    receiver_ws.close()


@pytest.mark.gen_test
async def test_messages_from_one_sender_arrive_in_the_order_sent(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    ids = [await alice.send(bob.did, "ICE_CANDIDATE", {"seq": i}) for i in range(300)]
    got = [(await bob.receive(timeout=5)).id for _ in ids]
    assert got == ids
    await alice.close()
    await bob.close()


@pytest.mark.gen_test
async def test_recipient_not_connected_is_unknown_agent(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    absent = DIDKey.generate().did
    sent = await alice.send(absent, "OFFER", {})
    error = await alice.receive(timeout=5)
    assert error.error_code == "UNKNOWN_AGENT" and error.correlation_id == sent
    assert error.sender == gateway.did
    await alice.close()


@pytest.mark.gen_test
async def test_spoofed_from_is_sender_mismatch_and_nothing_is_forwarded(gateway: Gateway) -> None:
    attacker_ws, attacker_key = await registered(gateway)
    victim = DIDKey.generate()
    target = await connect_agent(gateway)
    frame = signed(victim, "INTENT", target.did, {"do": "transfer"})  # validly signed by the victim
    await attacker_ws.write_message(frame)
    await expect_error(attacker_ws, "SENDER_MISMATCH", json.loads(frame)["id"])
    honest = signed(attacker_key, "OFFER", target.did, {"n": 1})
    await attacker_ws.write_message(honest)
    # the target's next message is the honest one: a forwarded spoof would have come before it
    assert (await target.receive(timeout=5)).id == json.loads(honest)["id"]
    attacker_ws.close()
    await target.close()


@pytest.mark.gen_test
async def test_bad_signature_after_registration_is_invalid_signature_and_session_stays(
        gateway: Gateway) -> None:
    ws, key = await registered(gateway)
    bob = await connect_agent(gateway)
    frame = json.loads(signed(key, "OFFER", bob.did, {"sdp": "a"}))
    frame["payload"]["sdp"] = "tampered"
    await ws.write_message(json.dumps(frame))
    await expect_error(ws, "INVALID_SIGNATURE", frame["id"])
    await ws.write_message(signed(key, "OFFER", bob.did, {"sdp": "honest"}))
    assert (await bob.receive(timeout=5)).payload == {"sdp": "honest"}
    ws.close()
    await bob.close()


@pytest.mark.gen_test
async def test_after_registration_bad_frames_get_errors_and_the_connection_stays_open(
        gateway: Gateway) -> None:
    ws, key = await registered(gateway)
    await ws.write_message("{not json")
    await expect_error(ws, "MALFORMED_MESSAGE")
    await ws.write_message(b"\x00binary", binary=True)
    await expect_error(ws, "MALFORMED_MESSAGE")
    await ws.write_message('{"id": "a", "id": "b"}')
    await expect_error(ws, "MALFORMED_MESSAGE")
    await ws.write_message(signed(key, "OFFER", "did:web:example.com", {}))
    await expect_error(ws, "INVALID_DID")
    await ws.write_message(signed(key, "OFFER", key.did, {}, extra={"version": "2.1"}))
    await expect_error(ws, "UNSUPPORTED_VERSION")
    await ws.write_message(signed(key, "REGISTERED", key.did, {}))
    await expect_error(ws, "MALFORMED_MESSAGE")
    frame = json.loads(signed(key, "OFFER", key.did, {}))
    del frame["timestamp"]
    await ws.write_message(json.dumps(frame))
    error = await expect_error(ws, "MALFORMED_MESSAGE", frame["id"])
    assert "timestamp" in error["payload"]["message"]
    # still registered: a PING is answered
    ping = signed(key, "PING", gateway.did, {"t": 1})
    await ws.write_message(ping)
    pong = await read_json(ws)
    assert pong is not None and pong["type"] == "PONG"
    assert pong["correlation_id"] == json.loads(ping)["id"] and pong["payload"] == {"t": 1}
    ws.close()


@pytest.mark.gen_test
async def test_unregister_removes_the_agent_and_closes_1000(gateway: Gateway) -> None:
    ws, key = await registered(gateway)
    assert gateway.hub.agent(key.did) is not None
    await ws.write_message(signed(key, "UNREGISTER", gateway.did, {}))
    assert (await expect_close(ws))[0] == 1000
    await wait_until(lambda: gateway.hub.agent(key.did) is None, 5, "the agent removed")


@pytest.mark.gen_test
@pytest.mark.gateway_config(agent_timeout=0.5)
async def test_silent_agent_is_disconnected_after_agent_timeout_and_removed(gateway: Gateway) -> None:
    ws, key = await registered(gateway)
    await expect_error(ws, "TIMEOUT")
    await expect_close(ws)
    await wait_until(lambda: gateway.hub.agent(key.did) is None, 5, "the agent removed")


@pytest.mark.gen_test
@pytest.mark.gateway_config(agent_timeout=0.6)
async def test_sdk_keepalive_keeps_an_idle_agent_registered(gateway: Gateway) -> None:
    idle = await connect_agent(gateway)
    await asyncio.sleep(1.5)  # on purpose: more than twice AGENT_TIMEOUT without a message
    assert gateway.hub.agent(idle.did) is not None
    assert idle.connected
    await idle.close()


@pytest.mark.gen_test
async def test_agent_that_disconnects_is_gone_and_messages_to_it_are_unknown_agent(
        gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    await bob.close()
    await wait_until(lambda: gateway.hub.agent(bob.did) is None, 5, "bob removed")
    await alice.send(bob.did, "OFFER", {})
    assert (await alice.receive(timeout=5)).error_code == "UNKNOWN_AGENT"
    await alice.close()


@pytest.mark.gen_test
async def test_sdk_reports_a_forged_message_instead_of_passing_it_on(gateway: Gateway) -> None:
    forger_ws, forger_key = await registered(gateway)
    bob = await connect_agent(gateway)
    invalid: list[str] = []
    bob.on_invalid(lambda error: invalid.append(error.reason))
    # VERIFY_SIGNATURES=all stops a tampered frame at the gateway; a handshake-mode gateway would
    # forward it, so the SDK verifies end to end. Write it straight to Bob's socket.
    frame = json.loads(signed(forger_key, "OFFER", bob.did, {"a": 1}))
    frame["payload"] = {"a": 2}
    target = gateway.hub.registry.get(bob.did)
    assert target is not None
    target.connection.send(json.dumps(frame))
    after = signed(forger_key, "OFFER", bob.did, {"a": 3})
    await forger_ws.write_message(after)
    # Bob's next message is the one sent after the forgery: the forged one was not passed on
    assert (await bob.receive(timeout=5)).id == json.loads(after)["id"]
    assert invalid and "INVALID_SIGNATURE" in invalid[0]
    assert bob.invalid_messages == 1
    forger_ws.close()
    await bob.close()


@pytest.mark.gen_test
async def test_a_fault_inside_the_gateway_is_answered_with_internal_error(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    ws, key = await registered(gateway)
    bob = await connect_agent(gateway)

    def broken_forward(*args: object) -> None:
        raise RuntimeError("injected fault")

    monkeypatch.setattr(gateway.hub.router, "forward", broken_forward)
    frame = signed(key, "OFFER", bob.did, {})
    await ws.write_message(frame)
    await expect_error(ws, "INTERNAL_ERROR", json.loads(frame)["id"])
    monkeypatch.undo()
    await ws.write_message(signed(key, "OFFER", bob.did, {"after": True}))
    assert (await bob.receive(timeout=5)).payload == {"after": True}
    ws.close()
    await bob.close()
