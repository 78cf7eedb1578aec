"""Cluster mode's pure core: what instances say to each other and how they decide. No I/O.

Theory of operation (docs/design.md has the long form): every instance has an inbox (a Redis
Stream) and publishes the agents it holds in a presence map (DID -> instance). A frame for an agent
that is not connected here is looked up in the presence map and appended to the owner's inbox as a
`Deliver`; the owner writes the frame to its agent's socket and answers `Delivered`, or `Failed`
when it cannot. The sender keeps a `PendingDelivery` per frame until one of the two arrives, and
answers its agent with an ERROR when none arrives within the delivery timeout, so no accepted
frame is dropped silently. A registration on one instance tells the previous owner of the DID to
close its session with `Takeover`; a cluster-wide generation number orders competing sessions.

The messages are flat field maps so they travel as stream entries without a second encoding: the
routed frame's text is a field of its own, written and read as UTF-8 bytes, byte for byte.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ErrorCode, ProtocolError
from ..messages import utc_timestamp

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")


class ClusterMessageError(ValueError):
    """A stream entry that is not a cluster message this version understands."""


# -- messages between instances ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Deliver:
    """Write `text` to the local agent `to`; answer the instance `origin` about `token`."""

    origin: str
    token: int
    to: str
    type: str
    text: str
    expires_ms: int  # Redis-clock milliseconds after which the origin has already answered ERROR

    KIND = b"D"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The frames `tokens` (sent by the receiving instance) were written to their agents' sockets."""

    origin: str
    tokens: tuple[int, ...]

    KIND = b"A"


@dataclass(frozen=True, slots=True)
class Failed:
    """The frames `tokens` could not be delivered, for `reason`."""

    origin: str
    tokens: tuple[int, ...]
    reason: FailReason

    KIND = b"F"


@dataclass(frozen=True, slots=True)
class Takeover:
    """`did` registered on `origin` with cluster generation `generation`: close older sessions."""

    origin: str
    did: str
    generation: int

    KIND = b"T"


ClusterMessage = Deliver | Delivered | Failed | Takeover


class FailReason(str, enum.Enum):
    """Why a cross-instance frame was not delivered; each maps to the ERROR its sender gets."""

    UNKNOWN = "unknown"  # no instance holds the recipient
    NOT_CONNECTED = "not_connected"  # the owner no longer holds it (it left a moment ago)
    INSTANCE_GONE = "instance_gone"  # the owner's heartbeat expired (crashed, partitioned)
    EXPIRED = "expired"  # the owner read it after the sender's deadline
    TIMEOUT = "timeout"  # no answer within the delivery timeout
    UNAVAILABLE = "unavailable"  # Redis is unreachable from the sender
    LOST = "lost"  # Redis restarted without the queued frames


_FAIL_MESSAGES = {
    FailReason.UNKNOWN: "the recipient is not connected to any instance of this gateway",
    FailReason.NOT_CONNECTED: "the recipient disconnected (or could not take more) before the "
                              "message could be delivered",
    FailReason.INSTANCE_GONE: "the gateway instance holding the recipient stopped responding",
    FailReason.EXPIRED: "the recipient's gateway instance received the message too late",
    FailReason.TIMEOUT: "no delivery confirmation from the recipient's gateway instance in time",
    FailReason.UNAVAILABLE: "the cluster bus (Redis) is unavailable; only agents on the same "
                            "gateway instance can be reached until it is back",
    FailReason.LOST: "the cluster bus (Redis) restarted and lost the message before delivery",
}


def delivery_error(reason: FailReason, *, to: str, message_id: str) -> ProtocolError:
    """The ERROR a sender gets for a frame that was not delivered: UNKNOWN_AGENT or DELIVERY_FAILED."""
    code = ErrorCode.UNKNOWN_AGENT if reason is FailReason.UNKNOWN else ErrorCode.DELIVERY_FAILED
    return ProtocolError(code, _FAIL_MESSAGES[reason], details={"to": to, "reason": reason.value},
                         correlation_id=message_id)


Fields = dict[bytes, bytes]


def encode(message: ClusterMessage) -> Fields:
    """The stream entry fields of `message` (the inverse of `decode`)."""
    origin = message.origin.encode()
    if isinstance(message, Deliver):
        return {b"k": Deliver.KIND, b"o": origin, b"t": b"%d" % message.token,
                b"d": message.to.encode(), b"y": message.type.encode(),
                b"x": b"%d" % message.expires_ms, b"m": message.text.encode("utf-8")}
    if isinstance(message, Delivered):
        return {b"k": Delivered.KIND, b"o": origin, b"t": _tokens(message.tokens)}
    if isinstance(message, Failed):
        return {b"k": Failed.KIND, b"o": origin, b"t": _tokens(message.tokens),
                b"r": message.reason.value.encode()}
    return {b"k": Takeover.KIND, b"o": origin, b"d": message.did.encode(),
            b"g": b"%d" % message.generation}


def decode(fields: Mapping[bytes, bytes]) -> ClusterMessage:
    """The message in a stream entry; ClusterMessageError when it is not one."""
    try:
        kind = fields[b"k"]
        origin = fields[b"o"].decode()
        if kind == Deliver.KIND:
            return Deliver(origin, int(fields[b"t"]), fields[b"d"].decode(), fields[b"y"].decode(),
                           fields[b"m"].decode("utf-8"), int(fields[b"x"]))
        if kind == Delivered.KIND:
            return Delivered(origin, _parse_tokens(fields[b"t"]))
        if kind == Failed.KIND:
            return Failed(origin, _parse_tokens(fields[b"t"]), FailReason(fields[b"r"].decode()))
        if kind == Takeover.KIND:
            return Takeover(origin, fields[b"d"].decode(), int(fields[b"g"]))
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ClusterMessageError(f"unreadable cluster message ({exc!r})") from None
    raise ClusterMessageError(f"unknown cluster message kind {kind[:8]!r}")


def _tokens(tokens: tuple[int, ...]) -> bytes:
    return b",".join(b"%d" % token for token in tokens)


def _parse_tokens(raw: bytes) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.split(b",")) if raw else ()


# -- presence ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Presence:
    """A registered agent as the whole cluster sees it (the value of the presence hash)."""

    did: str
    instance: str
    session_id: str
    connected_at: float
    metadata: dict[str, Any]

    def encode(self) -> bytes:
        return json.dumps({"instance": self.instance, "session_id": self.session_id,
                           "connected_at": self.connected_at, "metadata": self.metadata},
                          ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, did: str, raw: bytes) -> Presence:
        value = json.loads(raw)
        return cls(did, str(value["instance"]), str(value["session_id"]),
                   float(value["connected_at"]), dict(value.get("metadata") or {}))


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


def agent_view(presence: Presence, activity: Activity) -> dict[str, Any]:
    """The /agents object of an agent of the cluster: the single-instance shape plus `instance`."""
    return {
        "did": presence.did,
        "connected_at": utc_timestamp(presence.connected_at),
        "last_activity": utc_timestamp(activity.last_activity or presence.connected_at),
        "messages_sent": activity.messages_sent,
        "messages_received": activity.messages_received,
        "metadata": presence.metadata,
        "instance": presence.instance,
    }


# -- routing decisions ------------------------------------------------------------------------

class RouteKind(enum.Enum):
    LOCAL = "local"  # connected to this instance: written to its socket, no Redis round trip
    REMOTE = "remote"  # another live instance holds it: appended to that instance's inbox
    UNKNOWN = "unknown"  # nobody holds it: UNKNOWN_AGENT at once
    GONE = "gone"  # its instance's heartbeat expired: DELIVERY_FAILED at once


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    instance: str | None = None


def decide(*, local: bool, owner: str | None, owner_alive: bool) -> Route:
    """Where a frame goes. The routing script applies the same table inside Redis, atomically
    with the append, for frames that are not local."""
    if local:
        return Route(RouteKind.LOCAL)
    if owner is None:
        return Route(RouteKind.UNKNOWN)
    if not owner_alive:
        return Route(RouteKind.GONE, owner)
    return Route(RouteKind.REMOTE, owner)


def route_from_script(answer: bytes | None) -> Route:
    """Decode the routing script's answer for one frame: b"" unknown, b"!id" gone, b"id" remote."""
    if not answer:
        return decide(local=False, owner=None, owner_alive=False)
    if answer.startswith(b"!"):
        return decide(local=False, owner=answer[1:].decode(), owner_alive=False)
    return decide(local=False, owner=answer.decode(), owner_alive=True)


# -- delivery bookkeeping ---------------------------------------------------------------------

@dataclass(slots=True)
class PendingDelivery:
    """A frame handed to the cluster, waiting for Delivered or Failed."""

    token: int
    message_id: str
    to: str
    sender: Any  # the hub's Peer of the sending agent: where the ERROR goes
    started: float  # monotonic seconds
    deadline: float
    instance: str | None = None  # the owner the routing script chose


class PendingDeliveries:
    """Frames in flight to other instances, oldest first.

    The timeout is the same for every frame and `now` never goes back, so insertion order is
    deadline order: expiry looks at the front only.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._entries: dict[int, PendingDelivery] = {}
        self._next_token = 1

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[PendingDelivery]:
        return iter(list(self._entries.values()))

    def add(self, *, message_id: str, to: str, sender: Any, now: float) -> PendingDelivery:
        token = self._next_token
        self._next_token += 1
        entry = PendingDelivery(token, message_id, to, sender, now, now + self.timeout)
        self._entries[token] = entry
        return entry

    def resolve(self, token: int) -> PendingDelivery | None:
        """The entry for `token`, removed; None when it was already answered (or timed out)."""
        return self._entries.pop(token, None)

    def expired(self, now: float) -> list[PendingDelivery]:
        """Remove and return the entries whose deadline has passed."""
        out: list[PendingDelivery] = []
        entries = self._entries
        while entries:
            first = next(iter(entries.values()))
            if first.deadline > now:
                break
            out.append(entries.pop(first.token))
        return out

    def clear(self) -> list[PendingDelivery]:
        """Remove and return every entry (Redis lost them)."""
        out = list(self._entries.values())
        self._entries.clear()
        return out


# -- settings and names -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ClusterSettings:
    redis_url: str
    prefix: str = "aiconexus"
    instance_id: str = "gateway"
    heartbeat_interval: float = 2.0
    heartbeat_ttl: float = 6.0
    delivery_timeout: float = 5.0
    inbox_maxlen: int = 1_000_000  # a bound for a dead instance's inbox, far above normal backlog
    dead_inbox_ttl: int = 600  # seconds a dead instance's inbox is kept (diagnostics), then dropped
    read_batch: int = 512
    read_block_ms: int = 1000
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.prefix):
            raise ValueError(f"REDIS_PREFIX {self.prefix!r}: use 1-64 letters, digits, . _ : -")
        if not NAME_PATTERN.match(self.instance_id):
            raise ValueError(f"INSTANCE_ID {self.instance_id!r}: use 1-64 letters, digits, . _ : -")
        if not self.heartbeat_ttl > self.heartbeat_interval:
            raise ValueError("CLUSTER_HEARTBEAT_TTL must be longer than CLUSTER_HEARTBEAT_INTERVAL")
        object.__setattr__(self, "keys", Keys(self.prefix))

    @property
    def expiry_guard(self) -> float:
        """How much earlier than the sender's deadline a receiver stops delivering (clock error)."""
        return min(0.25, self.delivery_timeout / 4)


class Keys:
    """Every Redis key of one cluster, under its prefix."""

    __slots__ = (
        "activity",
        "agents",
        "epoch",
        "generation",
        "instances",
        "order",
        "prefix",
        "route",
        "session",
    )

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.route = f"{prefix}:route"  # hash DID -> instance id (what routing reads)
        self.session = f"{prefix}:session"  # hash DID -> session id (compare-and-delete)
        self.agents = f"{prefix}:agents"  # hash DID -> Presence JSON
        self.activity = f"{prefix}:activity"  # hash DID -> Activity JSON
        self.order = f"{prefix}:order"  # zset DID by connected_at (paging /agents)
        self.instances = f"{prefix}:instances"  # set of instance ids that published presence
        self.generation = f"{prefix}:generation"  # counter ordering registrations cluster-wide
        self.epoch = f"{prefix}:epoch"  # random value; missing or changed = Redis lost its data

    def members(self, instance: str) -> str:
        return f"{self.prefix}:members:{instance}"  # set of DIDs an instance published

    def heartbeat(self, instance: str) -> str:
        return f"{self.prefix}:heartbeat:{instance}"

    def inbox(self, instance: str) -> str:
        return f"{self.prefix}:inbox:{instance}"


def generate_instance_id(hostname: str, suffix: str) -> str:
    """A readable default INSTANCE_ID: the host name (the pod name under Kubernetes) + a suffix."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", hostname).strip(".-_")[:40] or "gateway"
    return f"{host}-{suffix}"


def redact_url(url: str) -> str:
    """`url` without its password, for logs and /health."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def backoff(attempt: int, *, base: float = 0.1, cap: float = 2.0,
            jitter: Callable[[], float] | None = None) -> float:
    """Seconds before reconnect attempt `attempt` (0-based): doubling from `base` up to `cap`,
    spread by +-20 % when `jitter` (a 0..1 source) is given so instances do not retry in step."""
    delay = min(cap, base * math.pow(2, min(attempt, 30)))
    if jitter is not None:
        delay *= 0.8 + 0.4 * jitter()
    return delay
