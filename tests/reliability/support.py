"""Tools for the reliability tests: a hand-written WebSocket client, a gateway subprocess with its
RSS, metrics parsing, certificates made with the openssl CLI. Loopback only, bounded waits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import ssl
import struct
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from aiconexus_gateway import PROTOCOL
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import build

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


def signed(key: DIDKey, type: str, to: str | None, payload: dict[str, Any], **kwargs: Any) -> str:
    text, _ = build(key, type, to, payload, now=time.time(), **kwargs)
    return text


# -- a raw WebSocket client (RFC 6455 framing by hand) ---------------------------------------


class HandshakeRefused(Exception):
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"handshake refused: {status} {body[:200]!r}")
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def _mask(mask: bytes, data: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    repeated = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


class RawWebSocket:
    """A client that sends exactly the frames it is told to, and reads frame by frame.

    Unlike a library client it can send invalid UTF-8 in a text frame, stop reading (a slow
    consumer), ignore pings (a vanished peer), or shrink its receive buffer.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = False

    @classmethod
    async def connect(cls, url: str, *, headers: dict[str, str] | None = None,
                      subprotocol: str | None = PROTOCOL, rcvbuf: int | None = None,
                      timeout: float = 5.0) -> RawWebSocket:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if subprotocol:
            lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        ws = cls(reader, writer)
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            status = int(status_line.split()[1])
            response_headers = {}
            for line in header_lines:
                if ":" in line:
                    name, value = line.split(":", 1)
                    response_headers[name.strip().lower()] = value.strip()
            if status != 101:
                length = int(response_headers.get("content-length", "0"))
                body = await asyncio.wait_for(reader.readexactly(length), timeout) if length else b""
                raise HandshakeRefused(status, response_headers, body)
        except BaseException:
            ws.abort()
            raise
        return ws

    async def send_frame(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        header = bytes([(0x80 if fin else 0) | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        self.writer.write(header + mask + _mask(mask, payload))
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self.send_frame(TEXT, text.encode("utf-8", "surrogatepass"))

    async def recv_frame(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """The next frame (opcode, payload); a CLOSE frame also sets close_code/close_reason."""
        async def read() -> tuple[int, bytes]:
            first, second = await self.reader.readexactly(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(length)
        opcode, payload = await asyncio.wait_for(read(), timeout)
        if opcode == CLOSE:
            self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            self.close_reason = payload[2:].decode("utf-8", "replace")
        return opcode, payload

    async def recv(self, timeout: float = 5.0) -> str | None:
        """The next text message (pings answered); None at a close frame or end of stream."""
        while True:
            try:
                opcode, payload = await self.recv_frame(timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.closed = True
                return None
            if opcode == TEXT:
                return payload.decode("utf-8")
            if opcode == PING:
                await self.send_frame(PONG, payload)
            elif opcode == CLOSE:
                await self._answer_close()
                return None

    async def recv_json(self, timeout: float = 5.0) -> dict[str, Any] | None:
        text = await self.recv(timeout)
        return None if text is None else json.loads(text)  # type: ignore[no-any-return,unused-ignore]

    async def until_closed(self, timeout: float = 5.0) -> tuple[int | None, list[str]]:
        """Read to the end: (close code, the text messages before it)."""
        deadline = time.monotonic() + timeout
        texts: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the server did not close the connection")
            text = await self.recv(remaining)
            if text is None:
                self.abort()
                return self.close_code, texts
            texts.append(text)

    async def _answer_close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send_frame(CLOSE, struct.pack("!H", self.close_code or 1000))

    async def close(self, code: int = 1000) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send_frame(CLOSE, struct.pack("!H", code))
        self.abort()

    def stop_reading(self) -> None:
        """Take nothing more from the socket: the kernel buffers fill, then the sender's."""
        self.writer.transport.pause_reading()  # type: ignore[attr-defined]

    def resume_reading(self) -> None:
        self.writer.transport.resume_reading()  # type: ignore[attr-defined]

    def abort(self) -> None:
        """Drop the TCP connection (no close frame)."""
        self.closed = True
        self.writer.transport.abort()


async def raw_registered(ws_url: str, gateway_did: str | None = None, key: DIDKey | None = None,
                         **kwargs: Any) -> tuple[RawWebSocket, DIDKey, str]:
    """A raw connection that completed the handshake: (socket, key, the REGISTER frame sent)."""
    key = key or DIDKey.generate()
    ws = await RawWebSocket.connect(ws_url, **kwargs)
    challenge = await ws.recv_json()
    assert challenge is not None and challenge["type"] == "CHALLENGE", challenge
    register = signed(key, "REGISTER", gateway_did or challenge["from"],
                      {"nonce": challenge["payload"]["nonce"]})
    await ws.send_text(register)
    reply = await ws.recv_json()
    assert reply is not None and reply["type"] == "REGISTERED", reply
    return ws, key, register


# -- metrics -----------------------------------------------------------------------------------


def metric(exposition: str | bytes, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


# -- certificates (openssl CLI) ------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key.name, "-out", cert.name, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return cert, key


def issue(directory: Path, name: str, ca: tuple[Path, Path], *, server: bool) -> tuple[Path, Path]:
    """A leaf certificate signed by `ca`: (certificate, key). Servers get 127.0.0.1/localhost."""
    cert, key, csr, ext = (directory / f"{name}.pem", directory / f"{name}.key",
                           directory / f"{name}.csr", directory / f"{name}.ext")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key.name, "-out", csr.name, "-subj", f"/CN={name}", cwd=directory)
    usage = "serverAuth" if server else "clientAuth"
    lines = ["basicConstraints=CA:FALSE", f"extendedKeyUsage={usage}"]
    if server:
        lines.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
    ext.write_text("\n".join(lines) + "\n")
    _openssl("x509", "-req", "-in", csr.name, "-CA", ca[0].name, "-CAkey", ca[1].name,
             "-CAcreateserial", "-out", cert.name, "-days", "2", "-extfile", ext.name, cwd=directory)
    return cert, key


def client_context(ca: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client TLS context trusting `ca`, presenting `cert` when given."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


# -- HTTP ----------------------------------------------------------------------------------------


async def fetch(url: str, *, headers: dict[str, str] | None = None,
                ssl_options: ssl.SSLContext | None = None,
                timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """GET `url` (no exception for error statuses): status, headers, body."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    request = HTTPRequest(url, headers=headers, ssl_options=ssl_options, connect_timeout=timeout,
                          request_timeout=timeout)
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    if response.code == 599 and response.error is not None:
        raise response.error
    return response.code, dict(response.headers), response.body or b""


async def metrics_of(http_url: str, headers: dict[str, str] | None = None,
                     ssl_options: ssl.SSLContext | None = None) -> str:
    status, _, body = await fetch(f"{http_url}/metrics", headers=headers, ssl_options=ssl_options)
    assert status == 200, body
    return body.decode()
