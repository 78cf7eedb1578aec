"""Helpers for tests that drive the Python SDK against a real gateway."""

from __future__ import annotations

import asyncio

from aiconexus_gateway.client import GatewayClient, Message, PresenceEvent


async def next_of_type(client: GatewayClient, *types: str, timeout: float = 15) -> Message:
    """The next message of one of `types`, skipping the others (QUEUED and RECEIPT come in
    between); each wait bounded by `timeout` seconds."""
    while True:
        message = await client.receive(timeout=timeout)
        if message.type in types:
            return message


def collect(client: GatewayClient) -> asyncio.Queue[PresenceEvent]:
    """The PRESENCE events `client` receives from now on, in a queue."""
    events: asyncio.Queue[PresenceEvent] = asyncio.Queue()
    client.on_presence(events.put_nowait)
    return events


async def next_event(events: asyncio.Queue[PresenceEvent], timeout: float = 5.0) -> PresenceEvent:
    return await asyncio.wait_for(events.get(), timeout)
