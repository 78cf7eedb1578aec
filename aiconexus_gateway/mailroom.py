"""The mailroom: carries out the mailbox's decisions for the router. One instance, in memory.

mailbox.py decides (what is kept, what is due, what expired); this module does what follows: it
writes letters and receipts to connected agents, answers QUEUED, MAILBOX and the refusals, and
keeps a timer for the next expiry on the running loop. The Router holds one `Mailroom` (or none:
MAILBOX_MAX_TTL=0) and never asks which kind; cluster mode plugs in backends/mailroom.py's
`ClusterMailroom`, which keeps the boxes in Redis, with the same four calls.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any, Protocol

from .clock import Clock
from .errors import ErrorCode, ProtocolError
from .mailbox import DELIVERED, EXPIRED, Letter, Mailbox, Receipt, parse_ack, parse_policy
from .mailbox_file import MailboxFile
from .messages import MessageFactory, build, utc_timestamp
from .metrics import MailboxMetrics
from .peer import Peer, PeerActions
from .registry import Registry

if TYPE_CHECKING:
    from .session import Deposit, MailboxRequest


class Mailroom(Protocol):
    """What the router needs of a mailbox, whichever store holds it."""

    metrics: MailboxMetrics

    def deposit(self, peer: Peer, action: Deposit) -> None:
        """A frame with a `ttl` from `peer`: keep it, deliver it when its recipient is here."""

    def request(self, peer: Peer, request: MailboxRequest) -> None:
        """ACK or MAILBOX from `peer`."""

    def registered(self, peer: Peer, did: str) -> None:
        """`peer` just got REGISTERED: write what waits for it (before anything routed after)."""

    def depth(self, did: str) -> dict[str, Any] | None:
        """`did`'s mailbox for /agents, when it holds something or has rules (None: not known
        here at once)."""

    async def report(self, did: str) -> dict[str, Any] | None:
        """The same for /agents/<did>, asking the store when it must."""

    async def close(self) -> None: ...


def receipt_frame(factory: MessageFactory, receipt: Receipt | tuple[str, str, dict[str, Any]],
                  now: float) -> str:
    """The RECEIPT message for a receipt: the same id every time it is written."""
    if isinstance(receipt, Receipt):
        receipt_id, to, payload = receipt.id, receipt.to, receipt.payload()
    else:
        receipt_id, to, payload = receipt
    text, _ = build(factory.key, "RECEIPT", to, payload, correlation_id=payload["id"],
                    message_id=receipt_id, now=now)
    return text


def queued_frame(factory: MessageFactory, sender: str, message_id: str, to: str,
                 expires_at: float) -> str:
    """The QUEUED answer: the message waits for `to` until `expires_at` (wall seconds)."""
    return factory.make("QUEUED", sender, {"id": message_id, "to": to,
                                           "expires_at": utc_timestamp(expires_at)}, message_id)


def no_mailbox(to: str | None, message_id: str) -> ProtocolError:
    details: dict[str, Any] = {"reason": "unavailable"}
    if to is not None:
        details["to"] = to
    return ProtocolError(ErrorCode.MAILBOX_REFUSED, "not stored: this gateway keeps no mailbox "
                         "(MAILBOX_MAX_TTL is 0); send without 'ttl'", details=details,
                         correlation_id=message_id)


class LocalMailroom:
    """The mailroom of one instance: the boxes in memory (mailbox.Mailbox)."""

    def __init__(self, mailbox: Mailbox, registry: Registry, actions: PeerActions,
                 metrics: MailboxMetrics, clock: Clock, file: MailboxFile | None = None) -> None:
        self.mailbox = mailbox
        self.file = file  # MAILBOX_FILE's journal, closed with the mailroom
        self.registry = registry
        self.actions = actions
        self.metrics = metrics
        self.clock = clock
        self._expiry: asyncio.TimerHandle | None = None
        self._expiry_at = math.inf
        self._arm_expiry()  # what a MAILBOX_FILE brought back may be due already

    def deposit(self, peer: Peer, action: Deposit) -> None:
        forward, mailbox, metrics = action.forward, self.mailbox, self.metrics
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
        peer.connection.send(queued_frame(self.actions.factory, forward.sender, letter.id,
                                          letter.recipient, letter.expires_at))

    def request(self, peer: Peer, request: MailboxRequest) -> None:
        mailbox, did = self.mailbox, peer.did
        assert did is not None
        try:
            now = self.clock.wall()
            if request.type == "ACK":
                sender, acked = parse_ack(request.payload, request.id)
                item = mailbox.ack(did, sender, acked, now)
                if isinstance(item, Letter):
                    self.metrics.delivered()
                    self._leave_receipt(item, DELIVERED, now)
                if item is not None:  # room in the window: what was held back goes now
                    self._write_unsent(peer, did)
                return
            enabled, blocked = parse_policy(request.payload, request.id)
            view = mailbox.policy(did, enabled=enabled, blocked=blocked)
        except ProtocolError as error:
            self.actions.send_error(peer, error)
            return
        peer.connection.send(self.actions.factory.make("MAILBOX", did, view, request.id))

    def registered(self, peer: Peer, did: str) -> None:
        self.mailbox.disconnected(did)  # a replaced session's unacknowledged letters too
        self._write_unsent(peer, did)

    def depth(self, did: str) -> dict[str, Any] | None:
        return self.mailbox.depth(did) if did in self.mailbox.boxes else None

    async def report(self, did: str) -> dict[str, Any] | None:
        return self.depth(did)

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self.file is not None:
            self.file.close()

    def expire(self) -> None:
        """Letters past their time go, and their senders get EXPIRED receipts."""
        now = self.clock.wall()
        for letter in self.mailbox.expire(now):
            self.metrics.expired()
            self._leave_receipt(letter, EXPIRED, now)

    def _leave_receipt(self, letter: Letter, status: str, now: float) -> None:
        self.mailbox.receipt(letter, status, now)
        self._arm_expiry()
        target = self.registry.get(letter.sender)
        if target is not None:
            self._write_unsent(target, letter.sender)

    def _write_unsent(self, peer: Peer, did: str) -> None:
        """Write to `peer` what waits for it and was not written to this connection yet."""
        connection, factory = peer.connection, self.actions.factory
        for item in self.mailbox.unsent(did):
            if isinstance(item, Receipt):
                connection.send(receipt_frame(factory, item, self.clock.wall()))
            elif connection.send(item.text):  # not a Forward: the letter stays until its ACK
                self.metrics.written()

    def _arm_expiry(self) -> None:
        """Be called back at the mailbox's next deadline (on the running loop, if any)."""
        deadline = self.mailbox.next_deadline()
        if deadline is None or deadline >= self._expiry_at:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (tests of the core call expire themselves)
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = deadline
        self._expiry = loop.call_later(max(0.0, deadline - self.clock.wall()), self._expiry_due)

    def _expiry_due(self) -> None:
        self._expiry, self._expiry_at = None, math.inf
        try:
            self.expire()
        finally:
            self._arm_expiry()
