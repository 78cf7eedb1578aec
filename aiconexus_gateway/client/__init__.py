"""Python SDK: connect to an AIConexus Gateway as a did:key agent and exchange signed messages.

    key = DIDKey.generate()                      # or DIDKey.load("alice.key")
    async with GatewayClient("ws://127.0.0.1:8000/ws", key) as client:
        await client.send(peer_did, "OFFER", {"sdp": "..."})
        async for message in client:
            print(message.type, message.sender, message.payload)

GatewayClient (gateway_client.py) is the Tornado pump; ClientSession (session.py) is the pure
protocol state machine it drives. docs/sdk.md is the reference.
"""

from __future__ import annotations

from ..keys import DIDKey
from .directory import DiscoveredAgent, DiscoveryPage, PresenceEvent
from .errors import (
    ConnectionClosed,
    GatewayConnectionError,
    GatewayError,
    InvalidMessageError,
    SendQueueFull,
)
from .gateway_client import GatewayClient
from .reconnect import ConnectionEvent, ReconnectPolicy
from .session import ClientSession, ClientState, Message
from .url import gateway_url_for

__all__ = [
    "ClientSession",
    "ClientState",
    "ConnectionClosed",
    "ConnectionEvent",
    "DIDKey",
    "DiscoveredAgent",
    "DiscoveryPage",
    "GatewayClient",
    "GatewayConnectionError",
    "GatewayError",
    "InvalidMessageError",
    "Message",
    "PresenceEvent",
    "ReconnectPolicy",
    "SendQueueFull",
    "gateway_url_for",
]
