"""The agent's side of discovery and presence (docs/protocol.md section 21), pure: no I/O.

`GatewayClient.discover()` and `watch()` send DISCOVER / WATCH through the pump; the answers
(DISCOVERED, WATCHING, or an ERROR with the request's id) are matched here to the request they
answer, and each discovered card is checked against its agent's own signature (`check_proof`)
before the application sees it: a card the gateway altered or made up is dropped and counted.
PRESENCE events become `PresenceEvent`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cards import check_card_size, check_proof, parse_card
from ..errors import ProtocolError
from .errors import GatewayError
from .session import Message

DIRECTORY_ANSWERS = frozenset({"DISCOVERED", "WATCHING", "ERROR"})


@dataclass(frozen=True, slots=True)
class DiscoveredAgent:
    """An agent online now, with the card it signed (None when it registered without one)."""

    did: str
    card: dict[str, Any] | None

    @property
    def name(self) -> str | None:
        return None if self.card is None else str(self.card.get("name"))

    @property
    def capabilities(self) -> list[str]:
        return [] if self.card is None else list(self.card.get("capabilities", []))


@dataclass(frozen=True, slots=True)
class DiscoveryPage:
    """One DISCOVERED answer: its agents, and `next` (pass it as `cursor`; None: the last page)."""

    agents: list[DiscoveredAgent]
    next: str | None
    scope: str
    rejected: int = 0  # entries whose card did not verify (dropped)


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """A watched agent came online, went offline, or was replaced by a new session."""

    did: str
    event: str  # "online", "offline", "replaced"
    state: str  # "online", "offline"
    changes: int = 1  # more than 1: the gateway coalesced that many changes into this event


@dataclass
class WatchState:
    """What the application watches, so a reconnected client can watch it again."""

    dids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set


def check_card(card: Any) -> dict[str, Any]:
    """The card given to GatewayClient, checked as the gateway will (ValueError saying what is
    wrong, rather than a refused registration later)."""
    try:
        check_card_size(parse_card(card))
    except ProtocolError as error:
        raise ValueError(f"card: {error.message}") from None
    return dict(card)


def request_payload(*, capability: str | None = None, name_prefix: str | None = None,
                    dids: list[str] | None = None, limit: int | None = None,
                    cursor: str | None = None) -> dict[str, Any]:
    """A DISCOVER payload with the members given (the gateway checks them; so does nothing here)."""
    members: dict[str, Any] = {"capability": capability, "name_prefix": name_prefix,
                               "dids": None if dids is None else list(dids), "limit": limit,
                               "cursor": cursor}
    return {name: value for name, value in members.items() if value is not None}


def answer_error(message: Message) -> GatewayError | None:
    """The GatewayError an ERROR answer stands for; None when `message` is not an ERROR."""
    if message.type != "ERROR":
        return None
    details = message.payload.get("details")
    return GatewayError(str(message.payload.get("code")), str(message.payload.get("message")),
                        details if isinstance(details, dict) else None)


def discovery_page(message: Message) -> DiscoveryPage:
    """A DISCOVERED answer, every card checked against its agent's signature."""
    payload = message.payload
    agents: list[DiscoveredAgent] = []
    rejected = 0
    for entry in payload.get("agents") or []:
        agent = _agent(entry)
        if agent is None:
            rejected += 1
        else:
            agents.append(agent)
    following = payload.get("next")
    return DiscoveryPage(agents, following if isinstance(following, str) else None,
                         str(payload.get("scope", "instance")), rejected)


def watch_states(message: Message) -> dict[str, str]:
    """A WATCHING answer: DID -> "online" / "offline"."""
    states: dict[str, str] = {}
    for entry in message.payload.get("agents") or []:
        if isinstance(entry, dict) and isinstance(entry.get("did"), str):
            states[entry["did"]] = "online" if entry.get("state") == "online" else "offline"
    return states


def presence_event(message: Message) -> PresenceEvent | None:
    """A PRESENCE message as an event; None when it is not well formed."""
    payload = message.payload
    did, event = payload.get("did"), payload.get("event")
    if not isinstance(did, str) or event not in ("online", "offline", "replaced"):
        return None
    changes = payload.get("changes", 1)
    return PresenceEvent(did, str(event), "offline" if event == "offline" else "online",
                         changes if isinstance(changes, int) and changes > 0 else 1)


def _agent(entry: Any) -> DiscoveredAgent | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("did"), str):
        return None
    did, card = entry["did"], entry.get("card")
    if card is None:
        return DiscoveredAgent(did, None)
    register = entry.get("register")
    if not isinstance(card, dict) or not isinstance(register, dict):
        return None
    try:
        check_proof(did, card, register)
    except (ProtocolError, ValueError, TypeError):
        return None
    return DiscoveredAgent(did, card)
