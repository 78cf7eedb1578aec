"""Where frames go: the Router delivers to agents connected here and decides what to do with the
rest. The base Router is the whole story on one instance (the rest is UNKNOWN_AGENT); cluster mode
is a subclass (backends/router.py ClusterRouter) that publishes the rest to other instances, in
the shape of python-socketio's pub/sub manager: handle locally when possible, publish otherwise.

The Router also owns making an agent routable (REGISTERING -> REGISTERED): at once here, after one
round trip to the bus in a cluster. The hub never asks which kind of router it has.
"""

from __future__ import annotations

import asyncio
import logging
import math
from time import perf_counter

from .clock import Clock
from .directory import Directory
from .errors import Ending, ErrorCode, ProtocolError
from .mailbox import DELIVERED, EXPIRED, Letter, Mailbox, Receipt, parse_ack, parse_policy
from .messages import build, utc_timestamp
from .metrics import GatewayMetrics, MailboxMetrics
from .peer import AgentRecord, Peer, PeerActions
from .registry import Registry
from .session import Deposit, Forward, MailboxRequest, Register, State

log = logging.getLogger("aiconexus.gateway")


class Router:
    """Routes frames between the agents of this instance."""

    def __init__(self, registry: Registry, actions: PeerActions, metrics: GatewayMetrics,
                 clock: Clock) -> None:
        self.registry = registry
        self.actions = actions
        self.metrics = metrics
        self.clock = clock
        # discovery and presence (directory.py); the hub gives it its settings
        self.directory = Directory(registry, actions.factory, actions, clock)
        self.mailbox: Mailbox | None = None  # use_mailbox(); None: frames with a ttl are refused
        self.mailbox_metrics: MailboxMetrics | None = None
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf

    def __str__(self) -> str:
        return "single instance"

    @property
    def clustered(self) -> bool:
        """True when other instances share the agents (for the startup banner only)."""
        return False

    # -- frames ---------------------------------------------------------------------------------

    def forward(self, peer: Peer, forward: Forward, started: float) -> None:
        """Deliver `forward` from `peer`; the hot path, so its steps are written out."""
        target = self.registry.get(forward.to)
        if target is not None and target.connection.send(forward.text, forward):
            target.record.messages_received += 1  # type: ignore[union-attr]
            metrics = self.metrics
            metrics.routed_by_type[forward.type].value += 1
            metrics.observe_latency(perf_counter() - started)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("routed %s %s -> %s", forward.type, forward.id, forward.to,
                          extra={"did": peer.did, "to": forward.to, "id": forward.id})
            return
        if target is None:
            self.elsewhere(peer, forward, started)
            return
        self.metrics.undelivered("not_written")
        self.actions.send_error(peer, ProtocolError(
            ErrorCode.DELIVERY_FAILED,
            "the recipient's connection is closing, or is too slow to take more (slow consumer); "
            "the message was not delivered", details={"to": forward.to}, correlation_id=forward.id))

    def elsewhere(self, peer: Peer, forward: Forward, started: float) -> None:
        """A frame whose recipient is not connected here: on one instance, nobody has it."""
        self.metrics.undelivered("unknown_agent")
        self.actions.send_error(peer, ProtocolError(
            ErrorCode.UNKNOWN_AGENT, "the recipient is not connected to this gateway",
            details={"to": forward.to}, correlation_id=forward.id))

    def deliver(self, to: str, text: str, type: str) -> bool:
        """Write a frame that did not arrive here (another instance routed it) to the local agent
        `to`; False when `to` is not here or cannot take it."""
        target = self.registry.get(to)
        if target is None or not target.connection.send(text):
            return False
        target.record.messages_received += 1  # type: ignore[union-attr]
        self.metrics.routed(type)
        return True

    def lost(self, forwards: list[Forward], recipient: str | None) -> None:
        """Frames written to a connection that closed before they left the gateway: each sender
        still connected here is told DELIVERY_FAILED."""
        for forward in forwards:
            self.metrics.undelivered("lost_at_close")
            sender = self.registry.get(forward.sender)
            if sender is not None:
                self.actions.send_error(sender, ProtocolError(
                    ErrorCode.DELIVERY_FAILED,
                    "the recipient's connection closed before this message could be written to it",
                    details={"to": recipient}, correlation_id=forward.id))

    # -- registration ---------------------------------------------------------------------------

    def register(self, peer: Peer, action: Register) -> None:
        """`peer` proved its DID (REGISTERING): make it routable, then answer REGISTERED."""
        peer.record = AgentRecord(self.clock.wall(), action.metadata)
        self.complete(peer, action.reply)

    def complete(self, peer: Peer, reply: str) -> bool:
        """REGISTERING -> REGISTERED: into the registry, REGISTERED sent; False when the
        connection ended meanwhile (nothing done then)."""
        session = peer.session
        if session.state is not State.REGISTERING:
            return False
        did = session.did
        assert did is not None
        replaced = self.registry.add(did, peer)
        session.registered()
        if replaced is not None and replaced is not peer:
            self.evict(replaced, "a newer connection registered this DID", counted=False)
        peer.connection.registered()
        peer.connection.send(reply)
        if self.mailbox is not None:  # what waited for it, before anything routed after this
            self.mailbox.disconnected(did)  # a replaced session's unacknowledged letters too
            self._write_unsent(peer, did)
        self.directory.online(peer)
        self.metrics.registration("ok")
        log.info("agent registered: %s from %s", did, peer.remote_ip,
                 extra={"did": did, "remote_ip": peer.remote_ip, "session_id": session.session_id})
        return True

    def unregister(self, peer: Peer) -> bool:
        """`peer`'s connection is gone: forget it; True when it was the DID's registered peer."""
        did = peer.session.did
        return did is not None and self.registry.remove(did, peer)

    def evict(self, peer: Peer, why: str, *, counted: bool = True) -> None:
        """Close `peer`'s session (4409): a newer one registered its DID, here or elsewhere.
        `counted`: whether it is still in the registry (a local replacement already took it out)."""
        did = peer.session.did
        if counted and did is not None:
            self.registry.remove(did, peer)
        self.metrics.disconnected(Ending.SESSION_REPLACED.label)
        log.info("agent session replaced: %s (%s)", did, why, extra={"did": did})
        self.actions.end(peer, Ending.SESSION_REPLACED, ProtocolError(
            ErrorCode.SESSION_REPLACED, "a newer connection registered this DID; this session is closed"))

    # -- the mailbox (mailbox.py): letters that may wait for their recipient --------------------

    def use_mailbox(self, mailbox: Mailbox, metrics: MailboxMetrics) -> None:
        self.mailbox = mailbox
        self.mailbox_metrics = metrics
        self._arm_expiry()

    def deposit(self, peer: Peer, action: Deposit) -> None:
        """A frame with a `ttl`: kept until its recipient acknowledges it; written at once when
        the recipient is connected here, else its sender is told QUEUED."""
        forward, mailbox, metrics = action.forward, self.mailbox, self.mailbox_metrics
        if mailbox is None or metrics is None:
            self.actions.send_error(peer, ProtocolError(
                ErrorCode.MAILBOX_REFUSED, "not stored: this gateway keeps no mailbox "
                "(MAILBOX_MAX_TTL is 0, or cluster mode); send without 'ttl'",
                details={"reason": "unavailable", "to": forward.to}, correlation_id=forward.id))
            return
        now = self.clock.wall()
        try:
            letter = mailbox.store(id=forward.id, sender=forward.sender, recipient=forward.to,
                                   type=forward.type, text=forward.text, ttl=action.ttl, now=now)
        except ProtocolError as error:
            reason = error.details.get("reason")
            if isinstance(reason, str):
                metrics.refused(reason)
            self.actions.send_error(peer, error)
            return
        metrics.stored()
        self._arm_expiry()
        target = self.registry.get(forward.to)
        if target is not None:
            self._write_unsent(target, forward.to)
            return
        metrics.queued()
        peer.connection.send(self.actions.factory.make(
            "QUEUED", forward.sender,
            {"id": letter.id, "to": letter.recipient, "expires_at": utc_timestamp(letter.expires_at)},
            letter.id))

    def mailbox_request(self, peer: Peer, request: MailboxRequest) -> None:
        """ACK (a letter or receipt received: remove it) or MAILBOX (the agent's own rules)."""
        mailbox, metrics, did = self.mailbox, self.mailbox_metrics, peer.did
        assert did is not None
        try:
            if mailbox is None or metrics is None:
                raise ProtocolError(ErrorCode.MAILBOX_REFUSED, "this gateway keeps no mailbox "
                                    "(MAILBOX_MAX_TTL is 0, or cluster mode)",
                                    details={"reason": "unavailable"}, correlation_id=request.id)
            now = self.clock.wall()
            if request.type == "ACK":
                sender, acked = parse_ack(request.payload, request.id)
                item = mailbox.ack(did, sender, acked, now)
                if isinstance(item, Letter):
                    metrics.delivered()
                    self._leave_receipt(item, DELIVERED, now)
                return
            enabled, blocked = parse_policy(request.payload, request.id)
            view = mailbox.policy(did, enabled=enabled, blocked=blocked)
        except ProtocolError as error:
            self.actions.send_error(peer, error)
            return
        peer.connection.send(self.actions.factory.make("MAILBOX", did, view, request.id))

    def expire_mailbox(self) -> None:
        """Letters past their time go, and their senders get EXPIRED receipts."""
        mailbox, metrics = self.mailbox, self.mailbox_metrics
        if mailbox is None or metrics is None:
            return
        now = self.clock.wall()
        for letter in mailbox.expire(now):
            metrics.expired()
            self._leave_receipt(letter, EXPIRED, now)

    def _leave_receipt(self, letter: Letter, status: str, now: float) -> None:
        assert self.mailbox is not None
        self.mailbox.receipt(letter, status, now)
        self._arm_expiry()
        target = self.registry.get(letter.sender)
        if target is not None:
            self._write_unsent(target, letter.sender)

    def _write_unsent(self, peer: Peer, did: str) -> None:
        """Write to `peer` what waits for it and was not written to this connection yet."""
        assert self.mailbox is not None and self.mailbox_metrics is not None
        connection, factory = peer.connection, self.actions.factory
        for item in self.mailbox.unsent(did):
            if isinstance(item, Receipt):
                connection.send(build(factory.key, "RECEIPT", did, item.payload(),
                                      correlation_id=item.message_id, message_id=item.id,
                                      now=self.clock.wall())[0])
            elif connection.send(item.text):  # not a Forward: the letter stays until its ACK
                self.mailbox_metrics.written()

    def _arm_expiry(self) -> None:
        """Be called back at the mailbox's next deadline (on the running loop, if any)."""
        deadline = self.mailbox.next_deadline() if self.mailbox is not None else None
        if deadline is None or deadline >= self._expiry_at:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (tests of the core call expire_mailbox themselves)
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = deadline
        self._expiry = loop.call_later(max(0.0, deadline - self.clock.wall()), self._expiry_due)

    def _expiry_due(self) -> None:
        self._expiry, self._expiry_at = None, math.inf
        try:
            self.expire_mailbox()
        finally:
            self._arm_expiry()

    # -- lifecycle (cluster mode has work to do here) -------------------------------------------

    async def withdraw(self, timeout: float = 2.0) -> None:
        """A drain begins: stop being the route to this instance's agents."""

    async def close(self, timeout: float = 2.0) -> None:
        """The gateway stopped: leave whatever the router joined."""
        if self._expiry is not None:
            self._expiry.cancel()
