"""Connection lifecycle and the limits enforced on it: open, frames in, timers, closed.

The I/O layer reports connection events here (through the Hub facade); this module turns each
into the session's decision and carries it out: replies and closes itself (closes through the one
close path, PeerActions.end), frames and registrations through the Router. It also enforces the
limits decided in ratelimit.py and admission.py: a frame over RATE_LIMIT is refused before it is
parsed, the time a frame took is charged to its connection, and unauthenticated work (handshakes,
frames before registration) is charged to the remote address's work budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter, thread_time

from .admission import Admission, AdmissionSettings, Refusal
from .clock import Clock
from .errors import Ending, ErrorCode, ProtocolError, peer_close_label
from .messages import MessageFactory, new_id, readable_id
from .metrics import GatewayMetrics
from .peer import Connection, Peer, PeerActions
from .ratelimit import COST_UNIT, RateLimiter
from .routing import Router
from .session import (
    Action,
    Deposit,
    Forward,
    MailboxRequest,
    Register,
    Reply,
    Request,
    Session,
    SessionSettings,
    State,
)

log = logging.getLogger("aiconexus.gateway")


def idle_delay(*, last_frame: float, agent_timeout: float, now: float) -> float:
    """Seconds until the connection counts as idle; <= 0 means it already does."""
    return last_frame + agent_timeout - now


# Work is charged in CPU time of the gateway's thread, not wall time: on a busy host a frame may
# wait for the CPU, and an honest agent must not pay for that. Reading that clock costs ~0.5 us,
# so a registered agent's frames shorter than TIMED_FRAME are not timed: they cannot cost
# COST_UNIT (the dearest content measured, floats to canonicalize, costs ~0.8 us per byte).
TIMED_FRAME = 1024


class Connections:
    """The open connections of one gateway instance and what happens to them."""

    def __init__(self, settings: SessionSettings, admission: AdmissionSettings,
                 factory: MessageFactory, actions: PeerActions, metrics: GatewayMetrics,
                 router: Router, clock: Clock, nonce_source: Callable[[int], bytes]) -> None:
        self.settings = settings
        self.factory = factory
        self.actions = actions
        self.metrics = metrics
        self.router = router  # replaced by a ClusterRouter in cluster mode, before any connection
        self.clock = clock
        self.peers: set[Peer] = set()
        self.draining = False
        self.admission = Admission(admission, clock.monotonic())
        self.work = self.admission.work  # the per-address budget admission also consults
        self._nonce_source = nonce_source

    # -- admission (before the WebSocket upgrade) -----------------------------------------------

    def admit(self, ip: str) -> Refusal | None:
        """May one more connection from `ip` open? Reserves its slot; `release` frees it."""
        refusal = self.admission.admit(ip, self.clock.monotonic())
        if refusal is not None:
            self.metrics.refused(refusal.reason)
            log.debug("refused a connection from %s: %s", ip, refusal.code,
                      extra={"remote_ip": ip, "reason": refusal.reason})
        return refusal

    def release(self, ip: str) -> None:
        self.admission.release(ip)

    def charge(self, ip: str, seconds: float) -> bool:
        """Charge `seconds` of unauthenticated work (a handshake, a control frame) to the address
        `ip`; True when the address is now over its work budget."""
        return self.work.charge(ip, seconds, self.clock.monotonic())

    # -- connection events ----------------------------------------------------------------------

    def open(self, connection: Connection) -> Peer:
        """A connection opened: send its CHALLENGE."""
        started = thread_time()
        now = self.clock.monotonic()
        settings = self.settings
        session = Session(self.factory, settings, nonce=self._nonce_source(32),
                          session_id=new_id(), now=now)
        limiter = (RateLimiter(settings.rate_limit, settings.rate_burst or 1, now)
                   if settings.rate_limit > 0 else None)
        peer = Peer(connection, session, now, limiter)
        self.peers.add(peer)
        self.metrics.accepted()
        connection.send(session.challenge())
        self._charge_address(peer, thread_time() - started, now)
        return peer

    def receive(self, peer: Peer, text: str) -> None:
        """One text frame from `peer` (the hot path)."""
        started = perf_counter()  # (also the start of the routed-message latency)
        peer.last_frame = now = self.clock.monotonic()
        limiter = peer.limiter
        record = peer.record
        timed = record is None or len(text) >= TIMED_FRAME
        cpu = thread_time() if timed else 0.0
        if limiter is not None:
            wait = limiter.take(now)
            if wait:
                self._rate_limited(peer, now, wait)  # refused before it is parsed
                if record is None:
                    self._charge_address(peer, thread_time() - cpu, now)
                return
        action = peer.session.receive(text, now)
        if record is not None:
            record.messages_sent += 1
            record.last_activity = self.clock.wall()
        if type(action) is Forward:
            self.router.forward(peer, action, started)  # type: ignore[arg-type,unused-ignore]
        else:
            self.carry_out(peer, action)
        if not timed:
            return
        cost = thread_time() - cpu
        if cost > COST_UNIT and limiter is not None:
            limiter.charge(cost)  # an expensive frame pays for its time, not just 1 token
        if record is None:
            self._charge_address(peer, cost, now)

    def receive_binary(self, peer: Peer) -> None:
        peer.last_frame = now = self.clock.monotonic()
        if peer.limiter is not None:
            wait = peer.limiter.take(now)
            if wait:
                self._rate_limited(peer, now, wait)
                return
        self.carry_out(peer, peer.session.receive_binary())

    def reject(self, peer: Peer, error: ProtocolError) -> None:
        """An error the I/O layer found in a frame, answered like any other."""
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

    def check_idle(self, peer: Peer) -> float | None:
        """Close `peer` when it has been silent for AGENT_TIMEOUT; else seconds to check again."""
        if peer.session.state is State.CLOSED:
            return None
        timeout = self.settings.agent_timeout
        delay = idle_delay(last_frame=peer.last_frame, agent_timeout=timeout,
                           now=self.clock.monotonic())
        if delay > 0:
            return delay
        self.actions.end(peer, Ending.AGENT_TIMEOUT, ProtocolError(
            ErrorCode.TIMEOUT, f"no message for {timeout:g} s; disconnected"))
        return None

    def end(self, peer: Peer, ending: Ending, error: ProtocolError | None = None) -> None:
        """The I/O layer ends `peer` (a frame it cannot survive: too large, not UTF-8...)."""
        self.actions.end(peer, ending, error)

    def slow_consumer(self, peer: Peer, pending: int, limit: int) -> None:
        """`peer` does not read what it is sent: close it (4008) before its backlog grows."""
        self.actions.end(peer, Ending.SLOW_CONSUMER,
                         why=f"{pending} bytes not yet sent (MAX_OUTBOUND_BUFFER {limit})")

    def lost(self, peer: Peer, forwards: list[Forward]) -> None:
        """Frames queued to `peer` that never left the gateway before it closed: the connection
        hands back the Forward each was sent with; their senders get DELIVERY_FAILED."""
        self.router.lost(forwards, peer.did)

    def closed(self, peer: Peer, code: int | None, reason: str | None) -> None:
        """The connection is gone, whoever closed it."""
        self.peers.discard(peer)
        session = peer.session
        ending = session.ending
        session.end(Ending.SESSION_CLOSED)
        unregistered = self.router.unregister(peer)
        self.router.directory.closed(peer, unregistered)
        if unregistered:
            label = ending.label if ending is not None else peer_close_label(code)
            why = (ending.reason() if ending is not None else
                   reason or (f"close code {code}" if code else "connection lost"))
            self.metrics.disconnected(label)
            log.info("agent disconnected: %s (%s)", peer.did, why,
                     extra={"did": peer.did, "close_code": code, "reason": why})

    def close_all(self, ending: Ending = Ending.GOING_AWAY) -> None:
        """End every connection (a drain: 1001)."""
        for peer in list(self.peers):
            self.actions.end(peer, ending)

    # -- carrying out the session's decisions ---------------------------------------------------

    def carry_out(self, peer: Peer, action: Action) -> None:
        if isinstance(action, Forward):
            self.router.forward(peer, action, perf_counter())
        elif isinstance(action, Reply):
            peer.connection.send(action.text)
            if action.error is not None:
                self.metrics.error(action.error)
        elif isinstance(action, Register):
            self.router.register(peer, action)
        elif isinstance(action, Deposit):
            self.router.deposit(peer, action)
        elif isinstance(action, MailboxRequest):
            self.router.mailbox_request(peer, action)
        elif isinstance(action, Request):
            self.router.directory.handle(peer, action.envelope)
        else:
            self.actions.carry_out(peer, action)

    # -- limits ---------------------------------------------------------------------------------

    def _rate_limited(self, peer: Peer, now: float, wait: float) -> None:
        """A frame over RATE_LIMIT: not parsed, not routed, answered RATE_LIMITED; 4429 for abuse."""
        limiter = peer.limiter
        assert limiter is not None
        if peer.session.state is State.CLOSED:
            return  # frames still in flight after we closed: nobody to answer
        self.metrics.rate_limited()
        bucket = limiter.bucket
        retry_after = round(wait + 0.0005, 3)
        self.actions.send_error(peer, ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"over the limit of {bucket.rate:g} messages per second (burst {bucket.burst:g}); "
            f"this message was not routed; retry after {retry_after:g} s",
            details={"retry_after": retry_after, "rate_limit": bucket.rate, "burst": bucket.burst}))
        if limiter.refused(now):
            self.actions.end(peer, Ending.RATE_LIMITED,
                             why="it kept sending over the rate limit")

    def _charge_address(self, peer: Peer, seconds: float, now: float) -> None:
        """Unauthenticated work is paid by the address; an address over its budget loses its
        unregistered connections (4429) and is refused new ones until the budget refills."""
        ip = peer.connection.remote_ip
        if not self.work.charge(ip, seconds, now) or peer.session.state is not State.CHALLENGED:
            return
        retry_after = round(self.work.retry_after(ip, now) + 0.0005, 3)
        self.actions.end(peer, Ending.RATE_LIMITED, ProtocolError(
            ErrorCode.RATE_LIMITED,
            "connections from this address cost the gateway more unauthenticated work than it "
            f"allows; retry after {retry_after:g} s", details={"retry_after": retry_after}),
            why="its address is over its work budget")
