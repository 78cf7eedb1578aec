"""Presence: who watches which DIDs, and when a change is announced to them. No I/O.

Theory of operation: `Watches` is the table of watch sets (each agent watches at most a bounded
number of DIDs), kept both ways so a change of one DID finds its watchers in one lookup.
`Coalescer` decides when a change is announced, with the time passed in: the first change of a
DID after a quiet period is announced at once; later changes within `window` seconds are held,
and when the window ends one event announces where the DID ended up (if anywhere new), counting
the changes it stands for. So a DID flapping N times in a window costs its watchers at most two
events per window, never N.

    last announced      now                 event
    offline             online (session s)  online
    online (s)          offline             offline
    online (s)          online (t != s)     replaced
    same                same                (none)
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ErrorCode, ProtocolError


@dataclass(frozen=True, slots=True)
class Seen:
    """A DID's presence: online with a session id, or offline (session None)."""

    session: str | None = None

    @property
    def online(self) -> bool:
        return self.session is not None


OFFLINE = Seen()


@dataclass(frozen=True, slots=True)
class Event:
    did: str
    event: str  # "online", "offline", "replaced"
    changes: int = 1  # underlying changes this event stands for (more than 1: coalesced)

    @property
    def state(self) -> str:
        return "offline" if self.event == "offline" else "online"


def transition(before: Seen, after: Seen) -> str | None:
    """The event that takes a watcher from `before` to `after` (None: nothing to say)."""
    if before.session == after.session:
        return None
    if after.session is None:
        return "offline"
    return "online" if before.session is None else "replaced"


class Watches:
    """Watch sets: watcher DID -> watched DIDs, and back."""

    __slots__ = ("_watched_by", "_watching", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._watching: dict[str, set[str]] = {}
        self._watched_by: dict[str, set[str]] = {}

    def watch(self, watcher: str, dids: tuple[str, ...],
              message_id: str | None = None) -> list[str]:
        """Add `dids` to `watcher`'s set (all or none); the DIDs that were not in it yet."""
        current = self._watching.get(watcher, set())
        added = [did for did in dids if did not in current]
        if len(current) + len(added) > self.limit:
            raise ProtocolError(
                ErrorCode.MALFORMED_MESSAGE,
                f"an agent watches at most {self.limit} DIDs; it watches {len(current)} and "
                f"this WATCH adds {len(added)}", details={"limit": self.limit,
                                                         "watching": len(current)},
                correlation_id=message_id)
        if added:
            self._watching.setdefault(watcher, set()).update(added)
            for did in added:
                self._watched_by.setdefault(did, set()).add(watcher)
        return added

    def unwatch(self, watcher: str, dids: tuple[str, ...]) -> list[str]:
        """Remove `dids` from `watcher`'s set; the DIDs that were in it."""
        current = self._watching.get(watcher)
        if not current:
            return []
        removed = [did for did in dids if did in current]
        for did in removed:
            current.discard(did)
            watchers = self._watched_by[did]
            watchers.discard(watcher)
            if not watchers:
                del self._watched_by[did]
        if not current:
            del self._watching[watcher]
        return removed

    def forget(self, watcher: str) -> list[str]:
        """`watcher` is gone: drop its whole set; the DIDs it watched."""
        return self.unwatch(watcher, tuple(self._watching.get(watcher, ())))

    def watching(self, watcher: str) -> frozenset[str]:
        return frozenset(self._watching.get(watcher, ()))

    def watchers(self, did: str) -> frozenset[str]:
        return frozenset(self._watched_by.get(did, ()))

    def watched(self, did: str) -> bool:
        return did in self._watched_by

    def __len__(self) -> int:
        """How many DIDs are watched (by anyone)."""
        return len(self._watched_by)


class Coalescer:
    """When to announce each DID's changes, so that flapping cannot flood watchers."""

    __slots__ = ("_announced", "_changes", "_current", "_quiet_until", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._announced: dict[str, Seen] = {}  # what watchers were last told
        self._current: dict[str, Seen] = {}  # where the DID is now, while a window is open
        self._quiet_until: dict[str, float] = {}  # the open window of each DID
        self._changes: dict[str, int] = {}  # changes held in the open window

    def track(self, did: str, seen: Seen) -> None:
        """A DID gets its first watcher: what they are told at WATCH is the announced state."""
        if did not in self._quiet_until:
            self._announced[did] = seen

    def forget(self, did: str) -> None:
        """The DID has no watchers left."""
        for table in (self._announced, self._current, self._quiet_until, self._changes):
            table.pop(did, None)

    def changed(self, did: str, seen: Seen, now: float) -> Event | float | None:
        """The DID changed: an Event to announce now; or the time to call `due` (the first
        change held in a window); or None (held in a window already scheduled, or no news)."""
        quiet_until = self._quiet_until.get(did)
        if quiet_until is not None and now < quiet_until:
            self._current[did] = seen
            self._changes[did] = self._changes.get(did, 0) + 1
            return quiet_until if self._changes[did] == 1 else None
        event = transition(self._announced.get(did, OFFLINE), seen)
        if event is None:
            return None
        self._announce(did, seen, now)
        return Event(did, event)

    def due(self, did: str, now: float) -> Event | float | None:
        """The DID's window ended: one Event for its held changes (and a new window, so a
        flapper stays limited: the next `due` time is returned when more were held), or None."""
        quiet_until = self._quiet_until.get(did)
        if quiet_until is None:
            return None
        if now < quiet_until:
            return quiet_until
        changes = self._changes.pop(did, 0)
        seen = self._current.pop(did, None)
        del self._quiet_until[did]
        if seen is None:
            return None
        event = transition(self._announced.get(did, OFFLINE), seen)
        if event is None:
            return None
        self._announce(did, seen, now)
        return Event(did, event, changes)

    def pending(self, did: str) -> bool:
        """A window is open for the DID."""
        return did in self._quiet_until

    def _announce(self, did: str, seen: Seen, now: float) -> None:
        self._announced[did] = seen
        self._quiet_until[did] = now + self.window
