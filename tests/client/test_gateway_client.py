"""GatewayClient against a real gateway on an ephemeral port: the Tornado pump around ClientSession."""

from __future__ import annotations

import asyncio

import pytest

from aiconexus_gateway.client import ClientState, ConnectionClosed, DIDKey, GatewayClient, Message
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


@pytest.mark.gen_test(timeout=30)
async def test_the_end_is_seen_after_the_messages_that_filled_the_queue(gateway: Gateway) -> None:
    """Regression: when the connection ended with the receive() queue full, the end was never
    queued, and receive() waited forever once the queue was drained."""
    bob = await connect_agent(gateway, queue_size=2)
    sent = [await bob.send(bob.did, "INTENT", {"n": n}) for n in range(2)]
    await bob.ping()  # the gateway wrote both messages to bob before the PONG
    await bob.close()
    assert [(await bob.receive(timeout=5)).id for _ in range(2)] == sent
    with pytest.raises(ConnectionClosed):
        await bob.receive(timeout=5)
    with pytest.raises(ConnectionClosed):  # and every later call too
        await bob.receive(timeout=5)


@pytest.mark.gen_test(timeout=30)
async def test_receive_is_refused_while_handlers_get_the_messages(gateway: Gateway) -> None:
    bob = await connect_agent(gateway)
    bob.on_message(lambda message: None)
    with pytest.raises(RuntimeError, match="on_message handlers"):
        await bob.receive(timeout=5)
    await bob.close()
    await bob.wait_closed()
    assert bob.state is ClientState.CLOSED


@pytest.mark.gen_test(timeout=30)
async def test_a_failing_handler_is_logged_and_the_client_reads_on(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    bob = await connect_agent(gateway)
    seen: list[object] = []
    second = asyncio.Event()

    @bob.on_message
    async def fragile(message: Message) -> None:
        seen.append(message.payload["n"])
        if message.payload["n"] == 0:
            raise KeyError("the application's bug")
        second.set()

    await bob.send(bob.did, "INTENT", {"n": 0})
    await bob.send(bob.did, "INTENT", {"n": 1})
    await asyncio.wait_for(second.wait(), 5)
    assert seen == [0, 1] and bob.connected
    assert any("on_message handler" in record.message and record.exc_info
               for record in caplog.records)
    await bob.close()
