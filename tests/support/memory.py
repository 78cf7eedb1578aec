"""The one in-memory fake of the hub's `Connection` protocol: what the gateway sent, how it closed.

Used wherever the core runs without sockets (tests/core, tests/cluster, property tests). It behaves
like a real connection in the ways the core relies on: once closed (or told to stop accepting,
like a slow consumer) it refuses frames, and `send` says so.
"""

from __future__ import annotations

import json
from typing import Any

from aiconexus_gateway import messages
from aiconexus_gateway.keys import DIDKey


class MemoryConnection:
    """Records the frames the hub sends and the close it asks for."""

    def __init__(self, remote_ip: str = "127.0.0.1") -> None:
        self.remote_ip = remote_ip
        self.sent: list[str] = []
        self.routed: list[Any] = []  # what `send` was told about each frame (None: the gateway's)
        self.closed_with: tuple[int | None, str | None] | None = None
        self.accepting = True  # False: `send` refuses, as for a slow consumer
        self.registrations = 0  # calls of `registered` (the idle clock starting)

    # -- the Connection protocol ------------------------------------------------------------------

    def send(self, text: str, routed: Any = None) -> bool:
        if not self.accepting or self.closed_with is not None:
            return False
        self.sent.append(text)
        self.routed.append(routed)
        return True

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.closed_with is None:
            self.closed_with = (code, reason)

    def registered(self) -> None:
        self.registrations += 1

    # -- reading what was sent ----------------------------------------------------------------------

    def frames(self) -> list[dict[str, Any]]:
        """Every frame sent, as JSON objects."""
        return [json.loads(text) for text in self.sent]

    def types(self) -> list[str]:
        return [frame["type"] for frame in self.frames()]

    def last(self, signed_by: DIDKey | None = None) -> dict[str, Any]:
        """The last frame sent; its signature checked against `signed_by` when given."""
        text = self.sent[-1]
        if signed_by is not None:
            messages.parse(text).verify(signed_by.verify_key)
        frame: dict[str, Any] = json.loads(text)
        return frame

    def errors(self) -> list[dict[str, Any]]:
        """The ERROR frames sent: code, details.reason and correlation_id of each."""
        out = []
        for frame in self.frames():
            if frame["type"] == "ERROR":
                payload = frame["payload"]
                out.append({"code": payload["code"],
                            "reason": (payload.get("details") or {}).get("reason"),
                            "correlation_id": frame.get("correlation_id")})
        return out

    def error_codes(self) -> list[str]:
        return [error["code"] for error in self.errors()]

    def registered_ok(self) -> bool:
        """True once a REGISTERED frame was sent."""
        return "REGISTERED" in self.types()
