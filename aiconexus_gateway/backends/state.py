"""Cluster state of one instance: events in, decisions out, like Session. No I/O, no clock.

What this instance knows about the cluster beyond its own registry:
- the frames it handed to other instances and still waits to hear about (`PendingDeliveries`),
- for each DID it holds, whether its registration is being published (the session is
  REGISTERING) or was published, and with which cluster-wide generation (`ClusterState`).

One session per DID holds cluster-wide because every decision about a `Takeover` (a newer
registration elsewhere) is taken here, for every order of events: a takeover for a session whose
registration is still being published is deferred and decided when the generation is known; one
for a published session closes it if older; one for a DID we do not hold is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..peer import Peer
from .presence import Activity

Eviction = tuple[Peer, str]  # a local session to close (4409), and why


class ClusterState:
    """The registrations of this instance as the cluster knows them."""

    __slots__ = ("_activity", "_deferred", "_generations", "_publishing")

    def __init__(self) -> None:
        self._publishing: dict[str, Peer] = {}  # DID -> the session whose registration is in flight
        self._generations: dict[str, tuple[Peer, int]] = {}  # DID -> published session, generation
        self._deferred: dict[str, int] = {}  # DID -> newest generation a takeover announced meanwhile
        self._activity: dict[str, tuple[Peer, Activity]] = {}  # DID -> last published counters

    def publishing(self, did: str, peer: Peer) -> None:
        """`peer` registered `did` here; its registration is now being published."""
        self._publishing[did] = peer

    def published(self, did: str, peer: Peer, generation: int) -> str | None:
        """The cluster holds `peer` as `did` with `generation` (-1: a newer session elsewhere
        won, when re-publishing). Returns why `peer` must now be closed, or None."""
        if self._publishing.get(did) is peer:
            del self._publishing[did]
        if generation < 0:
            self.forget(did, peer)
            return "a newer session of this DID is connected to another instance"
        self._generations[did] = (peer, generation)
        newer = self._deferred.get(did)
        if newer is not None and did not in self._publishing:
            del self._deferred[did]
        if newer is not None and newer > generation:
            self.forget(did, peer)
            return f"a newer session (generation {newer}) registered on another instance"
        return None

    def not_published(self, did: str, peer: Peer) -> None:
        """`peer`'s registration could not be published (the bus is down): it stays local until
        the restore publishes it; takeovers meanwhile wait for that."""
        if self._publishing.get(did) is peer:
            del self._publishing[did]

    def takeover(self, did: str, generation: int, origin: str, registered: Peer | None
                 ) -> list[Eviction]:
        """Instance `origin` registered `did` with `generation`. `registered` is the session the
        local registry holds for `did`, if any. Returns the local sessions to close now."""
        evictions: list[Eviction] = []
        why = f"the DID registered on instance {origin}"
        known = self._generations.get(did)
        if known is not None and known[1] < generation:
            evictions.append((known[0], why))
            self.forget(did, known[0])
            known = None
        unpublished = registered is not None and known is None and not any(
            peer is registered for peer, _ in evictions)
        if did in self._publishing or unpublished:
            # our own registration is in flight (or waits for Redis to come back): decide when
            # its generation is known
            self._deferred[did] = max(generation, self._deferred.get(did, generation))
        return evictions

    def forget(self, did: str, peer: Peer | None = None) -> None:
        """Drop what is kept about `did` (only about `peer`'s session, when given)."""
        for table in (self._generations, self._activity):
            entry = table.get(did)
            if entry is not None and (peer is None or entry[0] is peer):
                del table[did]
        if peer is None or self._publishing.get(did) is peer:
            self._publishing.pop(did, None)
        if did not in self._publishing and did not in self._generations:
            self._deferred.pop(did, None)

    def published_or_publishing(self, did: str, peer: Peer) -> bool:
        """`peer`'s registration of `did` is published, or being published now."""
        return self._publishing.get(did) is peer or self.generation(did, peer) is not None

    def generation(self, did: str, peer: Peer) -> int | None:
        """The published generation of `peer`'s registration of `did` (None: not published)."""
        known = self._generations.get(did)
        return known[1] if known is not None and known[0] is peer else None

    def activity_changes(self, peers: Iterable[Peer]) -> list[tuple[Peer, Activity]]:
        """The published sessions among `peers` whose counters moved since last published.
        A session that has not moved since it registered publishes nothing: the cluster shows
        no counters as zero, active when it connected. Runs at every heartbeat over every local
        agent, so an unchanged one costs a tuple comparison."""
        changed: list[tuple[Peer, Activity]] = []
        activity = self._activity
        for peer in peers:
            record = peer.record
            if record is None:
                continue
            did = peer.session.did
            previous = activity.get(did) if did is not None else None
            if previous is not None and previous[0] is peer:
                last = previous[1]
                if (last.messages_sent == record.messages_sent
                        and last.messages_received == record.messages_received
                        and last.last_activity == record.last_activity):
                    continue
            elif (record.messages_sent == 0 and record.messages_received == 0
                  and record.last_activity == record.connected_at):
                continue  # never moved: nothing to publish
            if did is None or self.generation(did, peer) is None:
                continue
            now = Activity(record.messages_sent, record.messages_received, record.last_activity)
            activity[did] = (peer, now)
            changed.append((peer, now))
        return changed


@dataclass(slots=True)
class PendingDelivery:
    """A frame handed to the cluster, waiting for Delivered or Failed."""

    token: int
    message_id: str
    to: str
    sender: Peer  # the sending agent: where the ERROR goes
    started: float  # monotonic seconds
    deadline: float
    instance: str | None = None  # the owner the routing script chose


class PendingDeliveries:
    """Frames in flight to other instances, oldest first.

    The timeout is the same for every frame and `now` never goes back, so insertion order is
    deadline order: expiry looks at the front only.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._entries: dict[int, PendingDelivery] = {}
        self._next_token = 1

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[PendingDelivery]:
        return iter(list(self._entries.values()))

    def add(self, *, message_id: str, to: str, sender: Peer, now: float) -> PendingDelivery:
        token = self._next_token
        self._next_token += 1
        entry = PendingDelivery(token, message_id, to, sender, now, now + self.timeout)
        self._entries[token] = entry
        return entry

    def resolve(self, token: int) -> PendingDelivery | None:
        """The entry for `token`, removed; None when it was already answered (or timed out)."""
        return self._entries.pop(token, None)

    def expired(self, now: float) -> list[PendingDelivery]:
        """Remove and return the entries whose deadline has passed."""
        out: list[PendingDelivery] = []
        entries = self._entries
        while entries:
            first = next(iter(entries.values()))
            if first.deadline > now:
                break
            out.append(entries.pop(first.token))
        return out

    def clear(self) -> list[PendingDelivery]:
        """Remove and return every entry (Redis lost them)."""
        out = list(self._entries.values())
        self._entries.clear()
        return out
