"""An encrypted letter waits in the mailbox (issue 14) as ciphertext: the stored frame never holds
the plaintext, and the recipient that comes online later opens it (real gateway, real sockets)."""

from __future__ import annotations

import json

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, Message
from aiconexus_gateway.mailroom import LocalMailroom
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent

SECRET = "mailbox-plaintext-5c7a2f"


async def _next(client: GatewayClient, type: str) -> Message:
    while True:  # QUEUED and RECEIPT come in between
        message = await client.receive(timeout=5)
        if message.type == type:
            return message


@pytest.mark.gen_test(timeout=30)
async def test_a_stored_encrypted_letter_holds_no_plaintext_and_opens_for_its_recipient(
        gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    bob_key = DIDKey.generate()
    sent = await alice.send(bob_key.did, "EXEC_REQUEST", {"method": "echo", "params": [SECRET]},
                            encrypt=True, ttl=60)
    queued = await _next(alice, "QUEUED")
    assert queued.correlation_id == sent
    mailroom = gateway.hub.router.mailroom
    assert isinstance(mailroom, LocalMailroom)
    letters = list(mailroom.mailbox.boxes[bob_key.did].letters.values())
    assert [letter.id for letter in letters] == [sent]
    stored = letters[0].text
    assert SECRET not in stored
    assert set(json.loads(stored)["payload"]) == {"e2e"}

    bob = await connect_agent(gateway, bob_key)
    try:
        letter = await _next(bob, "EXEC_REQUEST")
        assert (letter.id, letter.encrypted) == (sent, True)
        assert letter.payload == {"method": "echo", "params": [SECRET]}
    finally:
        await bob.close()
        await alice.close()
