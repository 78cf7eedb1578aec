"""Cluster mode's router: deliver locally when the recipient is here, publish otherwise.

The shape of python-socketio's pub/sub manager: `ClusterRouter` is a `Router` whose frames for
agents not connected here, registrations and unregistrations also go to the bus, through the
node's writer (node.py). What comes back (routing answers, generations, inbox messages) is decided
on by the pure state (state.py) and carried out here with the base Router's means: local delivery,
ERRORs to senders, evictions through the one close path.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..directory import Directory, RemoteAgent, profile_document
from ..metrics import GatewayMetrics
from ..peer import AgentRecord, Peer, PeerActions
from ..registry import Registry
from ..routing import Router
from ..session import Forward, Register, State
from .bus import (
    AnnounceOp,
    Bus,
    BusError,
    Op,
    PostOp,
    PresenceOp,
    Published,
    Result,
    Route,
    RouteKind,
    SendOp,
    WithdrawOp,
)
from .node import ClusterNode
from .presence import Presence
from .settings import ClusterSettings
from .state import ClusterState, PendingDeliveries, PendingDelivery
from .wire import (
    Announce,
    ClusterMessage,
    Deliver,
    Delivered,
    Failed,
    FailReason,
    Takeover,
    delivery_error,
)

log = logging.getLogger("aiconexus.gateway.cluster")


class ClusterRouter(Router):
    """Routes across every instance that shares the bus."""

    def __init__(self, registry: Registry, actions: PeerActions, metrics: GatewayMetrics,
                 clock: Clock, settings: ClusterSettings, bus: Bus, *,
                 jitter: Callable[[], float] = random.random) -> None:
        super().__init__(registry, actions, metrics, clock)
        self.settings = settings
        self.instance_id = settings.instance_id
        self.pending = PendingDeliveries(settings.delivery_timeout)
        self.state = ClusterState()
        self.cluster_metrics = metrics.cluster(lambda: len(self.pending),
                                               tuple(reason.value for reason in FailReason))
        self.node = ClusterNode(bus, self, settings, clock, jitter=jitter)
        self._gone: list[Presence] = []  # withdrawals dropped while the bus was down
        # announcements read while the whole cluster is being read (None: no read going on)
        self._sync_log: dict[str, Announce] | None = None

    def __str__(self) -> str:
        return str(self.node)

    @property
    def clustered(self) -> bool:
        return True

    # -- discovery and presence across instances (directory.py keeps the replica) ---------------

    @property
    def directory(self) -> Directory:
        return self._directory

    @directory.setter
    def directory(self, directory: Directory) -> None:
        previous = getattr(self, "_directory", None)
        self._directory = directory
        if previous is not None and previous is not directory:  # the hub's, given after start
            directory.remote_sync(previous.remote)
        directory.scope = self._scope
        directory.announce = self._announce

    def _scope(self) -> str:
        return "cluster" if self.node.up else "instance"

    def _announce(self, peer: Peer) -> None:
        """A local unlisted agent's audience changed: the other instances learn it."""
        if self.node.up and not self.node.withdrawn and peer.record is not None:
            self.node.queue(AnnounceOp(self._presence(peer)))

    def syncing(self) -> None:
        self._sync_log = {}

    def synced(self, presences: list[Presence]) -> None:
        """The whole cluster, read in pages while announcements kept coming: those read
        meanwhile are applied again on top, so a page read before a change cannot undo it."""
        log, self._sync_log = self._sync_log or {}, None
        self._directory.remote_sync({
            presence.did: RemoteAgent.of(presence.did, presence.instance, presence.session_id,
                                         presence.profile)
            for presence in presences if presence.instance != self.instance_id})
        for message in log.values():
            self._announced(message)

    def alive(self, instances: frozenset[str]) -> None:
        self._directory.remote_alive(instances)

    # -- the base Router's decisions, extended to the cluster -----------------------------------

    def elsewhere(self, peer: Peer, forward: Forward, started: float) -> None:
        """The recipient is not connected here: maybe on another instance."""
        node = self.node
        if not node.up:
            self._fail_sender(peer, FailReason.UNAVAILABLE, forward.to, forward.id)
            return
        entry = self.pending.add(message_id=forward.id, to=forward.to, sender=peer,
                                 now=self.clock.monotonic())
        expires = node.bus_time_ms() + 1000 * (self.settings.delivery_timeout
                                               - self.settings.expiry_guard)
        node.queue(SendOp(entry, forward.type, forward.text, int(expires)))

    def register(self, peer: Peer, action: Register) -> None:
        """REGISTERED once every instance can route to the agent (one round trip; at once while
        the bus is down, and the restore after reconnecting publishes it), so nobody it tells it
        is here gets UNKNOWN_AGENT."""
        peer.record = AgentRecord(self.clock.wall(), action.metadata)
        node = self.node
        if node.withdrawn or not node.up:
            self.complete(peer, action.reply)
            return
        self.state.publishing(action.did, peer)
        node.queue(PresenceOp(self._presence(peer), True, (peer, action.reply)))

    def unregister(self, peer: Peer) -> bool:
        removed = super().unregister(peer)
        did = peer.session.did
        if removed and did is not None:
            self.state.forget(did, peer)
            self._withdraw_presence(peer)
        return removed

    def evict(self, peer: Peer, why: str, *, counted: bool = True) -> None:
        did = peer.session.did
        if did is not None:
            self.state.forget(did, peer)
        super().evict(peer, why, counted=counted)

    async def withdraw(self, timeout: float = 2.0) -> None:
        await self.node.withdraw(timeout)

    async def close(self, timeout: float = 2.0) -> None:
        await self.node.close(timeout)

    # -- what the node reports (node.Handler) ---------------------------------------------------

    def presences(self, everyone: bool) -> tuple[list[Any], list[Presence], list[Presence]]:
        gone, self._gone = self._gone, []
        if everyone:
            peers = list(self.registry)
            return peers, [self._presence(peer) for peer in peers], []
        peers = [peer for peer in self.registry if peer.session.did is not None
                 and not self.state.published_or_publishing(peer.session.did, peer)]
        return peers, [self._presence(peer) for peer in peers], gone

    def restored(self, owners: list[Any], generations: list[int]) -> None:
        for peer, generation in zip(owners, generations, strict=True):
            self._published(peer, None, generation)

    def results(self, batch: list[Op], results: list[Result]) -> None:
        for op, result in zip(batch, results, strict=True):
            if isinstance(result, BusError):  # refused (OOM, READONLY, a bad script): unknown
                log.error("cluster: Redis refused a command: %s", result,
                          extra={"instance": self.instance_id})
                self.dropped([op], sent=True)
            elif isinstance(op, SendOp):
                assert isinstance(result, Route)
                self._routed(op.entry, result)
            elif isinstance(op, PresenceOp):
                if op.up:
                    peer, reply = op.owner
                    self._published(peer, reply, int(result))  # type: ignore[arg-type]
            elif isinstance(op, WithdrawOp) and not op.done.done():
                op.done.set_result(True)

    def dropped(self, ops: list[Op], *, sent: bool) -> None:
        """Ops the bus will not carry out. Frames that may have been sent stay pending: they may
        be in an inbox, and are answered by Delivered/Failed, by LOST, or at their deadline,
        after which no instance delivers them."""
        for op in ops:
            if isinstance(op, SendOp):
                if not sent:
                    self._fail(self.pending.resolve(op.entry.token), FailReason.UNAVAILABLE)
            elif isinstance(op, PresenceOp):
                if op.up:  # registered locally; the restore after reconnecting publishes it
                    peer, reply = op.owner
                    did = peer.session.did
                    self.state.not_published(did, peer)
                    if reply is not None and not self.complete(peer, reply):
                        self.state.forget(did, peer)
                else:  # withdrawn by the restore after reconnecting
                    self._gone.append(op.presence)
            elif isinstance(op, WithdrawOp) and not op.done.done():
                op.done.set_result(False)
            # PostOp: the sender's timeout answers its agent.

    def received(self, messages: list[ClusterMessage], now_ms: float) -> None:
        """One batch of this instance's inbox, in order; answers go back one per origin."""
        delivered: dict[str, list[int]] = defaultdict(list)
        failed: dict[tuple[str, FailReason], list[int]] = defaultdict(list)
        for message in messages:
            try:
                if isinstance(message, Deliver):
                    self._delivering(message, now_ms, delivered, failed)
                else:
                    self._answered(message)
            except Exception:
                log.exception("cluster: cannot handle %r", message,
                              extra={"instance": self.instance_id})
        for origin, tokens in delivered.items():
            self._answer(origin, Delivered(self.instance_id, tuple(tokens)))
        for (origin, reason), tokens in failed.items():
            self._answer(origin, Failed(self.instance_id, tuple(tokens), reason))

    def lost_everything(self) -> None:
        lost = self.pending.clear()
        if lost:
            log.warning("cluster: Redis lost its data; answering %d in-flight frames with ERROR",
                        len(lost), extra={"instance": self.instance_id})
        for entry in lost:
            self._fail(entry, FailReason.LOST)

    def activity(self) -> list[Published]:
        return [(peer.session.did, peer.session.session_id, counters)  # type: ignore[misc]
                for peer, counters in self.state.activity_changes(self.registry)]

    def expire(self) -> int:
        """Answer ERROR for the frames whose delivery timeout passed; how many."""
        expired = self.pending.expired(self.clock.monotonic())
        for entry in expired:
            self._fail(entry, FailReason.TIMEOUT)
        return len(expired)

    def up(self, up: bool) -> None:
        self.cluster_metrics.redis_up(up)
        if not up:
            self._sync_log = None
        if up:
            self.cluster_metrics.reconnected()

    # -- carrying out -----------------------------------------------------------------------------

    def _presence(self, peer: Peer) -> Presence:
        session, record = peer.session, peer.record
        assert session.did is not None and record is not None
        return Presence(session.did, self.instance_id, session.session_id, record.connected_at,
                        record.metadata, profile_document(
                            session.profile, self._directory.watches.watching(session.did)))

    def _withdraw_presence(self, peer: Peer) -> None:
        if not self.node.withdrawn:
            self.node.queue(PresenceOp(self._presence(peer), False))

    def _published(self, peer: Peer, reply: str | None, generation: int) -> None:
        """The cluster holds `peer`'s registration with `generation`."""
        did = peer.session.did
        assert did is not None
        why = self.state.published(did, peer, generation)
        if reply is not None and not self.complete(peer, reply):
            self.state.forget(did, peer)  # it left while the cluster published it
            if generation >= 0:
                self._withdraw_presence(peer)
            return
        if self.registry.get(did) is not peer:
            self.state.forget(did, peer)  # replaced here while the write was in flight
            return
        if why is not None:
            log.info("cluster: closing replaced session of %s (%s)", did, why,
                     extra={"did": did, "instance": self.instance_id})
            self.evict(peer, why)

    def _routed(self, entry: PendingDelivery, route: Route) -> None:
        if route.kind is RouteKind.REMOTE:
            entry.instance = route.instance
            self.cluster_metrics.sent()
            return
        reason = FailReason.UNKNOWN if route.kind is RouteKind.UNKNOWN else FailReason.INSTANCE_GONE
        self._fail(self.pending.resolve(entry.token), reason)

    def _delivering(self, message: Deliver, now_ms: float, delivered: dict[str, list[int]],
                    failed: dict[tuple[str, FailReason], list[int]]) -> None:
        if now_ms > message.expires_ms:
            reason: FailReason | None = FailReason.EXPIRED
        elif self.deliver(message.to, message.text, message.type):
            reason = None
        else:
            reason = FailReason.NOT_CONNECTED
        if reason is None:
            delivered[message.origin].append(message.token)
            self.cluster_metrics.inbound_delivered()
        else:
            failed[(message.origin, reason)].append(message.token)
            self.cluster_metrics.inbound_failed(reason.value)

    def _answered(self, message: ClusterMessage) -> None:
        if isinstance(message, Delivered):
            now = self.clock.monotonic()
            for token in message.tokens:
                entry = self.pending.resolve(token)
                if entry is not None:
                    self.cluster_metrics.acknowledged(now - entry.started)
        elif isinstance(message, Failed):
            for token in message.tokens:
                self._fail(self.pending.resolve(token), message.reason)
        elif isinstance(message, Announce):
            if message.origin == self.instance_id:
                return
            if self._sync_log is not None:
                self._sync_log[message.did] = message
            self._announced(message)
        elif isinstance(message, Takeover) and message.origin != self.instance_id:
            # our own echo never closes anything
            for peer, why in self.state.takeover(message.did, message.generation, message.origin,
                                                 self.registry.get(message.did)):
                log.info("cluster: closing replaced session of %s (%s)", message.did, why,
                         extra={"did": message.did, "instance": self.instance_id})
                self.evict(peer, why, counted=self.registry.get(message.did) is peer)

    def _announced(self, message: Announce) -> None:
        if message.presence:
            presence = Presence.decode(message.did, message.presence)
            self._directory.remote_online(message.did, RemoteAgent.of(
                message.did, presence.instance, presence.session_id, presence.profile))
        else:
            self._directory.remote_offline(message.did, message.session_id)

    def _answer(self, origin: str, message: ClusterMessage) -> None:
        if origin == self.instance_id:  # our own frame came back through our inbox
            self._answered(message)
        elif self.node.up:
            self.node.queue(PostOp(origin, message))

    def _fail(self, entry: PendingDelivery | None, reason: FailReason) -> None:
        if entry is None:
            return  # already answered (a late Failed after a timeout, for instance)
        self._fail_sender(entry.sender, reason, entry.to, entry.message_id)

    def _fail_sender(self, sender: Peer, reason: FailReason, to: str, message_id: str) -> None:
        self.cluster_metrics.outbound_failed(reason.value)
        if sender.session.state is not State.CLOSED:
            self.actions.send_error(sender, delivery_error(reason, to=to, message_id=message_id))
