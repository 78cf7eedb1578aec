"""Application assembly and process lifecycle: make_app(), Gateway.start/stop, main()."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import logging
import os
import resource
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from time import monotonic

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application

from .. import __version__
from ..clock import Clock
from ..config import Config, ConfigError, load
from ..errors import Ending
from ..hub import Hub, HubSettings, Peer
from ..keys import DIDKey
from ..logs import setup_logging, write_line
from ..session import Forward
from .handlers import (
    AgentHandler,
    AgentsHandler,
    HealthHandler,
    HTTPBudget,
    MetricsHandler,
    NotFoundHandler,
)
from .pinger import Pinger
from .tornado_internals import add_sockets_guarded, check_internals, open_http_connections
from .upgrade import GatewayServer
from .websocket import AgentEndpoint, AgentSocketHandler, RefusalLog, WriteBatch
from .workers import is_worker, notify_ready, supervise

log = logging.getLogger("aiconexus.gateway")

# Seconds a client may take to send its request headers (and finish the TLS handshake) before the
# connection is dropped; also how long an idle keep-alive HTTP connection is kept.
HEADER_TIMEOUT = 10.0
# Descriptors kept for everything that is not a client connection (listening sockets, log files,
# Redis, the event loop, key and TLS files): at least 16, at most 64.
DESCRIPTOR_RESERVE = 64
# At most this many exhausted accepts (EMFILE...) are logged: one line per interval.
EXHAUSTED_LOG_INTERVAL = 10.0
ACCEPT_PAUSE = 0.1  # seconds the listening socket rests after an exhausted accept


class StartupError(Exception):
    """The gateway cannot start; the message is one line naming what failed and what to do."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_identity(path: str | None) -> DIDKey:
    """The gateway key from GATEWAY_KEY_FILE (created when missing); a fresh one without a path."""
    if not path:
        return DIDKey.generate()
    exists = Path(path).exists()
    try:
        return DIDKey.load_or_create(path)
    except OSError as exc:
        verb = "read" if exists else "create"
        hint = "" if exists or Path(path).parent.is_dir() else \
            f" (the directory {str(Path(path).parent)!r} does not exist)"
        raise StartupError(f"cannot {verb} the key file {path}: {exc.strerror}{hint}", 2) from None
    except ValueError as exc:
        raise StartupError(f"the key file {path} does not hold a gateway key: {exc}", 2) from None


def bind(host: str, port: int, reuse_port: bool = False) -> list[socket.socket]:
    """The listening sockets, or StartupError naming the address and the likely cause.
    `reuse_port`: SO_REUSEPORT, for the workers of `--workers N` (workers.py)."""
    try:
        return bind_sockets(port, host, backlog=1024, reuse_port=reuse_port)
    except socket.gaierror:
        raise StartupError(f"cannot listen on {host}:{port}: {host!r} is not an address of this "
                           "machine (--host / GATEWAY_HOST; 0.0.0.0 for every interface)") from None
    except OSError as exc:
        hint = {
            errno.EADDRINUSE: "the address is already in use; is another gateway running? Choose "
                              "another port: --port N, GATEWAY_PORT=N, or make run PORT=N",
            errno.EACCES: "permission denied; ports below 1024 need privileges, choose a port "
                          "above 1023 (--port / GATEWAY_PORT)",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine (--host / "
                                 "GATEWAY_HOST; 0.0.0.0 for every interface)",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise StartupError(f"cannot listen on {host}:{port}: {hint}") from None


# -- descriptors --------------------------------------------------------------------------------


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit: (soft limit before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):  # a container may forbid it: keep soft
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def descriptor_limit() -> int:
    """The soft RLIMIT_NOFILE: how many descriptors this process may hold."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass(frozen=True, slots=True)
class Capacity:
    """How the process's descriptors are shared: WebSocket connections (MAX_CONNECTIONS, capped
    to what fits), HTTP connections at once (requests in flight, keep-alive), and a reserve."""

    descriptors: int
    websockets: int
    http: int

    @classmethod
    def plan(cls, descriptors: int, max_connections: int) -> Capacity:
        reserve = max(16, min(DESCRIPTOR_RESERVE, descriptors // 4))
        usable = max(2, descriptors - reserve)
        # HTTP (requests, handshakes in progress): a tenth of a small limit, 1/64 of a large one
        # (at least 256 there, at most 1024), so 20,000 descriptors hold 19,600 agents
        http = max(1, min(1024, usable // 10, max(256, usable // 64)))
        fits = max(1, usable - http)
        return cls(descriptors, min(max_connections, fits) if max_connections else fits, http)


CAPACITY_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s")


class AcceptGate:
    """Keeps the HTTP side within its share of descriptors, and logs exhaustion once per interval."""

    def __init__(self, capacity: Capacity) -> None:
        self.capacity = capacity
        self.refused = 0  # connections answered 503 for want of room
        self.exhausted_accepts = 0
        self._unlogged = 0
        self._last_log = -EXHAUSTED_LOG_INTERVAL
        body = json.dumps({"error": "GATEWAY_FULL", "message":
                           f"the gateway holds its maximum of {capacity.http} HTTP connections "
                           "at once; retry later"}).encode() + b"\n"
        self.refusal = CAPACITY_REFUSAL % (len(body), body)

    def admit_tcp(self, server: HTTPServer) -> bool:
        if open_http_connections(server) < self.capacity.http:
            return True
        self.refused += 1
        self._log(f"refused a connection with 503: {self.capacity.http} HTTP connections are "
                  "open (requests in flight, keep-alive, unfinished headers)")
        return False

    def exhausted(self, error: OSError) -> float:
        self.exhausted_accepts += 1
        self._log(f"cannot accept connections: {error.strerror} (the process may hold "
                  f"{self.capacity.descriptors} descriptors); pausing accepts for {ACCEPT_PAUSE:g} s")
        return ACCEPT_PAUSE

    def _log(self, message: str) -> None:
        now = monotonic()
        if now - self._last_log < EXHAUSTED_LOG_INTERVAL:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more such events in the last interval)" if self._unlogged else ""
        log.warning("%s%s", message, more)
        self._last_log, self._unlogged = now, 0


def make_hub(config: Config, identity: DIDKey, clock: Clock | None = None) -> Hub:
    return Hub(HubSettings.from_config(config), identity, clock=clock)


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


def make_app(hub: Hub, config: Config, batch: WriteBatch | None = None,
             http_budget: HTTPBudget | None = None) -> Application:
    """The Tornado application: /ws for agents, HTTP JSON for operators."""
    deps = {"hub": hub}
    protected = {"hub": hub, "admin_token": config.admin_token,  # ADMIN_TOKEN, when set
                 "budget": http_budget or HTTPBudget()}
    endpoint = AgentEndpoint(hub, batch or WriteBatch(), config.max_message_size,
                             config.max_outbound_buffer, config.allowed_origins, RefusalLog(),
                             Pinger(config.ping_interval))
    return Application(
        [
            (r"/ws", AgentSocketHandler, {"endpoint": endpoint}),
            (r"/health", HealthHandler, deps),
            (r"/agents", AgentsHandler, protected),
            (r"/agents/(.+)", AgentHandler, protected),
            (r"/metrics", MetricsHandler, protected),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        # Keepalive pings come from the one Pinger above (PING_INTERVAL), not a task per socket.
        websocket_ping_interval=None,
        websocket_max_message_size=endpoint.frame_limit,  # (Tornado's path, before the 101)
        agent_endpoint=endpoint,  # for GatewayServer's lean upgrade path (server/upgrade.py)
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
        # A wildcard bind (0.0.0.0, ::) is reached from this machine at the loopback address.
        self.every_interface = config.host in ("0.0.0.0", "::", "")
        host = "127.0.0.1" if self.every_interface else config.host
        host = f"[{host}]" if ":" in host else host
        secure = "s" if config.tls_cert else ""
        self.http_url = f"http{secure}://{host}:{self.port}"
        self.ws_url = f"ws{secure}://{host}:{self.port}/ws"
        self.capacity = Capacity.plan(descriptor_limit(), config.max_connections)
        self.gate = AcceptGate(self.capacity)
        self._stopped = False
        # what make_app gave the handlers, set by start()
        self.write_batch, self.http_budget = WriteBatch(), HTTPBudget()

    @property
    def did(self) -> str:
        return self.hub.did

    @classmethod
    async def start(cls, config: Config, *, identity: DIDKey | None = None,
                    clock: Clock | None = None) -> Gateway:
        """Listen on config.host:config.port (port 0: a free one) and serve."""
        check_internals()  # a Tornado outside setup.py's bound fails here, naming what it lacks
        if identity is None:
            identity = load_identity(config.key_file)
        capacity = Capacity.plan(descriptor_limit(), config.max_connections)
        if capacity.websockets != config.max_connections:
            if config.max_connections:
                log.warning("MAX_CONNECTIONS %d does not fit in %d descriptors; using %d (raise the "
                            "hard limit, ulimit -Hn, for more)", config.max_connections,
                            capacity.descriptors, capacity.websockets)
            config = config.replace(max_connections=capacity.websockets)
        try:
            hub = make_hub(config, identity, clock)
        except ValueError as exc:  # MAILBOX_FILE cannot be read or written (mailbox_file.py)
            raise StartupError(str(exc), 2) from None
        if config.redis_url:  # cluster mode; redis is imported only here
            from ..backends import start_cluster

            try:
                await start_cluster(hub, config)
            except ValueError as exc:  # INSTANCE_ID in use by a live instance, a bad name
                raise StartupError(str(exc), 2) from None
        batch, http_budget = WriteBatch(), HTTPBudget()
        app = make_app(hub, config, batch, http_budget)
        try:
            try:
                ssl_options = tls_context(config)
            except ValueError as exc:
                raise StartupError(str(exc), 2) from None
            sockets = bind(config.host, config.port, reuse_port=is_worker())
        except BaseException:
            await hub.leave(timeout=1.0)  # leave the cluster we may have joined
            raise
        # idle_connection_timeout bounds the wait for request headers (and the TLS handshake),
        # so sockets that never finish a request do not pile up.
        server = GatewayServer(app, max_body_size=1024 * 1024, ssl_options=ssl_options,
                               xheaders=config.trust_proxy,
                               idle_connection_timeout=min(HEADER_TIMEOUT, config.challenge_timeout))
        server.endpoint = app.settings["agent_endpoint"]
        gateway = cls(config, hub, server, sockets)
        add_sockets_guarded(server, sockets, gateway.gate,
                            b"" if ssl_options is not None else gateway.gate.refusal)
        gateway.write_batch, gateway.http_budget = batch, http_budget
        log.info("gateway %s started on %s (DID %s)", __version__, gateway.ws_url, hub.did,
                 extra={"did": hub.did, "port": gateway.port})
        return gateway

    async def stop(self, timeout: float | None = None) -> None:
        """Drain, bounded by `timeout` (DRAIN_TIMEOUT): /health says draining (503) and new
        WebSocket handshakes are refused (503) at once; every agent gets 1001 after what was
        already queued to it. An agent whose frames still wait in a slow reader's backlog keeps
        its connection until they leave or the deadline nears; then the slow readers are cut, the
        senders of what they never took are told (DELIVERY_FAILED), and get their 1001; then stop."""
        if self._stopped:
            return
        self._stopped = True
        self.hub.draining = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = timeout or self.config.drain_timeout
        deadline = started + budget
        agents = len(self.hub.peers)
        await self.hub.withdraw(timeout=min(2.0, budget / 4))  # first: others route elsewhere
        flush_deadline = deadline - min(0.5, budget / 4)  # leave time to cut the stragglers
        told: set[Peer] = set()
        while True:
            waiting = senders_waiting(self.hub.peers)
            for peer in list(self.hub.peers):
                if peer not in told and peer.did not in waiting:
                    told.add(peer)
                    self.hub.end(peer, Ending.GOING_AWAY)
            if not self.hub.peers or loop.time() >= flush_deadline:
                break
            await asyncio.sleep(0.01)
        stuck = [peer for peer in self.hub.peers if unsent_of(peer)]
        for peer in stuck:  # on_close hands their unsent frames back: the senders are told
            abort_connection(peer)
        while any(peer in self.hub.peers for peer in stuck) and loop.time() < deadline - 0.1:
            await asyncio.sleep(0.005)  # on_close runs in a later loop turn
        for peer in list(self.hub.peers):
            if peer not in told:
                told.add(peer)
                self.hub.end(peer, Ending.GOING_AWAY)  # after the DELIVERY_FAILED just queued
        while self.hub.peers and loop.time() < deadline - 0.05:
            await asyncio.sleep(0.01)
        stragglers = len(stuck) + len(self.hub.peers)
        for peer in list(self.hub.peers):
            abort_connection(peer)
        self.server.stop()
        try:
            await asyncio.wait_for(self.server.close_all_connections(),
                                   max(0.1, deadline - loop.time()))
        except asyncio.TimeoutError:
            log.warning("HTTP connections still open at the end of the drain")
        await self.hub.leave(timeout=max(0.5, deadline - loop.time()))
        log.info("gateway stopped", extra={
            "did": self.hub.did, "connections_closed": agents, "cut_at_deadline": stragglers,
            "drain_seconds": round(loop.time() - started, 3)})


def unsent_of(peer: Peer) -> list[Forward]:
    unsent = getattr(peer.connection, "unsent", None)
    return unsent() if unsent is not None else []


def senders_waiting(peers: set[Peer]) -> set[str]:
    """DIDs whose frames wait, not yet taken by the kernel, in one of `peers`' connections."""
    return {forward.sender for peer in peers for forward in unsent_of(peer)}


def abort_connection(peer: Peer) -> None:
    abort = getattr(peer.connection, "abort", None)
    if abort is not None:
        abort()


def banner(gateway: Gateway) -> list[tuple[str, dict[str, object]]]:
    """The startup announcement: (line, fields for a JSON log record) each."""
    config = gateway.config
    urls = f"{gateway.ws_url} and {gateway.http_url}"
    if gateway.every_interface:
        scheme = "wss" if config.tls_cert else "ws"
        first = (f"AIConexus Gateway {__version__} listening on {config.host or '0.0.0.0'}:"
                 f"{gateway.port} (every interface): from this machine {urls}; from others "
                 f"{scheme}://<this machine's address>:{gateway.port}/ws")
    else:
        first = f"AIConexus Gateway {__version__} listening on {urls}"
    lines: list[tuple[str, dict[str, object]]] = [
        (first, {"ws_url": gateway.ws_url, "http_url": gateway.http_url,
                 "bind": f"{config.host}:{gateway.port}", "version": __version__}),
        (f"gateway DID: {gateway.did}", {"did": gateway.did}),
    ]
    if gateway.hub.router.clustered:
        lines.append((f"cluster: {gateway.hub.router}", {}))
    return lines


def say(config: Config, line: str, fields: dict[str, object] | None = None, *,
        error: bool = False) -> None:
    """One line for the operator: plain on stdout (stderr for errors), a log record in JSON mode."""
    if config.log_format == "json":
        log.log(logging.ERROR if error else logging.INFO, "%s", line, extra=fields or {})
    else:
        write_line(sys.stderr if error else sys.stdout,
                   line if not error else f"aiconexus-gateway: {line}")



async def serve(config: Config) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop."""
    try:
        gateway = await Gateway.start(config)
    except StartupError as exc:
        say(config, str(exc), error=True)
        return exc.exit_code
    except ImportError as exc:  # cluster mode without the redis extra
        say(config, str(exc), error=True)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before announcing: a signal may follow at once
        loop.add_signal_handler(signum, stop.set)
    for line, fields in banner(gateway):
        say(config, line, fields)
    capacity = gateway.capacity
    log.info("descriptors: %d; up to %d WebSocket connections (MAX_CONNECTIONS) and %d HTTP "
             "connections at once; request headers time out after %g s", capacity.descriptors,
             capacity.websockets, capacity.http, min(HEADER_TIMEOUT, config.challenge_timeout),
             extra={"descriptors": capacity.descriptors, "max_connections": capacity.websockets,
                    "max_http_connections": capacity.http})
    if not config.admin_token and config.host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("%s is reachable from other machines and ADMIN_TOKEN is not set: /agents and "
                    "/metrics are open to anyone who can reach it", gateway.http_url)
    notify_ready()  # to the supervisor of --workers N, when there is one
    await stop.wait()
    log.info("signal received; shutting down")
    await gateway.stop()
    return 0


def tune_gc() -> None:
    """No full garbage collection while a process fills up with agents: the cost per agent flat.

    Each agent adds ~110 long-lived tracked objects. A full pass walks every one of them (~0.8 s
    of one core at 19,000 agents, in which nothing else runs), and at (700, 10, 100) one came
    every ~5,000 registrations: 0 passes at 5,000 agents, 3 at 19,000 (123 us per agent, the
    super-linear term of issue 17). At (700, 10, 1000) the first comes after ~7 million net
    allocations, ~50,000 registrations: beyond what one process holds under its descriptor
    limit (~19,600). Young garbage is collected as often as before. Objects alive at startup
    (modules, config) are frozen out of it. Rare full passes cost no memory because a closed
    connection leaves no reference cycle (AgentConnection.on_close breaks them): reference
    counting frees it at once, so churn does not pile up garbage waiting for a pass (benchmark
    scenario 8).
    """
    gc.freeze()
    gc.set_threshold(700, 10, 1000)


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
        directory = Path(config.log_file or ".").parent
        hint = "" if directory.is_dir() else f" (the directory {str(directory)!r} does not exist)"
        print(f"aiconexus-gateway: cannot open the log file {config.log_file}: "
              f"{exc.strerror}{hint}", file=sys.stderr)
        return 2
    if config.workers > 1 and not is_worker():
        return supervise(config, list(sys.argv[1:] if argv is None else argv))
    before, after = raise_descriptor_limit()
    if after > before:
        log.debug("raised the descriptor limit from %d to %d (the hard limit)", before, after)
    tune_gc()
    return asyncio.run(serve(config))
