"""Helpers for the cluster tests: a hub on a manual clock with in-memory connections (no sockets)."""

from __future__ import annotations

import base64
from typing import Any

from aiconexus_gateway import messages
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.hub import Hub, HubSettings, Peer
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.session import SessionSettings
from tests.support.memory import MemoryConnection

GATEWAY = DIDKey.from_seed(b"\x21" * 32)
ALICE = DIDKey.from_seed(b"\x2a" * 32)
BOB = DIDKey.from_seed(b"\x2b" * 32)
NONCE = bytes(range(32))
NONCE_B64URL = base64.urlsafe_b64encode(NONCE).rstrip(b"=").decode()

__all__ = ["ALICE", "BOB", "GATEWAY", "MemoryConnection", "frame", "make_hub", "send_register"]


def make_hub(clock: ManualClock) -> Hub:
    return Hub(HubSettings(SessionSettings(30.0, 300.0, 20.0)), GATEWAY, clock=clock,
               nonce_source=lambda n: NONCE[:n])


def send_register(hub: Hub, key: DIDKey) -> tuple[Peer, MemoryConnection]:
    """Open a connection and send a valid REGISTER (the REGISTERED answer may come later)."""
    connection = MemoryConnection()
    peer = hub.open(connection)
    text, _ = messages.build(key, "REGISTER", hub.did, {"nonce": NONCE_B64URL},
                             now=hub.clock.wall())
    hub.receive(peer, text)
    return peer, connection


def frame(key: DIDKey, to: str, type: str = "OFFER", payload: dict[str, Any] | None = None,
          now: float = 1_790_000_000.0) -> tuple[str, str]:
    return messages.build(key, type, to, payload or {"sdp": "v=0"}, now=now)
