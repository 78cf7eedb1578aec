"""The directory: answers DISCOVER, WATCH and UNWATCH, and tells watchers about presence changes.

It carries out what the pure modules decide: discovery.py (queries, the index, pages),
presence.py (watch sets, coalescing) and cards.py (the agent's signed card). The router tells it
when an agent becomes routable (`online`) and the connections when one is gone (`closed`); it
answers with the gateway's signed messages (DISCOVERED, WATCHING, PRESENCE) on the agents'
connections. Time is the hub's clock; the end of a coalescing window is a timer the caller
provides (`schedule`), so tests run it by hand.

Unlisted agents (docs/protocol.md section 21.4): never in the index, and their presence is shown
only to the agents they watch themselves. To everyone else they look offline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .discovery import Index, Listing, parse_dids, parse_query
from .errors import ErrorCode, ProtocolError
from .messages import Envelope, MessageFactory
from .peer import Peer, PeerActions
from .presence import OFFLINE, Coalescer, Event, Seen, Watches
from .ratelimit import TokenBucket
from .registry import Registry

log = logging.getLogger("aiconexus.gateway")

Schedule = Callable[[float, Callable[[], None]], None]


@dataclass(frozen=True, slots=True)
class DirectorySettings:
    watch_limit: int = 100  # DIDs one agent may watch (WATCH_LIMIT)
    coalesce: float = 1.0  # seconds: at most one event per watched DID per window (PRESENCE_COALESCE)
    discover_rate: float = 5.0  # DISCOVER requests per second per agent (DISCOVERY_RATE)
    discover_burst: int = 20


def call_later(delay: float, callback: Callable[[], None]) -> None:
    """The default timer: the running event loop's call_later."""
    asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class Directory:
    """Discovery and presence for the agents of this instance."""

    def __init__(self, registry: Registry, factory: MessageFactory, actions: PeerActions,
                 clock: Clock, settings: DirectorySettings | None = None,
                 schedule: Schedule = call_later) -> None:
        self.registry = registry
        self.factory = factory
        self.actions = actions
        self.clock = clock
        self.settings = settings = settings or DirectorySettings()
        self.schedule = schedule
        self.index = Index()
        self.watches = Watches(settings.watch_limit)
        self.coalescer = Coalescer(settings.coalesce)
        self._hidden: dict[str, frozenset[str]] = {}  # unlisted DID -> who may see it
        self._buckets: dict[Peer, TokenBucket] = {}
        self.events_sent = 0  # PRESENCE frames sent (tests, benchmark)

    # -- what the router and the connections report -------------------------------------------

    def online(self, peer: Peer) -> None:
        """`peer` became routable (REGISTERED); a session it replaced is already out."""
        did = peer.did
        assert did is not None
        self._forget_watcher(did)  # a new session starts with no watches
        profile = peer.session.profile
        if profile is not None and profile.unlisted:
            self.index.remove(did)
            self._hidden[did] = frozenset()
        else:
            self._hidden.pop(did, None)
            self.index.add(Listing.of(did, profile.card if profile else None,
                                      profile.register if profile else None))
        self._changed(did, Seen(peer.session.session_id))

    def closed(self, peer: Peer, unregistered: bool) -> None:
        """`peer`'s connection is gone; `unregistered`: it was its DID's routable session (not
        one replaced by a newer session, which announced itself)."""
        self._buckets.pop(peer, None)
        did = peer.did
        if did is None or not unregistered:
            return
        self.index.remove(did)
        if did in self._hidden:  # who may see it go: the agents it watched until now
            self._hidden[did] = self.watches.watching(did)
        self._forget_watcher(did)
        self._changed(did, OFFLINE)

    # -- requests -----------------------------------------------------------------------------

    def handle(self, peer: Peer, envelope: Envelope) -> None:
        """A verified DISCOVER, WATCH or UNWATCH from `peer`; every failure is its ERROR."""
        try:
            if envelope.type == "DISCOVER":
                self._discover(peer, envelope)
            elif envelope.type == "WATCH":
                self._watch(peer, envelope)
            else:
                self._unwatch(peer, envelope)
        except ProtocolError as error:
            if error.correlation_id is None:
                error.correlation_id = envelope.id
            self.actions.send_error(peer, error)

    def _discover(self, peer: Peer, envelope: Envelope) -> None:
        now = self.clock.monotonic()
        bucket = self._buckets.get(peer)
        if bucket is None and self.settings.discover_rate > 0:
            bucket = self._buckets[peer] = TokenBucket(self.settings.discover_rate,
                                                       self.settings.discover_burst, now)
        wait = bucket.take(now) if bucket is not None else 0.0
        if wait:
            retry_after = round(wait + 0.0005, 3)
            raise ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"over the limit of {self.settings.discover_rate:g} DISCOVER per second (burst "
                f"{self.settings.discover_burst}); retry after {retry_after:g} s",
                details={"retry_after": retry_after}, correlation_id=envelope.id)
        query = parse_query(envelope.payload, envelope.id)
        page = self.index.search(query)
        self._send(peer, "DISCOVERED", {"agents": page.entries, "next": page.next,
                                        "scope": "instance"}, envelope.id)

    def _watch(self, peer: Peer, envelope: Envelope) -> None:
        watcher = peer.did
        assert watcher is not None
        dids = parse_dids(envelope.payload, "WATCH", self.settings.watch_limit, envelope.id)
        for did in self.watches.watch(watcher, dids, envelope.id):
            if len(self.watches.watchers(did)) == 1:
                self.coalescer.track(did, self._seen(did))
        states = [{"did": did, "state": "online" if self._visible_online(did, watcher)
                   else "offline"} for did in dids]
        self._send(peer, "WATCHING", {"agents": states,
                                      "watching": len(self.watches.watching(watcher))}, envelope.id)
        if watcher in self._hidden:  # an unlisted agent shows itself to those it watches
            self._reveal(watcher, dids, "online")

    def _unwatch(self, peer: Peer, envelope: Envelope) -> None:
        watcher = peer.did
        assert watcher is not None
        dids = parse_dids(envelope.payload, "UNWATCH", self.settings.watch_limit, envelope.id)
        removed = self.watches.unwatch(watcher, dids)
        for did in removed:
            if not self.watches.watched(did):
                self.coalescer.forget(did)
        self._send(peer, "WATCHING", {"agents": [],
                                      "watching": len(self.watches.watching(watcher))}, envelope.id)
        if watcher in self._hidden:
            self._reveal(watcher, tuple(removed), "offline")

    # -- presence -----------------------------------------------------------------------------

    def _seen(self, did: str) -> Seen:
        peer = self.registry.get(did)
        return Seen(peer.session.session_id) if peer is not None else OFFLINE

    def _visible_online(self, did: str, watcher: str) -> bool:
        hidden = self._hidden.get(did)
        if hidden is not None and watcher not in hidden:
            return False
        return did in self.registry

    def _reveal(self, unlisted: str, dids: tuple[str, ...] | list[str], event: str) -> None:
        """An online unlisted agent started (or stopped) watching `dids`: those of them that
        watch it now see it online (or offline)."""
        self._hidden[unlisted] = self.watches.watching(unlisted)
        if unlisted not in self.registry:
            return
        watchers = self.watches.watchers(unlisted)
        for did in dids:
            if did in watchers:
                self._deliver(did, Event(unlisted, event))

    def _changed(self, did: str, seen: Seen) -> None:
        if not self.watches.watched(did):
            self.coalescer.forget(did)
            if not seen.online:
                self._hidden.pop(did, None)
            return
        decision = self.coalescer.changed(did, seen, self.clock.monotonic())
        self._decided(did, decision)

    def _due(self, did: str) -> None:
        self._decided(did, self.coalescer.due(did, self.clock.monotonic()))

    def _decided(self, did: str, decision: Event | float | None) -> None:
        if isinstance(decision, Event):
            self._announce(decision)
        elif decision is not None:
            self.schedule(decision - self.clock.monotonic(), lambda: self._due(did))
        if did not in self.registry and not self.coalescer.pending(did):
            self._hidden.pop(did, None)

    def _announce(self, event: Event) -> None:
        hidden = self._hidden.get(event.did)
        for watcher in self.watches.watchers(event.did):
            if hidden is None or watcher in hidden:
                self._deliver(watcher, event)

    def _deliver(self, watcher: str, event: Event) -> None:
        peer = self.registry.get(watcher)
        if peer is None:
            return
        payload: dict[str, Any] = {"did": event.did, "event": event.event, "state": event.state}
        if event.changes > 1:
            payload["changes"] = event.changes
        self._send(peer, "PRESENCE", payload, None)
        self.events_sent += 1

    def _forget_watcher(self, watcher: str) -> None:
        for did in self.watches.forget(watcher):
            if not self.watches.watched(did):
                self.coalescer.forget(did)

    def _send(self, peer: Peer, type: str, payload: dict[str, Any],
              correlation_id: str | None) -> None:
        peer.connection.send(self.factory.make(type, peer.did, payload, correlation_id))
