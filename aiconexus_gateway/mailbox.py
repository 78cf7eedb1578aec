"""The mailbox: signed frames that wait for an offline recipient, bounded and acknowledged. No I/O.

Theory of operation (docs/protocol.md section 22): a routable message may carry a signed top-level
`ttl` (whole seconds, 1..MAILBOX_MAX_TTL). Such a *letter* is stored byte for byte in its
recipient's box before anything else happens, and stays there until the recipient acknowledges it
(ACK) or its time to live runs out. The router writes each letter to the recipient whenever it is
connected (at once, or right after REGISTERED when it comes back), marking it *sent*; a recipient
that disconnects before acknowledging gets its sent letters back to unsent, so they are written
again on its next registration (at least once). An ACK removes the letter and leaves a DELIVERED
*receipt* in the sender's box; a letter whose time runs out leaves an EXPIRED one. Receipts are
letters from the gateway: written when their recipient is connected, acknowledged the same way,
and kept (bounded) while it is offline.

    event                         decision
    store(letter)                 Letter kept, or ProtocolError MAILBOX_FULL / MAILBOX_REFUSED
    unsent(did)                   the letters and receipts to write now, in order, within the
                                  window of unacknowledged bytes; marked sent
    disconnected(did)             sent -> unsent (they will be written again)
    ack(did, sender, id)          the Letter (or Receipt) removed, or None; receipt() then
                                  leaves the letter's sender its DELIVERED receipt
    expire(now)                   letters past their time removed (EXPIRED receipts), old receipts dropped
    policy(did, enabled, blocked) the recipient's own rules: no storage at all, or not from some DIDs

Bounds are checked before a letter is kept, in this order: the recipient's rules (REFUSED), the
per sender-recipient pair count (so one agent cannot fill another's mailbox), the recipient's
message count and bytes, and the bytes of every box together (FULL). Time is passed in (wall
clock seconds, so a durable or shared store keeps its meaning across processes). Every change can
be journaled as a record (`journal`, `snapshot`, `replay`: mailbox_file.py keeps them in a file);
backends/mailroom.py keeps the same rules in Redis for cluster mode.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import ErrorCode, ProtocolError
from .messages import new_id

MAX_BLOCKED = 1000  # DIDs one recipient may refuse
RECEIPT_SIZE = 512  # what a RECEIPT frame counts against the window (about its size)
TTL_LIMIT = 2**31 - 1  # what a ttl may say at all; MAILBOX_MAX_TTL is the operator's bound

DELIVERED = "DELIVERED"
EXPIRED = "EXPIRED"

# MAILBOX_FULL / MAILBOX_REFUSED `details.reason` values (also the refused metric's labels)
FULL_REASONS = ("pair_messages", "recipient_messages", "recipient_bytes", "total_bytes")
REFUSED_REASONS = ("disabled", "blocked", "unavailable")


@dataclass(frozen=True, slots=True)
class MailboxSettings:
    """MAILBOX_* settings; max_ttl 0 turns the mailbox off."""

    max_ttl: int = 3600
    max_messages: int = 1000  # letters waiting for one recipient
    max_bytes: int = 4 * 1024 * 1024  # bytes of letters waiting for one recipient
    max_per_sender: int = 100  # letters from one sender waiting for one recipient
    max_total_bytes: int = 256 * 1024 * 1024  # bytes of letters in every box together
    file: str | None = None  # MAILBOX_FILE: a single gateway's durable mailbox (mailbox_file.py)
    # bytes written to a connection and not yet acknowledged, at most (at least one message goes):
    # a backlog larger than the connection's MAX_OUTBOUND_BUFFER is written as ACKs come back
    window: int = 768 * 1024

    @property
    def enabled(self) -> bool:
        return self.max_ttl > 0


class Letter:
    """A stored frame: `text` exactly as its sender signed it."""

    __slots__ = ("expires_at", "id", "recipient", "sender", "sent", "size", "text", "type")

    def __init__(self, id: str, sender: str, recipient: str, type: str, text: str,
                 expires_at: float) -> None:
        self.id = id
        self.sender = sender
        self.recipient = recipient
        self.type = type
        self.text = text
        self.size = len(text.encode("utf-8", "surrogatepass"))
        self.expires_at = expires_at
        self.sent = False  # written to the recipient's current connection, not yet acknowledged

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender, self.id)


class Receipt:
    """What became of a letter, waiting for (or written to) the letter's sender."""

    __slots__ = ("expires_at", "id", "message_id", "recipient", "sent", "status", "to")

    def __init__(self, id: str, to: str, message_id: str, recipient: str, status: str,
                 expires_at: float) -> None:
        self.id = id  # the RECEIPT message's own id (the same on every write: the SDK drops repeats)
        self.to = to  # the letter's sender
        self.message_id = message_id
        self.recipient = recipient  # the letter's recipient
        self.status = status
        self.expires_at = expires_at
        self.sent = False

    def payload(self) -> dict[str, Any]:
        return {"id": self.message_id, "to": self.recipient, "status": self.status}


class Box:
    """One DID's letters (to it), receipts (for it) and rules."""

    __slots__ = ("blocked", "bytes", "enabled", "in_flight", "letters", "per_sender", "queue",
                 "receipts", "rqueue")

    def __init__(self) -> None:
        self.letters: dict[tuple[str, str], Letter] = {}  # by (sender, id), in arrival order
        self.receipts: dict[str, Receipt] = {}  # by receipt id, in creation order
        # the unsent ones, in the same orders: writing a backlog costs what is written, not the box
        self.queue: dict[tuple[str, str], Letter] = {}
        self.rqueue: dict[str, Receipt] = {}
        self.per_sender: dict[str, int] = {}
        self.bytes = 0
        self.in_flight = 0  # bytes written to the current connection, not yet acknowledged
        self.enabled = True
        self.blocked: frozenset[str] = frozenset()

    @property
    def idle(self) -> bool:
        """Nothing held and default rules: the box can be forgotten."""
        return not self.letters and not self.receipts and self.enabled and not self.blocked


def parse_ttl(value: Any, message_id: str) -> int:
    """The `ttl` member of an envelope as whole seconds, or MALFORMED_MESSAGE."""
    if type(value) is not int or not 0 < value <= TTL_LIMIT:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            "'ttl' must be a whole number of seconds from 1 (the message may wait "
                            "that long in the recipient's mailbox)", correlation_id=message_id)
    return value


class Mailbox:
    """Every box of this gateway (the in-memory store) and the rules deciding what they hold."""

    def __init__(self, settings: MailboxSettings,
                 receipt_id: Callable[[], str] = new_id) -> None:
        self.settings = settings
        self.boxes: dict[str, Box] = {}
        self.total_bytes = 0
        self.total_letters = 0
        self.total_receipts = 0
        self._receipt_id = receipt_id
        # Each change as a record (a JSON object), for a durable store (mailbox_file.py); None: off
        self.journal: Callable[[dict[str, Any]], None] | None = None
        self._deadlines: list[tuple[float, int, str, tuple[str, str] | str]] = []  # lazy heap
        self._order = itertools.count()

    # -- letters in ------------------------------------------------------------------------------

    def store(self, *, id: str, sender: str, recipient: str, type: str, text: str, ttl: int,
              now: float) -> Letter:
        """Keep a letter, or raise MAILBOX_FULL / MAILBOX_REFUSED (nothing kept then).

        A letter whose (sender, id) is already waiting is that letter (a sender's retry)."""
        settings = self.settings
        if ttl > settings.max_ttl:
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                                f"'ttl' is over this gateway's MAILBOX_MAX_TTL of "
                                f"{settings.max_ttl} s", details={"max_ttl": settings.max_ttl},
                                correlation_id=id)
        box = self.boxes.get(recipient)
        if box is not None:
            existing = box.letters.get((sender, id))
            if existing is not None:
                return existing
            if not box.enabled:
                raise _refused("disabled", "the recipient does not accept stored messages", id,
                               recipient)
            if sender in box.blocked:
                raise _refused("blocked", "the recipient does not accept stored messages from you",
                               id, recipient)
        letter = Letter(id, sender, recipient, type, text, now + ttl)
        held = box.per_sender.get(sender, 0) if box is not None else 0
        if held >= settings.max_per_sender:
            raise _full("pair_messages", f"{held} of your messages already wait for this recipient "
                        f"(MAILBOX_MAX_PER_SENDER {settings.max_per_sender})", id, recipient)
        if box is not None and len(box.letters) >= settings.max_messages:
            raise _full("recipient_messages", f"the recipient's mailbox holds its maximum of "
                        f"{settings.max_messages} messages (MAILBOX_MAX_MESSAGES)", id, recipient)
        if (box.bytes if box is not None else 0) + letter.size > settings.max_bytes:
            raise _full("recipient_bytes", f"the recipient's mailbox would exceed "
                        f"{settings.max_bytes} bytes (MAILBOX_MAX_BYTES)", id, recipient)
        if self.total_bytes + letter.size > settings.max_total_bytes:
            raise _full("total_bytes", "the gateway's mailboxes are full (MAILBOX_MAX_TOTAL_BYTES)",
                        id, recipient)
        if self.journal is not None:  # first: a journal that cannot write keeps nothing
            self.journal(_letter_record(letter))
        if box is None:
            box = self.boxes[recipient] = Box()
        self._keep(box, letter)
        return letter

    def _keep(self, box: Box, letter: Letter) -> None:
        box.letters[letter.key] = letter
        box.queue[letter.key] = letter
        box.per_sender[letter.sender] = box.per_sender.get(letter.sender, 0) + 1
        box.bytes += letter.size
        self.total_bytes += letter.size
        self.total_letters += 1
        self._deadline(letter.expires_at, letter.recipient, letter.key)

    def _remove(self, box: Box, letter: Letter) -> None:
        del box.letters[letter.key]
        box.queue.pop(letter.key, None)
        if letter.sent:
            box.in_flight -= letter.size
        left = box.per_sender[letter.sender] - 1
        if left:
            box.per_sender[letter.sender] = left
        else:
            del box.per_sender[letter.sender]
        box.bytes -= letter.size
        self.total_bytes -= letter.size
        self.total_letters -= 1
        if self.journal is not None:
            self.journal({"op": "drop", "to": letter.recipient, "from": letter.sender,
                          "id": letter.id})

    # -- letters out -----------------------------------------------------------------------------

    def unsent(self, did: str) -> list[Letter | Receipt]:
        """What to write to `did`'s connection now: its unsent letters in arrival order, then its
        unsent receipts, as long as what is written and not acknowledged stays within the window
        (the rest once ACKs come back: call again after each); all marked sent."""
        box = self.boxes.get(did)
        if box is None:
            return []
        window = self.settings.window
        out: list[Letter | Receipt] = []
        queues: tuple[dict[Any, Any], ...] = (box.queue, box.rqueue)
        for queue in queues:
            while queue:
                key = next(iter(queue))
                item: Letter | Receipt = queue[key]
                size = item.size if isinstance(item, Letter) else RECEIPT_SIZE
                if box.in_flight and box.in_flight + size > window:
                    return out  # in order: nothing after it goes first
                del queue[key]
                item.sent = True
                box.in_flight += size
                out.append(item)
        return out

    def disconnected(self, did: str) -> None:
        """`did`'s connection is gone: what it did not acknowledge is written again next time."""
        box = self.boxes.get(did)
        if box is None:
            return
        for letter in box.letters.values():
            letter.sent = False
        for receipt in box.receipts.values():
            receipt.sent = False
        box.queue = dict(box.letters)
        box.rqueue = dict(box.receipts)
        box.in_flight = 0

    def ack(self, did: str, sender: str, id: str, now: float) -> Letter | Receipt | None:
        """`did` acknowledged the message (`sender`, `id`): the letter removed (the router leaves
        its DELIVERED `receipt`), the receipt removed, or None when nothing such waits (an ACK
        repeated, or for a message that was not a letter)."""
        box = self.boxes.get(did)
        if box is None:
            return None
        letter = box.letters.get((sender, id))
        if letter is not None:
            self._remove(box, letter)
            self._forget_if_idle(did, box)
            return letter
        receipt = box.receipts.pop(id, None)
        if receipt is not None:
            self._receipt_gone(receipt)
            self._forget_if_idle(did, box)
        return receipt

    def _receipt_gone(self, receipt: Receipt) -> None:
        self.total_receipts -= 1
        box = self.boxes.get(receipt.to)
        if box is not None:
            box.rqueue.pop(receipt.id, None)
            if receipt.sent:
                box.in_flight -= RECEIPT_SIZE
        if self.journal is not None:
            self.journal({"op": "rdrop", "did": receipt.to, "rid": receipt.id})

    def receipt(self, letter: Letter, status: str, now: float) -> Receipt:
        """Leave a receipt for `letter`'s sender; its oldest receipt goes when it has too many."""
        box = self.boxes.get(letter.sender)
        if box is None:
            box = self.boxes[letter.sender] = Box()
        receipt = Receipt(self._receipt_id(), letter.sender, letter.id, letter.recipient, status,
                          now + max(self.settings.max_ttl, 1))
        self._keep_receipt(box, receipt)
        if self.journal is not None:
            self.journal(_receipt_record(receipt))
        return receipt

    def _keep_receipt(self, box: Box, receipt: Receipt) -> None:
        while len(box.receipts) >= self.settings.max_messages:
            self._receipt_gone(box.receipts.pop(next(iter(box.receipts))))
        box.receipts[receipt.id] = receipt
        box.rqueue[receipt.id] = receipt
        self.total_receipts += 1
        self._deadline(receipt.expires_at, receipt.to, receipt.id)

    def _deadline(self, at: float, did: str, key: tuple[str, str] | str) -> None:
        """Remember when something expires. Entries of what was acknowledged stay in the heap
        until then (removing them costs more); once they outnumber the living, it is rebuilt."""
        deadlines = self._deadlines
        heapq.heappush(deadlines, (at, next(self._order), did, key))
        if len(deadlines) > 2 * (self.total_letters + self.total_receipts) + 1024:
            self._deadlines = [
                *((letter.expires_at, next(self._order), d, letter.key)
                  for d, box in self.boxes.items() for letter in box.letters.values()),
                *((receipt.expires_at, next(self._order), d, receipt.id)
                  for d, box in self.boxes.items() for receipt in box.receipts.values())]
            heapq.heapify(self._deadlines)

    def expire(self, now: float) -> list[Letter]:
        """Remove what ran out of time: letters (returned, for their EXPIRED receipts) and
        receipts nobody collected."""
        expired: list[Letter] = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, did, key = heapq.heappop(deadlines)
            box = self.boxes.get(did)
            if box is None:
                continue
            if isinstance(key, tuple):
                letter = box.letters.get(key)
                if letter is not None and letter.expires_at <= now:
                    self._remove(box, letter)
                    expired.append(letter)
            else:
                receipt = box.receipts.get(key)
                if receipt is not None and receipt.expires_at <= now:
                    del box.receipts[key]
                    self._receipt_gone(receipt)
            self._forget_if_idle(did, box)
        return expired

    @property
    def deadlines(self) -> int:
        """Entries in the expiry heap, stale ones included (bounded by `_deadline`)."""
        return len(self._deadlines)

    def next_deadline(self) -> float | None:
        """When `expire` may next have something to do (wall clock), or None."""
        return self._deadlines[0][0] if self._deadlines else None

    # -- the recipient's rules and the operators' views ------------------------------------------

    def policy(self, did: str, *, enabled: bool | None = None,
               blocked: Iterable[str] | None = None) -> dict[str, Any]:
        """Change `did`'s rules (None: unchanged); its mailbox as MAILBOX reports it. Letters
        already waiting stay (the recipient reads and acknowledges them)."""
        box = self.boxes.get(did)
        if box is None:
            box = self.boxes[did] = Box()
        if enabled is not None:
            box.enabled = enabled
        if blocked is not None:
            box.blocked = frozenset(blocked)
        if self.journal is not None and (enabled is not None or blocked is not None):
            self.journal(_policy_record(did, box))
        view = self.depth(did)
        self._forget_if_idle(did, box)
        return view

    def depth(self, did: str) -> dict[str, Any]:
        """`did`'s mailbox: letters waiting for it, their bytes, receipts for it, its rules."""
        box = self.boxes.get(did)
        if box is None:
            return {"enabled": True, "blocked": [], "messages": 0, "bytes": 0, "receipts": 0}
        return {"enabled": box.enabled, "blocked": sorted(box.blocked),
                "messages": len(box.letters), "bytes": box.bytes, "receipts": len(box.receipts)}

    def _forget_if_idle(self, did: str, box: Box) -> None:
        if box.idle:
            self.boxes.pop(did, None)

    # -- durability: the state as records, and back ----------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """Records that rebuild the current state (rules, then letters and receipts in order)."""
        records: list[dict[str, Any]] = []
        for did, box in self.boxes.items():
            if not box.enabled or box.blocked:
                records.append(_policy_record(did, box))
            records.extend(_letter_record(letter) for letter in box.letters.values())
            records.extend(_receipt_record(receipt) for receipt in box.receipts.values())
        return records

    def replay(self, records: Iterable[dict[str, Any]]) -> None:
        """Rebuild the state from `records` (a snapshot and the journal after it), without
        journaling them again or checking bounds (they held when the records were written).
        ValueError for a record that is not one of ours."""
        journal, self.journal = self.journal, None
        try:
            for record in records:
                self._replay(record)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a mailbox record: {exc!r}") from None
        finally:
            self.journal = journal

    def _replay(self, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "put":
            box = self.boxes.setdefault(record["to"], Box())
            letter = Letter(record["id"], record["from"], record["to"], record["type"],
                            record["text"], float(record["exp"]))
            if letter.key not in box.letters:
                self._keep(box, letter)
        elif op == "drop":
            held = self.boxes.get(record["to"])
            dropped = held.letters.get((record["from"], record["id"])) if held else None
            if held is not None and dropped is not None:
                self._remove(held, dropped)
                self._forget_if_idle(record["to"], held)
        elif op == "receipt":
            box = self.boxes.setdefault(record["did"], Box())
            if record["rid"] in box.receipts:
                return  # replayed twice (a snapshot, then the line that followed it)
            self._keep_receipt(box, Receipt(record["rid"], record["did"], record["id"],
                                            record["to"], record["status"], float(record["exp"])))
        elif op == "rdrop":
            holder = self.boxes.get(record["did"])
            if holder is not None and holder.receipts.pop(record["rid"], None) is not None:
                holder.rqueue.pop(record["rid"], None)
                self.total_receipts -= 1
                self._forget_if_idle(record["did"], holder)
        elif op == "policy":
            box = self.boxes.setdefault(record["did"], Box())
            box.enabled, box.blocked = bool(record["enabled"]), frozenset(record["blocked"])
            self._forget_if_idle(record["did"], box)
        else:
            raise ValueError(f"unknown mailbox record {op!r}")


def _letter_record(letter: Letter) -> dict[str, Any]:
    return {"op": "put", "to": letter.recipient, "from": letter.sender, "id": letter.id,
            "type": letter.type, "text": letter.text, "exp": letter.expires_at}


def _receipt_record(receipt: Receipt) -> dict[str, Any]:
    return {"op": "receipt", "did": receipt.to, "rid": receipt.id, "id": receipt.message_id,
            "to": receipt.recipient, "status": receipt.status, "exp": receipt.expires_at}


def _policy_record(did: str, box: Box) -> dict[str, Any]:
    return {"op": "policy", "did": did, "enabled": box.enabled, "blocked": sorted(box.blocked)}


def parse_policy(payload: dict[str, Any], message_id: str) -> tuple[bool | None, list[str] | None]:
    """A MAILBOX request's `enabled` and `blocked` members (both optional), or MALFORMED_MESSAGE."""
    enabled = payload.get("enabled")
    if enabled is not None and type(enabled) is not bool:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "'enabled' must be true or false",
                            correlation_id=message_id)
    blocked = payload.get("blocked")
    if blocked is not None and (
            type(blocked) is not list or len(blocked) > MAX_BLOCKED
            or not all(type(did) is str and did.startswith("did:key:") for did in blocked)):
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            f"'blocked' must be a list of at most {MAX_BLOCKED} did:key DIDs",
                            correlation_id=message_id)
    return enabled, blocked


def parse_ack(payload: dict[str, Any], message_id: str) -> tuple[str, str]:
    """An ACK's (`from`, `id`): the sender and id of the message acknowledged."""
    sender, acked = payload.get("from"), payload.get("id")
    if type(sender) is not str or type(acked) is not str or not 0 < len(acked) <= 128:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            "an ACK's payload is {\"from\": the message's sender, \"id\": its id}",
                            correlation_id=message_id)
    return sender, acked


def _full(reason: str, message: str, message_id: str, recipient: str) -> ProtocolError:
    return ProtocolError(ErrorCode.MAILBOX_FULL, f"not stored: {message}",
                         details={"reason": reason, "to": recipient}, correlation_id=message_id)


def _refused(reason: str, message: str, message_id: str, recipient: str) -> ProtocolError:
    return ProtocolError(ErrorCode.MAILBOX_REFUSED, f"not stored: {message}",
                         details={"reason": reason, "to": recipient}, correlation_id=message_id)
