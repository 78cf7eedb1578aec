"""Where frames go: the Router delivers to agents connected here and decides what to do with the
rest. The base Router is the whole story on one instance (the rest is UNKNOWN_AGENT); cluster mode
is a subclass (backends/router.py ClusterRouter) that publishes the rest to other instances, in
the shape of python-socketio's pub/sub manager: handle locally when possible, publish otherwise.

The Router also owns making an agent routable (REGISTERING -> REGISTERED): at once here, after one
round trip to the bus in a cluster. The hub never asks which kind of router it has.
"""

from __future__ import annotations

import logging
from time import perf_counter

from .clock import Clock
from .directory import Directory
from .errors import Ending, ErrorCode, ProtocolError
from .mailroom import Mailroom, no_mailbox
from .metrics import GatewayMetrics
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
        self.mailroom: Mailroom | None = None  # the hub's (or the cluster's); None: no mailbox

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
        if self.mailroom is not None:  # what waited for it, before anything routed after this
            self.mailroom.registered(peer, did)
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

    # -- the mailbox (mailroom.py): frames with a ttl may wait for their recipient ---------------

    def deposit(self, peer: Peer, action: Deposit) -> None:
        """A frame with a `ttl`: through the mailroom, or refused when there is none."""
        if self.mailroom is None:
            self.actions.send_error(peer, no_mailbox(action.forward.to, action.forward.id))
            return
        self.mailroom.deposit(peer, action)

    def mailbox_request(self, peer: Peer, request: MailboxRequest) -> None:
        """ACK or MAILBOX for the gateway."""
        if self.mailroom is None:
            self.actions.send_error(peer, no_mailbox(None, request.id))
            return
        self.mailroom.request(peer, request)

    # -- lifecycle (cluster mode has work to do here) -------------------------------------------

    async def withdraw(self, timeout: float = 2.0) -> None:
        """A drain begins: stop being the route to this instance's agents."""

    async def close(self, timeout: float = 2.0) -> None:
        """The gateway stopped: leave whatever the router joined."""
