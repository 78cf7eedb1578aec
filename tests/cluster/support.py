"""Helpers for the cluster tests: a hub on a manual clock with in-memory connections (no sockets)."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiconexus_gateway import messages
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.hub import Hub, HubSettings, Peer
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.session import SessionSettings

GATEWAY = DIDKey.from_seed(b"\x21" * 32)
ALICE = DIDKey.from_seed(b"\x2a" * 32)
BOB = DIDKey.from_seed(b"\x2b" * 32)
NONCE = bytes(range(32))
NONCE_B64URL = base64.urlsafe_b64encode(NONCE).rstrip(b"=").decode()


class MemoryConnection:
    """The hub's Connection protocol in memory: what was sent, how it was closed."""

    def __init__(self) -> None:
        self.remote_ip = "127.0.0.1"
        self.sent: list[str] = []
        self.closed_with: tuple[int | None, str | None] | None = None

    def registered(self) -> None:
        pass

    def send(self, text: str) -> bool:
        if self.closed_with is not None:
            return False
        self.sent.append(text)
        return True

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self.closed_with = (code, reason)

    def errors(self) -> list[dict[str, Any]]:
        """The ERROR messages sent so far: code, reason and correlation_id."""
        out = []
        for text in self.sent:
            obj = json.loads(text)
            if obj["type"] == "ERROR":
                out.append({"code": obj["payload"]["code"],
                            "reason": obj["payload"]["details"].get("reason"),
                            "correlation_id": obj.get("correlation_id")})
        return out


def make_hub(clock: ManualClock) -> Hub:
    settings = HubSettings(SessionSettings(30.0, 300.0, 20.0), 300.0)
    return Hub(settings, GATEWAY, clock=clock, nonce_source=lambda n: NONCE[:n])


def send_register(hub: Hub, key: DIDKey) -> tuple[Peer, MemoryConnection]:
    """Open a connection and send a valid REGISTER (the REGISTERED answer may come later)."""
    connection = MemoryConnection()
    peer = hub.open(connection)
    text, _ = messages.build(key, "REGISTER", hub.did, {"nonce": NONCE_B64URL},
                             now=hub.clock.wall())
    hub.receive(peer, text)
    return peer, connection


def registered(connection: MemoryConnection) -> bool:
    return any(json.loads(text)["type"] == "REGISTERED" for text in connection.sent)


def frame(key: DIDKey, to: str, type: str = "OFFER", payload: dict[str, Any] | None = None,
          now: float = 1_790_000_000.0) -> tuple[str, str]:
    return messages.build(key, type, to, payload or {"sdp": "v=0"}, now=now)
