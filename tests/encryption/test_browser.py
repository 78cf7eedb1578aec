"""End-to-end encryption in a real browser: headless Chromium loads the JavaScript client and
libsodium.js through an import map (clients/js/test/browser/e2e.html, no bundler), exchanges
encrypted messages with a Python SDK agent through the real gateway, both ways."""

from __future__ import annotations

import signal

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, Message
from tests.js.test_browser import in_browser, page_server  # noqa: F401 (a fixture)
from tests.support.process import GatewayProcess

SECRET = "browser-plaintext-3b9e1d"


@pytest.mark.gen_test(timeout=120)
async def test_a_page_and_a_python_agent_exchange_encrypted_payloads(
        page_server: str) -> None:  # noqa: F811
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": page_server, "LOG_LEVEL": "DEBUG"})
    python = GatewayClient(gateway.ws_url, DIDKey.generate())
    seen: list[Message] = []

    @python.on_message
    async def on_message(message: Message) -> None:
        seen.append(message)
        if message.type == "EXEC_REQUEST":
            await python.send(message.sender, "EXEC_RESPONSE", {"result": message.payload["params"]},
                              correlation_id=message.id, encrypt=True)

    await python.connect()
    try:
        result = await in_browser(page_server, "encrypted", page="/test/browser/e2e.html",
                                  gateway=gateway.ws_url, peer=python.did, secret=SECRET)
        request = seen[0]
        assert (request.id, request.sender, request.encrypted) == (result["sentId"], result["did"],
                                                                   True)
        assert request.payload == {"method": "echo", "params": [SECRET, "é😀"]}
        reply = result["reply"]
        assert reply["encrypted"] is True and reply["correlationId"] == request.id
        assert reply["payload"] == {"result": [SECRET, "é😀"]}
        assert SECRET not in reply["raw"] and SECRET not in request.raw
        assert result["invalid"] == [] and python.invalid_messages == 0
        assert SECRET not in gateway.output()
    finally:
        await python.close()
        gateway.stop(signal.SIGKILL)


@pytest.mark.gen_test(timeout=120)
async def test_a_page_without_the_import_map_is_told_why_it_cannot_encrypt(
        page_server: str) -> None:  # noqa: F811
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": page_server})
    python = GatewayClient(gateway.ws_url, DIDKey.generate())
    await python.connect()
    try:
        result = await in_browser(page_server, "noLibrary", gateway=gateway.ws_url, peer=python.did)
        assert result["error"] is not None, "sent encrypted without libsodium.js?"
        assert "libsodium-wrappers" in result["error"]["message"]
        assert "import map" in result["error"]["message"]
        message = await python.receive(timeout=10)  # nothing went out for the refused send
        assert (message.id, message.payload, message.encrypted) == (result["plainId"], {"n": 2},
                                                                    False)
    finally:
        await python.close()
        gateway.stop(signal.SIGKILL)
