"""The /ws endpoint: pumps WebSocket frames between a socket and the hub, nothing more."""

from __future__ import annotations

import json
import logging
from asyncio import Future, get_running_loop
from collections import deque
from typing import Any, cast

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, StreamClosedError
from tornado.websocket import (
    WebSocketClosedError,
    WebSocketHandler,
    WebSocketProtocol,
    WebSocketProtocol13,
)

from .. import PROTOCOL
from ..errors import CloseCode, ErrorCode, ProtocolError
from ..hub import Hub, Peer
from ..limits import origin_allowed, retry_after_header

log = logging.getLogger("aiconexus.gateway.ws")

DEFAULT_OUTBOUND_BUFFER = 1024 * 1024


def pending_output(stream: IOStream) -> int:
    """Bytes handed to `stream` that the kernel has not taken yet (Tornado 6.x write indexes)."""
    return stream._total_write_index - stream._total_write_done_index


class StrictUTF8Protocol(WebSocketProtocol13):
    """Tornado's RFC 6455 protocol, except for text frames that are not UTF-8.

    Tornado drops the TCP connection on them without a close frame; RFC 6455 8.1 asks to fail the
    connection with close code 1007. Valid text frames are decoded once, as in Tornado.
    """

    def _handle_message(self, opcode: int, data: bytes) -> Future[None] | None:
        if opcode != 0x1 or self.client_terminated or self._frame_compressed:
            return super()._handle_message(opcode, data)
        self._message_bytes_in += len(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            cast("AgentSocketHandler", self.handler).on_invalid_utf8()
            return None
        return self._run_callback(self.handler.on_message, text)

    def _write_frame(self, fin: bool, opcode: int, data: bytes, flags: int = 0) -> Future[None]:
        # Frames Tornado writes itself (close, ping, pong) go after those the handler has queued
        # in this loop turn: a close frame must be the last thing on the wire.
        cast("AgentSocketHandler", self.handler).flush_outbox()
        return super()._write_frame(fin, opcode, data, flags)


# Handlers whose outbox holds frames, in the order they were queued (a dict as an ordered set). A
# burst read from one connection queues its frames; they are written as soon as that read is used
# up (on_message sees an empty read buffer), and at the latest at the end of the event-loop turn
# (each handler's own call_soon, which also takes it off here). So a recipient of several frames
# gets one write, and a frame never waits behind the processing of other connections' frames.
_queued: dict[AgentSocketHandler, None] = {}


def flush_queued() -> None:
    """Write every queued outbox now."""
    for handler in list(_queued):
        handler.flush_outbox()


def frame_header(length: int) -> bytes:
    """The header of a final, unmasked text frame of `length` bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


def offered_subprotocols(header: str | None) -> list[str]:
    """The subprotocols listed in a Sec-WebSocket-Protocol header."""
    if not header:
        return []
    return [item.strip() for item in header.split(",") if item.strip()]


def utf8_length_exceeds(text: str, limit: int) -> bool:
    """True when `text` encoded as UTF-8 is longer than `limit` bytes (cheap for short text)."""
    if len(text) * 4 <= limit:
        return False
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


class AgentSocketHandler(WebSocketHandler):
    """One agent connection. Frames go to the hub in arrival order; the hub answers via `send`."""

    def initialize(self, hub: Hub, max_message_size: int,
                   max_outbound_buffer: int = DEFAULT_OUTBOUND_BUFFER,
                   allowed_origins: tuple[str, ...] = ()) -> None:
        self.hub = hub
        self.limit = max_message_size
        self.max_outbound = max_outbound_buffer
        self.allowed_origins = allowed_origins
        self.peer: Peer | None = None
        self._timer: object | None = None  # the challenge timer, then the idle timer
        self._stream: IOStream | None = None
        # (write index at its end, text) of frames queued but not yet taken by the kernel, so the
        # senders of those that never leave can be told when the connection closes
        self._unflushed: deque[tuple[int, str]] = deque()
        # Frames sent while one read is processed, written together by flush_outbox (see _queued):
        # a burst of messages to one agent costs one write(2) and fewer TCP segments, not one each
        self._outbox: list[bytes] = []
        self._outbox_texts: list[tuple[int, str]] = []  # (frame length, text)
        self._outbox_size = 0

    @property
    def remote_ip(self) -> str:
        return str(self.request.remote_ip)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self._refuse(400, "NOT_A_WEBSOCKET",
                         f"/ws is a WebSocket endpoint (subprotocol {PROTOCOL}); "
                         "send an Upgrade: websocket request")
            return
        offered = offered_subprotocols(self.request.headers.get("Sec-WebSocket-Protocol"))
        if offered and PROTOCOL not in offered:
            self._refuse(400, "UNSUPPORTED_SUBPROTOCOL",
                         f"this gateway speaks subprotocol {PROTOCOL}; offered: {', '.join(offered)}")
            return
        if self.hub.draining:
            self.hub.limits.refused_by["draining"].inc()
            self.set_header("Retry-After", "1")
            self._refuse(503, "DRAINING", "the gateway is shutting down; connect to another instance")
            return
        origin = self.request.headers.get("Origin")
        if not origin_allowed(origin, self.allowed_origins):
            self.hub.limits.refused_by["origin"].inc()
            self._refuse(403, "ORIGIN_NOT_ALLOWED",
                         f"browser origin {origin!r} is not allowed; the operator lists allowed "
                         "origins in ALLOWED_ORIGINS")
            return
        ip = self.remote_ip
        refusal = self.hub.admit(ip)  # counts unregistered connections too, from here on
        if refusal is not None:
            self.set_header("Retry-After", retry_after_header(refusal.retry_after))
            self._refuse(refusal.status, refusal.code, refusal.message)
            return
        try:
            await super().get(*args, **kwargs)  # returns when the connection has ended
        finally:
            self.hub.release(ip)

    def check_origin(self, origin: str) -> bool:
        return True  # decided in get(), from ALLOWED_ORIGINS, before Tornado's same-host rule

    def get_websocket_protocol(self) -> WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        if type(protocol) is WebSocketProtocol13:
            return StrictUTF8Protocol(self, False, protocol.params)
        return protocol

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.hub.metrics.connections.labels("refused").inc()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": code, "message": message}))

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return PROTOCOL if PROTOCOL in subprotocols else None

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)
        assert self.ws_connection is not None
        self._stream = self.ws_connection.stream
        self.peer = self.hub.open(self)
        loop = IOLoop.current()
        self._timer = loop.call_later(self.hub.settings.session.challenge_timeout,
                                      self._challenge_expired)

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
            if _queued and not getattr(self._stream, "_read_buffer_size", 0):
                flush_queued()  # the last frame of this read: its answers need not wait
        else:
            if len(message) > self.limit:
                self._too_large()
                return
            self.hub.receive_binary(peer)

    def _too_large(self) -> None:
        self._fail_frame("too_large", ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE, f"frames are limited to {self.limit} bytes"),
            CloseCode.TOO_LARGE, "message too big")

    def on_invalid_utf8(self) -> None:
        """A text frame that is not UTF-8: ERROR, then close 1007 (RFC 6455 8.1)."""
        self._fail_frame("invalid_utf8", ProtocolError(
            ErrorCode.MALFORMED_MESSAGE, "a text frame was not valid UTF-8"),
            CloseCode.INVALID_PAYLOAD, "invalid UTF-8")

    def _fail_frame(self, label: str, error: ProtocolError, code: CloseCode, reason: str) -> None:
        """A frame the connection cannot survive, registered or not: ERROR, count, close."""
        if self.peer is None:
            return
        self.hub.limits.closes_by[label].inc()
        self.hub.send_error(self.peer, error)
        self.peer.session.close()
        self.close(code, reason)

    def _challenge_expired(self) -> None:
        self._timer = None
        if self.peer is not None:
            self.hub.challenge_expired(self.peer)

    def registered(self) -> None:
        """The hub registered the agent: the challenge timer gives way to the idle timer."""
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
        self._schedule_idle_check(self.hub.settings.agent_timeout)

    def _schedule_idle_check(self, delay: float) -> None:
        self._timer = IOLoop.current().call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        self._timer = None
        if self.peer is None:
            return
        delay = self.hub.check_idle(self.peer)
        if delay is not None:
            self._schedule_idle_check(delay)

    def on_close(self) -> None:
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
            self._timer = None
        if self.peer is not None:
            self.hub.closed(self.peer, self.close_code, self.close_reason)
            unsent = [text for _, text in self._outbox_texts]  # never reached the stream
            self._outbox, self._outbox_texts, self._outbox_size = [], [], 0
            if (self._unflushed or unsent) and self._stream is not None:
                done = self._stream._total_write_done_index
                lost = [text for end, text in self._unflushed if end > done] + unsent
                self._unflushed.clear()
                if lost:
                    self.hub.lost(self.peer, lost)

    def backlog(self) -> int:
        """Bytes queued for this connection that the kernel has not taken (MAX_OUTBOUND_BUFFER)."""
        stream = self._stream
        return (pending_output(stream) if stream is not None else 0) + self._outbox_size

    def abort(self) -> None:
        """Cut the TCP connection now, without a close handshake (end of a drain)."""
        if self._stream is not None and not self._stream.closed():
            self._stream.close()

    # -- the hub's Connection protocol ----------------------------------------------------------

    def send(self, text: str) -> bool:
        """Queue `text`; False when closing, or when the peer is a slow consumer (then closed).

        The backlog Tornado holds for a connection is bounded by MAX_OUTBOUND_BUFFER: a frame that
        would take it past the bound is not queued and the connection is closed with 4008.
        """
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return False
        stream = self._stream
        assert stream is not None
        done = stream._total_write_done_index
        pending = stream._total_write_index - done + self._outbox_size
        if pending:
            unflushed = self._unflushed
            while unflushed and unflushed[0][0] <= done:
                unflushed.popleft()
            if pending + len(text) > self.max_outbound:
                if self.peer is not None:
                    self.hub.slow_consumer(self.peer, pending, self.max_outbound)
                return False
        if type(connection) is StrictUTF8Protocol and connection._compressor is None:
            # Queued for this turn's single write (flush_outbox). Tornado's write_message would
            # also wrap each frame in a Task, one more event-loop turn per message.
            data = text.encode("utf-8")
            header = frame_header(len(data))
            if not self._outbox:
                _queued[self] = None
                get_running_loop().call_soon(self.flush_outbox)
            self._outbox += (header, data)
            size = len(header) + len(data)
            self._outbox_texts.append((size, text))
            self._outbox_size += size
            return True
        try:
            self.write_message(text)
        except WebSocketClosedError:
            return False
        if stream._total_write_index != stream._total_write_done_index:
            self._unflushed.append((stream._total_write_index, text))
        return True

    def flush_outbox(self) -> None:
        """Write the frames queued by `send` in one go (end of the loop turn, or before a close)."""
        _queued.pop(self, None)
        if not self._outbox:
            return
        stream = self._stream
        if stream is None or stream.closed():
            return  # on_close reports them as lost
        parts, texts = self._outbox, self._outbox_texts
        self._outbox, self._outbox_texts, self._outbox_size = [], [], 0
        end = stream._total_write_index
        try:
            stream.write(b"".join(parts))
        except StreamClosedError:
            if self.peer is not None:
                self.hub.lost(self.peer, [text for _, text in texts])
            return
        done = stream._total_write_done_index
        if end + sum(size for size, _ in texts) > done:  # the kernel did not take it all yet
            for size, text in texts:
                end += size
                if end > done:
                    self._unflushed.append((end, text))
