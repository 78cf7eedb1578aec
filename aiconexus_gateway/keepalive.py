"""Which connections to ping, and which to give up on, tick by tick (no I/O).

One wheel for the whole gateway instead of a timer per connection: every connection sits in one
of `slots` buckets, and each tick visits the next bucket, so each connection is visited once per
interval and the pings of N connections are spread evenly over it (N / slots per tick). A visit
pings a connection whose last ping was answered, and gives up on one whose ping was not: its pong
did not come within one interval (docs/protocol.md section 13). A new connection is first pinged
on its second visit, between one and two intervals after it opened, so it is never pinged at once.
New connections are dealt to the buckets in turn, so even a burst of them is spread out.
The gateway's timer (server/websocket.py Pinger) does the I/O: it calls `tick` every `tick_seconds`.
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

K = TypeVar("K")  # a connection (hashable by identity)

# Seconds between visits at most. A tick's pings hold the event loop up (~10 us each), so a tick
# must not carry many: at 19,000 agents and PING_INTERVAL=20 s, 0.05 s makes ~48 pings a tick
# (~0.5 ms) where 0.25 s made ~240 (~2.5 ms, the p99 of /health); 20 timer wake-ups a second cost
# nothing measurable.
TICK = 0.05
MIN_SLOTS = 4  # a short interval still gets its pings spread (and a finer give-up time)
MAX_SLOTS = 1024  # a long interval does not need a bucket per tick

# what a connection's bucket entry says
NEW = 0  # not pinged yet, first visit: next visit pings it
ANSWERED = 1  # its last ping was answered (or it is on its second visit): ping it
WAITING = 2  # pinged, no pong yet: a visit in this state gives up on it


class KeepAlive(Generic[K]):
    """The ping wheel: `add` / `remove` connections, `answered` at each pong, `tick` on time."""

    __slots__ = ("_deal", "_hand", "_slot", "_wheel", "slots", "tick_seconds")

    def __init__(self, interval: float, tick: float = TICK) -> None:
        if interval <= 0:
            raise ValueError("the ping interval must be positive")
        self.slots = min(MAX_SLOTS, max(MIN_SLOTS, math.ceil(interval / tick)))
        self.tick_seconds = interval / self.slots
        self._wheel: list[dict[K, int]] = [{} for _ in range(self.slots)]
        self._slot: dict[K, int] = {}  # the bucket each connection sits in
        self._hand = 0  # the bucket the next tick visits
        self._deal = 0  # the bucket the next new connection goes to

    def __len__(self) -> int:
        return len(self._slot)

    def __contains__(self, key: object) -> bool:
        return key in self._slot

    def add(self, key: K) -> None:
        """A connection opened: it is first pinged between one and two intervals from now."""
        if key in self._slot:
            return
        slot = self._deal
        self._deal = (slot + 1) % self.slots
        self._slot[key] = slot
        self._wheel[slot][key] = NEW

    def remove(self, key: K) -> None:
        """A connection closed: it leaves the wheel at once (no-op when it is not in it)."""
        slot = self._slot.pop(key, None)
        if slot is not None:
            del self._wheel[slot][key]

    def answered(self, key: K) -> None:
        """A pong (proof of life) came from `key`: its next visit pings it again."""
        slot = self._slot.get(key)
        if slot is not None:
            bucket = self._wheel[slot]
            if bucket[key] == WAITING:
                bucket[key] = ANSWERED

    def tick(self) -> tuple[list[K], list[K]]:
        """Visit the next bucket: (connections to ping now, connections to give up on).

        Those given up on leave the wheel here; those pinged wait for their pong."""
        bucket = self._wheel[self._hand]
        self._hand = (self._hand + 1) % self.slots
        ping: list[K] = []
        give_up: list[K] = []
        fresh: list[K] = []
        for key, state in bucket.items():
            if state == ANSWERED:
                ping.append(key)
            elif state == WAITING:
                give_up.append(key)
            else:
                fresh.append(key)
        for key in give_up:
            del bucket[key]
            del self._slot[key]
        for key in ping:
            bucket[key] = WAITING
        for key in fresh:  # pinged on the next visit
            bucket[key] = ANSWERED
        return ping, give_up
