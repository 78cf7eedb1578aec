"""Every use of Tornado's private internals, in one place (tornado>=6.6,<6.7; see setup.py).

The gateway's fastest paths need what Tornado does not publish: how many bytes a stream has
handed to the kernel (to bound a slow reader's backlog and to tell senders which frames never
left), whether a read is used up (to write a burst's answers in one go), the frame reader (to
enforce RFC 6455 where Tornado drops the TCP connection silently, and to count control frames),
and the accept loop (to survive descriptor exhaustion without a traceback per attempt).

`REQUIRED` names each private attribute and method used here; `missing_internals()` lists those a
Tornado version lacks, so an upgrade fails one test (tests/reliability/test_tornado_internals.py)
and the gateway's start with one message naming them, not a connection at random later.
"""

from __future__ import annotations

import errno
import socket
import struct
from asyncio import Future
from collections.abc import Callable
from typing import Any, Protocol

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.util import _websocket_mask
from tornado.websocket import WebSocketProtocol13

# class -> private names this module uses on its instances
REQUIRED: dict[str, tuple[str, ...]] = {
    "tornado.iostream.IOStream": ("_total_write_index", "_total_write_done_index",
                                  "_read_buffer_size"),
    "tornado.websocket.WebSocketProtocol13": (
        "_receive_frame", "_read_bytes", "_handle_message", "_write_frame", "_run_callback",
        "_abort", "_fragmented_message_buffer", "_fragmented_message_opcode",
        "_message_bytes_in"),
    "tornado.websocket": ("_WebSocketParams",),
    "tornado.httpserver.HTTPServer": ("_handle_connection", "_handlers", "_sockets",
                                      "_connections"),
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


def read_pending(stream: IOStream) -> int:
    """Bytes read from the socket that no frame has consumed yet (0: this read is used up)."""
    return stream._read_buffer_size


# -- the frame reader -------------------------------------------------------------------------------


class FrameHandler(Protocol):
    """What FrameProtocol asks of its handler (server/websocket.py AgentSocketHandler)."""

    def on_message(self, message: str | bytes) -> Any: ...

    def on_invalid_utf8(self) -> None:
        """A text message that is not UTF-8 (RFC 6455 8.1): close 1007."""

    def on_protocol_violation(self, reason: str) -> None:
        """A frame broke RFC 6455 framing; the connection is being failed with 1002."""

    def on_control_frame(self, size: int) -> bool:
        """A ping, pong or message fragment of `size` bytes arrived; False: the connection closes."""

    def flush_outbox(self) -> None:
        """Write the data frames queued so far (before a control frame goes out)."""


class FrameProtocol(WebSocketProtocol13):
    """Tornado's RFC 6455 protocol with the letter of the RFC where Tornado is lenient.

    - A frame that breaks framing (unmasked, reserved bits, unknown opcode, fragmented or long
      control frame, a continuation of nothing, a new message inside a fragmented one, a Close
      with a reserved code) fails the connection with close 1002 (RFC 6455 7.1.7, 5.1-5.5, 7.4),
      where Tornado drops TCP silently or echoes the code.
    - A text message that is not UTF-8 goes to the handler (ERROR, then 1007; RFC 6455 8.1).
    - Pings, pongs and fragments are reported to the handler, which budgets them.
    - Frames Tornado writes itself (close, ping, pong) go after the data frames queued in the
      same loop turn: a close frame must be the last thing on the wire.
    Compression is never negotiated (the handler offers none), so frames are never compressed.
    """

    handler: FrameHandler  # type: ignore[assignment]

    def _fail(self, reason: str) -> None:
        """Fail the connection (RFC 6455 7.1.7): close 1002, or cut it if already closing."""
        if self.server_terminated:
            self._abort()
            return
        self.handler.on_protocol_violation(reason)
        self.close(1002, reason)

    async def _receive_frame(self) -> None:
        read = self._read_bytes
        head, second = await read(2)
        fin = head & 0x80
        opcode = head & 0x0F
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await read(8))[0]
        buffered = self._fragmented_message_buffer
        if length + (len(buffered) if buffered is not None else 0) > self.params.max_message_size:
            self.close(1009, "message too big")
            self._abort()
            return
        if second & 0x80:
            mask = await read(4)
            data = _websocket_mask(mask, await read(length)) if length else b""
        else:
            data = await read(length) if length else b""
            return self._fail("client frames must be masked")
        if head & 0x70:
            return self._fail("reserved bits are set (no extension was negotiated)")
        if opcode & 0x8:
            if opcode > 0xA:
                return self._fail(f"unknown opcode {opcode:#x}")
            if not fin:
                return self._fail("a control frame was fragmented")
            if length > 125:
                return self._fail("a control frame was longer than 125 bytes")
            if opcode == 0x8:
                return self._on_close_frame(data)
            if not self.handler.on_control_frame(length):
                return None
            handled = self._handle_message(opcode, data)  # Tornado answers pings, notes pongs
            if handled is not None:
                await handled
            return None
        if opcode > 0x2:
            return self._fail(f"unknown opcode {opcode:#x}")
        if opcode == 0:
            if buffered is None:
                return self._fail("a continuation frame continued no message")
            if not self.handler.on_control_frame(length):
                return None
            buffered.extend(data)
            if not fin:
                return None
            opcode = self._fragmented_message_opcode  # type: ignore[assignment]
            data = bytes(buffered)
            self._fragmented_message_buffer = None
        elif buffered is not None:
            return self._fail("a new message started inside a fragmented one")
        elif not fin:
            if not self.handler.on_control_frame(length):
                return None
            self._fragmented_message_opcode = opcode  # type: ignore[assignment]
            self._fragmented_message_buffer = bytearray(data)
            return None
        if self.client_terminated:
            return None
        if opcode == 0x1:
            self._message_bytes_in += len(data)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                self.handler.on_invalid_utf8()
                return None
            handled = self._run_callback(self.handler.on_message, text)
        else:
            self._message_bytes_in += len(data)
            handled = self._run_callback(self.handler.on_message, data)
        if handled is not None:
            await handled
        return None

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
    import tornado.util
    import tornado.websocket

    modules: dict[str, object] = {"tornado.util": tornado.util, "tornado.websocket": tornado.websocket}
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
