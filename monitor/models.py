"""What the monitor knows about the gateway, as plain values and pure functions.

Theory of operation: every poll turns the gateway's JSON (`/health`, pages of `/agents`) into a
`Snapshot`. Two consecutive snapshots give everything the screen shows beyond the raw values:
which agents joined and left (`diff_snapshots`), and how fast messages flow (`agent_rates`,
`total_rate`). Sorting, filtering and formatting are pure as well, so all of it is tested with
plain values and no terminal. Nothing here does I/O or reads a clock: times are passed in.

The JSON shapes are the gateway's HTTP contract (docs/monitor.md, "What it reads"); a parse
failure raises `MalformedResponse`, which the app shows instead of crashing.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ELLIPSIS = "…"


class MalformedResponse(ValueError):
    """The gateway answered, but not with the JSON the contract promises."""


class BadURL(ValueError):
    """A gateway address the monitor cannot turn into an HTTP base URL."""


# --------------------------------------------------------------------------------------------
# Where the gateway is


def http_base_url(url: str) -> str:
    """The gateway's HTTP base URL from what the user typed.

    `http://host:8000` is kept (a path prefix too, for a gateway behind a reverse proxy); a
    bare `host:8000` gets `http://`; the WebSocket address `ws://host:8000/ws`, an easy
    mistake since agents are given that one, becomes `http://host:8000`. Anything else is
    refused with a message saying what is expected.
    """
    text = url.strip()
    if not text:
        raise BadURL("the gateway URL is empty; expected e.g. http://127.0.0.1:8000")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    path = parts.path.rstrip("/")
    if scheme in ("ws", "wss"):
        scheme = "http" if scheme == "ws" else "https"
        if path.endswith("/ws"):
            path = path[: -len("/ws")]
    elif scheme not in ("http", "https"):
        raise BadURL(
            f"unsupported URL scheme {parts.scheme!r} in {url!r}; "
            "expected the gateway's HTTP address, e.g. http://127.0.0.1:8000"
        )
    try:
        port = parts.port
    except ValueError:
        raise BadURL(f"bad port in {url!r}; expected e.g. http://127.0.0.1:8000") from None
    if not parts.hostname or port == 0:
        raise BadURL(f"no host or port in {url!r}; expected e.g. http://127.0.0.1:8000")
    if parts.query or parts.fragment:
        raise BadURL(f"{url!r} has a query or fragment; give the gateway's base URL only")
    return urlunsplit((scheme, parts.netloc, path, "", ""))


# --------------------------------------------------------------------------------------------
# The gateway's JSON


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
class Agent:
    """One entry of `GET /agents`, with its activity counters."""

    did: str
    connected_at: datetime
    last_activity: datetime
    messages_sent: int
    messages_received: int
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def messages(self) -> int:
        return self.messages_sent + self.messages_received

    @property
    def name(self) -> str:
        """The agent's self-declared `metadata.name`, or "" when it gave none."""
        name = self.metadata.get("name")
        return name if isinstance(name, str) else ""


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
    return Agent(
        did=did,
        connected_at=parse_timestamp(obj.get("connected_at"), what=f"{what}: connected_at"),
        last_activity=parse_timestamp(obj.get("last_activity"), what=f"{what}: last_activity"),
        messages_sent=_int(obj, "messages_sent", what),
        messages_received=_int(obj, "messages_received", what),
        metadata=dict(metadata),
    )


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


# --------------------------------------------------------------------------------------------
# Comparing polls


@dataclass(frozen=True)
class AgentDiff:
    """Agents that appeared and disappeared between two polls, in the gateway's order."""

    joined: tuple[Agent, ...] = ()
    left: tuple[Agent, ...] = ()
    reconnected: tuple[Agent, ...] = ()


def _new_connection(agent: Agent, previous: Snapshot) -> bool:
    """Did `agent` connect after `previous` was taken (by the gateway's clock)?"""
    return agent.connected_at >= previous.health.timestamp


def diff_snapshots(previous: Snapshot | None, current: Snapshot) -> AgentDiff:
    """Who joined, left or reconnected (same DID, new connection) since the previous poll.

    With a partial view (only the first pages fetched), an agent can come into view without
    joining: the gateway orders by connection time, so when an early agent leaves, the next one
    moves up into the fetched pages. Such an agent connected before the previous poll and is
    not reported. An agent disappearing from the first pages did leave, since newcomers are
    always appended at the end.
    """
    if previous is None:
        return AgentDiff()
    joined = tuple(
        agent
        for did, agent in current.agents.items()
        if did not in previous.agents and (not previous.partial or _new_connection(agent, previous))
    )
    left = tuple(agent for did, agent in previous.agents.items() if did not in current.agents)
    reconnected = tuple(
        agent
        for did, agent in current.agents.items()
        if did in previous.agents and previous.agents[did].connected_at != agent.connected_at
    )
    return AgentDiff(joined=joined, left=left, reconnected=reconnected)


def _deltas(previous: Snapshot, current: Snapshot) -> dict[str, tuple[int, int] | None]:
    """Per agent, (sent, received) since `previous`, or None when that cannot be known."""
    deltas: dict[str, tuple[int, int] | None] = {}
    for did, agent in current.agents.items():
        before = previous.agents.get(did)
        if before is not None and before.connected_at == agent.connected_at:
            sent = agent.messages_sent - before.messages_sent
            received = agent.messages_received - before.messages_received
            # counters only grow within one connection; anything else is a gateway restart
            deltas[did] = (max(sent, 0), max(received, 0))
        elif _new_connection(agent, previous):
            # connected since the last poll: everything it did happened in this interval
            deltas[did] = (agent.messages_sent, agent.messages_received)
        else:
            deltas[did] = None  # came into view from a later page: no earlier count
    return deltas


def agent_rates(previous: Snapshot | None, current: Snapshot) -> dict[str, float | None]:
    """Messages per second (sent + received) of each agent between two polls.

    None means unknown: the first poll, or an agent whose earlier counters were not seen.
    """
    if previous is None:
        return dict.fromkeys(current.agents)
    elapsed = current.taken_at - previous.taken_at
    if elapsed <= 0:
        return dict.fromkeys(current.agents)
    return {
        did: None if delta is None else (delta[0] + delta[1]) / elapsed
        for did, delta in _deltas(previous, current).items()
    }


def total_rate(previous: Snapshot | None, current: Snapshot) -> float | None:
    """Messages per second through the gateway, from the growth of `messages_sent`.

    Each routed message is sent by one agent and received by another; counting the senders'
    side only counts it once. Agents that left between the polls, and agents beyond the
    fetched pages, are not counted (their counters cannot be seen).
    """
    if previous is None:
        return None
    elapsed = current.taken_at - previous.taken_at
    if elapsed <= 0:
        return None
    sent = sum(delta[0] for delta in _deltas(previous, current).values() if delta is not None)
    return sent / elapsed


# --------------------------------------------------------------------------------------------
# Sorting and filtering


class SortKey(enum.Enum):
    """The orders `s` cycles through, in that order."""

    ACTIVITY = "activity"
    CONNECTED = "connected time"
    DID = "DID"
    MESSAGES = "messages"

    def next(self) -> SortKey:
        members = list(SortKey)
        return members[(members.index(self) + 1) % len(members)]


def sort_agents(agents: Iterable[Agent], key: SortKey) -> list[Agent]:
    """Most recently active first; longest connected first; DID A-Z; busiest first.

    Ties fall back to the DID so the order is stable from one poll to the next.
    """
    by_did = sorted(agents, key=lambda agent: agent.did)
    if key is SortKey.ACTIVITY:
        return sorted(by_did, key=lambda agent: agent.last_activity, reverse=True)
    if key is SortKey.CONNECTED:
        return sorted(by_did, key=lambda agent: agent.connected_at)
    if key is SortKey.MESSAGES:
        return sorted(by_did, key=lambda agent: agent.messages, reverse=True)
    return by_did


def filter_agents(agents: Iterable[Agent], text: str) -> list[Agent]:
    """Agents whose DID contains `text`, ignoring case; an empty filter keeps everyone."""
    needle = text.strip().casefold()
    if not needle:
        return list(agents)
    return [agent for agent in agents if needle in agent.did.casefold()]


# --------------------------------------------------------------------------------------------
# Formatting for the screen


def shorten_did(did: str, *, head: int = 8, tail: int = 4) -> str:
    """`did:key:z6Mkf5rG…Xq9B`: the method stays, the middle of the identifier goes."""
    prefix, sep, ident = did.rpartition(":")
    if len(ident) <= head + tail + 1:
        return did
    return f"{prefix}{sep}{ident[:head]}{ELLIPSIS}{ident[-tail:]}"


def format_duration(seconds: float) -> str:
    """A compact, human duration: `42 s`, `3 m 07 s`, `2 h 05 m`, `4 d 03 h`."""
    total = max(0, math.floor(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} m"
    if minutes:
        return f"{minutes} m {secs:02d} s"
    return f"{secs} s"


def format_age(then: datetime, now: datetime) -> str:
    """`3 s ago`, `4 m ago`, `2 h ago`, `3 d ago`: the largest unit is precise enough for an age.

    A time slightly in the future (the two clocks disagree) counts as now.
    """
    seconds = max(0, math.floor((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def format_rate(rate: float | None) -> str:
    """Messages per second in at most 5 characters (`12.5`, `340`, `1.2k`), `-` if unknown."""
    if rate is None:
        return "-"
    for limit, divisor, suffix, digits in (
        (99.95, 1, "", 1),
        (999.5, 1, "", 0),
        (9_950, 1_000, "k", 1),
        (999_500, 1_000, "k", 0),
    ):
        if rate < limit:
            return f"{rate / divisor:.{digits}f}{suffix}"
    return f"{rate / 1_000_000:.1f}M"


def format_count(value: int) -> str:
    """Thousands separators: `10,000`."""
    return f"{value:,}"


def format_counter(value: int) -> str:
    """A counter in at most 6 characters for a table cell: `99,999`, `123.4k`, `12.3M`."""
    if value < 100_000:
        return f"{value:,}"
    if value < 999_950:
        return f"{value / 1000:.1f}k"
    if value < 999_950_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1_000_000_000:.1f}G"


def format_seconds(value: float) -> str:
    """An interval as typed: `1 s`, `0.5 s`."""
    return f"{value:g} s"


@dataclass(frozen=True)
class AgentRow:
    """One table row as text, in column order (see `COLUMNS`)."""

    did: str
    name: str
    connected_for: str
    last_activity: str
    sent: str
    received: str
    rate: str

    def cells(self) -> tuple[str, ...]:
        return (
            self.did,
            self.name,
            self.connected_for,
            self.last_activity,
            self.sent,
            self.received,
            self.rate,
        )


COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("did", "Agent DID", 21),
    ("name", "Name", 9),
    ("connected", "Connected", 9),
    ("activity", "Active", 8),
    ("sent", "Sent", 6),
    ("received", "Recv", 6),
    ("rate", "msg/s", 5),
)
"""(column key, label, width): fixed widths, so rows never shift as values change, and all of
it (with one cell of padding each side) fits 80 columns with a scrollbar."""


def agent_row(agent: Agent, rate: float | None, now: datetime) -> AgentRow:
    """What the table shows for one agent; `now` is the gateway's clock at the poll."""
    return AgentRow(
        did=shorten_did(agent.did),
        name=agent.name,
        connected_for=format_duration((now - agent.connected_at).total_seconds()),
        last_activity=format_age(agent.last_activity, now),
        sent=format_counter(agent.messages_sent),
        received=format_counter(agent.messages_received),
        rate=format_rate(rate),
    )


def showing_text(shown: int, fetched: int, total: int, filter_text: str) -> str:
    """The table caption: `2 connected`, `showing 200 of 10,000`, or what the filter kept."""
    if filter_text:
        text = f"filter '{filter_text}': {format_count(shown)} of {format_count(fetched)} match"
        if fetched < total:
            text += f" (first {format_count(fetched)} of {format_count(total)} fetched)"
        return text
    if shown < total:
        return f"showing {format_count(shown)} of {format_count(total)}"
    return f"{format_count(total)} connected"


def describe_agent(agent: Agent) -> str:
    """`did:key:z6Mk…abcd (alice)` for the activity log."""
    short = shorten_did(agent.did)
    return f"{short} ({agent.name})" if agent.name else short


def history_length(interval: float, *, minutes: float = 5.0) -> int:
    """How many polls make the sparklines' "last few minutes" (bounded either way)."""
    return max(30, min(600, math.ceil(minutes * 60 / interval)))


def sparkline_data(values: Sequence[float], length: int, *, least: int = 60) -> list[float]:
    """The sparkline's points: the last `length` values, drawn as at least `least` points.

    Just after start the few values sit at the right end of a chart that starts flat at the
    first value (rather than each stretching over half the width); the chart then widens
    until it covers the whole history.
    """
    points = list(values)[-length:] if length > 0 else list(values)
    width = max(2, min(length, max(least, len(points))))
    fill = points[0] if points else 0.0
    return [fill] * (width - len(points)) + points


# --------------------------------------------------------------------------------------------
# The gateway's state, for the status bar and the log

FAILED_STATES = frozenset({"unreachable", "error"})
STATE_ICONS = {"healthy": "●", "draining": "◐", "degraded": "◐", "connecting": "…"}


@dataclass(frozen=True)
class Status:
    """What the status bar says about the gateway.

    `state` is the gateway's own health status ("healthy", "draining", "degraded") after a
    successful poll, "unreachable" when it could not be reached, "error" when it answered
    wrongly (HTTP error, malformed JSON), and "connecting" before the first answer. `health`
    and `last_ok` (local wall time) are from the last successful poll and survive failures.
    """

    url: str
    interval: float
    state: str = "connecting"
    reason: str = ""
    health: Health | None = None
    last_ok: datetime | None = None
    paused: bool = False

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES

    @property
    def stale(self) -> bool:
        """The data on screen is from an earlier poll than the last attempt."""
        return self.failed and self.last_ok is not None


def status_lines(status: Status) -> tuple[str, str]:
    """The two lines of the status bar: the state and URL, then the gateway's identity."""
    icon = "✖" if status.failed else STATE_ICONS.get(status.state, "●")
    state = f"{icon} {status.state}"
    if status.reason:
        state += f": {status.reason}"
    if status.failed and not status.paused:
        state += f", retrying every {format_seconds(status.interval)}"
    if status.paused:
        state += " · paused (p resumes)"
    first = f"{state} · {status.url}"

    details: list[str] = []
    if status.health is not None:
        health = status.health
        details.append(f"gateway {health.version}" if health.version else "gateway")
        if health.gateway_did:
            details.append(shorten_did(health.gateway_did))
        details.append(f"up {format_duration(health.uptime_seconds)}")
    if status.last_ok is None:
        details.append("no data yet")
    elif status.stale:
        details.append(f"data from {status.last_ok:%H:%M:%S} (stale)")
    else:
        details.append(f"last poll {status.last_ok:%H:%M:%S}")
    return first, " · ".join(details)


def status_change(old: Status, new: Status) -> str | None:
    """The activity-log line for a change of the gateway's state, or None if nothing changed."""
    if new.failed:
        if (old.state, old.reason) == (new.state, new.reason):
            return None
        return f"gateway {new.state}: {new.reason}" if new.reason else f"gateway {new.state}"
    if new.health is None:
        return None
    health = new.health
    restarted = old.health is not None and (
        health.gateway_did != old.health.gateway_did
        or health.uptime_seconds < old.health.uptime_seconds
    )
    if old.failed or old.state == "connecting":
        verb = "back" if old.health is not None else "reached"
        line = f"gateway {verb}: {new.state}, version {health.version}"
        return line + (", restarted" if restarted else "")
    if restarted:
        return f"gateway restarted: {new.state}, up {format_duration(health.uptime_seconds)}"
    if old.state != new.state:
        return f"gateway {new.state}"
    return None
