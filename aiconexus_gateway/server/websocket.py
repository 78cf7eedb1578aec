"""The /ws endpoint: pumps WebSocket frames between a socket and the hub, nothing more.

The handshake's rules live in AgentEndpoint (checks, draining, admission, origin), taken by both
HTTP paths that reach it: the lean one for plain TCP (server/upgrade.py) and Tornado's
(AgentSocketHandler: TLS, and what the lean path hands over). Either gives the upgraded stream to
an AgentConnection, which is the connection from then on (no RequestHandler is kept).

Writes: every frame the hub sends a connection goes through its outbox (`send`), and the outboxes
filled while one read is processed are written together (`WriteBatch`), one write(2) per
recipient. Frames Tornado writes itself (close, ping, pong) flush the outbox first
(tornado_internals.FrameProtocol), so a close frame is always the last thing on the wire.
Keepalive pings come from the application's one Pinger (server/pinger.py), not a task per socket.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import struct
import sys
from asyncio import get_running_loop
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from time import monotonic
from typing import Any

from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.log import app_log
from tornado.websocket import WebSocketHandler, WebSocketProtocol

from .. import PROTOCOL
from ..access import origin_allowed
from ..admission import retry_after_header
from ..errors import CloseCode, Ending, ErrorCode, ProtocolError
from ..hub import Hub, Peer
from ..ratelimit import TokenBucket
from ..session import Forward
from .pinger import Pinger
from .tornado_internals import FrameProtocol, bytes_queued, bytes_sent, frame_protocol, write_now

log = logging.getLogger("aiconexus.gateway.ws")

DEFAULT_OUTBOUND_BUFFER = 1024 * 1024

# Close code for a browser page whose Origin is not in ALLOWED_ORIGINS (docs/protocol.md). A page
# cannot read the HTTP status of a refused upgrade, so the upgrade is accepted, an ERROR says why,
# and the close code and reason reach the page's onclose handler.
ORIGIN_NOT_ALLOWED = 4403

# Control frames (ping, pong) and small message fragments cost the gateway a read and a parse
# each without being messages, so RATE_LIMIT does not see them. Each connection may send
# CONTROL_RATE of them per second after a burst of CONTROL_BURST; each one from a connection that
# has not registered is also charged CONTROL_FRAME_COST seconds to its address's work budget
# (hub.charge: the per-address budget handshakes draw on, ratelimit.WorkBudget). A connection
# over either is closed with 4429. Fragments of FRAGMENT_FREE bytes or more are not counted: their
# cost is in their bytes, which MAX_MESSAGE_SIZE bounds.
CONTROL_RATE = 20.0
CONTROL_BURST = 100
CONTROL_FRAME_COST = 0.00003
FRAGMENT_FREE = 1024


class WriteBatch:
    """The handlers whose outbox holds frames, in the order they were queued.

    A burst read from one connection queues its frames; they are written as soon as that read is
    used up (on_message: no frame of the same socket read follows), and at the latest at the end
    of the event-loop turn (one call_soon for the whole batch, pending at most once, instead of
    one per recipient). So a recipient of several frames gets one write, and a frame never waits
    behind the processing of other connections'.
    One per application (make_app), passed to each handler through `initialize`.
    """

    __slots__ = ("_scheduled", "queued")

    def __init__(self) -> None:
        self.queued: dict[AgentConnection, None] = {}  # a dict as an ordered set
        self._scheduled = False  # an end-of-turn flush is pending

    def add(self, handler: AgentConnection) -> None:
        """`handler`'s outbox got its first frame: written by the end of this loop turn."""
        self.queued[handler] = None
        if not self._scheduled:
            self._scheduled = True
            get_running_loop().call_soon(self._end_of_turn)

    def _end_of_turn(self) -> None:
        self._scheduled = False
        if self.queued:
            self.flush()

    def flush(self) -> None:
        """Write every queued outbox now."""
        for handler in list(self.queued):
            handler.flush_outbox()


class RefusalLog:
    """Handshake refusals, logged at INFO with their reason, at most once per REFUSAL_LOG_INTERVAL
    per reason (a reconnect storm, or a flood of bad requests, would otherwise flood the log),
    saying how many were not logged. One per application (make_app), through `initialize`."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}  # reason -> (when logged, refusals since)

    def refused(self, ip: str, status: int | str, code: str, message: str) -> None:
        now = monotonic()
        logged, since = self._last.get(code, (-REFUSAL_LOG_INTERVAL, 0))
        if now - logged < REFUSAL_LOG_INTERVAL:
            self._last[code] = (logged, since + 1)
            return
        self._last[code] = (now, 0)
        more = f" ({since} more since the last such line)" if since else ""
        log.info("refused /ws from %s: %s %s: %s%s", ip, status, code, message, more,
                 extra={"remote_ip": ip, "status": status, "reason": code})


REFUSAL_LOG_INTERVAL = 1.0


_HEADER_16 = struct.Struct("!BBH").pack  # FIN + text, 126, a 16-bit length
_HEADER_64 = struct.Struct("!BBQ").pack  # FIN + text, 127, a 64-bit length


def frame_header(length: int) -> bytes:
    """The header of a final, unmasked text frame of `length` bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return _HEADER_16(0x81, 126, length)
    return _HEADER_64(0x81, 127, length)


def offered_subprotocols(header: str | None) -> list[str]:
    """The subprotocols listed in a Sec-WebSocket-Protocol header."""
    if not header:
        return []
    return [item.strip() for item in header.split(",") if item.strip()]


def valid_websocket_key(key: str | None) -> bool:
    """Sec-WebSocket-Key is the base64 of 16 bytes (RFC 6455 4.1, 4.2.1 item 5)."""
    if not key:
        return False
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def utf8_length_exceeds(text: str, limit: int) -> bool:
    """True when `text` encoded as UTF-8 is longer than `limit` bytes (cheap for short text)."""
    if len(text) * 4 <= limit:
        return False
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


@dataclass(frozen=True, slots=True)
class HandshakeRefusal:
    """A /ws request answered with an HTTP error instead of an upgrade (a JSON body says why)."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


DRAINING = HandshakeRefusal(503, "DRAINING", "the gateway is shutting down; connect to another "
                            "instance", (("Retry-After", "1"),))


def check_upgrade(headers: HTTPHeaders) -> HandshakeRefusal | None:
    """What RFC 6455 4.2.1 and the subprotocol say of a GET /ws request's headers: the refusal,
    or None when it may upgrade (admission and draining are the endpoint's to decide)."""
    if headers.get("Upgrade", "").lower() != "websocket":
        return HandshakeRefusal(400, "NOT_A_WEBSOCKET",
                                f"/ws is a WebSocket endpoint (subprotocol {PROTOCOL}); "
                                "send an Upgrade: websocket request")
    if "upgrade" not in (item.strip().lower() for item in headers.get("Connection", "").split(",")):
        return HandshakeRefusal(400, "BAD_HANDSHAKE", "a WebSocket upgrade needs the header "
                                "Connection: Upgrade (RFC 6455 4.1)")
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        return HandshakeRefusal(426, "UNSUPPORTED_WEBSOCKET_VERSION",
                                "this gateway speaks WebSocket version 13 (RFC 6455); "
                                f"got Sec-WebSocket-Version {headers.get('Sec-WebSocket-Version')!r}",
                                (("Sec-WebSocket-Version", "13"),))
    if not valid_websocket_key(headers.get("Sec-WebSocket-Key")) or not headers.get("Host"):
        return HandshakeRefusal(400, "BAD_HANDSHAKE", "a WebSocket upgrade needs a Host header and "
                                "a Sec-WebSocket-Key of 16 random bytes in base64 (RFC 6455 4.1)")
    offered = offered_subprotocols(headers.get("Sec-WebSocket-Protocol"))
    if offered and PROTOCOL not in offered:
        return HandshakeRefusal(400, "UNSUPPORTED_SUBPROTOCOL",
                                f"this gateway speaks subprotocol {PROTOCOL}; offered: "
                                f"{', '.join(offered)}")
    return None


def refusal_decided(request: HTTPServerRequest) -> HandshakeRefusal | None:
    """The endpoint's refusal of this request, when the lean path (server/upgrade.py) decided it
    already and handed the request to Tornado to answer (once: the next request asks anew)."""
    context = getattr(request.connection, "context", None)
    refusal: HandshakeRefusal | None = getattr(context, "refusal", None)
    if refusal is not None:
        context.refusal = None  # type: ignore[union-attr]
    return refusal


class AgentEndpoint:
    """What every /ws connection shares, and the handshake's decisions, whichever HTTP path
    carried the request (Tornado's, AgentSocketHandler; or the lean one, server/upgrade.py).
    One per application (make_app)."""

    def __init__(self, hub: Hub, batch: WriteBatch, max_message_size: int,
                 max_outbound_buffer: int = DEFAULT_OUTBOUND_BUFFER,
                 allowed_origins: tuple[str, ...] = (),
                 refusals: RefusalLog | None = None, pinger: Pinger | None = None) -> None:
        self.hub = hub
        self.batch = batch
        self.refusals = refusals or RefusalLog()
        # the application's keepalive (make_app); one of its own when built without one
        self.pinger = pinger or Pinger(hub.settings.session.ping_interval)
        self.limit = max_message_size
        self.max_outbound = max_outbound_buffer
        self.allowed_origins = allowed_origins
        # Frames up to twice the limit are read and answered with MESSAGE_TOO_LARGE; frames
        # announcing more are cut off with 1009 before they are buffered (FrameProtocol).
        self.frame_limit = max(2 * max_message_size, max_message_size + 65536)

    def refusal(self, headers: HTTPHeaders, ip: str) -> HandshakeRefusal | None:
        """Why this upgrade request is refused, or None: then `ip` holds a connection slot, which
        the connection releases when it ends (`AgentConnection.on_close`, or the caller when it
        never opens). Asked once per request, whichever path carries it."""
        refusal = check_upgrade(headers)
        if refusal is not None:
            return refusal
        hub = self.hub
        if hub.draining:
            hub.metrics.refused("draining")
            return DRAINING
        admission = hub.admit(ip)  # counts unregistered connections too, from here on
        if admission is not None:
            return HandshakeRefusal(admission.status, admission.code, admission.message,
                                    (("Retry-After", retry_after_header(admission.retry_after)),))
        return None

    def refused(self, ip: str, refusal: HandshakeRefusal) -> None:
        """Count and log a refusal about to be answered."""
        self.hub.metrics.refused_request()
        self.refusals.refused(ip, refusal.status, refusal.code, refusal.message)

    def refused_origin(self, headers: HTTPHeaders, ip: str) -> str | None:
        """The Origin of a browser's page that may not connect (ALLOWED_ORIGINS), else None: the
        upgrade goes ahead only to tell it why (see ORIGIN_NOT_ALLOWED), counted and logged here.
        (A client without an Origin is not a browser page: always let in.)"""
        origin = headers.get("Origin")
        if origin is None or origin_allowed(origin, self.allowed_origins):
            return None
        self.hub.metrics.refused("origin")
        self.hub.metrics.refused_request()
        self.refusals.refused(ip, f"close {ORIGIN_NOT_ALLOWED}", "ORIGIN_NOT_ALLOWED",
                              f"origin {origin} is not in ALLOWED_ORIGINS")
        return origin


class AgentSocketHandler(WebSocketHandler):
    """/ws through Tornado's HTTP path (TLS; and what the lean path hands over: refusals, odd
    requests): the endpoint's checks, Tornado's 101, then an AgentConnection takes the stream."""

    def initialize(self, endpoint: AgentEndpoint) -> None:
        self.endpoint = endpoint
        self.agent: AgentConnection | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        headers = self.request.headers
        ip = str(self.request.remote_ip)
        endpoint = self.endpoint
        refusal = refusal_decided(self.request) or endpoint.refusal(headers, ip)
        if refusal is not None:
            for name, value in refusal.headers:
                self.set_header(name, value)
            endpoint.refused(ip, refusal)
            self.set_status(refusal.status)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(json.dumps({"error": refusal.code, "message": refusal.message}) + "\n")
            return
        agent = self.agent = AgentConnection(endpoint, ip, endpoint.refused_origin(headers, ip))
        try:
            await super().get(*args, **kwargs)  # returns once the connection is handed over
        finally:
            if not agent.started:  # Tornado refused it after all (or the client left): not opened
                endpoint.hub.release(ip)

    def check_origin(self, origin: str) -> bool:
        return True  # decided in get(), from ALLOWED_ORIGINS, before Tornado's same-host rule

    def get_compression_options(self) -> dict[str, Any] | None:
        return None  # frames are never compressed (the outbox writes them as they are)

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        if super().get_websocket_protocol() is None or self.agent is None:
            return None
        return frame_protocol(self.agent, self.endpoint.frame_limit)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return PROTOCOL if PROTOCOL in subprotocols else None

    def open(self, *args: str, **kwargs: str) -> None:
        assert self.agent is not None and isinstance(self.ws_connection, FrameProtocol)
        self.agent.start(self.ws_connection)
        self.ws_connection = None  # the agent's now; this handler is done with
        self.agent = None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Errors Tornado raises before get() (405 for POST...) in the documented JSON too."""
        message = HTTPStatus(status_code).phrase
        if status_code == 405:
            message = f"{self.request.method} is not allowed on /ws; open a WebSocket (GET + Upgrade)"
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": HTTPStatus(status_code).name, "message": message}) + "\n")


class AgentConnection:
    """One agent connection after the upgrade. Frames go to the hub in arrival order (FrameProtocol
    reads them); the hub answers via `send`. Not a RequestHandler: nothing of the HTTP request
    is kept but the address."""

    def __init__(self, endpoint: AgentEndpoint, ip: str, refused_origin: str | None = None) -> None:
        self.hub = endpoint.hub
        self.pinger = endpoint.pinger
        self.batch = endpoint.batch
        self.limit = endpoint.limit
        self.max_outbound = endpoint.max_outbound
        self.remote_ip = ip
        self.peer: Peer | None = None
        # set when the upgrade is only to say why not (ORIGIN_NOT_ALLOWED)
        self.refused_origin = refused_origin
        self.started = False  # start() ran: from then on on_close releases the address's slot
        self.ws_connection: FrameProtocol | None = None  # None once closing (close())
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._closed = False  # on_close ran
        self._timer: object | None = None  # the challenge timer, then the idle timer
        self._stream: IOStream | None = None
        self._frames: FrameProtocol | None = None  # the open connection's protocol
        self._control: TokenBucket | None = None  # pings, pongs, small fragments
        # (write index at its end, Forward or None) of frames queued but not yet taken by the
        # kernel, so the senders of those that never leave can be told when the connection closes
        # (made when the kernel first leaves some behind: an empty deque is 624 bytes an agent)
        self._unflushed: deque[tuple[int, Forward | None]] | None = None
        # Frames sent while one read is processed, written together by flush_outbox (WriteBatch):
        # a burst of messages to one agent costs one write(2) and fewer TCP segments, not one each
        self._outbox: list[bytes] = []
        self._outbox_texts: list[tuple[int, Forward | None]] = []  # (frame length, routed)
        self._outbox_size = 0

    def start(self, frames: FrameProtocol, head: bytes = b"") -> None:
        """The upgrade is done (`head`: the 101, when not written yet: it goes out with the
        CHALLENGE in one write): open the session and read frames. Never raises."""
        self.started = True
        try:
            if head:  # first in the outbox (send() then batches nothing: flushed below)
                self._outbox.append(head)
                self._outbox_texts.append((len(head), None))
                self._outbox_size += len(head)
            self.open(frames)
        except Exception:
            self.log_exception(*sys.exc_info())
            frames.abort()
        if head:
            self.flush_outbox()
        frames.start_reading()

    # -- the connection -----------------------------------------------------------------------------

    def open(self, frames: FrameProtocol) -> None:
        self.ws_connection = self._frames = frames
        stream = self._stream = frames.stream
        stream.set_nodelay(True)
        self._control = TokenBucket(CONTROL_RATE, CONTROL_BURST, monotonic())
        if self.refused_origin is not None:
            self.send(self.hub.factory.error(None, ProtocolError(
                ErrorCode.AUTH_FAILED,
                f"browser origin {self.refused_origin!r} is not allowed; the gateway's operator "
                "lists the origins it accepts in ALLOWED_ORIGINS",
                details={"origin": self.refused_origin, "close_code": ORIGIN_NOT_ALLOWED})))
            self.close(ORIGIN_NOT_ALLOWED, "origin not allowed (see ALLOWED_ORIGINS)")
            return
        self.peer = self.hub.open(self)
        self.pinger.add(self)
        loop = IOLoop.current()
        self._timer = loop.call_later(self.hub.challenge_timeout,
                                      self._challenge_expired)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Start the close handshake (RFC 6455 7.1.2): a Close frame after what is queued."""
        if self.ws_connection is not None:
            self.ws_connection.close(code, reason)
            self.ws_connection = None

    def on_ws_connection_close(self, close_code: int | None = None,
                               close_reason: str | None = None) -> None:
        """FrameProtocol: the connection has ended (`close_code`: the peer's, if it sent one)."""
        self.close_code = close_code
        self.close_reason = close_reason
        if self.ws_connection is not None:
            self.ws_connection.on_connection_close()
            self.ws_connection = None
        if not self._closed:
            self._closed = True
            self.on_close()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """A bug of ours in a frame's handling (FrameProtocol then aborts the connection)."""
        app_log.error("Uncaught exception on /ws from %s", self.remote_ip, exc_info=(typ, value, tb))

    def on_ping(self, data: bytes) -> None:
        pass  # (Tornado answers pings; FrameProtocol budgets them)

    def on_message(self, message: str | bytes) -> None:
        peer = self.peer
        if peer is None:
            return
        if isinstance(message, str):
            if utf8_length_exceeds(message, self.limit):
                self._too_large()
                return
            try:
                self.hub.receive(peer, message)
            except Exception:  # a bug of ours: answer INTERNAL_ERROR, never drop silently
                log.exception("internal error handling a frame", extra={"did": peer.did})
                self.hub.internal_error(peer, message)
            batch = self.batch
            frames = self._frames
            if batch.queued and (frames is None or not frames.unread):
                batch.flush()  # the last frame of this read: its answers need not wait
        else:
            if len(message) > self.limit:
                self._too_large()
                return
            self.hub.receive_binary(peer)

    # -- FrameProtocol's reports ----------------------------------------------------------------------

    def on_pong(self, data: bytes) -> None:
        self.pinger.answered(self)

    def on_control_frame(self, size: int) -> bool:
        """A ping, pong or fragment of `size` bytes: within budget (True), or closed 4429."""
        if size >= FRAGMENT_FREE:
            return True
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return False  # closing already (maybe for this very flood): dropped, not answered
        control = self._control
        within = control is None or not control.take(monotonic())
        peer = self.peer
        # Unauthenticated work is paid by the address too (a registered agent's control frames
        # are its own connection's business: an address shared with an attacker does not cut it).
        over_address = (peer is None or peer.record is None) and \
            self.hub.charge(self.remote_ip, CONTROL_FRAME_COST)
        if within and not over_address:
            return True
        log.info("closing /ws from %s: too many control frames or fragments (%s; close 4429)",
                 self.remote_ip, "address over its work budget" if over_address else
                 f"over {CONTROL_RATE:g}/s per connection",
                 extra={"remote_ip": self.remote_ip, "did": self.peer.did if self.peer else None})
        if self.peer is not None:
            self.hub.end(self.peer, Ending.RATE_LIMITED)
        else:
            self.close(CloseCode.RATE_LIMITED, "too many control frames")
        return False

    def on_protocol_violation(self, reason: str) -> None:
        """A frame broke RFC 6455; FrameProtocol closes with 1002 (or 1007) after this."""
        log.info("closing /ws from %s: %s (RFC 6455; close 1002)", self.remote_ip, reason,
                 extra={"remote_ip": self.remote_ip, "did": self.peer.did if self.peer else None,
                        "reason": reason})
        if self.peer is not None:
            self.peer.session.end(Ending.PROTOCOL_ERROR)

    def _too_large(self) -> None:
        self._fail_frame(Ending.TOO_LARGE, ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE, f"frames are limited to {self.limit} bytes"))

    def on_invalid_utf8(self) -> None:
        """A text frame that is not UTF-8: ERROR, then close 1007 (RFC 6455 8.1)."""
        self._fail_frame(Ending.INVALID_UTF8, ProtocolError(
            ErrorCode.MALFORMED_MESSAGE, "a text frame was not valid UTF-8"))

    def _fail_frame(self, ending: Ending, error: ProtocolError) -> None:
        """A frame the connection cannot survive, registered or not: ERROR, count, close."""
        if self.peer is None:
            self.close(ending.code, ending.reason())
            return
        self.hub.end(self.peer, ending, error)

    # -- timers ---------------------------------------------------------------------------------------

    def _challenge_expired(self) -> None:
        self._timer = None
        if self.peer is not None:
            self.hub.challenge_expired(self.peer)

    def registered(self) -> None:
        """The hub registered the agent: the challenge timer gives way to the idle timer."""
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
        self._schedule_idle_check(self.hub.agent_timeout)

    def _schedule_idle_check(self, delay: float) -> None:
        self._timer = IOLoop.current().call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        self._timer = None
        if self.peer is None:
            return
        delay = self.hub.check_idle(self.peer)
        if delay is not None:
            self._schedule_idle_check(delay)

    def ping_now(self) -> None:
        """The pinger's turn for this connection: a ping frame, after what is queued."""
        if self._frames is not None:
            self._frames.ping()

    def ping_timed_out(self) -> None:
        """No pong within PING_INTERVAL of the last ping: close 1000 "ping timed out" (as Tornado's
        own keepalive did; protocol.md section 13)."""
        if self._frames is not None:
            self._frames.close(reason="ping timed out")

    def on_close(self) -> None:
        self.pinger.remove(self)
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
            self._timer = None
        self.batch.queued.pop(self, None)
        peer = self.peer
        if peer is not None:
            self.hub.closed(peer, self.close_code, self.close_reason)
            lost = self.unsent()
            self._outbox, self._outbox_texts, self._outbox_size = [], [], 0
            self._unflushed = None
            if lost:
                self.hub.lost(peer, lost)
        # Break the cycles (peer <-> handler, handler -> stream) so a closed connection's memory
        # comes back at once, by reference counting, not at the next full garbage collection.
        self.peer = None
        self._stream = None
        self._frames = None
        self.hub.release(self.remote_ip)

    def unsent(self) -> list[Forward]:
        """The agents' frames queued to this connection that the kernel has not taken (yet)."""
        unsent = [routed for _, routed in self._outbox_texts if routed is not None]  # not written
        if self._unflushed and self._stream is not None:
            done = bytes_sent(self._stream)
            unsent = [routed for end, routed in self._unflushed
                      if end > done and routed is not None] + unsent
        return unsent

    def backlog(self) -> int:
        """Bytes queued for this connection that the kernel has not taken (MAX_OUTBOUND_BUFFER)."""
        stream = self._stream
        if stream is None:
            return self._outbox_size
        return bytes_queued(stream) - bytes_sent(stream) + self._outbox_size

    def abort(self) -> None:
        """Cut the TCP connection now, without a close handshake (end of a drain)."""
        if self._stream is not None and not self._stream.closed():
            self._stream.close()

    # -- the hub's Connection protocol: the one write path ----------------------------------------------

    def send(self, text: str, routed: Forward | None = None) -> bool:
        """Queue `text`; False when closing, or when the peer is a slow consumer (then closed).

        The backlog Tornado holds for a connection is bounded by MAX_OUTBOUND_BUFFER: a frame that
        would take it past the bound is not queued and the connection is closed with 4008.
        Queued frames are written by flush_outbox, one write for all frames of a loop turn (Tornado's
        write_message would also wrap each frame in a Task, one more event-loop turn per message).
        """
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return False
        stream = self._stream
        assert stream is not None
        done = bytes_sent(stream)
        pending = bytes_queued(stream) - done + self._outbox_size
        if pending:
            unflushed = self._unflushed
            while unflushed and unflushed[0][0] <= done:
                unflushed.popleft()
            if pending + len(text) > self.max_outbound:
                if self.peer is not None:
                    self.hub.slow_consumer(self.peer, pending, self.max_outbound)
                return False
        data = text.encode("utf-8")
        header = frame_header(len(data))
        if not self._outbox:
            self.batch.add(self)
        self._outbox += (header, data)
        size = len(header) + len(data)
        self._outbox_texts.append((size, routed))
        self._outbox_size += size
        return True

    def flush_outbox(self) -> None:
        """Write the frames queued by `send` in one go (end of the read or loop turn, before a
        control frame)."""
        self.batch.queued.pop(self, None)
        if not self._outbox:
            return
        stream = self._stream
        if stream is None or stream.closed():
            return  # on_close reports them as lost
        parts, texts = self._outbox, self._outbox_texts
        self._outbox, self._outbox_texts, self._outbox_size = [], [], 0
        end = bytes_queued(stream)
        try:
            write_now(stream, b"".join(parts))
        except StreamClosedError:
            if self.peer is not None:
                self.hub.lost(self.peer, [routed for _, routed in texts if routed is not None])
            return
        done = bytes_sent(stream)
        if end + sum(size for size, _ in texts) > done:  # the kernel did not take it all yet
            unflushed = self._unflushed
            if unflushed is None:
                unflushed = self._unflushed = deque()
            for size, routed in texts:
                end += size
                if end > done:
                    unflushed.append((end, routed))
