"""Cross-instance routing that does not depend on the bus (python-socketio's pub/sub manager shape).

The hub delivers locally whenever the recipient is connected here and hands everything else to
`ClusterNode.forward`. The node queues it for the single writer task, which a backend subclass
turns into one round trip per batch (`publish`); a single reader task takes this instance's inbox
in order (`listen`) and hands each message to `handle`. One writer and one reader keep the order
of frames from one sender to one recipient. Backends implement only the I/O: connect/restore,
publish, listen, heartbeat, withdraw and the cluster-wide views.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from ..clock import Clock
from ..registry import agent_view
from .cluster import (
    Activity,
    ClusterMessage,
    ClusterSettings,
    Deliver,
    Delivered,
    Failed,
    FailReason,
    PendingDeliveries,
    PendingDelivery,
    Route,
    RouteKind,
    Takeover,
    backoff,
    delivery_error,
)

if TYPE_CHECKING:
    from ..hub import Hub, Peer
    from ..registry import AgentRecord
    from ..session import Forward

log = logging.getLogger("aiconexus.gateway.cluster")

MAX_BATCH = 1000


class BusError(Exception):
    """The bus (Redis) cannot be reached or refused a command: the node is degraded."""


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
    """Publish (`up`) or withdraw one local agent's presence."""

    record: AgentRecord
    up: bool
    then: Callable[[], None] | None = None  # the hub completing the registration, once

    def complete(self) -> None:
        then, self.then = self.then, None
        if then is not None:
            then()


@dataclass(slots=True)
class WithdrawOp:
    """Remove every presence entry of this instance (graceful drain)."""

    done: asyncio.Future[bool]  # True once withdrawn, False when Redis failed first


Op = SendOp | PostOp | PresenceOp | WithdrawOp


@dataclass(frozen=True, slots=True)
class HeartbeatResult:
    lost: bool = False  # Redis lost its data (restarted empty, flushed)
    restore: bool = False  # our heartbeat had expired: others may have reaped our presence
    dead: tuple[str, ...] = ()  # instances whose heartbeat expired (we reaped their presence)


@dataclass(slots=True)
class Answers:
    """Answers to the Deliver messages of one inbox batch, grouped per origin."""

    delivered: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    failed: dict[tuple[str, FailReason], list[int]] = field(default_factory=lambda: defaultdict(list))


class ClusterMetrics:
    """Cluster series, registered in the hub's own registry so /metrics shows them."""

    def __init__(self, hub: Hub, node: ClusterNode) -> None:
        r = hub.metrics.registry
        self.outbound = Counter("aiconexus_cluster_outbound_total",
                                "Frames routed to other instances, by outcome", ["result"], registry=r)
        self.inbound = Counter("aiconexus_cluster_inbound_total",
                               "Frames received from other instances, by outcome", ["result"],
                               registry=r)
        self.redis_up = Gauge("aiconexus_cluster_redis_up", "1 while Redis is reachable", registry=r)
        self.pending = Gauge("aiconexus_cluster_pending", "Frames waiting for a delivery answer",
                             registry=r)
        self.pending.set_function(lambda: len(node.pending))
        self.reconnects = Counter("aiconexus_cluster_reconnects_total",
                                  "Successful (re)connections to Redis", registry=r)
        self.delivery = Histogram("aiconexus_cluster_delivery_seconds",
                                  "From a frame's hand-off to the cluster to its Delivered answer",
                                  buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                           0.5, 1.0, 2.5, 5.0), registry=r)
        self.outbound_by = {reason: self.outbound.labels(reason.value) for reason in FailReason}
        self.sent = self.outbound.labels("sent")
        self.acked = self.outbound.labels("delivered")
        self.inbound_delivered = self.inbound.labels("delivered")
        self.inbound_failed = {reason: self.inbound.labels(reason.value) for reason in FailReason}


class ClusterNode:
    """This instance's member of the cluster. Subclasses implement the bus I/O."""

    name = "cluster"

    def __init__(self, hub: Hub, settings: ClusterSettings, *, clock: Clock | None = None,
                 jitter: Callable[[], float] = random.random) -> None:
        self.hub = hub
        self.settings = settings
        self.instance_id = settings.instance_id
        self.clock = clock or hub.clock
        self.pending = PendingDeliveries(settings.delivery_timeout)
        # DID -> (local record, cluster generation of its registration), once published
        self.generations: dict[str, tuple[AgentRecord, int]] = {}
        self.up = False
        self.withdrawn = False
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.clock_offset_ms = 0.0  # bus clock minus our wall clock (heartbeat measures it)
        self.metrics = ClusterMetrics(hub, self)
        self._jitter = jitter
        self._outbox: deque[Op] = deque()
        self._wake = asyncio.Event()
        self._up_event = asyncio.Event()
        self._closing = False
        self._deferred_takeovers: dict[str, int] = {}
        self._published_activity: dict[str, tuple[AgentRecord, tuple[int, int, float]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._next_heartbeat = 0.0

    def __str__(self) -> str:
        return (f"instance {self.instance_id} via {self.name}, "
                f"{'connected' if self.up else 'not connected yet: ' + str(self.last_error)}")

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, *, connect_wait: float = 2.0) -> None:
        """Start the writer, reader and sweeper; wait (bounded) for the first connection."""
        self._tasks = [asyncio.create_task(self._run_writer(), name="cluster-writer"),
                       asyncio.create_task(self._run_reader(), name="cluster-reader"),
                       asyncio.create_task(self._run_sweeper(), name="cluster-sweeper")]
        try:
            await asyncio.wait_for(self._up_event.wait(), connect_wait)
        except asyncio.TimeoutError:
            log.warning("cluster: Redis not reachable yet (%s); serving local agents and retrying",
                        self.last_error, extra={"instance": self.instance_id})

    async def withdraw(self, timeout: float = 2.0) -> None:
        """Remove this instance's presence first on a drain, so new frames go elsewhere."""
        self.withdrawn = True
        if not self.up:
            return
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue(WithdrawOp(done))
        try:
            withdrawn = await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            withdrawn = False
        if withdrawn:
            log.info("cluster: presence withdrawn", extra={"instance": self.instance_id})
        else:
            log.warning("cluster: could not withdraw presence; it expires with the heartbeat",
                        extra={"instance": self.instance_id})

    async def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued (bounded), stop the tasks, leave the cluster, close the bus."""
        self.withdrawn = True
        deadline = asyncio.get_running_loop().time() + timeout
        while self._outbox and self.up and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        self._closing = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.up:
            with contextlib.suppress(BusError, asyncio.TimeoutError):
                await asyncio.wait_for(self.leave(), max(0.1, deadline - asyncio.get_running_loop().time()))
        await self.disconnect()

    # -- the hub's hooks ----------------------------------------------------------------------------

    def forward(self, peer: Peer, forward: Forward, started: float) -> None:
        """A frame whose recipient is not connected here."""
        if not self.up:
            self.metrics.outbound_by[FailReason.UNAVAILABLE].inc()
            self.hub.send_error(peer, delivery_error(FailReason.UNAVAILABLE, to=forward.to,
                                                     message_id=forward.id))
            return
        entry = self.pending.add(message_id=forward.id, to=forward.to, sender=peer,
                                 now=self.clock.monotonic())
        expires = self.bus_time_ms() + 1000 * (self.settings.delivery_timeout
                                               - self.settings.expiry_guard)
        self._queue(SendOp(entry, forward.type, forward.text, int(expires)))

    def registered(self, record: AgentRecord, then: Callable[[], None]) -> None:
        """Publish `record`, then let the hub complete the registration (at once when down)."""
        self._forget(record.did)  # a session replaced here is never unregistered on its own
        if self.withdrawn or not self.up:
            then()  # local registration goes on; the restore after reconnecting publishes it
        else:
            self._queue(PresenceOp(record, True, then))

    def unregistered(self, record: AgentRecord) -> None:
        self._forget(record.did, record)
        if not self.withdrawn:
            self._queue(PresenceOp(record, False))

    # -- answers from the bus -----------------------------------------------------------------------

    def routed(self, op: SendOp, route: Route) -> None:
        """The publish step's routing decision for one frame."""
        if route.kind is RouteKind.REMOTE:
            op.entry.instance = route.instance
            self.metrics.sent.inc()
            return
        reason = FailReason.UNKNOWN if route.kind is RouteKind.UNKNOWN else FailReason.INSTANCE_GONE
        self._fail(self.pending.resolve(op.entry.token), reason)

    def published(self, record: AgentRecord, generation: int) -> None:
        """The presence of `record` is in the cluster with `generation` (-1: a newer session won)."""
        if self.hub.registry.get(record.did) is not record:
            return  # it left (or was replaced here) while the write was in flight
        if generation < 0:
            self._evict(record, "a newer session of this DID is connected to another instance")
            return
        self.generations[record.did] = (record, generation)
        newer = self._deferred_takeovers.pop(record.did, None)
        if newer is not None and newer > generation:
            self._evict(record, "a newer session registered on another instance")

    def handle(self, message: ClusterMessage, answers: Answers, now_ms: float) -> None:
        """One message from this instance's inbox."""
        if isinstance(message, Deliver):
            if now_ms > message.expires_ms:
                answers.failed[(message.origin, FailReason.EXPIRED)].append(message.token)
                self.metrics.inbound_failed[FailReason.EXPIRED].inc()
            elif self.hub.deliver(message.to, message.text, message.type):
                answers.delivered[message.origin].append(message.token)
                self.metrics.inbound_delivered.inc()
            else:
                answers.failed[(message.origin, FailReason.NOT_CONNECTED)].append(message.token)
                self.metrics.inbound_failed[FailReason.NOT_CONNECTED].inc()
        elif isinstance(message, Delivered):
            now = self.clock.monotonic()
            for token in message.tokens:
                entry = self.pending.resolve(token)
                if entry is not None:
                    self.metrics.acked.inc()
                    self.metrics.delivery.observe(now - entry.started)
        elif isinstance(message, Failed):
            for token in message.tokens:
                self._fail(self.pending.resolve(token), message.reason)
        elif message.origin != self.instance_id:  # Takeover; our own echo never closes anything
            self._takeover(message)

    def _takeover(self, message: Takeover) -> None:
        record = self.hub.registry.get(message.did)
        if record is None:
            return
        known = self.generations.get(message.did)
        generation = known[1] if known is not None and known[0] is record else None
        if generation is None:  # our own write is still in flight: decide when it lands
            self._deferred_takeovers[message.did] = max(
                message.generation, self._deferred_takeovers.get(message.did, 0))
        elif generation < message.generation:
            self._evict(record, f"the DID registered on instance {message.origin}")

    def _forget(self, did: str, record: AgentRecord | None = None) -> None:
        """Drop what we keep about `did`'s published session (only `record`'s, when given)."""
        known = self.generations.get(did)
        if known is not None and (record is None or known[0] is record):
            del self.generations[did]
        activity = self._published_activity.get(did)
        if activity is not None and (record is None or activity[0] is record):
            del self._published_activity[did]

    def _evict(self, record: AgentRecord, why: str) -> None:
        self._forget(record.did, record)
        log.info("cluster: closing replaced session of %s (%s)", record.did, why,
                 extra={"did": record.did, "instance": self.instance_id})
        self.hub.evict(record)

    def flush_answers(self, answers: Answers) -> None:
        """Send the batch's Delivered/Failed answers: one message per origin (and reason)."""
        for origin, tokens in answers.delivered.items():
            self._answer(origin, Delivered(self.instance_id, tuple(tokens)))
        for (origin, reason), tokens in answers.failed.items():
            self._answer(origin, Failed(self.instance_id, tuple(tokens), reason))

    def _answer(self, origin: str, message: ClusterMessage) -> None:
        if origin == self.instance_id:  # our own frame came back through our inbox
            self.handle(message, Answers(), self.bus_time_ms())
        elif self.up:
            self._queue(PostOp(origin, message))

    def _fail(self, entry: PendingDelivery | None, reason: FailReason) -> None:
        if entry is None:
            return  # already answered (a late Failed after a timeout, for instance)
        self.metrics.outbound_by[reason].inc()
        self.hub.send_error(entry.sender, delivery_error(reason, to=entry.to,
                                                         message_id=entry.message_id))

    # -- state ----------------------------------------------------------------------------------------

    def bus_time_ms(self) -> float:
        return self.clock.wall() * 1000 + self.clock_offset_ms

    def set_up(self) -> None:
        if not self.up:
            if self.down_since is not None:
                log.warning("cluster: Redis is back after %.1f s", self.clock.monotonic()
                            - self.down_since, extra={"instance": self.instance_id})
            self.metrics.reconnects.inc()
        self.up = True
        self.last_error = None
        self.down_since = None
        self.metrics.redis_up.set(1)
        self._up_event.set()

    def set_down(self, error: BaseException | str) -> None:
        """Redis failed: frames already queued fail now, new ones fail at once until it is back."""
        text = error if isinstance(error, str) else (str(error) or type(error).__name__)
        if self.up or self.last_error is None:
            log.warning("cluster: Redis unavailable: %s", text, extra={"instance": self.instance_id})
        self.last_error = text
        if self.up:
            self.down_since = self.clock.monotonic()
        self.up = False
        self.metrics.redis_up.set(0)
        self._up_event.clear()
        self._fail_queued()
        self._wake.set()

    def _fail_queued(self) -> None:
        outbox, self._outbox = self._outbox, deque()
        for op in outbox:
            self._drop(op)

    def _drop(self, op: Op) -> None:
        if isinstance(op, SendOp):
            self._fail(self.pending.resolve(op.entry.token), FailReason.UNAVAILABLE)
        elif isinstance(op, WithdrawOp) and not op.done.done():
            op.done.set_result(False)
        elif isinstance(op, PresenceOp):
            op.complete()  # registered locally; the restore after reconnecting publishes it
        # PostOp: the sender's timeout answers its agent.

    def lost_everything(self) -> None:
        """Redis came back without our queued frames: their senders get an ERROR now."""
        lost = self.pending.clear()
        if lost:
            log.warning("cluster: Redis lost its data; answering %d in-flight frames with ERROR",
                        len(lost), extra={"instance": self.instance_id})
        for entry in lost:
            self._fail(entry, FailReason.LOST)

    def abandon(self, ops: list[Op]) -> None:
        """`ops` were sent but their outcome is unknown (the connection broke, or a script failed
        half-way): their frames may be in an inbox, so they stay pending and are answered by
        Delivered/Failed, by LOST, or at their deadline, after which no instance delivers them."""
        for op in ops:
            if not isinstance(op, SendOp):
                self._drop(op)

    def activity_changes(self) -> list[tuple[AgentRecord, Activity]]:
        """Local agents whose counters moved since they were last published."""
        changed: list[tuple[AgentRecord, Activity]] = []
        published = self._published_activity
        for record in self.hub.registry:
            known = self.generations.get(record.did)
            if known is None or known[0] is not record:
                continue
            now = (record.messages_sent, record.messages_received, record.last_activity)
            previous = published.get(record.did)
            if previous is None or previous[0] is not record or previous[1] != now:
                published[record.did] = (record, now)
                changed.append((record, Activity(*now)))
        return changed

    def local_view(self, record: AgentRecord) -> dict[str, Any]:
        return {**agent_view(record), "instance": self.instance_id}

    def redis_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"state": "connected" if self.up else "disconnected"}
        if not self.up:
            state["error"] = self.last_error or "connecting"
            if self.down_since is not None:
                state["down_seconds"] = round(self.clock.monotonic() - self.down_since, 3)
        return state

    # -- tasks ----------------------------------------------------------------------------------------

    def _queue(self, op: Op) -> None:
        self._outbox.append(op)
        self._wake.set()

    async def _run_writer(self) -> None:
        attempt = 0
        while not self._closing:
            if not self.up:
                try:
                    lost = await self.connect()
                except BusError as exc:
                    self.set_down(exc)
                    delay = backoff(attempt, jitter=self._jitter)
                    attempt += 1
                    await self._pause(delay)
                    continue
                attempt = 0
                if lost:
                    self.lost_everything()
                self._next_heartbeat = self.clock.monotonic() + self.settings.heartbeat_interval
                self.set_up()
                continue
            try:
                if self.clock.monotonic() >= self._next_heartbeat:
                    self._next_heartbeat = self.clock.monotonic() + self.settings.heartbeat_interval
                    await self._heartbeat()
                    continue
                if not self._outbox:
                    self._wake.clear()
                    await self._pause(self._next_heartbeat - self.clock.monotonic())
                    continue
                batch = [self._outbox.popleft() for _ in range(min(MAX_BATCH, len(self._outbox)))]
                try:
                    await self.publish(batch)
                except BusError:
                    self.abandon(batch)
                    raise
            except BusError as exc:
                self.set_down(exc)
            except Exception:  # a bug must not stop cluster routing for good
                log.exception("cluster: writer error", extra={"instance": self.instance_id})
                await self._pause(0.1)

    async def _heartbeat(self) -> None:
        result = await self.heartbeat(self.activity_changes() if not self.withdrawn else [])
        if result.lost:
            self.lost_everything()
        if (result.lost or result.restore) and not self.withdrawn:
            log.warning("cluster: re-publishing presence (%s)",
                        "Redis lost its data" if result.lost else "our heartbeat had expired",
                        extra={"instance": self.instance_id})
            await self.restore()
        for instance in result.dead:
            # Its agents are gone from the cluster view; frames already queued to it are answered
            # at their deadline, not now: a stalled (not dead) instance may still deliver them
            # until then, and must never deliver a frame whose sender already got ERROR.
            log.warning("cluster: instance %s stopped heartbeating; its agents were removed",
                        instance, extra={"instance": self.instance_id})

    async def _pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when something is queued or we are closing."""
        if seconds <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run_reader(self) -> None:
        while not self._closing:
            if not self.up:
                await self._up_event.wait()
                continue
            try:
                messages = await self.listen()
            except BusError as exc:
                self.set_down(exc)
                continue
            except Exception:
                log.exception("cluster: reader error", extra={"instance": self.instance_id})
                await asyncio.sleep(0.1)
                continue
            if not messages:
                continue
            answers = Answers()
            now_ms = self.bus_time_ms()
            for message in messages:
                try:
                    self.handle(message, answers, now_ms)
                except Exception:
                    log.exception("cluster: cannot handle %r", message,
                                  extra={"instance": self.instance_id})
            self.flush_answers(answers)

    def expire(self) -> int:
        """Answer ERROR for the frames whose delivery timeout passed; how many."""
        expired = self.pending.expired(self.clock.monotonic())
        for entry in expired:
            self._fail(entry, FailReason.TIMEOUT)
        return len(expired)

    async def _run_sweeper(self) -> None:
        period = min(0.1, self.settings.delivery_timeout / 10)
        while not self._closing:
            await asyncio.sleep(period)
            self.expire()

    # -- the backend's part ---------------------------------------------------------------------------

    async def connect(self) -> bool:
        """(Re)connect, re-publish presence; True when the bus lost its data since last time."""
        raise NotImplementedError

    async def restore(self) -> None:
        """Publish every local agent again (after a reconnect, a data loss or being reaped)."""
        raise NotImplementedError

    async def publish(self, batch: list[Op]) -> None:
        """Carry out `batch` in order, reporting through `routed` and `published`."""
        raise NotImplementedError

    async def listen(self) -> list[ClusterMessage]:
        """The next messages of this instance's inbox, in order (waits a bounded time)."""
        raise NotImplementedError

    async def heartbeat(self, activity: list[tuple[AgentRecord, Activity]]) -> HeartbeatResult:
        """Refresh our heartbeat, publish `activity`, reap instances whose heartbeat expired."""
        raise NotImplementedError

    async def leave(self) -> None:
        """Remove this instance's heartbeat and registration on a clean stop."""
        raise NotImplementedError

    async def disconnect(self) -> None:
        raise NotImplementedError

    async def health(self, view: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def agents_page(self, limit: int, offset: int) -> dict[str, Any]:
        raise NotImplementedError

    async def agent(self, did: str) -> dict[str, Any] | None:
        raise NotImplementedError
