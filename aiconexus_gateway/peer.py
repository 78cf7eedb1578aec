"""One open connection as the core sees it: the transport's small protocol and the Peer record.

The I/O layer implements `Connection`; the core keeps one `Peer` per connection, holding its
`Session` (the protocol state, and the one source of its DID and of whether it is registered), its
rate limiter, and, once the agent proved its DID, its `AgentRecord` (what /agents shows).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from .errors import Ending, ProtocolError
from .messages import MessageFactory
from .metrics import GatewayMetrics
from .ratelimit import RateLimiter
from .session import Close, Forward, Session

log = logging.getLogger("aiconexus.gateway")

# Endings whose log line is written elsewhere: the disconnection itself (when the connection is
# gone), the drain (once, by the app), a replaced session (by the router, with why).
_LOGGED_ELSEWHERE = frozenset({Ending.UNREGISTERED, Ending.SESSION_CLOSED, Ending.GOING_AWAY,
                               Ending.SESSION_REPLACED})


class Connection(Protocol):
    """What the core needs of a transport connection."""

    @property
    def remote_ip(self) -> str: ...

    def send(self, text: str, routed: Forward | None = None) -> bool:
        """Queue `text` for the peer; False when the connection can no longer send.

        `routed` is the Forward when `text` is another agent's frame (None for the gateway's own):
        if the frame never leaves the gateway, the connection hands it back through
        `Hub.lost(peer, [routed, ...])` so its sender is told, without parsing `text` again.
        """

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...

    def registered(self) -> None:
        """The agent is now routable (here and, in cluster mode, everywhere): start its idle clock."""


class AgentRecord:
    """What the gateway keeps about a registered agent beyond its session: /agents' counters."""

    __slots__ = ("connected_at", "last_activity", "messages_received", "messages_sent", "metadata")

    def __init__(self, connected_at: float, metadata: dict[str, Any]) -> None:
        self.connected_at = connected_at  # wall-clock seconds
        self.last_activity = connected_at
        self.messages_sent = 0  # frames the agent sent after registering
        self.messages_received = 0  # frames the gateway delivered to it from other agents
        self.metadata = metadata


class Peer:
    """One open connection: its transport, its protocol state, its limits and its record."""

    __slots__ = ("connection", "last_frame", "limiter", "record", "session")

    def __init__(self, connection: Connection, session: Session, now: float,
                 limiter: RateLimiter | None = None) -> None:
        self.connection = connection
        self.session = session
        self.record: AgentRecord | None = None  # set when the agent proves its DID
        self.last_frame = now  # monotonic time of the last data frame, for AGENT_TIMEOUT
        self.limiter = limiter  # RATE_LIMIT / RATE_BURST; None when unlimited

    @property
    def did(self) -> str | None:
        return self.session.did

    @property
    def remote_ip(self) -> str:
        return self.connection.remote_ip


class PeerActions:
    """The two things the core does to a peer outside the hot path: answer it an ERROR, and end it.

    `end` is the one close path: every connection the gateway closes goes through it, so the
    session records its `Ending`, the ERROR (if any) goes first, the close code and reason come
    from the ending, and the metric and the log line are written once.
    """

    __slots__ = ("factory", "metrics")

    def __init__(self, factory: MessageFactory, metrics: GatewayMetrics) -> None:
        self.factory = factory
        self.metrics = metrics

    def send_error(self, peer: Peer, error: ProtocolError) -> None:
        peer.connection.send(self.factory.error(peer.did, error))
        self.metrics.error(error.code)

    def end(self, peer: Peer, ending: Ending, error: ProtocolError | None = None,
            why: str | None = None) -> None:
        """Close `peer` for `ending`, after the ERROR `error` if given; `why` adds to the log."""
        if not peer.session.end(ending):
            return  # already ended: one ending per connection
        if error is not None:
            self.send_error(peer, error)
        self._finish(peer, ending, None, ending.reason(error.code if error else None), why)

    def carry_out(self, peer: Peer, close: Close) -> None:
        """A close the session decided (it has already recorded the ending)."""
        if close.error is not None:
            self.metrics.error(close.error)
            self.metrics.registration(close.error.value)
        self._finish(peer, close.ending, close.text, close.reason, None)

    def _finish(self, peer: Peer, ending: Ending, text: str | None, reason: str,
                why: str | None) -> None:
        connection = peer.connection
        if text is not None:
            connection.send(text)
        connection.close(ending.code, reason)
        self.metrics.ended(ending)
        if ending in _LOGGED_ELSEWHERE:
            return
        level = logging.WARNING if ending.limit else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "closing %s from %s: %s (%d)%s", peer.did or "an unregistered connection",
                    connection.remote_ip, reason, ending.code, f"; {why}" if why else "",
                    extra={"did": peer.did, "remote_ip": connection.remote_ip,
                           "close_code": int(ending.code), "ending": ending.label})
