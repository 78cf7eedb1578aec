"""Helpers for tests that drive the Python SDK against a real gateway."""

from __future__ import annotations

from aiconexus_gateway.client import GatewayClient, Message


async def next_of_type(client: GatewayClient, *types: str, timeout: float = 15) -> Message:
    """The next message of one of `types`, skipping the others (QUEUED and RECEIPT come in
    between); each wait bounded by `timeout` seconds."""
    while True:
        message = await client.receive(timeout=timeout)
        if message.type in types:
            return message
