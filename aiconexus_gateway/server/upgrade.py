"""The lean path for agents' WebSocket upgrades on plain TCP (issue 17: registrations per CPU second).

Tornado's HTTP path costs an agent's connection more than the hub's whole registration: a
connection object and a request loop of coroutines with timeout futures, a request object,
routing, a RequestHandler (template namespace, default headers), a Task for `get()`, the 101
written apart from the CHALLENGE. Here `GatewayServer.handle_stream` reads the request head once
(the same read, size limit and header timeout as Tornado's), and when it is a clean
`GET /ws` upgrade that the endpoint admits, answers it itself: the same checks in the same order
(AgentEndpoint, server/websocket.py), the 101 Tornado would write and the CHALLENGE in one
write, then an AgentConnection reads frames from the stream.

Everything else is Tornado's, answered exactly as before: the head goes back in front of the
stream's read buffer and Tornado's HTTP1ServerConnection serves the connection from its first
byte (HTTP views, refusals, methods, malformed or unusual requests, keep-alive). A refusal the
endpoint decided here is handed over with the request (`UpgradeContext.refusal`), so the
endpoint (and the address's budget) is asked once. TLS connections keep Tornado's path throughout.
"""

from __future__ import annotations

import logging
import time
from asyncio import Future
from collections.abc import Awaitable
from typing import cast

import tornado
from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPHeaders, format_timestamp, parse_request_start_line
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError, UnsatisfiableReadError
from tornado.log import access_log, app_log
from tornado.websocket import WebSocketProtocol13

from .. import PROTOCOL
from .tornado_internals import (
    RequestContext,
    apply_xheaders,
    frame_protocol,
    track_connection,
    unapply_xheaders,
    unread,
    untrack_connection,
    valid_host,
)
from .websocket import AgentConnection, AgentEndpoint, HandshakeRefusal, offered_subprotocols

HEAD_END = b"\r?\n\r?\n"  # what Tornado reads a request head up to (HTTP1Connection)
SERVER_HEADER = f"TornadoServer/{tornado.version}"  # as RequestHandler.clear()


class UpgradeContext(RequestContext):
    """Tornado's per-connection request context, carrying the endpoint's refusal of an upgrade
    that the lean path decided and hands to Tornado to answer (websocket.refusal_decided)."""

    refusal: HandshakeRefusal | None = None


class GatewayServer(HTTPServer):
    """Tornado's HTTPServer with the lean upgrade path for /ws (set `endpoint` to enable it)."""

    endpoint: AgentEndpoint | None = None

    def handle_stream(self, stream: IOStream, address: tuple[str, int]) -> None:
        endpoint = self.endpoint
        if endpoint is None or type(stream) is not IOStream:  # TLS: Tornado's path throughout
            super().handle_stream(stream, address)
            return
        HeadReader(self, endpoint, stream, address).start()

    def hand_over(self, stream: IOStream, context: UpgradeContext, head: bytes) -> None:
        """Tornado serves the connection from here, as if it had read `head` itself."""
        if stream.closed():
            return
        unread(stream, head)
        connection = HTTP1ServerConnection(stream, self.conn_params, context)
        track_connection(self, connection)
        connection.start_serving(self)

    def dispatch(self, stream: IOStream, address: tuple[str, int], head: bytes,
                 endpoint: AgentEndpoint) -> None:
        """A request head has been read: upgrade it here, or hand it to Tornado."""
        context = UpgradeContext(stream, address, self.protocol, self.trusted_downstream)
        try:
            text = head.decode("latin1").lstrip("\r\n")  # as HTTP1Connection._parse_headers
            eol = text.find("\n")
            start = parse_request_start_line(text[:eol].rstrip("\r"))
            headers = HTTPHeaders.parse(text[eol:])
        except Exception:  # malformed: Tornado answers it (400) as always
            self.hand_over(stream, context, head)
            return
        if not lean_upgrade(start.method, start.path, start.version, headers):
            self.hand_over(stream, context, head)
            return
        if self.xheaders:
            apply_xheaders(context, headers)
        ip = context.remote_ip
        refusal = endpoint.refusal(headers, ip)
        if refusal is not None:  # answered by AgentSocketHandler, which Tornado routes it to
            unapply_xheaders(context)
            context.refusal = refusal
            self.hand_over(stream, context, head)
            return
        started = time.time()
        offered = offered_subprotocols(headers.get("Sec-WebSocket-Protocol"))
        agent = AgentConnection(endpoint, ip, endpoint.refused_origin(headers, ip))
        frames = frame_protocol(agent, endpoint.frame_limit)
        frames.stream = stream
        frames.selected_subprotocol = PROTOCOL if PROTOCOL in offered else None
        agent.start(frames, switching_protocols(headers["Sec-WebSocket-Key"],
                                                frames.selected_subprotocol))
        if access_log.isEnabledFor(logging.INFO):  # (LOG_LEVEL=DEBUG) as Tornado logs requests
            access_log.info("%d %s %.2fms", 101, f"GET {start.path} ({ip})",
                            1000.0 * (time.time() - started))


class HeadReader:
    """Reads one connection's request head, bounded as Tornado bounds it (max_header_size, the
    header timeout); counted among the server's HTTP connections meanwhile (AcceptGate)."""

    __slots__ = ("address", "endpoint", "server", "stream", "timer")

    def __init__(self, server: GatewayServer, endpoint: AgentEndpoint, stream: IOStream,
                 address: tuple[str, int]) -> None:
        self.server = server
        self.endpoint = endpoint
        self.stream = stream
        self.address = address
        self.timer: object | None = None

    def start(self) -> None:
        track_connection(self.server, self)
        params = self.server.conn_params
        future = cast(Future[bytes], self.stream.read_until_regex(
            HEAD_END, max_bytes=params.max_header_size))
        if future.done():
            self._read(future)
            return
        if params.header_timeout is not None:
            self.timer = IOLoop.current().call_later(params.header_timeout, self._timed_out)
        future.add_done_callback(self._read)

    def _timed_out(self) -> None:
        self.timer = None
        self.stream.close()  # as Tornado does when the headers do not come in time

    def close(self) -> Awaitable[None]:
        """Drop the connection (HTTPServer.close_all_connections, at the end of a drain)."""
        untrack_connection(self.server, self)
        self.stream.close()
        done: Future[None] = Future()
        done.set_result(None)
        return done

    def _read(self, future: Future[bytes]) -> None:
        if self.timer is not None:
            IOLoop.current().remove_timeout(self.timer)
            self.timer = None
        untrack_connection(self.server, self)
        try:
            head = future.result()
        except (StreamClosedError, UnsatisfiableReadError):
            return  # closed, timed out, or a head over the limit (the stream logged and closed)
        if self.stream.closed():
            return
        try:
            self.server.dispatch(self.stream, self.address, head, self.endpoint)
        except Exception:  # a bug of ours: logged, and the connection dropped, as Tornado does
            app_log.error("Uncaught exception serving %s", self.address, exc_info=True)
            self.stream.close()


def lean_upgrade(method: str, target: str, version: str, headers: HTTPHeaders) -> bool:
    """Is this a request the lean path may answer: an HTTP/1.1 GET of /ws (a query allowed)
    with no body, a valid Host, and nothing Tornado's path would treat differently?"""
    if method != "GET" or version != "HTTP/1.1" or target.partition("?")[0] != "/ws":
        return False
    if "Content-Length" in headers or "Transfer-Encoding" in headers or "Expect" in headers:
        return False  # a body, or 100-continue: Tornado's to read
    host = headers.get("Host")
    if host is None or not valid_host(host):
        return False  # Tornado answers 400
    # Tornado's own cross-origin rule (check_origin accepts every origin: ALLOWED_ORIGINS decides)
    # refuses only a cross-site Sec-Fetch-Site without an Origin: answered over there (403).
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none") and not headers.get("Origin"):
        return False
    # Tornado checks the version exactly, the endpoint after stripping: let Tornado see " 13 ".
    return headers.get("Sec-WebSocket-Version") == "13"


_date: tuple[int, str] = (0, "")


def http_date() -> str:
    """The Date header's value, formatted once per second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, format_timestamp(now))
    return _date[1]


def switching_protocols(key: str, subprotocol: str | None) -> bytes:
    """The 101 response Tornado writes for an accepted upgrade, byte for byte (its header order
    and spelling: RequestHandler.clear, WebSocketProtocol13._accept_connection)."""
    protocol = f"Sec-Websocket-Protocol: {subprotocol}\r\n" if subprotocol else ""
    return (f"HTTP/1.1 101 Switching Protocols\r\nServer: {SERVER_HEADER}\r\n"
            f"Date: {http_date()}\r\n{protocol}Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-Websocket-Accept: {WebSocketProtocol13.compute_accept_value(key)}\r\n\r\n"
            ).encode("latin1")
