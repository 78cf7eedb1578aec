"""The bus between instances, as the node needs it: a small protocol and the work it carries.

redis_backend.py's RedisBus implements `Bus` with Redis commands and Lua scripts only; every
decision about what the answers mean is taken by the router (router.py) and the pure state
(state.py). The writer hands the bus a batch of ops, in order, and gets one result per op back.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Any, Protocol

from .presence import Activity, Presence
from .state import PendingDelivery
from .wire import ClusterMessage


class BusError(Exception):
    """The bus (Redis) cannot be reached or refused a command: the node is degraded."""


class DuplicateInstanceError(ValueError):
    """Another live instance holds this INSTANCE_ID: this one must not start."""


# -- what the writer carries out, in order ----------------------------------------------------

@dataclass(slots=True)
class SendOp:
    """A frame for an agent that is not local: route it through the presence map."""

    entry: PendingDelivery
    type: str
    text: str
    expires_ms: int


@dataclass(slots=True)
class PostOp:
    """A message for a known instance's inbox (answers to Deliver)."""

    instance: str
    message: ClusterMessage


@dataclass(slots=True)
class PresenceOp:
    """Publish (`up`) or withdraw one local agent's presence. `owner` is the router's own handle
    on the session (its Peer); the bus never looks at it."""

    presence: Presence
    up: bool
    owner: Any = None


@dataclass(slots=True)
class WithdrawOp:
    """Remove every presence entry of this instance (graceful drain)."""

    done: asyncio.Future[bool]  # True once withdrawn, False when the bus failed first


@dataclass(slots=True)
class AnnounceOp:
    """Tell every other instance about a local agent again (an unlisted agent's audience
    changed); registrations and unregistrations are announced with their PresenceOp."""

    presence: Presence


Op = SendOp | PostOp | PresenceOp | WithdrawOp | AnnounceOp


class RouteKind(enum.Enum):
    REMOTE = "remote"  # another live instance holds the recipient: appended to its inbox
    UNKNOWN = "unknown"  # nobody holds it: UNKNOWN_AGENT
    GONE = "gone"  # its instance's heartbeat expired: DELIVERY_FAILED


@dataclass(frozen=True, slots=True)
class Route:
    """Where the bus sent a frame (the result of a SendOp)."""

    kind: RouteKind
    instance: str | None = None


# The result of each op of a batch, in order: SendOp -> Route; PresenceOp up -> the cluster
# generation of the registration (-1: a newer session elsewhere won a restore); PresenceOp down,
# PostOp -> None; WithdrawOp -> True. A BusError in place of a result: that command was refused
# (its outcome is unknown), the rest of the batch went through.
Result = Route | int | bool | None | BusError


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    lost: bool = False  # the bus lost its data (Redis restarted empty, flushed)
    restore: bool = False  # another instance reaped our presence (our heartbeat had expired)
    dead: tuple[str, ...] = ()  # instances whose heartbeat expired (we reaped their presence)
    live: frozenset[str] | None = None  # the instances alive now, ourselves included (None: unknown)


Published = tuple[str, str, Activity]  # DID, session id, counters


class Bus(Protocol):
    """A cluster bus: presence, inboxes and heartbeats of the instances that share it."""

    description: str
    clock_offset_ms: float  # bus clock minus ours (ms), measured at connect and each heartbeat

    async def connect(self, *, first: bool) -> bool:
        """(Re)connect; True when the bus lost its data since last time. `first`: at startup,
        DuplicateInstanceError when a live instance already holds our id."""

    async def rejoin(self) -> bool:
        """After reconnecting: refresh our heartbeat; True when our presence survived (nobody
        reaped us, the bus kept its data), so the inbox holds everything we missed."""

    async def restore(self, presences: list[Presence], gone: list[Presence] | None = None
                      ) -> list[int]:
        """Publish these local agents again, and withdraw `gone` (None: every agent it held
        for us that is not among `presences`: after a data loss or being reaped); the
        generation of each."""

    async def publish(self, batch: list[Op]) -> list[Result]:
        """Carry out `batch` in order (one round trip): one result per op."""

    async def listen(self) -> list[ClusterMessage]:
        """The next messages of this instance's inbox, in order (waits a bounded time)."""

    async def heartbeat(self, activity: list[Published]) -> HeartbeatResult:
        """Refresh our heartbeat, publish `activity`, trim what we read of our inbox, reap
        instances whose heartbeat expired."""

    async def leave(self) -> None:
        """Remove this instance's heartbeat and registration on a clean stop."""

    async def disconnect(self) -> None: ...

    # -- the cluster-wide views (views.py) ----------------------------------------------------

    async def totals(self) -> tuple[int, int]:
        """(agents, instances) in the whole cluster."""

    async def page(self, limit: int, offset: int) -> tuple[int, list[tuple[Presence, Activity]]]:
        """The cluster's agent count and one page of its agents, in connection order."""

    async def lookup(self, dids: list[str]) -> list[tuple[Presence, Activity]]:
        """The agents among `dids` that some instance holds."""

    async def everyone(self) -> list[Presence]:
        """Every agent of the cluster (the directory's replica after connecting)."""
