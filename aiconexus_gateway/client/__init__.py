"""Python SDK: connect to an AIConexus Gateway as a did:key agent and exchange signed messages.

    key = DIDKey.generate()
    async with GatewayClient("ws://127.0.0.1:8000/ws", key) as client:
        await client.send(peer_did, "OFFER", {"sdp": "..."})
        async for message in client:
            print(message.type, message.sender, message.payload)
"""

from __future__ import annotations

from ..keys import DIDKey
from .errors import (
    ConnectionClosed,
    GatewayConnectionError,
    GatewayError,
    InvalidMessageError,
    SendQueueFull,
)
from .gateway_client import GatewayClient, Message
from .reconnect import ConnectionEvent, ReconnectPolicy

__all__ = [
    "ConnectionClosed",
    "ConnectionEvent",
    "DIDKey",
    "GatewayClient",
    "GatewayConnectionError",
    "GatewayError",
    "InvalidMessageError",
    "Message",
    "ReconnectPolicy",
    "SendQueueFull",
]
