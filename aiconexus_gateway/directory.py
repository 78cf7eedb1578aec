"""The directory: answers DISCOVER, WATCH and UNWATCH, and tells watchers about presence changes.

It carries out what the pure modules decide: discovery.py (queries, the index, pages),
presence.py (watch sets, coalescing) and cards.py (the agent's signed card). The router tells it
when an agent becomes routable (`online`) and the connections when one is gone (`closed`); it
answers with the gateway's signed messages (DISCOVERED, WATCHING, PRESENCE) on the agents'
connections. Time is the hub's clock; the end of a coalescing window is a timer the caller
provides (`schedule`), so tests run it by hand.

Unlisted agents (docs/protocol.md section 21.4): never in the index, and their presence is shown
only to the agents they watch themselves. To everyone else they look offline.

In cluster mode the directory also keeps a replica of the agents of the other instances
(`remote_*`): what they announce when their agents come and go (backends/wire.py `Announce`), a
full snapshot after (re)connecting, and the live instances at every heartbeat (an instance that
died takes its agents with it). Discovery and WATCH answers are then cluster-wide and stay
synchronous, and each instance tells its own watchers, coalesced, about any agent of the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .cards import Profile, parse_card
from .clock import Clock
from .discovery import Index, Listing, parse_dids, parse_query
from .errors import ErrorCode, ProtocolError
from .messages import Envelope, MessageFactory
from .metrics import DirectoryMetrics
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


@dataclass(frozen=True, slots=True)
class RemoteAgent:
    """An agent of another instance, as its instance announced it."""

    instance: str
    session_id: str
    listing: Listing | None  # None: unlisted
    audience: frozenset[str] = frozenset()  # unlisted: the agents it watches (who may see it)
    card: dict[str, Any] | None = None  # its card, unlisted or not (the operators' filters)

    @classmethod
    def of(cls, did: str, instance: str, session_id: str, profile: Any) -> RemoteAgent:
        """From an announced profile (cards.Profile as JSON: card, unlisted, register, audience)."""
        if not isinstance(profile, dict):
            return cls(instance, session_id, Listing.of(did, None, None))
        try:
            card = parse_card(profile["card"]) if profile.get("card") is not None else None
        except (ProtocolError, KeyError):
            card = None
        document = card.document if card is not None else None
        if profile.get("unlisted") is True:
            audience = profile.get("audience")
            return cls(instance, session_id, None, frozenset(
                a for a in audience if isinstance(a, str)) if isinstance(audience, list) else
                frozenset(), document)
        register = profile.get("register")
        return cls(instance, session_id, Listing.of(did, card, register if isinstance(
            register, dict) else None), card=document)


def profile_document(profile: Profile | None, audience: frozenset[str]) -> dict[str, Any] | None:
    """What other instances are told about a local agent's card (RemoteAgent.of reads it)."""
    if profile is None:
        return None
    card = profile.card.document if profile.card else None
    if profile.unlisted:  # its card only for the operators' /agents filters, never discovered
        return {"unlisted": True, "audience": sorted(audience), "card": card}
    return {"card": card, "register": profile.register}


def card_matches(card: dict[str, Any] | None, capability: str | None,
                 name_prefix: str | None) -> bool:
    """The operators' /agents filters: `capability` listed, `name` starts with `name_prefix`
    (case-insensitively, as DISCOVER compares)."""
    if capability is None and name_prefix is None:
        return True
    if card is None:
        return False
    if capability is not None and capability not in card.get("capabilities", ()):
        return False
    name = card.get("name")
    return name_prefix is None or (isinstance(name, str)
                                   and name.casefold().startswith(name_prefix.casefold()))


def _card_of(peer: Peer) -> dict[str, Any] | None:
    profile = peer.session.profile
    return profile.card.document if profile is not None and profile.card is not None else None


def call_later(delay: float, callback: Callable[[], None]) -> None:
    """The default timer: the running event loop's call_later."""
    asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class Directory:
    """Discovery and presence for the agents of this instance."""

    def __init__(self, registry: Registry, factory: MessageFactory, actions: PeerActions,
                 clock: Clock, settings: DirectorySettings | None = None,
                 schedule: Schedule = call_later, metrics: DirectoryMetrics | None = None) -> None:
        self.registry = registry
        self.factory = factory
        self.actions = actions
        self.clock = clock
        self.settings = settings = settings or DirectorySettings()
        self.schedule = schedule
        self.metrics = metrics  # None: not counted (a router's default directory)
        self.index = Index()
        self.watches = Watches(settings.watch_limit)
        self.coalescer = Coalescer(settings.coalesce)
        self._hidden: dict[str, frozenset[str]] = {}  # unlisted DID -> who may see it
        self._buckets: dict[Peer, TokenBucket] = {}
        self._watch_owner: dict[str, Peer] = {}  # watcher DID -> the session its watches are of
        self.remote: dict[str, RemoteAgent] = {}  # cluster mode: the other instances' agents
        self._per_instance: Counter[str] = Counter()  # instance -> its agents in `remote`
        self.scope: Callable[[], str] = lambda: "instance"  # "cluster" when the replica is live
        # cluster mode: tell the other instances about a local unlisted agent's new audience
        self.announce: Callable[[Peer], None] = lambda peer: None
        self.events_sent = 0  # PRESENCE frames sent (tests, benchmark)

    # -- what the router and the connections report -------------------------------------------

    def online(self, peer: Peer) -> None:
        """`peer` became routable (REGISTERED); a session it replaced is already out."""
        did = peer.did
        assert did is not None
        if self._watch_owner.get(did) is not peer:  # watches belong to the session that made them
            self._forget_watcher(did)
        self._set_remote(did, None)  # the newest session of the DID, cluster-wide
        self._relist(did)
        self._changed(did, self._seen(did))

    def closed(self, peer: Peer, unregistered: bool) -> None:
        """`peer`'s connection is gone; `unregistered`: it was its DID's routable session (not
        one replaced by a newer session, which announced itself)."""
        self._buckets.pop(peer, None)
        did = peer.did
        if did is None:
            return
        if self._watch_owner.get(did) is peer:
            self._forget_watcher(did)
        if not unregistered:  # replaced: the newer session announced itself
            return
        self._relist(did)
        self._changed(did, self._seen(did))

    def matching(self, capability: str | None, name_prefix: str | None) -> list[str]:
        """Every agent of the cluster (unlisted ones too: for operators) whose card matches, in
        DID order."""
        found = [peer.did for peer in self.registry if peer.did is not None and card_matches(
            _card_of(peer), capability, name_prefix)]
        found += [did for did, agent in self.remote.items()
                  if did not in self.registry and card_matches(agent.card, capability, name_prefix)]
        return sorted(found)

    # -- what the other instances report (cluster mode) ---------------------------------------

    def remote_online(self, did: str, agent: RemoteAgent) -> None:
        """An agent of another instance registered (or its unlisted audience changed)."""
        before = self.remote.get(did)
        self._set_remote(did, agent)
        self._relist(did)
        if (before is not None and before.session_id == agent.session_id
                and before.listing is None and agent.listing is None):
            watchers = self.watches.watchers(did)  # the same session shows itself to others
            for watcher in (agent.audience - before.audience) & watchers:
                self._deliver(watcher, Event(did, "online"))
            for watcher in (before.audience - agent.audience) & watchers:
                self._deliver(watcher, Event(did, "offline"))
            return
        self._changed(did, self._seen(did))

    def remote_offline(self, did: str, session_id: str) -> None:
        """An agent of another instance is gone (ignored when a newer session replaced it)."""
        agent = self.remote.get(did)
        if agent is None or agent.session_id != session_id:
            return
        self._set_remote(did, None)
        self._relist(did)
        self._changed(did, self._seen(did))

    def remote_sync(self, agents: dict[str, RemoteAgent]) -> None:
        """The whole cluster as the bus holds it (after connecting): replace the replica."""
        before, self.remote = self.remote, agents
        self._per_instance = Counter(agent.instance for agent in agents.values())
        for did in before.keys() | agents.keys():
            old, new = before.get(did), agents.get(did)
            if old != new:
                self._relist(did)
                self._changed(did, self._seen(did))

    def remote_alive(self, instances: frozenset[str]) -> None:
        """Only these instances are alive: the agents of the others are gone. Called at every
        heartbeat: it walks the replica only when an instance that holds agents died."""
        if all(instance in instances for instance in self._per_instance):
            return
        for did in [did for did, agent in self.remote.items() if agent.instance not in instances]:
            self._set_remote(did, None)
            self._relist(did)
            self._changed(did, self._seen(did))

    def _set_remote(self, did: str, agent: RemoteAgent | None) -> None:
        """The one way `remote` changes for one DID: keeps the count per instance."""
        before = self.remote.pop(did, None)
        if before is not None:
            self._per_instance[before.instance] -= 1
            if not self._per_instance[before.instance]:
                del self._per_instance[before.instance]
        if agent is not None:
            self.remote[did] = agent
            self._per_instance[agent.instance] += 1

    # -- requests -----------------------------------------------------------------------------

    def handle(self, peer: Peer, envelope: Envelope) -> None:
        """A verified DISCOVER, WATCH or UNWATCH from `peer`; every failure is its ERROR."""
        if self.metrics is not None:
            self.metrics.request(envelope.type)
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
                                        "scope": self.scope()}, envelope.id)

    def _watch(self, peer: Peer, envelope: Envelope) -> None:
        watcher = peer.did
        assert watcher is not None
        dids = parse_dids(envelope.payload, "WATCH", self.settings.watch_limit, envelope.id)
        if self._watch_owner.get(watcher) is not peer:  # a session's first WATCH
            self._forget_watcher(watcher)
            self._watch_owner[watcher] = peer
        for did in self.watches.watch(watcher, dids, envelope.id):
            if len(self.watches.watchers(did)) == 1:
                self.coalescer.track(did, self._seen(did))
        states = [{"did": did, "state": "online" if self._visible_online(did, watcher)
                   else "offline"} for did in dids]
        self._send(peer, "WATCHING", {"agents": states,
                                      "watching": len(self.watches.watching(watcher))}, envelope.id)
        if self._unlisted_here(watcher):  # an unlisted agent shows itself to those it watches
            self._reveal(peer, watcher, dids, "online")

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
        if self._unlisted_here(watcher):
            self._reveal(peer, watcher, tuple(removed), "offline")

    # -- presence -----------------------------------------------------------------------------

    def _seen(self, did: str) -> Seen:
        peer = self.registry.get(did)
        if peer is not None:
            return Seen(peer.session.session_id)
        agent = self.remote.get(did)
        return Seen(agent.session_id) if agent is not None else OFFLINE

    def _relist(self, did: str) -> None:
        """Index the DID's current session (here, else on another instance), or nothing; and
        record who may see it when it is unlisted."""
        peer = self.registry.get(did)
        agent = self.remote.get(did)
        if peer is not None:
            profile = peer.session.profile
            if profile is not None and profile.unlisted:
                listing = None
                self._hidden[did] = self.watches.watching(did)
            else:
                listing = Listing.of(did, profile.card if profile else None,
                                     profile.register if profile else None)
        elif agent is not None:
            listing = agent.listing
            if listing is None:
                self._hidden[did] = agent.audience
        else:  # gone: keep who could see it until its offline event is out
            self.index.remove(did)
            return
        if listing is None:
            self.index.remove(did)
        else:
            self._hidden.pop(did, None)
            self.index.add(listing)

    def _unlisted_here(self, did: str) -> bool:
        peer = self.registry.get(did)
        profile = peer.session.profile if peer is not None else None
        return profile is not None and profile.unlisted

    def _visible_online(self, did: str, watcher: str) -> bool:
        hidden = self._hidden.get(did)
        if hidden is not None and watcher not in hidden:
            return False
        return self._seen(did).online

    def _reveal(self, peer: Peer, unlisted: str, dids: tuple[str, ...] | list[str],
                event: str) -> None:
        """An online unlisted agent started (or stopped) watching `dids`: those of them that
        watch it see it online (or offline): here at once, elsewhere through the announce."""
        self._hidden[unlisted] = self.watches.watching(unlisted)
        self.announce(peer)
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
        if not self._seen(did).online and not self.coalescer.pending(did):
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
        if self.metrics is not None:
            self.metrics.event()

    def _forget_watcher(self, watcher: str) -> None:
        self._watch_owner.pop(watcher, None)
        for did in self.watches.forget(watcher):
            if not self.watches.watched(did):
                self.coalescer.forget(did)

    def _send(self, peer: Peer, type: str, payload: dict[str, Any],
              correlation_id: str | None) -> None:
        peer.connection.send(self.factory.make(type, peer.did, payload, correlation_id))
