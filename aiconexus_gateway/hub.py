"""The gateway core as the I/O layer sees it: one facade over four parts that each do one job.

    connections.py  lifecycle and limits: open, frames in, timers, closed, admission
    routing.py      where frames go (Router; backends/router.py ClusterRouter in cluster mode)
    views.py        /health and /agents (Views; backends/views.py ClusterViews)
    metrics.py      every series, counted through methods (`hub.metrics.refused("origin")`)

The Hub builds them and forwards the I/O layer's calls; `receive`, the per-frame call, is the
Connections method itself (no extra call on the hot path). Cluster mode replaces the router and
the views (`use`) before any connection opens; nothing else asks whether it is clustered.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .admission import AdmissionSettings, Refusal
from .clock import Clock
from .connections import Connections, idle_delay
from .directory import Directory, DirectorySettings
from .errors import Ending, ProtocolError
from .keys import DIDKey
from .mailbox import FULL_REASONS, REFUSED_REASONS, Mailbox, MailboxSettings
from .mailbox_file import open_mailbox_file
from .mailroom import LocalMailroom
from .messages import MessageFactory
from .metrics import GatewayMetrics
from .peer import AgentRecord, Connection, Peer, PeerActions
from .registry import Registry, agent_view
from .routing import Router
from .session import Forward, SessionSettings, VerifyMode
from .turn import IceServerIssuer
from .views import Views

if TYPE_CHECKING:
    from .config import Config

__all__ = ["AgentRecord", "Connection", "Hub", "HubSettings", "Peer", "agent_view", "idle_delay"]


@dataclass(frozen=True, slots=True)
class HubSettings:
    session: SessionSettings  # per connection, incl. AGENT_TIMEOUT and RATE_LIMIT (one place)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings)
    mailbox: MailboxSettings = field(default_factory=MailboxSettings)
    directory: DirectorySettings = field(default_factory=DirectorySettings)

    @property
    def agent_timeout(self) -> float:
        return self.session.agent_timeout

    @classmethod
    def from_config(cls, config: Config) -> HubSettings:
        return cls(
            SessionSettings(
                challenge_timeout=config.challenge_timeout,
                agent_timeout=config.agent_timeout,
                ping_interval=config.ping_interval,
                verify=VerifyMode(config.verify_signatures),
                rate_limit=config.rate_limit,
                rate_burst=config.rate_burst,
                ice_servers=IceServerIssuer.from_settings(config.stun_urls, config.turn_urls,
                                                          config.turn_secret, config.turn_ttl),
            ),
            AdmissionSettings(
                max_connections=config.max_connections,
                max_connections_per_ip=config.max_connections_per_ip,
                connection_rate=config.connection_rate,
                connection_burst=config.connection_burst,
                work_rate=config.address_work_limit,
            ),
            MailboxSettings(
                max_ttl=config.mailbox_max_ttl,
                max_messages=config.mailbox_max_messages,
                max_bytes=config.mailbox_max_bytes,
                max_per_sender=config.mailbox_max_per_sender,
                max_total_bytes=config.mailbox_max_total_bytes,
                file=config.mailbox_file,
                window=max(1024, config.max_outbound_buffer * 3 // 4),
            ),
            DirectorySettings(
                watch_limit=config.watch_limit,
                coalesce=config.presence_coalesce,
                discover_rate=config.discovery_rate,
                discover_burst=config.discovery_burst,
            ))


class Hub:
    """One gateway instance's core: what the I/O layer holds."""

    def __init__(self, settings: HubSettings, identity: DIDKey, *, clock: Clock | None = None,
                 nonce_source: Callable[[int], bytes] = os.urandom) -> None:
        self.settings = settings
        self.identity = identity
        self.did = identity.did
        self.clock = clock = clock or Clock()
        self.factory = MessageFactory(identity, clock.wall)
        self.registry = Registry()
        self.metrics = GatewayMetrics(lambda: len(self.registry),
                                      lambda: self.connections.admission.total)
        self.actions = PeerActions(self.factory, self.metrics)
        self.router = Router(self.registry, self.actions, self.metrics, clock)
        directory_metrics = self.metrics.directory(lambda: len(self.directory.index),
                                                   lambda: len(self.directory.watches))
        self.directory = self.router.directory = Directory(
            self.registry, self.factory, self.actions, clock, settings.directory,
            metrics=directory_metrics)
        self.connections = Connections(settings.session, settings.admission, self.factory,
                                       self.actions, self.metrics, self.router, clock, nonce_source)
        self.views = Views(self.registry, clock, self.did, lambda: self.connections.draining)
        self.receive = self.connections.receive  # the per-frame call, without a hop
        # One instance's mailbox, in memory (cluster mode replaces the mailroom with its own).
        if settings.mailbox.enabled:
            mailbox = Mailbox(settings.mailbox)
            journal = open_mailbox_file(mailbox, settings.mailbox.file)  # MailboxFileError
            self.router.mailroom = LocalMailroom(
                mailbox, self.registry, self.actions, self.metrics.mailbox(
                    lambda: (mailbox.total_letters, mailbox.total_bytes, mailbox.total_receipts),
                    FULL_REASONS + REFUSED_REASONS), clock, journal)

    def use(self, router: Router, views: Views) -> None:
        """Cluster mode: route and report through `router` and `views` (before serving)."""
        router.directory = self.directory
        self.router = self.connections.router = router
        self.views = views

    # -- settings the I/O layer needs -------------------------------------------------------------

    @property
    def challenge_timeout(self) -> float:
        return self.settings.session.challenge_timeout

    @property
    def agent_timeout(self) -> float:
        return self.settings.session.agent_timeout

    @property
    def draining(self) -> bool:
        return self.connections.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.connections.draining = value

    @property
    def peers(self) -> set[Peer]:
        return self.connections.peers

    # -- connection events (connections.py) -------------------------------------------------------

    def admit(self, ip: str) -> Refusal | None:
        return self.connections.admit(ip)

    def release(self, ip: str) -> None:
        self.connections.release(ip)

    def charge(self, ip: str, seconds: float) -> bool:
        """Charge unauthenticated work to the address `ip`; True when it is over its budget."""
        return self.connections.charge(ip, seconds)

    def open(self, connection: Connection) -> Peer:
        return self.connections.open(connection)

    def receive_binary(self, peer: Peer) -> None:
        self.connections.receive_binary(peer)

    def reject(self, peer: Peer, error: ProtocolError) -> None:
        self.connections.reject(peer, error)

    def internal_error(self, peer: Peer, text: str) -> None:
        self.connections.internal_error(peer, text)

    def challenge_expired(self, peer: Peer) -> None:
        self.connections.challenge_expired(peer)

    def check_idle(self, peer: Peer) -> float | None:
        return self.connections.check_idle(peer)

    def end(self, peer: Peer, ending: Ending, error: ProtocolError | None = None) -> None:
        self.connections.end(peer, ending, error)

    def slow_consumer(self, peer: Peer, pending: int, limit: int) -> None:
        self.connections.slow_consumer(peer, pending, limit)

    def lost(self, peer: Peer, forwards: list[Forward]) -> None:
        self.connections.lost(peer, forwards)

    def closed(self, peer: Peer, code: int | None, reason: str | None) -> None:
        self.connections.closed(peer, code, reason)

    def close_all(self, ending: Ending = Ending.GOING_AWAY) -> None:
        self.connections.close_all(ending)

    # -- the router's lifecycle (cluster mode has work to do) -------------------------------------

    async def withdraw(self, timeout: float = 2.0) -> None:
        """A drain begins: other instances stop routing to this one."""
        await self.router.withdraw(timeout)

    async def leave(self, timeout: float = 2.0) -> None:
        """The gateway stopped: leave the cluster (nothing to do on one instance)."""
        await self.router.close(timeout)
        if self.router.mailroom is not None:
            await self.router.mailroom.close()

    # -- views (views.py) -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self.views.health()

    def agents_page(self, limit: int, offset: int) -> dict[str, Any]:
        return self._with_mailboxes(self.views.agents_page(limit, offset))

    def agent(self, did: str) -> dict[str, Any] | None:
        return self._with_mailbox(did, self.views.agent(did))

    async def health_report(self) -> dict[str, Any]:
        return await self.views.health_report()

    async def agents_report(self, limit: int, offset: int, *, capability: str | None = None,
                            name_prefix: str | None = None) -> dict[str, Any]:
        """A page of /agents; with the card filters, of the matching agents in DID order."""
        if capability is None and name_prefix is None:
            return self._with_mailboxes(await self.views.agents_report(limit, offset))
        dids = self.directory.matching(capability, name_prefix)
        return self._with_mailboxes(await self.views.agents_among_report(dids, limit, offset))

    async def agent_report(self, did: str) -> dict[str, Any] | None:
        view = await self.views.agent_report(did)
        mailroom = self.router.mailroom
        if view is not None and mailroom is not None:
            depth = await mailroom.report(did)
            if depth is not None:
                view["mailbox"] = depth
        return view

    def _with_mailbox(self, did: str, view: dict[str, Any] | None) -> dict[str, Any] | None:
        """/agents/<did> (admin only) shows the agent's mailbox depth and rules, when it holds
        something or the agent set rules."""
        mailroom = self.router.mailroom
        depth = mailroom.depth(did) if view is not None and mailroom is not None else None
        if view is not None and depth is not None:
            view["mailbox"] = depth
        return view

    def _with_mailboxes(self, page: dict[str, Any]) -> dict[str, Any]:
        """The same for each agent of a page of /agents (what the monitor shows)."""
        mailroom = self.router.mailroom
        if mailroom is not None:
            for view in page.get("agents", ()):
                depth = mailroom.depth(view["did"])
                if depth is not None:
                    view["mailbox"] = depth
        return page
