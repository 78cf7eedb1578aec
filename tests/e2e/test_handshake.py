"""The handshake against the real server: CHALLENGE, REGISTER, and every way it can fail."""

from __future__ import annotations

import json
import re

import pytest
from nacl.signing import VerifyKey
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.websocket import websocket_connect

from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient, GatewayError
from aiconexus_gateway.did import public_key_from_did
from aiconexus_gateway.messages import parse
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent, raw_connect, read_json
from tests.e2e.wire import challenged, expect_close, expect_error, registered, signed
from tests.support.waiting import wait_until


@pytest.mark.gen_test
async def test_challenge_is_signed_by_the_gateway_and_names_its_nonce(gateway: Gateway) -> None:
    ws = await raw_connect(gateway)
    assert ws.selected_subprotocol == "ioap.v1"
    text = await ws.read_message()
    assert isinstance(text, str)
    envelope = parse(text)
    envelope.verify(VerifyKey(public_key_from_did(gateway.did)))
    assert envelope.type == "CHALLENGE" and envelope.sender == gateway.did
    assert envelope.recipient is None
    assert len(envelope.payload["nonce"]) == 43  # base64url of 32 bytes, unpadded
    assert envelope.payload["expires_in"] == gateway.config.challenge_timeout
    ws.close()


@pytest.mark.gen_test
async def test_register_gives_registered_with_session_details(gateway: Gateway) -> None:
    key = DIDKey.generate()
    ws, challenge = await challenged(gateway)
    register = signed(key, "REGISTER", gateway.did,
                      {"nonce": challenge["payload"]["nonce"], "metadata": {"name": "alice"}})
    await ws.write_message(register)
    reply = await read_json(ws)
    assert reply is not None and reply["type"] == "REGISTERED"
    assert reply["correlation_id"] == json.loads(register)["id"]
    assert reply["payload"]["did"] == key.did
    assert reply["payload"]["agent_timeout"] == gateway.config.agent_timeout
    assert reply["payload"]["ping_interval"] == gateway.config.ping_interval
    assert reply["payload"]["session_id"]
    assert gateway.hub.agent(key.did)["metadata"] == {"name": "alice"}  # type: ignore[index]
    ws.close()


@pytest.mark.gen_test
async def test_client_offering_no_subprotocol_is_accepted(gateway: Gateway) -> None:
    ws = await websocket_connect(gateway.ws_url)
    assert (await read_json(ws))["type"] == "CHALLENGE"  # type: ignore[index]
    ws.close()


@pytest.mark.gen_test
async def test_client_offering_only_other_subprotocols_is_refused_with_400(gateway: Gateway) -> None:
    with pytest.raises(HTTPClientError) as refused:
        await websocket_connect(gateway.ws_url, subprotocols=["graphql-ws", "mqtt"])
    assert refused.value.code == 400
    assert refused.value.response is not None
    body = json.loads(refused.value.response.body)
    assert "ioap.v1" in body["message"]


@pytest.mark.gen_test
async def test_anything_before_register_is_not_registered_and_closes_4400(gateway: Gateway) -> None:
    ws, _ = await challenged(gateway)
    key = DIDKey.generate()
    frame = signed(key, "OFFER", key.did, {})
    await ws.write_message(frame)
    await expect_error(ws, "NOT_REGISTERED", json.loads(frame)["id"])
    assert (await expect_close(ws))[0] == 4400


@pytest.mark.gen_test
async def test_malformed_handshake_frame_closes_4400(gateway: Gateway) -> None:
    ws, _ = await challenged(gateway)
    await ws.write_message("this is not json")
    await expect_error(ws, "MALFORMED_MESSAGE")
    assert (await expect_close(ws))[0] == 4400


@pytest.mark.gen_test
async def test_wrong_nonce_is_auth_failed_4401(gateway: Gateway) -> None:
    ws, _ = await challenged(gateway)
    await ws.write_message(signed(DIDKey.generate(), "REGISTER", gateway.did, {"nonce": "x" * 43}))
    await expect_error(ws, "AUTH_FAILED")
    assert (await expect_close(ws))[0] == 4401


@pytest.mark.gen_test
async def test_register_addressed_to_another_gateway_is_auth_failed(gateway: Gateway) -> None:
    ws, challenge = await challenged(gateway)
    other = DIDKey.generate().did
    await ws.write_message(signed(DIDKey.generate(), "REGISTER", other,
                                  {"nonce": challenge["payload"]["nonce"]}))
    await expect_error(ws, "AUTH_FAILED")
    assert (await expect_close(ws))[0] == 4401


@pytest.mark.gen_test
async def test_register_signed_by_another_key_is_invalid_signature_4401(gateway: Gateway) -> None:
    ws, challenge = await challenged(gateway)
    victim, attacker = DIDKey.generate(), DIDKey.generate()
    frame = json.loads(signed(attacker, "REGISTER", gateway.did,
                              {"nonce": challenge["payload"]["nonce"]}))
    frame["from"] = victim.did  # claim the victim's DID with the attacker's signature
    await ws.write_message(json.dumps(frame))
    await expect_error(ws, "INVALID_SIGNATURE")
    assert (await expect_close(ws))[0] == 4401
    assert gateway.hub.agent(victim.did) is None


@pytest.mark.gen_test
async def test_register_with_raw_key_did_without_multicodec_is_invalid_did(gateway: Gateway) -> None:
    import base58

    key = DIDKey.generate()
    bogus = "did:key:z6Mk" + base58.b58encode(key.public_key).decode()
    ws, challenge = await challenged(gateway)
    frame = json.loads(signed(key, "REGISTER", gateway.did, {"nonce": challenge["payload"]["nonce"]}))
    frame["from"] = bogus
    await ws.write_message(json.dumps(frame))
    error = await expect_error(ws, "INVALID_DID")
    assert "did:key:z" in error["payload"]["message"] and "0xed01" in error["payload"]["message"]
    assert (await expect_close(ws))[0] == 4400


@pytest.mark.gen_test
async def test_unsupported_version_in_handshake_closes_4400(gateway: Gateway) -> None:
    ws, challenge = await challenged(gateway)
    await ws.write_message(signed(DIDKey.generate(), "REGISTER", gateway.did,
                                  {"nonce": challenge["payload"]["nonce"]}, extra={"version": "2.0"}))
    await expect_error(ws, "UNSUPPORTED_VERSION")
    assert (await expect_close(ws))[0] == 4400


@pytest.mark.gen_test
async def test_replayed_register_is_refused_on_another_connection_and_the_same_one(
        gateway: Gateway) -> None:
    key = DIDKey.generate()
    first, challenge = await challenged(gateway)
    register = signed(key, "REGISTER", gateway.did, {"nonce": challenge["payload"]["nonce"]})
    await first.write_message(register)
    assert (await read_json(first))["type"] == "REGISTERED"  # type: ignore[index]

    second, _ = await challenged(gateway)  # an eavesdropper replays the captured frame
    await second.write_message(register)
    await expect_error(second, "AUTH_FAILED")
    assert (await expect_close(second))[0] == 4401

    await first.write_message(register)  # and on the same connection it is no longer a REGISTER
    reply = await read_json(first)
    assert reply is not None and reply["type"] == "ERROR"
    assert gateway.hub.agent(key.did) is not None  # the honest session is untouched
    first.close()


@pytest.mark.gen_test
@pytest.mark.gateway_config(challenge_timeout=0.3)
async def test_no_register_within_challenge_timeout_is_timeout_4408(gateway: Gateway) -> None:
    ws, _ = await challenged(gateway)
    await expect_error(ws, "TIMEOUT")
    assert (await expect_close(ws))[0] == 4408


@pytest.mark.gen_test
@pytest.mark.gateway_config(max_message_size=2048)
async def test_frame_over_the_size_limit_is_message_too_large_1009(gateway: Gateway) -> None:
    ws, key = await registered(gateway)
    await ws.write_message(signed(key, "OFFER", key.did, {"sdp": "x" * 4000}))
    await expect_error(ws, "MESSAGE_TOO_LARGE")
    assert (await expect_close(ws))[0] == 1009


@pytest.mark.gen_test
async def test_sdk_connect_raises_with_the_error_code_when_refused(gateway: Gateway) -> None:
    client = GatewayClient(gateway.ws_url, DIDKey.generate(), metadata={"blob": "x" * 5000})
    with pytest.raises(GatewayError) as refused:
        await client.connect()
    assert refused.value.code == "MALFORMED_MESSAGE"
    assert "4096" in refused.value.message
    assert refused.value.close_code == 4400


@pytest.mark.gen_test
async def test_second_register_for_a_did_replaces_the_first_session(gateway: Gateway) -> None:
    key = DIDKey.generate()
    old = await connect_agent(gateway, key)
    new = await connect_agent(gateway, key)
    replaced = await old.receive(timeout=5)
    assert replaced.error_code == "SESSION_REPLACED"
    with pytest.raises(ConnectionClosed):
        await old.receive(timeout=5)
    assert old.close_code == 4409

    sender = await connect_agent(gateway)
    await sender.send(key.did, "OFFER", {"n": 1})
    assert (await new.receive(timeout=5)).payload == {"n": 1}

    async def replaced_connection_gone() -> bool:  # its close ran: it did not take the new one
        metrics = (await AsyncHTTPClient().fetch(f"{gateway.http_url}/metrics")).body.decode()
        return re.search(r"^aiconexus_open_connections 2\.0$", metrics, re.MULTILINE) is not None
    await wait_until(replaced_connection_gone, 5, "the replaced connection closed on the gateway")
    assert gateway.hub.registry.get(key.did).session.session_id == new.session_id  # type: ignore[union-attr]
    for client in (new, sender):
        await client.close()
