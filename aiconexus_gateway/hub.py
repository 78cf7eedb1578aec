"""The hub carries out what sessions decide: registration, delivery, errors and closes.

It owns the registry and the metrics, and talks to connections only through the small
`Connection` protocol below, so it runs the same under Tornado and in plain tests.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Protocol

from . import __version__
from .clock import Clock
from .errors import CloseCode, ErrorCode, ProtocolError
from .keys import DIDKey
from .limits import COST_UNIT, Admission, AdmissionSettings, LimitMetrics, RateLimiter, Refusal
from .messages import MessageFactory, readable_id, utc_timestamp
from .metrics import GatewayMetrics
from .registry import AgentRecord, Registry, agent_view
from .session import Close, Forward, Register, Reply, Session, SessionSettings, State

log = logging.getLogger("aiconexus.gateway")


class Connection(Protocol):
    """What the hub needs of a transport connection."""

    @property
    def remote_ip(self) -> str: ...

    def send(self, text: str) -> bool:
        """Queue `text` for the peer; False when the connection can no longer send."""

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    def registered(self) -> None:
        """The agent is now routable (here and, in cluster mode, everywhere): start its idle clock."""


class ClusterPort(Protocol):
    """What the hub needs of cluster mode (backends/base.py ClusterNode): the world beyond this
    instance. Without REDIS_URL there is none and the hub is the whole gateway."""

    def forward(self, peer: Peer, forward: Forward, started: float) -> None:
        """Route a frame whose recipient is not connected here (or answer its sender ERROR)."""

    def registered(self, record: AgentRecord, then: Callable[[], None]) -> None:
        """Publish `record` cluster-wide (closing its DID's session elsewhere), then call `then`."""

    def unregistered(self, record: AgentRecord) -> None: ...

    async def health(self, view: dict[str, Any]) -> dict[str, Any]: ...

    async def agents_page(self, limit: int, offset: int) -> dict[str, Any]: ...

    async def agent(self, did: str) -> dict[str, Any] | None: ...

    async def withdraw(self, timeout: float = 2.0) -> None: ...

    async def close(self, timeout: float = 2.0) -> None: ...


class Peer:
    """One open connection as the hub sees it."""

    __slots__ = ("connection", "last_frame", "limiter", "record", "session")

    def __init__(self, connection: Connection, session: Session, now: float,
                 limiter: RateLimiter | None = None) -> None:
        self.connection = connection
        self.session = session
        self.record: AgentRecord | None = None
        self.last_frame = now  # monotonic time of the last data frame, for AGENT_TIMEOUT
        self.limiter = limiter  # RATE_LIMIT / RATE_BURST; None when unlimited

    @property
    def did(self) -> str | None:
        return self.session.did


@dataclass(frozen=True, slots=True)
class HubSettings:
    session: SessionSettings
    agent_timeout: float
    rate_limit: float = 0.0  # frames per second per connection; 0: unlimited
    rate_burst: int = 0
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)


def idle_delay(*, last_frame: float, agent_timeout: float, now: float) -> float:
    """Seconds until the connection counts as idle; <= 0 means it already does."""
    return last_frame + agent_timeout - now


class Hub:
    """Routes messages between the agents connected to this gateway."""

    def __init__(self, settings: HubSettings, identity: DIDKey, *, clock: Clock | None = None,
                 nonce_source: Callable[[int], bytes] = os.urandom) -> None:
        self.settings = settings
        self.identity = identity
        self.clock = clock or Clock()
        self.factory = MessageFactory(identity, self.clock.wall)
        self.registry = Registry()
        self.metrics = GatewayMetrics(lambda: len(self.registry))
        self.started_at = self.clock.wall()
        self.draining = False
        self.peers: set[Peer] = set()
        self.cluster: ClusterPort | None = None  # set by backends.start_cluster (REDIS_URL)
        self._nonce_source = nonce_source
        self.admission = Admission(settings.admission, self.clock.monotonic())
        self.limits = LimitMetrics(self.metrics.registry, self.admission)

    @property
    def did(self) -> str:
        return self.identity.did

    # -- connection events (called by the I/O layer) ------------------------------------------

    def open(self, connection: Connection) -> Peer:
        """A connection opened: send its CHALLENGE."""
        now = self.clock.monotonic()
        session = Session(self.factory, self.settings.session, nonce=self._nonce_source(32),
                          session_id=str(uuid.uuid4()), now=now)
        limiter = (RateLimiter(self.settings.rate_limit, self.settings.rate_burst or 1, now)
                   if self.settings.rate_limit > 0 else None)
        peer = Peer(connection, session, now, limiter)
        self.peers.add(peer)
        self.metrics.connections.labels("accepted").inc()
        connection.send(session.challenge())
        return peer

    def receive(self, peer: Peer, text: str) -> None:
        """One text frame from `peer`."""
        started = perf_counter()
        peer.last_frame = now = self.clock.monotonic()
        limiter = peer.limiter
        if limiter is not None:
            wait = limiter.take(now)
            if wait:
                self._rate_limited(peer, now, wait, text)
                return
        action = peer.session.receive(text, now)
        record = peer.record
        if record is not None:
            record.messages_sent += 1
            record.last_activity = self.clock.wall()
        kind = type(action)
        if kind is Forward:
            self._forward(peer, action, started)  # type: ignore[arg-type,unused-ignore]
        else:
            self.carry_out(peer, action)
        if limiter is not None and record is not None:
            cost = perf_counter() - started
            if cost > COST_UNIT:
                limiter.charge(cost)  # an expensive frame pays for its time, not just 1 token

    def receive_binary(self, peer: Peer) -> None:
        peer.last_frame = now = self.clock.monotonic()
        if peer.limiter is not None:
            wait = peer.limiter.take(now)
            if wait:
                self._rate_limited(peer, now, wait, None)
                return
        self.carry_out(peer, peer.session.receive_binary())

    def reject(self, peer: Peer, error: ProtocolError) -> None:
        """An error the I/O layer found (frame too large...), answered like any other."""
        self.carry_out(peer, peer.session.reject(error))

    def internal_error(self, peer: Peer, text: str) -> None:
        """Handling `text` failed on our side: tell the sender, keep a registered session open."""
        self.carry_out(peer, peer.session.reject(ProtocolError(
            ErrorCode.INTERNAL_ERROR, "the gateway failed to handle this message; it was not delivered",
            correlation_id=readable_id(text))))

    def challenge_expired(self, peer: Peer) -> None:
        action = peer.session.challenge_expired()
        if action is not None:
            self.carry_out(peer, action)

    def closed(self, peer: Peer, code: int | None, reason: str | None) -> None:
        """The connection is gone, whoever closed it."""
        self.peers.discard(peer)
        peer.session.close()
        record, peer.record = peer.record, None
        if record is not None and self.registry.remove(record):
            if self.cluster is not None:
                self.cluster.unregistered(record)
            why = reason or (f"close code {code}" if code else "connection lost")
            self.metrics.disconnections.labels(_reason_label(code)).inc()
            log.info("agent disconnected: %s (%s)", record.did, why,
                     extra={"did": record.did, "close_code": code, "reason": why})

    def close_all(self, code: int, reason: str) -> None:
        for peer in list(self.peers):
            peer.session.close()
            peer.connection.close(code, reason)

    # -- limits (limits.py decides; these carry the decisions out) -------------------------------

    def admit(self, ip: str) -> Refusal | None:
        """May one more connection from `ip` open? Reserves its slot; `release` frees it."""
        refusal = self.admission.admit(ip, self.clock.monotonic())
        if refusal is not None:
            self.limits.refused_by[refusal.reason].inc()
            log.debug("refused a connection from %s: %s", ip, refusal.code,
                      extra={"remote_ip": ip, "reason": refusal.reason})
        return refusal

    def release(self, ip: str) -> None:
        self.admission.release(ip)

    def _rate_limited(self, peer: Peer, now: float, wait: float, text: str | None) -> None:
        """A frame over RATE_LIMIT: not parsed, not routed, answered RATE_LIMITED; 4429 for abuse."""
        limiter = peer.limiter
        assert limiter is not None
        if peer.session.state is State.CLOSED:
            return  # frames still in flight after we closed: nobody to answer
        self.limits.rate_limited.inc()
        bucket = limiter.bucket
        retry_after = round(wait + 0.0005, 3)
        error = ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"over the limit of {bucket.rate:g} messages per second (burst {bucket.burst:g}); "
            f"this message was not routed; retry after {retry_after:g} s",
            details={"retry_after": retry_after, "rate_limit": bucket.rate, "burst": bucket.burst},
            correlation_id=readable_id(text) if text is not None else None)
        self.send_error(peer, error)
        if limiter.refused(now):
            self.limits.closes_by["rate_limited"].inc()
            log.warning("closing %s from %s: it kept sending over the rate limit (4429)",
                        peer.did or "an unregistered connection", peer.connection.remote_ip,
                        extra={"did": peer.did, "remote_ip": peer.connection.remote_ip})
            peer.session.close()
            peer.connection.close(CloseCode.RATE_LIMITED, "rate limited")

    def slow_consumer(self, peer: Peer, pending: int, limit: int) -> None:
        """`peer` does not read what it is sent: close it (4008) before its backlog grows."""
        self.limits.closes_by["slow_consumer"].inc()
        log.warning("slow consumer %s from %s: %d bytes not yet sent (MAX_OUTBOUND_BUFFER %d); "
                    "closing 4008", peer.did or "(unregistered)", peer.connection.remote_ip,
                    pending, limit,
                    extra={"did": peer.did, "remote_ip": peer.connection.remote_ip,
                           "pending_bytes": pending})
        peer.session.close()
        peer.connection.close(CloseCode.SLOW_CONSUMER, "slow consumer")

    def lost(self, peer: Peer, frames: list[str]) -> None:
        """Frames queued to `peer` that never left the gateway before it closed: ERROR each sender.

        The frames are the received texts of forwarded messages (already validated) and the
        gateway's own messages, which are skipped.
        """
        for text in frames:
            try:
                obj = json.loads(text)
            except ValueError:
                continue
            sender = obj.get("from")
            if sender == self.did or not isinstance(sender, str):
                continue
            self.limits.undelivered_by["lost_at_close"].inc()
            record = self.registry.get(sender)
            if record is not None:
                self.send_error(record.peer, ProtocolError(
                    ErrorCode.DELIVERY_FAILED,
                    "the recipient's connection closed before this message could be written to it",
                    details={"to": peer.did}, correlation_id=obj.get("id")))

    # -- actions --------------------------------------------------------------------------------

    def carry_out(self, peer: Peer, action: Reply | Register | Close | Forward) -> None:
        if isinstance(action, Forward):
            self._forward(peer, action, perf_counter())
        elif isinstance(action, Reply):
            peer.connection.send(action.text)
            if action.error is not None:
                self.metrics.error(action.error)
        elif isinstance(action, Register):
            self._register(peer, action)
        else:
            self._close(peer, action)

    def _forward(self, peer: Peer, forward: Forward, started: float) -> None:
        target = self.registry.get(forward.to)
        if target is not None and target.peer.connection.send(forward.text):
            target.messages_received += 1
            self.metrics.routed_by_type[forward.type].inc()
            self.metrics.observe_latency(perf_counter() - started)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("routed %s %s -> %s", forward.type, forward.id, forward.to,
                          extra={"did": peer.did, "to": forward.to, "id": forward.id})
            return
        if target is None and self.cluster is not None:
            self.cluster.forward(peer, forward, started)  # maybe on another instance
            return
        if target is None:
            self.limits.undelivered_by["unknown_agent"].inc()
            error = ProtocolError(ErrorCode.UNKNOWN_AGENT,
                                  "the recipient is not connected to this gateway",
                                  details={"to": forward.to}, correlation_id=forward.id)
        else:
            self.limits.undelivered_by["not_written"].inc()
            error = ProtocolError(ErrorCode.DELIVERY_FAILED,
                                  "the recipient's connection is closing, or is too slow to take "
                                  "more (slow consumer); the message was not delivered",
                                  details={"to": forward.to}, correlation_id=forward.id)
        self.send_error(peer, error)

    def send_error(self, peer: Peer, error: ProtocolError) -> None:
        peer.connection.send(self.factory.error(peer.did, error))
        self.metrics.error(error.code)

    def _register(self, peer: Peer, action: Register) -> None:
        record = AgentRecord(action.did, peer, peer.session.session_id, self.clock.wall(),
                             action.metadata)
        if self.cluster is not None:
            # REGISTERED once every instance can route to the agent (one Redis round trip; at
            # once while Redis is down), so nobody it tells it is here gets UNKNOWN_AGENT.
            self.cluster.registered(record, lambda: self._registered(peer, record, action))
        else:
            self._registered(peer, record, action)

    def _registered(self, peer: Peer, record: AgentRecord, action: Register) -> None:
        if peer.session.state is State.CLOSED:  # it left while the cluster published it
            if self.cluster is not None:
                self.cluster.unregistered(record)
            return
        replaced = self.registry.add(record)
        peer.record = record
        if replaced is not None and replaced.peer is not peer:
            self.evict(replaced)
        peer.connection.registered()
        peer.connection.send(action.reply)
        self.metrics.registrations.labels("ok").inc()
        log.info("agent registered: %s from %s", action.did, peer.connection.remote_ip,
                 extra={"did": action.did, "remote_ip": peer.connection.remote_ip,
                        "session_id": peer.session.session_id})

    def evict(self, record: AgentRecord) -> None:
        """Close `record`'s session: a newer one registered its DID (here or on another instance)."""
        self.registry.remove(record)  # no-op when the newer record already took its place
        old = record.peer
        old.record = None
        self.send_error(old, ProtocolError(
            ErrorCode.SESSION_REPLACED,
            "a newer connection registered this DID; this session is closed"))
        old.session.close()
        old.connection.close(CloseCode.SESSION_REPLACED, ErrorCode.SESSION_REPLACED.value)
        self.metrics.disconnections.labels("session_replaced").inc()
        log.info("agent session replaced: %s", record.did, extra={"did": record.did})

    def deliver(self, to: str, text: str, type: str) -> bool:
        """Write a frame another instance routed here to the local agent `to`; False if not here."""
        target = self.registry.get(to)
        if target is None or not target.peer.connection.send(text):
            return False
        target.messages_received += 1
        counter = self.metrics.routed_by_type.get(type)
        if counter is not None:
            counter.inc()
        return True

    def _close(self, peer: Peer, action: Close) -> None:
        if action.error is not None:
            self.metrics.error(action.error)
            if peer.record is None:
                self.metrics.registrations.labels(action.error.value).inc()
            log.info("closing connection from %s: %s (%d)", peer.connection.remote_ip,
                     action.reason, action.code,
                     extra={"did": peer.did, "remote_ip": peer.connection.remote_ip})
        if action.text is not None:
            peer.connection.send(action.text)
        peer.connection.close(action.code, action.reason)

    def check_idle(self, peer: Peer) -> float | None:
        """Close `peer` when it has been silent for AGENT_TIMEOUT; else seconds to check again."""
        if peer.session.state is State.CLOSED:
            return None
        delay = idle_delay(last_frame=peer.last_frame, agent_timeout=self.settings.agent_timeout,
                           now=self.clock.monotonic())
        if delay > 0:
            return delay
        self.send_error(peer, ProtocolError(
            ErrorCode.TIMEOUT, f"no message for {self.settings.agent_timeout:g} s; disconnected"))
        peer.session.close()
        peer.connection.close(CloseCode.CHALLENGE_TIMEOUT, "agent timeout")
        return None

    # -- views (HTTP) ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        now = self.clock.wall()
        return {
            "status": "draining" if self.draining else "healthy",
            "connected_agents": len(self.registry),
            "timestamp": utc_timestamp(now),
            "version": __version__,
            "gateway_did": self.did,
            "uptime_seconds": round(now - self.started_at, 3),
        }

    def agents_page(self, limit: int, offset: int) -> dict[str, Any]:
        records = self.registry.page(limit, offset)
        return {"agents": [agent_view(r) for r in records], "count": len(self.registry),
                "limit": limit, "offset": offset}

    def agent(self, did: str) -> dict[str, Any] | None:
        record = self.registry.get(did)
        return agent_view(record) if record is not None else None

    # Cluster-wide when cluster mode is on (each agent then shows its `instance`), else the above.

    async def health_report(self) -> dict[str, Any]:
        view = self.health()
        return view if self.cluster is None else await self.cluster.health(view)

    async def agents_report(self, limit: int, offset: int) -> dict[str, Any]:
        if self.cluster is None:
            return self.agents_page(limit, offset)
        return await self.cluster.agents_page(limit, offset)

    async def agent_report(self, did: str) -> dict[str, Any] | None:
        return self.agent(did) if self.cluster is None else await self.cluster.agent(did)


# The `reason` label of aiconexus_disconnections_total for each close code; anything else: "other".
DISCONNECT_REASONS: dict[int, str] = {
    CloseCode.NORMAL: "normal",
    CloseCode.GOING_AWAY: "going_away",
    CloseCode.SESSION_REPLACED: "session_replaced",
    CloseCode.RATE_LIMITED: "rate_limited",
    CloseCode.SLOW_CONSUMER: "slow_consumer",
    CloseCode.INVALID_PAYLOAD: "invalid_utf8",
    CloseCode.TOO_LARGE: "too_large",
}


def _reason_label(code: int | None) -> str:
    return DISCONNECT_REASONS.get(code or 0, "other")
