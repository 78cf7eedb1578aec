"""The hub carries out what sessions decide: registration, delivery, errors and closes.

It owns the registry and the metrics, and talks to connections only through the small
`Connection` protocol below, so it runs the same under Tornado and in plain tests.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any, Protocol

from . import __version__
from .clock import Clock
from .errors import CloseCode, ErrorCode, ProtocolError
from .keys import DIDKey
from .messages import MessageFactory, readable_id, utc_timestamp
from .metrics import GatewayMetrics
from .registry import AgentRecord, Registry
from .session import Close, Forward, Register, Reply, Session, SessionSettings, State

log = logging.getLogger("aiconexus.gateway")


class Connection(Protocol):
    """What the hub needs of a transport connection."""

    @property
    def remote_ip(self) -> str: ...

    def send(self, text: str) -> bool:
        """Queue `text` for the peer; False when the connection can no longer send."""

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class Peer:
    """One open connection as the hub sees it."""

    __slots__ = ("connection", "last_frame", "record", "session")

    def __init__(self, connection: Connection, session: Session, now: float) -> None:
        self.connection = connection
        self.session = session
        self.record: AgentRecord | None = None
        self.last_frame = now  # monotonic time of the last data frame, for AGENT_TIMEOUT

    @property
    def did(self) -> str | None:
        return self.session.did


@dataclass(frozen=True, slots=True)
class HubSettings:
    session: SessionSettings
    agent_timeout: float


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
        self._nonce_source = nonce_source

    @property
    def did(self) -> str:
        return self.identity.did

    # -- connection events (called by the I/O layer) ------------------------------------------

    def open(self, connection: Connection) -> Peer:
        """A connection opened: send its CHALLENGE."""
        now = self.clock.monotonic()
        session = Session(self.factory, self.settings.session, nonce=self._nonce_source(32),
                          session_id=str(uuid.uuid4()), now=now)
        peer = Peer(connection, session, now)
        self.peers.add(peer)
        self.metrics.connections.labels("accepted").inc()
        connection.send(session.challenge())
        return peer

    def receive(self, peer: Peer, text: str) -> None:
        """One text frame from `peer`."""
        started = perf_counter()
        peer.last_frame = now = self.clock.monotonic()
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

    def receive_binary(self, peer: Peer) -> None:
        peer.last_frame = self.clock.monotonic()
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
            why = reason or (f"close code {code}" if code else "connection lost")
            self.metrics.disconnections.labels(_reason_label(code)).inc()
            log.info("agent disconnected: %s (%s)", record.did, why,
                     extra={"did": record.did, "close_code": code, "reason": why})

    def close_all(self, code: int, reason: str) -> None:
        for peer in list(self.peers):
            peer.session.close()
            peer.connection.close(code, reason)

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
        if target is None:
            error = ProtocolError(ErrorCode.UNKNOWN_AGENT,
                                  "the recipient is not connected to this gateway",
                                  details={"to": forward.to}, correlation_id=forward.id)
        else:
            error = ProtocolError(ErrorCode.DELIVERY_FAILED,
                                  "the recipient's connection closed before the message could be "
                                  "written", details={"to": forward.to}, correlation_id=forward.id)
        self.send_error(peer, error)

    def send_error(self, peer: Peer, error: ProtocolError) -> None:
        peer.connection.send(self.factory.error(peer.did, error))
        self.metrics.error(error.code)

    def _register(self, peer: Peer, action: Register) -> None:
        record = AgentRecord(action.did, peer, peer.session.session_id, self.clock.wall(),
                             action.metadata)
        replaced = self.registry.add(record)
        peer.record = record
        if replaced is not None and replaced.peer is not peer:
            old = replaced.peer
            old.record = None
            self.send_error(old, ProtocolError(
                ErrorCode.SESSION_REPLACED,
                "a newer connection registered this DID; this session is closed"))
            old.session.close()
            old.connection.close(CloseCode.SESSION_REPLACED, ErrorCode.SESSION_REPLACED.value)
            self.metrics.disconnections.labels("session_replaced").inc()
            log.info("agent session replaced: %s", action.did, extra={"did": action.did})
        peer.connection.send(action.reply)
        self.metrics.registrations.labels("ok").inc()
        log.info("agent registered: %s from %s", action.did, peer.connection.remote_ip,
                 extra={"did": action.did, "remote_ip": peer.connection.remote_ip,
                        "session_id": peer.session.session_id})

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


def agent_view(record: AgentRecord) -> dict[str, Any]:
    return {
        "did": record.did,
        "connected_at": utc_timestamp(record.connected_at),
        "last_activity": utc_timestamp(record.last_activity),
        "messages_sent": record.messages_sent,
        "messages_received": record.messages_received,
        "metadata": record.metadata,
    }


def _reason_label(code: int | None) -> str:
    return {1000: "normal", 1001: "going_away", 4409: "session_replaced"}.get(code or 0, "other")
