"""GatewayClient against a real gateway on an ephemeral port: the Tornado pump around ClientSession."""

from __future__ import annotations

import asyncio

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, Message
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent


@pytest.mark.gen_test(timeout=30)
async def test_a_client_with_only_on_message_handlers_keeps_reading_past_its_queue_size(
        gateway: Gateway) -> None:
    """Regression: the handlers consumed every message, yet each one was also put in the bounded
    receive() queue; once it was full the client stopped reading, and the gateway cut it off."""
    alice = await connect_agent(gateway)
    bob = GatewayClient(gateway.ws_url, DIDKey.generate(), queue_size=2)
    received: list[Message] = []
    all_arrived = asyncio.Event()
    total = 10

    @bob.on_message
    def collect(message: Message) -> None:
        received.append(message)
        if len(received) == total:
            all_arrived.set()

    await bob.connect()
    sent = [await alice.send(bob.did, "INTENT", {"seq": n}) for n in range(total)]
    await asyncio.wait_for(all_arrived.wait(), 10)
    assert [message.id for message in received] == sent
    assert await bob.ping(timeout=5) > 0  # still reading: the PONG comes back
    assert bob.connected
    await alice.close()
    await bob.close()
