"""Presence: a registered agent as the whole cluster sees it, and its published counters. No I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..messages import utc_timestamp


@dataclass(frozen=True, slots=True)
class Presence:
    """A registered agent as the whole cluster sees it (the value of the presence hash)."""

    did: str
    instance: str
    session_id: str
    connected_at: float
    metadata: dict[str, Any]
    profile: dict[str, Any] | None = None  # its card for discovery (directory.profile_document)

    def encode(self) -> bytes:
        value = {"instance": self.instance, "session_id": self.session_id,
                 "connected_at": self.connected_at, "metadata": self.metadata}
        if self.profile is not None:
            value["profile"] = self.profile
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, did: str, raw: bytes) -> Presence:
        value = json.loads(raw)
        profile = value.get("profile")
        return cls(did, str(value["instance"]), str(value["session_id"]),
                   float(value["connected_at"]), dict(value.get("metadata") or {}),
                   profile if isinstance(profile, dict) else None)


@dataclass(frozen=True, slots=True)
class Activity:
    """An agent's counters, as its instance last published them (every heartbeat)."""

    messages_sent: int = 0
    messages_received: int = 0
    last_activity: float | None = None

    def encode(self) -> bytes:
        return json.dumps([self.messages_sent, self.messages_received, self.last_activity]).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> Activity:
        if not raw:
            return cls()
        try:
            sent, received, last = json.loads(raw)
            return cls(int(sent), int(received), None if last is None else float(last))
        except (ValueError, TypeError):
            return cls()


def presence_view(presence: Presence, activity: Activity) -> dict[str, Any]:
    """The /agents object of an agent of the cluster: the single-instance shape plus `instance`."""
    return {
        "did": presence.did,
        "connected_at": utc_timestamp(presence.connected_at),
        "last_activity": utc_timestamp(activity.last_activity or presence.connected_at),
        "messages_sent": activity.messages_sent,
        "messages_received": activity.messages_received,
        "metadata": presence.metadata,
        **card_view(presence.profile),
        "instance": presence.instance,
    }


def card_view(profile: dict[str, Any] | None) -> dict[str, Any]:
    """The card members of an agent of another instance (registry.card_view's shape)."""
    view: dict[str, Any] = {}
    card = profile.get("card") if profile is not None else None
    if isinstance(card, dict):
        view["card"] = card
    if profile is not None and profile.get("unlisted") is True:
        view["unlisted"] = True
    return view
