"""Application assembly and process lifecycle: make_app(), Gateway.start/stop, main()."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Sequence

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from .. import __version__
from ..clock import Clock
from ..config import Config, ConfigError, load
from ..errors import CloseCode
from ..hub import Hub, HubSettings
from ..keys import DIDKey
from ..limits import AdmissionSettings
from ..logs import setup_logging
from ..session import SessionSettings, VerifyMode
from .handlers import AgentHandler, AgentsHandler, HealthHandler, MetricsHandler, NotFoundHandler
from .websocket import AgentSocketHandler

log = logging.getLogger("aiconexus.gateway")


def make_hub(config: Config, identity: DIDKey, clock: Clock | None = None) -> Hub:
    session = SessionSettings(
        challenge_timeout=config.challenge_timeout,
        agent_timeout=config.agent_timeout,
        ping_interval=config.ping_interval,
        verify=VerifyMode(config.verify_signatures),
        rate_limit=config.rate_limit,
        rate_burst=config.rate_burst,
    )
    admission = AdmissionSettings(
        max_connections=config.max_connections,
        max_connections_per_ip=config.max_connections_per_ip,
        connection_rate=config.connection_rate,
        connection_burst=config.connection_burst,
    )
    return Hub(HubSettings(session=session, agent_timeout=config.agent_timeout,
                           rate_limit=config.rate_limit, rate_burst=config.rate_burst,
                           admission=admission), identity, clock=clock)


def tls_context(config: Config) -> ssl.SSLContext | None:
    """The server TLS context (TLS 1.2+), requiring client certificates when TLS_CLIENT_CA is set.

    ValueError names the file that cannot be loaded.
    """
    if not config.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot load the TLS certificate {config.tls_cert} and key "
                         f"{config.tls_key}: {exc}") from None
    if config.tls_client_ca:
        try:
            context.load_verify_locations(cafile=config.tls_client_ca)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load the client CA {config.tls_client_ca}: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def make_app(hub: Hub, config: Config) -> Application:
    """The Tornado application: /ws for agents, HTTP JSON for operators."""
    deps = {"hub": hub}
    protected = {"hub": hub, "admin_token": config.admin_token}  # ADMIN_TOKEN, when set
    socket_args = {"hub": hub, "max_message_size": config.max_message_size,
                   "max_outbound_buffer": config.max_outbound_buffer,
                   "allowed_origins": config.allowed_origins}
    return Application(
        [
            (r"/ws", AgentSocketHandler, socket_args),
            (r"/health", HealthHandler, deps),
            (r"/agents", AgentsHandler, protected),
            (r"/agents/(.+)", AgentHandler, protected),
            (r"/metrics", MetricsHandler, protected),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        websocket_ping_interval=config.ping_interval,
        websocket_ping_timeout=config.ping_interval,
        # Frames up to twice the limit are read and answered with MESSAGE_TOO_LARGE; larger ones
        # are cut off by Tornado (close 1009) before they are buffered.
        websocket_max_message_size=max(2 * config.max_message_size, config.max_message_size + 65536),
    )


class Gateway:
    """A running gateway: its hub, its HTTP server and the sockets it listens on."""

    def __init__(self, config: Config, hub: Hub, server: HTTPServer,
                 sockets: list[socket.socket]) -> None:
        self.config = config
        self.hub = hub
        self.server = server
        self.sockets = sockets
        self.port: int = sockets[0].getsockname()[1]
        host = config.host if config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        secure = "s" if config.tls_cert else ""
        self.http_url = f"http{secure}://{host}:{self.port}"
        self.ws_url = f"ws{secure}://{host}:{self.port}/ws"
        self._stopped = False

    @property
    def did(self) -> str:
        return self.hub.did

    @classmethod
    async def start(cls, config: Config, *, identity: DIDKey | None = None,
                    clock: Clock | None = None) -> Gateway:
        """Listen on config.host:config.port (port 0: a free one) and serve."""
        if identity is None:
            identity = DIDKey.load_or_create(config.key_file) if config.key_file else DIDKey.generate()
        hub = make_hub(config, identity, clock)
        if config.redis_url:  # cluster mode; redis is imported only here
            from ..backends import start_cluster

            await start_cluster(hub, config)
        app = make_app(hub, config)
        try:
            ssl_options = tls_context(config)
            sockets = bind_sockets(config.port, config.host, backlog=1024)
        except BaseException:
            if hub.cluster is not None:  # leave the cluster we just joined
                await hub.cluster.close(timeout=1.0)
            raise
        # idle_connection_timeout also bounds the wait for request headers (and the TLS
        # handshake), so sockets that never finish a request do not pile up.
        server = HTTPServer(app, max_body_size=1024 * 1024, ssl_options=ssl_options,
                            xheaders=config.trust_proxy,
                            idle_connection_timeout=config.challenge_timeout)
        server.add_sockets(sockets)
        gateway = cls(config, hub, server, sockets)
        log.info("gateway %s started on %s (DID %s)", __version__, gateway.ws_url, hub.did,
                 extra={"did": hub.did, "port": gateway.port})
        return gateway

    async def stop(self, timeout: float | None = None) -> None:
        """Drain, bounded by `timeout` (DRAIN_TIMEOUT): /health says draining (503) and new
        WebSocket handshakes are refused (503) at once; every agent gets 1001 after what was
        already queued to it; connections still open near the deadline are cut; then stop."""
        if self._stopped:
            return
        self._stopped = True
        self.hub.draining = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = timeout or self.config.drain_timeout
        deadline = started + budget
        agents = len(self.hub.peers)
        if self.hub.cluster is not None:  # first, so the cluster routes to other instances
            await self.hub.cluster.withdraw(timeout=min(2.0, budget / 4))
        self.hub.close_all(CloseCode.GOING_AWAY, "gateway shutting down")
        flush_deadline = deadline - min(0.5, budget / 4)  # leave time to cut the stragglers
        while self.hub.peers and loop.time() < flush_deadline:
            await asyncio.sleep(0.01)
        stragglers = len(self.hub.peers)
        for peer in list(self.hub.peers):
            abort = getattr(peer.connection, "abort", None)
            if abort is not None:
                abort()
        self.server.stop()
        try:
            await asyncio.wait_for(self.server.close_all_connections(),
                                   max(0.1, deadline - loop.time()))
        except asyncio.TimeoutError:
            log.warning("HTTP connections still open at the end of the drain")
        if self.hub.cluster is not None:
            await self.hub.cluster.close(timeout=max(0.5, deadline - loop.time()))
        log.info("gateway stopped", extra={
            "did": self.hub.did, "connections_closed": agents, "cut_at_deadline": stragglers,
            "drain_seconds": round(loop.time() - started, 3)})


async def serve(config: Config) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop."""
    try:
        gateway = await Gateway.start(config)
    except OSError as exc:
        print(f"aiconexus-gateway: cannot listen on {config.host}:{config.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    except (ValueError, ImportError) as exc:  # an unreadable key file, cluster mode without redis
        print(f"aiconexus-gateway: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before announcing: a signal may follow at once
        loop.add_signal_handler(signum, stop.set)
    print(f"AIConexus Gateway {__version__} listening on {gateway.ws_url} and {gateway.http_url}",
          flush=True)
    print(f"gateway DID: {gateway.did}", flush=True)
    if gateway.hub.cluster is not None:
        print(f"cluster: {gateway.hub.cluster}", flush=True)
    await stop.wait()
    log.info("signal received; shutting down")
    await gateway.stop()
    return 0


def tune_gc() -> None:
    """Full garbage collections 10x rarer than Python's default, for the gateway process only.

    Each agent adds ~20 KB of long-lived objects, and by default every 25% of heap growth rescans
    all of them: a quarter of the CPU time of registering 10,000 agents went to 11 such passes.
    Young garbage is collected as often as before; cycles left by closed connections wait for a
    full pass at most 10x longer. Objects alive at startup (modules, config) are frozen out of it.
    """
    gc.freeze()
    gc.set_threshold(700, 10, 100)


def main(argv: Sequence[str] | None = None) -> int:
    """The `aiconexus-gateway` command."""
    try:
        config = load(argv, os.environ)
    except ConfigError as exc:
        print(f"aiconexus-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        setup_logging(config.log_level, config.log_format, config.log_file)
    except OSError as exc:
        print(f"aiconexus-gateway: cannot open log file {config.log_file}: {exc.strerror}",
              file=sys.stderr)
        return 2
    tune_gc()
    return asyncio.run(serve(config))
