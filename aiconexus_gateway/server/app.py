"""Application assembly and process lifecycle: make_app(), Gateway.start/stop, main()."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
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
    )
    return Hub(HubSettings(session=session, agent_timeout=config.agent_timeout), identity,
               clock=clock)


def make_app(hub: Hub, config: Config) -> Application:
    """The Tornado application: /ws for agents, HTTP JSON for operators."""
    deps = {"hub": hub}
    return Application(
        [
            (r"/ws", AgentSocketHandler, {"hub": hub, "max_message_size": config.max_message_size}),
            (r"/health", HealthHandler, deps),
            (r"/agents", AgentsHandler, deps),
            (r"/agents/(.+)", AgentHandler, deps),
            (r"/metrics", MetricsHandler, deps),
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
        self.http_url = f"http://{host}:{self.port}"
        self.ws_url = f"ws://{host}:{self.port}/ws"
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
        app = make_app(hub, config)
        sockets = bind_sockets(config.port, config.host, backlog=1024)
        server = HTTPServer(app, max_body_size=1024 * 1024)
        server.add_sockets(sockets)
        gateway = cls(config, hub, server, sockets)
        log.info("gateway %s started on %s (DID %s)", __version__, gateway.ws_url, hub.did,
                 extra={"did": hub.did, "port": gateway.port})
        return gateway

    async def stop(self, timeout: float | None = None) -> None:
        """Stop accepting, close every agent with 1001, wait for them to go (bounded)."""
        if self._stopped:
            return
        self._stopped = True
        self.hub.draining = True
        self.server.stop()
        self.hub.close_all(CloseCode.GOING_AWAY, "gateway shutting down")
        deadline = asyncio.get_running_loop().time() + (timeout or self.config.drain_timeout)
        while self.hub.peers and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await self.server.close_all_connections()
        log.info("gateway stopped", extra={"did": self.hub.did})


async def serve(config: Config) -> int:
    """Run until SIGINT or SIGTERM; 0 after a clean stop."""
    try:
        gateway = await Gateway.start(config)
    except OSError as exc:
        print(f"aiconexus-gateway: cannot listen on {config.host}:{config.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    except ValueError as exc:  # an unreadable key file
        print(f"aiconexus-gateway: {exc}", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before announcing: a signal may follow at once
        loop.add_signal_handler(signum, stop.set)
    print(f"AIConexus Gateway {__version__} listening on {gateway.ws_url} and {gateway.http_url}",
          flush=True)
    print(f"gateway DID: {gateway.did}", flush=True)
    await stop.wait()
    log.info("signal received; shutting down")
    await gateway.stop()
    return 0


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
    return asyncio.run(serve(config))
