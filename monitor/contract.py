"""The gateway's HTTP JSON contract as the monitor reads it: `/health` and pages of `/agents`.

Pure (no I/O, no clock). Each `parse_*` turns decoded JSON into a frozen value or raises
`MalformedResponse` naming the field, which the app shows instead of crashing. The shapes are
documented in docs/monitor.md ("What it reads"); a contract test feeds the real gateway's
output through these parsers. Unknown extra fields are ignored so the gateway can add some.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class MalformedResponse(ValueError):
    """The gateway answered, but not with the JSON the contract promises."""


@dataclass(frozen=True)
class Health:
    """`GET /health`: is the gateway up, and which gateway is it."""

    status: str
    connected_agents: int
    timestamp: datetime
    version: str
    gateway_did: str
    uptime_seconds: float


@dataclass(frozen=True)
class Mailbox:
    """An agent's mailbox at the gateway (docs/protocol.md section 22): what waits for it."""

    messages: int
    bytes: int
    receipts: int
    enabled: bool = True
    blocked: int = 0  # DIDs whose stored messages it refuses


@dataclass(frozen=True)
class Agent:
    """One entry of `GET /agents`, with its activity counters."""

    did: str
    connected_at: datetime
    last_activity: datetime
    messages_sent: int
    messages_received: int
    metadata: Mapping[str, Any] = field(default_factory=dict)
    card: Mapping[str, Any] | None = None  # the card it signed at registration (protocol.md 21)
    unlisted: bool = False
    mailbox: Mailbox | None = None  # shown once it holds something or the agent set rules

    @property
    def messages(self) -> int:
        return self.messages_sent + self.messages_received

    @property
    def name(self) -> str:
        """The agent's name: its card's, else its `metadata.name`, or "" when it gave none."""
        for source in (self.card or {}, self.metadata):
            name = source.get("name")
            if isinstance(name, str):
                return name
        return ""

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Its card's capabilities (else `metadata.capabilities`), or none."""
        for source in (self.card or {}, self.metadata):
            capabilities = source.get("capabilities")
            if isinstance(capabilities, list):
                return tuple(c for c in capabilities if isinstance(c, str))
        return ()


@dataclass(frozen=True)
class AgentPage:
    """One page of `GET /agents?limit=&offset=`; `count` is the total, not the page size."""

    agents: tuple[Agent, ...]
    count: int
    limit: int
    offset: int


@dataclass(frozen=True)
class Snapshot:
    """Everything one successful poll learned.

    `agents` holds the fetched pages in the gateway's order (by connection time), keyed by DID;
    `total` is how many agents the gateway has, which is more than `len(agents)` when only the
    first pages were fetched. `taken_at` is a monotonic time in seconds, used for rates only.
    """

    health: Health
    agents: Mapping[str, Agent]
    total: int
    taken_at: float

    @property
    def partial(self) -> bool:
        return len(self.agents) < self.total


def parse_timestamp(value: object, *, what: str = "timestamp") -> datetime:
    """The contract's times are ISO 8601 in UTC with a `Z` ("2026-11-26T10:00:00.123Z")."""
    if not isinstance(value, str):
        raise MalformedResponse(f"{what} is not a string: {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedResponse(f"{what} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedResponse(f"{what} is not a JSON object")
    return value


def _int(obj: Mapping[str, Any], key: str, what: str) -> int:
    value = obj.get(key)
    # bool is an int in Python, never in the contract
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedResponse(f"{what}.{key} is not a non-negative integer: {value!r}")
    return value


def _str(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise MalformedResponse(f"{what}.{key} is not a string: {value!r}")
    return value


def parse_health(data: object) -> Health:
    """Parse `/health`; unknown extra fields are ignored so the gateway can add some."""
    obj = _object(data, "health")
    uptime = obj.get("uptime_seconds", 0.0)
    if not isinstance(uptime, (int, float)) or isinstance(uptime, bool) or uptime < 0:
        raise MalformedResponse(f"health.uptime_seconds is not a number: {uptime!r}")
    return Health(
        status=_str(obj, "status", "health"),
        connected_agents=_int(obj, "connected_agents", "health"),
        timestamp=parse_timestamp(obj.get("timestamp"), what="health.timestamp"),
        version=str(obj.get("version", "")),
        gateway_did=str(obj.get("gateway_did", "")),
        uptime_seconds=float(uptime),
    )


def parse_agent(data: object) -> Agent:
    """Parse one agent object (an entry of `/agents`, or `/agents/<did>`)."""
    obj = _object(data, "agent")
    did = _str(obj, "did", "agent")
    what = f"agent {did}"
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise MalformedResponse(f"{what}: metadata is not a JSON object")
    card = obj.get("card")
    if card is not None and not isinstance(card, Mapping):
        raise MalformedResponse(f"{what}: card is not a JSON object")
    return Agent(
        did=did,
        connected_at=parse_timestamp(obj.get("connected_at"), what=f"{what}: connected_at"),
        last_activity=parse_timestamp(obj.get("last_activity"), what=f"{what}: last_activity"),
        messages_sent=_int(obj, "messages_sent", what),
        messages_received=_int(obj, "messages_received", what),
        metadata=dict(metadata),
        card=dict(card) if card is not None else None,
        unlisted=obj.get("unlisted") is True,
        mailbox=parse_mailbox(obj.get("mailbox"), what),
    )


def parse_mailbox(data: object, what: str) -> Mailbox | None:
    """An agent's `mailbox` member, when the gateway gave one."""
    if data is None:
        return None
    obj = _object(data, f"{what}: mailbox")
    blocked = obj.get("blocked", [])
    if not isinstance(blocked, list):
        raise MalformedResponse(f"{what}: mailbox.blocked is not a list")
    return Mailbox(messages=_int(obj, "messages", f"{what}: mailbox"),
                   bytes=_int(obj, "bytes", f"{what}: mailbox"),
                   receipts=_int(obj, "receipts", f"{what}: mailbox"),
                   enabled=obj.get("enabled") is not False, blocked=len(blocked))


def parse_agent_page(data: object) -> AgentPage:
    """Parse one page of `/agents`."""
    obj = _object(data, "agents page")
    agents = obj.get("agents")
    if not isinstance(agents, list):
        raise MalformedResponse("agents page: 'agents' is not a list")
    return AgentPage(
        agents=tuple(parse_agent(item) for item in agents),
        count=_int(obj, "count", "agents page"),
        limit=_int(obj, "limit", "agents page"),
        offset=_int(obj, "offset", "agents page"),
    )


def merge_pages(pages: Iterable[AgentPage]) -> tuple[dict[str, Agent], int]:
    """Join pages into one DID-keyed view; the total is the newest page's `count`.

    Agents that connect or leave while the pages are fetched shift the offsets, so the same
    agent can show up on two pages: the first occurrence wins and order is kept.
    """
    agents: dict[str, Agent] = {}
    total = 0
    for page in pages:
        total = page.count
        for agent in page.agents:
            agents.setdefault(agent.did, agent)
    return agents, max(total, len(agents))
