"""End-to-end encryption through the real gateway (a subprocess at LOG_LEVEL=DEBUG): Python to
Python and Python to JavaScript (Node) both ways; a ciphertext moved into another envelope, or
tampered, is reported and never delivered; the plaintext never appears in the gateway's output."""

from __future__ import annotations

import base64
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, InvalidMessageError
from aiconexus_gateway.e2e import E2E, b64url
from aiconexus_gateway.messages import build, parse
from tests.js.node_tools import NodeAgent, node, node_modules
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

SECRET = "the-plaintext-8d1f0c2e"  # must never reach the gateway's output


@pytest.fixture
def gateway() -> Iterator[GatewayProcess]:
    process = GatewayProcess(env={"LOG_LEVEL": "DEBUG"})
    yield process
    process.stop(signal.SIGKILL)


async def agent(gateway: GatewayProcess, key: DIDKey | None = None) -> GatewayClient:
    client = GatewayClient(gateway.ws_url, key or DIDKey.generate())
    await client.connect()
    return client


def tampered(payload: dict[str, Any]) -> dict[str, Any]:
    inner = dict(payload["e2e"])
    data = bytearray(base64.urlsafe_b64decode(inner["ciphertext"] + "=" * (-len(inner["ciphertext"]) % 4)))
    data[len(data) // 2] ^= 0x01
    inner["ciphertext"] = b64url(bytes(data))
    return {"e2e": inner}


def assert_log_has_no_plaintext(gateway: GatewayProcess, routed_id: str) -> None:
    gateway.wait_for_output(rf"routed \w+ {routed_id}")  # DEBUG is on and logged that message
    assert SECRET not in gateway.output()


@pytest.mark.gen_test(timeout=60)
async def test_python_agents_exchange_encrypted_payloads_the_gateway_cannot_read(
        gateway: GatewayProcess) -> None:
    alice_key, carol_key = DIDKey.generate(), DIDKey.generate()
    alice, bob, carol = (await agent(gateway, alice_key), await agent(gateway),
                         await agent(gateway, carol_key))
    invalid: list[InvalidMessageError] = []
    bob.on_invalid(invalid.append)
    try:
        sent = await alice.send(bob.did, "EXEC_REQUEST", {"method": "echo", "params": [SECRET]},
                                encrypt=True)
        request = await bob.receive(timeout=10)
        assert (request.id, request.sender, request.encrypted) == (sent, alice.did, True)
        assert request.payload == {"method": "echo", "params": [SECRET]}
        assert SECRET not in request.raw and set(request.fields["payload"]) == {"e2e"}

        reply = await bob.send(alice.did, "EXEC_RESPONSE", {"result": SECRET}, correlation_id=sent,
                               encrypt=True)
        response = await alice.receive(timeout=10)
        assert (response.id, response.correlation_id, response.encrypted) == (reply, sent, True)
        assert response.payload == {"result": SECRET}

        sealed = parse(request.raw).payload
        # carol copies alice's ciphertext into her own envelope to bob
        await carol.send_raw(build(carol_key, "EXEC_REQUEST", bob.did, sealed, now=0)[0])
        # alice's own ciphertext, re-sent by alice in an envelope of another type, and of another id
        await alice.send_raw(build(alice_key, "INTENT", bob.did, sealed, message_id=request.id,
                                   now=0)[0])
        await alice.send_raw(build(alice_key, "EXEC_REQUEST", bob.did, sealed, now=0)[0])
        # a tampered ciphertext in the envelope it was made for
        await alice.send_raw(build(alice_key, "EXEC_REQUEST", bob.did, tampered(sealed),
                                   message_id=request.id, now=0)[0])
        await wait_until(lambda: len(invalid) == 4, 10, lambda: f"4 reports, got {invalid}")
        assert all(error.reason.startswith("E2E_DECRYPT_FAILED:") for error in invalid)
        assert bob.invalid_messages == 4
        after = await alice.send(bob.did, "INTENT", {"n": 1}, encrypt=True)
        assert (await bob.receive(timeout=10)).id == after  # none of the four was delivered
        assert_log_has_no_plaintext(gateway, after)
    finally:
        for client in (alice, bob, carol):
            await client.close()


@pytest.mark.gen_test(timeout=60)
async def test_python_and_node_agents_exchange_encrypted_payloads_both_ways(
        gateway: GatewayProcess) -> None:
    node()
    node_modules()
    python = await agent(gateway)
    invalid: list[InvalidMessageError] = []
    python.on_invalid(invalid.append)
    js = await NodeAgent.start()
    try:
        info = await js.ok("connect", url=gateway.ws_url)
        js_did = str(info["did"])
        payload = {"secret": SECRET, "text": "héllo 😀", "n": 1.5, "nested": {"b": [1, None]}}
        sent = await python.send(js_did, "INTENT", payload, encrypt=True)
        received = (await js.ok("receive"))["message"]
        assert (received["id"], received["encrypted"], received["payload"]) == (sent, True, payload)
        assert SECRET not in received["raw"]

        answer = await js.ok("send", to=python.did, type="EXEC_RESPONSE", encrypt=True,
                             payload={"result": payload}, correlationId=sent)
        message = await python.receive(timeout=10)
        assert (message.id, message.encrypted, message.payload) == (answer["id"], True,
                                                                    {"result": payload})
        assert SECRET not in message.raw

        # the Node client refuses a tampered ciphertext (reported, not delivered), and so does Python
        sealed = E2E(python.key).seal(js_did, "INTENT", "t-1", {"secret": SECRET})
        await python.send_raw(build(python.key, "INTENT", js_did, tampered(sealed), message_id="t-1",
                                    now=0)[0])
        event = await js.event("invalid")
        assert event["reason"].startswith("E2E_DECRYPT_FAILED:")
        last = await python.send(js_did, "INTENT", {"n": 2}, encrypt=True)
        assert (await js.ok("receive"))["message"]["id"] == last
        assert_log_has_no_plaintext(gateway, last)
        assert not invalid
    finally:
        await js.stop()
        await python.close()
