"""The agent's side of the gateway's mailbox (docs/protocol.md "Mailbox"). No I/O.

A message that waited in a mailbox (any message from an agent carrying a `ttl`) and every RECEIPT
from the gateway stay with the gateway until this agent acknowledges them (ACK), so each may
arrive more than once: again after a reconnection when the ACK did not get through. This module
remembers which ones were handed to the application and which of those it has finished with, so
the application sees each once, and the ACK is sent only when it is done with it (its on_message
handlers returned, or receive() returned it): a crash in between means it comes again.
"""

from __future__ import annotations

import enum
from collections import OrderedDict

ACK_MEMORY = 10_000  # (sender, id) pairs remembered for duplicate suppression


class Seen(enum.Enum):
    NEW = "new"  # hand it to the application
    HANDLING = "handling"  # a repeat while the application still has the first: drop it
    DONE = "done"  # a repeat of one already finished: drop it, acknowledge it again


def acknowledged(sender: str, type: str, has_ttl: bool, gateway_did: str | None) -> bool:
    """Whether a received message is one the gateway keeps until it is acknowledged."""
    if sender == gateway_did:
        return type == "RECEIPT"
    return has_ttl


def check_ttl(ttl: object) -> int:
    """A `ttl` for send(): whole seconds from 1 (the gateway bounds it by MAILBOX_MAX_TTL)."""
    if type(ttl) is not int or ttl < 1:
        raise ValueError(f"ttl must be a whole number of seconds from 1, not {ttl!r}")
    return ttl


class Acknowledgements:
    """The acknowledged messages this agent received lately, by (sender, id)."""

    def __init__(self, memory: int = ACK_MEMORY) -> None:
        self._seen: OrderedDict[tuple[str, str], bool] = OrderedDict()  # value: finished
        self._memory = memory
        self.duplicates = 0  # repeats dropped

    def arrived(self, sender: str, message_id: str) -> Seen:
        key = (sender, message_id)
        finished = self._seen.get(key)
        if finished is None:
            self._seen[key] = False
            if len(self._seen) > self._memory:
                self._seen.popitem(last=False)
            return Seen.NEW
        self.duplicates += 1
        self._seen.move_to_end(key)
        return Seen.DONE if finished else Seen.HANDLING

    def finished(self, sender: str, message_id: str) -> bool:
        """The application is done with it: True when an ACK is now due (once)."""
        key = (sender, message_id)
        if self._seen.get(key) is not False:
            return False
        self._seen[key] = True
        return True
