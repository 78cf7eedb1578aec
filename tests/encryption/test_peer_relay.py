"""A peer channel relayed through the gateway (issue 12's fallback) carries its data encrypted end
to end: every frame the gateway receives is recorded, and none holds the channel's data."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent

SECRET = "relayed-plaintext-91e4aa"


@pytest.mark.gen_test(timeout=60)
async def test_relayed_channel_data_reaches_the_gateway_only_as_ciphertext(
        gateway: Gateway) -> None:
    seen: list[str] = []  # every text frame the gateway received, as received
    hub_receive = gateway.hub.receive

    def recording(peer: Any, text: str) -> None:
        seen.append(text)
        hub_receive(peer, text)

    gateway.hub.receive = recording  # the server calls hub.receive for every text frame
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    incoming = bob.peers()
    # relay-only ICE without a TURN server cannot connect: the fallback relays through the gateway
    ours = await alice.connect_peer(bob.did, "secret", timeout=10, fallback=True, relay_only=True,
                                    ice_servers=[])
    theirs = await asyncio.wait_for(incoming.__anext__(), 10)
    try:
        assert (ours.transport, theirs.transport) == ("relay", "relay")
        await ours.send(f"{SECRET} text")
        await theirs.send(f"{SECRET} bytes".encode())
        assert await theirs.receive(timeout=10) == f"{SECRET} text"
        assert await ours.receive(timeout=10) == f"{SECRET} bytes".encode()
        relayed = [json.loads(text) for text in seen if '"ICE_CANDIDATE"' in text]
        encrypted = [frame for frame in relayed if set(frame["payload"]) == {"e2e"}]
        assert len(encrypted) >= 2  # the two data frames, at least
        assert not any(SECRET in text for text in seen)
        as_base64 = base64.b64encode(f"{SECRET} bytes".encode()).decode()[:24]
        assert not any(as_base64 in text for text in seen)
    finally:
        await ours.close()
        await alice.close()
        await bob.close()
