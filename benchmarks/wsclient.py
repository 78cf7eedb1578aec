"""A minimal RFC 6455 client on a raw asyncio transport: cheap enough that the load is not the limit.

The load generator must spend far less per message than the gateway, so this client does only
what a WebSocket client must: the HTTP upgrade (section 4.1), masked client frames (5.3), and a
frame parser for the server's unmasked frames (5.2) that answers pings (5.5.2) and closes (5.5.1).
Frames to send are encoded (and masked) ahead of time by `encode_frame`, so sending one in the
timed window is a single `transport.write`. Received text frames reach `on_frame` as raw bytes;
the handshake helpers decode them, the timed paths compare bytes.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import os
from collections.abc import Callable

OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HANDSHAKE_BYTES = 16384

FrameHandler = Callable[[bytes], None]


class HandshakeError(ConnectionError):
    """The server did not switch protocols."""


def _mask(data: bytes, key: bytes) -> bytes:
    """XOR `data` with the repeating 4-byte `key` (RFC 6455 5.3), as whole integers."""
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")


def encode_frame(payload: bytes, opcode: int = OP_TEXT, *, mask: bool = True) -> bytes:
    """One final frame carrying `payload`, masked with a fresh random key as clients must."""
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = bytes((0x80 | opcode, mask_bit | length))
    elif length < 65536:
        header = bytes((0x80 | opcode, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, mask_bit | 127)) + length.to_bytes(8, "big")
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + _mask(payload, key)


class WSClient(asyncio.Protocol):
    """One client connection. Until `on_frame` is set, text frames queue for `next_text()`.

    `after_frames` runs once per read after all the frames it held, so a reader can answer a
    burst of frames with one write.
    """

    def __init__(self, host: str, port: int, path: str, subprotocol: str | None) -> None:
        self.transport: asyncio.Transport | None = None
        self.on_frame: FrameHandler | None = None
        self.after_frames: Callable[[], None] | None = None  # once per read, after its frames
        self.frames_received = 0
        self.close_code: int | None = None
        self._request = self._upgrade_request(host, port, path, subprotocol)
        self._buffer = b""
        self._upgrading = True
        loop = asyncio.get_running_loop()
        self._upgraded: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._pending: collections.deque[bytes] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] | None = None

    def _upgrade_request(self, host: str, port: int, path: str, subprotocol: str | None) -> bytes:
        self._key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode('ascii')}",
            "Sec-WebSocket-Version: 13",
        ]
        if subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(HandshakeError(f"connection lost during upgrade: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    def data_received(self, data: bytes) -> None:
        if self._upgrading:
            data = self._upgrade_response(data)
            if not data:
                return
        buf = self._buffer + data if self._buffer else data
        end = len(buf)
        pos = 0
        while end - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2:pos + 10], "big")
                start = pos + 10
            stop = start + length
            if stop > end:
                break
            self._frame(b0, buf[start:stop])
            pos = stop
        self._buffer = buf[pos:] if pos < end else b""
        if pos and self.after_frames is not None:
            self.after_frames()

    # -- frames ---------------------------------------------------------------------------------

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        if opcode == OP_TEXT and b0 & 0x80:
            self.frames_received += 1
            handler = self.on_frame
            if handler is not None:
                handler(payload)
            else:
                self._pending.append(payload)
                self._wake()
        elif opcode == OP_PING:
            self.send(encode_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(encode_frame(payload[:2], OP_CLOSE))
                self.transport.close()
        elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):  # fragmented (servers rarely do)
            if opcode != OP_CONTINUATION:
                self._fragments = []
            if self._fragments is not None:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole, self._fragments = b"".join(self._fragments), None
                    self._frame(0x80 | OP_TEXT, whole)

    def _upgrade_response(self, data: bytes) -> bytes:
        """Consume the 101 response; return whatever frame bytes followed it."""
        self._buffer += data
        head, sep, rest = self._buffer.partition(b"\r\n\r\n")
        if not sep:
            if len(self._buffer) > MAX_HANDSHAKE_BYTES:
                self._fail_upgrade("response headers too long")
            return b""
        self._buffer = b""
        self._upgrading = False
        status, _, headers = head.partition(b"\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            self._fail_upgrade(status.decode("latin-1") + " " + rest[:200].decode("latin-1"))
            return b""
        accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest())
        if b"sec-websocket-accept: " + accept.lower() not in headers.lower():
            self._fail_upgrade("wrong Sec-WebSocket-Accept")
            return b""
        self._upgraded.set_result(None)
        return rest

    def _fail_upgrade(self, why: str) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(HandshakeError(why))
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- API --------------------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Write an encoded frame (or several, concatenated)."""
        assert self.transport is not None
        self.transport.write(frame)

    def send_text(self, text: str) -> None:
        self.send(encode_frame(text.encode("utf-8")))

    async def next_text(self, timeout: float) -> str:
        """The next queued text frame; ConnectionError when the connection closed first."""
        while not self._pending:
            if self.closed.done():
                raise ConnectionError(f"connection closed (code {self.close_code})")
            self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self._waiter, timeout)
        return self._pending.popleft().decode("utf-8")

    def close(self, code: int = 1000) -> None:
        """Start the closing handshake; `closed` resolves when the server ends the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(code.to_bytes(2, "big"), OP_CLOSE))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def connect(host: str, port: int, path: str, *, subprotocol: str | None = None,
                  timeout: float = 30.0, local_host: str | None = None) -> WSClient:
    """An upgraded WebSocket connection to ws://host:port/path."""
    loop = asyncio.get_running_loop()
    local_addr = (local_host, 0) if local_host else None
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: WSClient(host, port, path, subprotocol), host, port,
                               local_addr=local_addr),
        timeout)
    try:
        await asyncio.wait_for(asyncio.shield(client._upgraded), timeout)
    except BaseException:
        client.abort()
        raise
    return client
