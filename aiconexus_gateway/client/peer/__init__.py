"""Peer channels: agents open WebRTC data channels to each other, signaled through the gateway.

    channel = await client.connect_peer(did, label="default", timeout=20)
    await channel.send("hello")
    print(await channel.receive(timeout=5))

signaling.py (the negotiation, pure), sdp.py (fingerprints and candidates, pure) and relay.py
(the gateway-relay stream, pure) hold the rules; channel.py is the application's PeerChannel;
manager.py and webrtc.py pump them (aiortc: the `webrtc` extra). docs/sdk.md, "Peer channels".
"""

from __future__ import annotations

from .channel import PeerChannel, PeerEvent
from .errors import (
    PeerClosed,
    PeerError,
    PeerICEFailed,
    PeerIdentityError,
    PeerRefused,
    PeerTimeout,
    PeerUnknownAgent,
    PeerUnreachable,
)

__all__ = [
    "PeerChannel",
    "PeerClosed",
    "PeerError",
    "PeerEvent",
    "PeerICEFailed",
    "PeerIdentityError",
    "PeerRefused",
    "PeerTimeout",
    "PeerUnknownAgent",
    "PeerUnreachable",
]
