"""Every use of Tornado's private internals, in one place (tornado>=6.6,<6.7; see setup.py).

The gateway's fastest paths need what Tornado does not publish: how many bytes a stream has
handed to the kernel (to bound a slow reader's backlog and to tell senders which frames never
left), the frame reader (to enforce RFC 6455 where Tornado drops the TCP connection silently, to
count control frames, and to read a socket once per readiness instead of four futures per frame,
which also tells whether a read is used up, to write a burst's answers in one go), and the accept
loop (to survive descriptor exhaustion without a traceback per attempt).

`REQUIRED` names each private attribute and method used here; `missing_internals()` lists those a
Tornado version lacks, so an upgrade fails one test (tests/reliability/test_tornado_internals.py)
and the gateway's start with one message naming them, not a connection at random later.
"""

from __future__ import annotations

import errno
import socket
import struct
import sys
from asyncio import Future
from collections.abc import Callable
from typing import Any, Protocol

from tornado.httpserver import HTTPServer, _HTTPRequestContext
from tornado.httputil import _ABNF, HTTPHeaders
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream, StreamClosedError
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketProtocol13, _WebSocketParams

# class -> private names this module uses on its instances
REQUIRED: dict[str, tuple[str, ...]] = {
    "tornado.iostream.IOStream": ("_total_write_index", "_total_write_done_index",
                                  "_write_buffer", "_read_buffer", "_read_buffer_size",
                                  "_read_future", "_handle_read", "_add_io_state"),
    "tornado.websocket.WebSocketProtocol13": (
        "_receive_frame_loop", "_handle_message", "_write_frame", "_abort",
        "_fragmented_message_buffer", "_fragmented_message_opcode", "_message_bytes_in",
        "_wire_bytes_in", "_wire_bytes_out", "_received_pong"),
    "tornado.websocket": ("_WebSocketParams",),
    "tornado.httpserver.HTTPServer": ("_handle_connection", "_handlers", "_sockets",
                                      "_connections"),
    "tornado.httpserver": ("_HTTPRequestContext",),
    "tornado.httpserver._HTTPRequestContext": ("_apply_xheaders", "_unapply_xheaders"),
    "tornado.httputil": ("_ABNF",),
    "tornado.util": ("_websocket_mask",),
}

# RFC 6455 7.4: close codes an endpoint may receive. 1004-1006 and 1015 are reserved (never sent
# on the wire), 1016-2999 unassigned; 3000-4999 belong to libraries and applications.
_VALID_CLOSE_CODES = frozenset((*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)))


def valid_close_code(code: int) -> bool:
    """May a peer send `code` in a Close frame (RFC 6455 7.4.1, 7.4.2, IANA registry)?"""
    return code in _VALID_CLOSE_CODES


# -- streams --------------------------------------------------------------------------------------


def bytes_queued(stream: IOStream) -> int:
    """Bytes ever handed to `stream.write` (a running index)."""
    return stream._total_write_index


def bytes_sent(stream: IOStream) -> int:
    """Bytes of those the kernel has taken (a running index; <= bytes_queued)."""
    return stream._total_write_done_index


def take_buffered(stream: IOStream) -> bytes:
    """What the stream has read from the socket and no read has taken yet (then empty)."""
    size = stream._read_buffer_size
    if not size:
        return b""
    buffer = stream._read_buffer
    data = bytes(buffer[:size])
    del buffer[:size]
    stream._read_buffer_size = 0
    return data


def unread(stream: IOStream, data: bytes) -> None:
    """Put `data` back in front of what the stream has read: the next read returns it first."""
    stream._read_buffer[:0] = data
    stream._read_buffer_size += len(data)


def write_now(stream: IOStream, data: bytes) -> None:
    """`stream.write(data)`, without the Future Tornado makes for every write (and the loop
    callback that resolves it), when nothing waits to be written before `data` on a plain TCP
    stream: one send(2); what the kernel does not take waits in the stream's buffer as usual.
    Errors and TLS go through `stream.write`. StreamClosedError when the stream is closed."""
    if stream._write_buffer or type(stream) is not IOStream or stream.closed() or not data:
        stream.write(data)
        return
    try:
        sent = stream.write_to_fd(memoryview(data))
    except BlockingIOError:
        sent = 0
    except OSError:
        stream.write(data)  # the same error again, handled (closed, logged) the way Tornado does
        return
    stream._total_write_index += len(data)
    stream._total_write_done_index += sent
    if sent < len(data):
        stream._write_buffer.append(memoryview(data)[sent:])
        stream._add_io_state(IOLoop.WRITE)


_PARAMS: dict[int, _WebSocketParams] = {}  # by max_message_size: shared, never written to


def frame_protocol(handler: FrameHandler, max_message_size: int) -> FrameProtocol:
    """A server-side FrameProtocol for `handler`; frames announcing more than `max_message_size`
    are refused (1009) before they are read. No compression, no Tornado keepalive."""
    params = _PARAMS.get(max_message_size)
    if params is None:
        params = _PARAMS[max_message_size] = _WebSocketParams(max_message_size=max_message_size)
    return FrameProtocol(handler, False, params)


# -- the frame reader -------------------------------------------------------------------------------


class FrameHandler(Protocol):
    """What FrameProtocol asks of its handler (server/websocket.py AgentSocketHandler).

    Every report is synchronous: the frames of one socket read are handled in one go."""

    def on_message(self, message: str | bytes) -> Any:
        """A complete text or binary message (any awaitable it returns is not awaited)."""

    def on_pong(self, data: bytes) -> None:
        """A pong arrived (the keepalive's answer)."""

    def on_invalid_utf8(self) -> None:
        """A text message that is not UTF-8 (RFC 6455 8.1): close 1007."""

    def on_protocol_violation(self, reason: str) -> None:
        """A frame broke RFC 6455 framing; the connection is being failed with 1002."""

    def on_control_frame(self, size: int) -> bool:
        """A ping, pong or message fragment of `size` bytes arrived; False: the connection closes."""

    def flush_outbox(self) -> None:
        """Write the data frames queued so far (before a control frame goes out)."""

    def on_ping(self, data: bytes) -> None:
        """A ping arrived (FrameProtocol has answered it)."""

    def on_ws_connection_close(self, close_code: int | None = None,
                               close_reason: str | None = None) -> None:
        """The connection has ended."""

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None: ...


# One receive buffer for every connection: a socket read is parsed before the next one starts
# (one thread, one event loop), so no connection holds a buffer of its own while it waits.
READ_CHUNK = 65536
_READ_BUFFER = memoryview(bytearray(READ_CHUNK))
PING_FRAME = b"\x89\x00"  # a final, unmasked ping with no payload (RFC 6455 5.5.2)


class FrameProtocol(WebSocketProtocol13):
    """Tornado's RFC 6455 protocol with the letter of the RFC where Tornado is lenient, and a
    frame reader that costs one read per socket read instead of four futures per frame.

    - A frame that breaks framing (unmasked, reserved bits, unknown opcode, fragmented or long
      control frame, a continuation of nothing, a new message inside a fragmented one, a Close
      with a reserved code) fails the connection with close 1002 (RFC 6455 7.1.7, 5.1-5.5, 7.4),
      where Tornado drops TCP silently or echoes the code.
    - A frame announcing more than max_message_size (with the fragments before it) is refused
      with close 1009 as soon as its header is read, before its payload is.
    - A text message that is not UTF-8 goes to the handler (ERROR, then 1007; RFC 6455 8.1).
    - Pings, pongs and fragments are reported to the handler, which budgets them.
    - Frames Tornado writes itself (close, ping, pong) go after the data frames queued in the
      same loop turn: a close frame must be the last thing on the wire.
    Compression is never negotiated (the handler offers none), so frames are never compressed.

    Reading: while the WebSocket is open, the stream's read handler is `_on_readable`. Each time
    the socket is readable it takes what the socket has (up to READ_CHUNK) and handles every
    complete frame in it synchronously; the bytes of an incomplete frame wait for the next read.
    The read interest stays registered with the event loop the whole time (no epoll_ctl per
    frame), and no future or task step is spent per frame. `unread` tells the handler whether
    more frames of the same read follow (WriteBatch writes a burst's answers once it is 0).
    """

    handler: FrameHandler
    unread = 0  # bytes of the current socket read after the frame being handled
    _partial: bytearray | None = None  # the start of a frame whose end has not arrived
    _need = 0  # bytes `_partial` must hold before it is worth parsing again
    _tls = False

    def _fail(self, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): close 1002, or cut it if already closing."""
        if self.server_terminated:
            self._abort()
            return
        self.handler.on_protocol_violation(reason)
        self.close(1002, reason)

    def ping(self) -> None:
        """Send a ping (the gateway's keepalive), after the data frames queued before it."""
        if self.is_closing():
            return
        self.handler.flush_outbox()
        try:
            write_now(self.stream, PING_FRAME)
        except StreamClosedError:
            self._abort()
            return
        self._wire_bytes_out += 2

    def abort(self) -> None:
        """Cut the TCP connection now (WebSocketProtocol._abort)."""
        self._abort()

    async def _receive_frame_loop(self) -> None:
        """(Tornado's accept awaits this after open(); the connection's start() began reading.)"""

    def start_reading(self) -> None:
        """Handle frames from now on: those that came in with the upgrade request at once, then
        each socket read as it comes. When the stream closes, the handler hears of it
        (`on_ws_connection_close`, in a later loop turn, or now if it is already closed)."""
        stream = self.stream
        try:
            buffered = take_buffered(stream)
            if buffered:  # frames that came in with the upgrade request
                self._wire_bytes_in += len(buffered)
                self._feed(buffered)
            if not self.client_terminated:
                if stream.closed():  # (gone while the handler opened): as a read would have found it
                    raise StreamClosedError(real_error=stream.error)
                self._tls = isinstance(stream, SSLIOStream)
                # A read that never completes: the stream keeps its read interest registered while
                # it is pending, and fails it with StreamClosedError when the stream closes.
                closed: Future[bytes] = Future()
                stream._read_future = closed
                stream._handle_read = self._on_readable  # type: ignore[method-assign]
                stream._add_io_state(IOLoop.READ)
                closed.add_done_callback(self._stream_closed)
                return
        except StreamClosedError:
            if not self.client_terminated:
                self._abort()
        self._ended()

    def _stream_closed(self, closed: Future[bytes]) -> None:
        if not closed.cancelled():
            closed.exception()  # (a StreamClosedError, expected: marked as seen)
        if not self.client_terminated:
            self._abort()
        self._ended()

    def _ended(self) -> None:
        # no reference cycle is left behind: stream -> protocol (the read handler)
        self.stream.__dict__.pop("_handle_read", None)
        self._partial = None
        self.handler.on_ws_connection_close(self.close_code, self.close_reason)

    def _on_readable(self) -> None:
        """The socket is readable: take what it has and handle the complete frames in it."""
        stream = self.stream
        view = _READ_BUFFER
        while True:
            try:
                size = stream.read_from_fd(view)
            except OSError as exc:
                stream.close(exc_info=exc)
                return
            if size is None:  # nothing after all (or TLS wants more of a record)
                return
            if size == 0:  # the peer closed its side
                stream.close()
                return
            self._wire_bytes_in += size
            if not self.client_terminated:  # (after a close frame, bytes are dropped)
                self._feed(view[:size].tobytes())
            # TCP: level-triggered readiness brings the rest in a later loop turn, so a flood
            # from one connection cannot starve the others. TLS: what the TLS layer already
            # decrypted is invisible to epoll, so it is read now.
            if not self._tls or stream.closed() or not stream.socket.pending():  # type: ignore[attr-defined]
                return

    def _feed(self, chunk: bytes) -> None:
        """Handle every complete frame of `chunk` (after the bytes kept from earlier reads)."""
        partial = self._partial
        if partial is not None:
            partial += chunk
            if len(partial) < self._need:
                return
            chunk = bytes(partial)
            self._partial = None
        pos = self._frames(chunk)
        if pos < len(chunk) and not self.client_terminated:
            self._partial = bytearray(memoryview(chunk)[pos:])

    def _frames(self, data: bytes) -> int:
        """Handle the complete frames of `data`; the offset of the first byte not handled (the
        start of an incomplete frame, whose size `_need` then says, as far as it is known)."""
        end = len(data)
        pos = 0
        handler = self.handler
        while pos < end and not self.client_terminated:
            if end - pos < 2:
                self._need = 2
                return pos
            head = data[pos]
            second = data[pos + 1]
            masked = second & 0x80
            length = second & 0x7F
            start = pos + 2
            if length > 125:
                extra = 2 if length == 126 else 8
                if end - start < extra:
                    self._need = 2 + extra + (4 if masked else 0)
                    return pos
                length = (data[start] << 8 | data[start + 1]) if extra == 2 else \
                    int.from_bytes(data[start:start + 8], "big")
                start += extra
            buffered = self._fragmented_message_buffer
            if length + (len(buffered) if buffered is not None else 0) > self.params.max_message_size:
                self.close(1009, "message too big")
                self._abort()
                return end
            if masked:
                stop = start + 4 + length
                if stop > end:
                    self._need = stop - pos
                    return pos
                payload = _websocket_mask(data[start:start + 4], data[start + 4:stop]) \
                    if length else b""
            else:
                stop = start + length
                if stop > end:
                    self._need = stop - pos
                    return pos
            pos = stop
            self.unread = end - stop
            if not masked:
                self._fail("client frames must be masked")
                continue
            if head & 0x70:
                self._fail("reserved bits are set (no extension was negotiated)")
                continue
            fin = head & 0x80
            opcode = head & 0x0F
            if opcode & 0x8:
                if opcode > 0xA:
                    self._fail(f"unknown opcode {opcode:#x}")
                elif not fin:
                    self._fail("a control frame was fragmented")
                elif length > 125:
                    self._fail("a control frame was longer than 125 bytes")
                elif opcode == 0x8:
                    self._on_close_frame(payload)
                elif handler.on_control_frame(length):
                    if opcode == 0x9:
                        self._handle_message(opcode, payload)  # Tornado answers it (5.5.3)
                    else:
                        self._received_pong = True
                        handler.on_pong(payload)
                continue
            if opcode > 0x2:
                self._fail(f"unknown opcode {opcode:#x}")
                continue
            if opcode == 0:
                if buffered is None:
                    self._fail("a continuation frame continued no message")
                    continue
                if not handler.on_control_frame(length):
                    continue
                buffered.extend(payload)
                if not fin:
                    continue
                opcode = self._fragmented_message_opcode  # type: ignore[assignment]
                payload = bytes(buffered)
                self._fragmented_message_buffer = None
            elif buffered is not None:
                self._fail("a new message started inside a fragmented one")
                continue
            elif not fin:
                if handler.on_control_frame(length):
                    self._fragmented_message_opcode = opcode  # type: ignore[assignment]
                    self._fragmented_message_buffer = bytearray(payload)
                continue
            self._message_bytes_in += len(payload)
            if opcode == 0x1:
                try:
                    message: str | bytes = payload.decode("utf-8")
                except UnicodeDecodeError:
                    handler.on_invalid_utf8()
                    continue
            else:
                message = payload
            try:
                handler.on_message(message)
            except Exception:
                handler.log_exception(*sys.exc_info())
                self._abort()
        return pos

    def _on_close_frame(self, data: bytes) -> None:
        """The peer's Close (RFC 6455 5.5.1): echo a valid code, answer 1002 to an invalid one."""
        if len(data) >= 2:
            code = struct.unpack("!H", data[:2])[0]
            if not valid_close_code(code):
                self.client_terminated = True
                return self._fail(f"close code {code} is reserved or invalid")
            try:
                reason = data[2:].decode("utf-8")
            except UnicodeDecodeError:
                self.client_terminated = True
                self.handler.on_protocol_violation("a close reason was not UTF-8")
                self.close(1007, "invalid UTF-8 in the close reason")
                return None
        elif data:
            self.client_terminated = True
            return self._fail("a close frame had a 1-byte payload")
        else:
            code, reason = None, ""
        self.client_terminated = True
        self.close_code = code
        self.close_reason = reason or None
        self.close(code)
        return None

    def _write_frame(self, fin: bool, opcode: int, data: bytes, flags: int = 0) -> Future[None]:
        self.handler.flush_outbox()
        return super()._write_frame(fin, opcode, data, flags)


# -- accepting connections -----------------------------------------------------------------------

# accept(2) errors that mean "no descriptor or memory right now", not "this connection failed"
EXHAUSTED = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))


class AcceptGate(Protocol):
    """What `add_sockets_guarded` asks of the gateway about each accepted connection."""

    def admit_tcp(self, server: HTTPServer) -> bool:
        """True to serve the connection; False to answer 503 and close it at once."""

    def exhausted(self, error: OSError) -> float:
        """accept(2) failed for lack of descriptors or memory: seconds to pause accepting."""


# -- the lean upgrade path (server/upgrade.py) ------------------------------------------------------

# What HTTPServer.handle_stream gives each connection: its address, protocol and (TRUST_PROXY) the
# X-Forwarded-For rewriting; HTTP1ServerConnection takes one.
RequestContext = _HTTPRequestContext


def apply_xheaders(context: RequestContext, headers: HTTPHeaders) -> None:
    """TRUST_PROXY: the client's address and scheme from X-Forwarded-For / X-Real-Ip... as
    Tornado's xheaders do."""
    context._apply_xheaders(headers)


def unapply_xheaders(context: RequestContext) -> None:
    """Undo `apply_xheaders` (before Tornado applies them again to the same request)."""
    context._unapply_xheaders()


def valid_host(host: str) -> bool:
    """Does Tornado take this Host header (else it answers 400: HTTPServerRequest)?"""
    return _ABNF.host.fullmatch(host) is not None and "," not in host


def track_connection(server: HTTPServer, connection: Any) -> None:
    """Count `connection` among the server's open HTTP connections (AcceptGate's budget; closed
    by close_all_connections at the end of a drain: it needs an awaitable `close()`)."""
    server._connections.add(connection)


def untrack_connection(server: HTTPServer, connection: Any) -> None:
    server._connections.discard(connection)


def open_http_connections(server: HTTPServer) -> int:
    """HTTP connections the server holds (upgraded WebSockets leave this set)."""
    return len(server._connections)


def add_sockets_guarded(server: HTTPServer, sockets: list[socket.socket], gate: AcceptGate,
                        refusal: bytes) -> None:
    """`server.add_sockets(sockets)` with an accept loop that survives descriptor exhaustion.

    Tornado's loop lets EMFILE escape to asyncio, which logs a traceback and calls it again at
    once, forever. Here an exhausted accept pauses the listening socket for the gate's delay (the
    kernel keeps queueing connections in the backlog); a connection over the gate's capacity
    gets `refusal` (a complete HTTP response) and is closed.
    """
    io_loop = IOLoop.current()
    for sock in sockets:
        server._sockets[sock.fileno()] = sock
        server._handlers[sock.fileno()] = _accept_on(io_loop, server, sock, gate, refusal)


def _accept_on(io_loop: IOLoop, server: HTTPServer, sock: socket.socket, gate: AcceptGate,
               refusal: bytes) -> Callable[[], None]:
    state = {"removed": False, "paused": False}

    def resume() -> None:
        if not state["removed"] and state["paused"]:
            state["paused"] = False
            io_loop.add_handler(sock, accept, IOLoop.READ)

    def accept(fd: Any, events: int) -> None:
        for _ in range(128):
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in EXHAUSTED:
                    raise
                state["paused"] = True
                io_loop.remove_handler(sock)
                io_loop.call_later(gate.exhausted(exc), resume)
                return
            if not gate.admit_tcp(server):
                try:
                    connection.setblocking(False)
                    connection.send(refusal)
                except OSError:
                    pass
                connection.close()
                continue
            server._handle_connection(connection, address)

    def remove() -> None:
        if not state["paused"]:
            io_loop.remove_handler(sock)
        state["removed"] = True

    io_loop.add_handler(sock, accept, IOLoop.READ)
    return remove


# -- the check ------------------------------------------------------------------------------------


def missing_internals() -> list[str]:
    """The names in REQUIRED that this Tornado lacks (empty when the gateway can run on it)."""
    import tornado.httpserver
    import tornado.httputil
    import tornado.util
    import tornado.websocket

    modules: dict[str, object] = {"tornado.util": tornado.util, "tornado.websocket": tornado.websocket,
                                  "tornado.httpserver": tornado.httpserver,
                                  "tornado.httputil": tornado.httputil}
    missing = [f"{owner}.{name}" for owner, names in REQUIRED.items() if owner in modules
               for name in names if not hasattr(modules[owner], name)]
    params = getattr(tornado.websocket, "_WebSocketParams", None)
    left, right = socket.socketpair()
    try:
        stream = IOStream(left)
        instances: dict[str, object] = {
            "tornado.iostream.IOStream": stream,
            "tornado.httpserver.HTTPServer": HTTPServer(lambda request: None),
        }
        context = getattr(tornado.httpserver, "_HTTPRequestContext", None)
        if context is not None:  # (else already named above)
            instances["tornado.httpserver._HTTPRequestContext"] = context(
                stream, ("127.0.0.1", 0), None)
        if params is not None:  # (else already named above)
            instances["tornado.websocket.WebSocketProtocol13"] = WebSocketProtocol13(
                None, False, params())  # type: ignore[arg-type]
        missing += [f"{owner}.{name}" for owner, names in REQUIRED.items() if owner in instances
                    for name in names if not hasattr(instances[owner], name)]
        stream.close()
    finally:
        left.close()
        right.close()
    return missing


def check_internals() -> None:
    """RuntimeError naming every missing internal, when this Tornado version lacks any."""
    missing = missing_internals()
    if missing:
        import tornado

        raise RuntimeError(
            f"this Tornado ({tornado.version}) lacks internals the gateway relies on: "
            f"{', '.join(missing)}; install the version setup.py names (tornado>=6.6,<6.7)")
