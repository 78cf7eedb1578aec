"""The lean upgrade path (server/upgrade.py) answers exactly what Tornado's HTTP path answers.

Each request below goes, over a raw socket, to a gateway with the lean path and to one without
it (`server.endpoint = None`: every request through Tornado, as before the lean path existed),
both with the same key; their answers must match byte for byte once the values that differ
between any two answers (Date, nonces, ids, timestamps, signatures, uptime) are masked. Each
request ends with something that makes the gateway close the connection (a request with
`Connection: close`, or a Close frame after an upgrade), so an answer is read to its end, not
for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import Iterator

import pytest
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream

from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.tornado_internals import open_http_connections
from aiconexus_gateway.server.upgrade import GatewayServer, UpgradeContext
from tests.reliability.support import metric, metrics_of
from tests.support.waiting import wait_until

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
# the client's Close (1000), masked as RFC 6455 5.3 requires
CLOSE = bytes([0x88, 0x82, 1, 2, 3, 4]) + bytes(a ^ b for a, b in zip(struct.pack("!H", 1000),
                                                                        (1, 2), strict=True))
PING = bytes([0x89, 0x80, 1, 2, 3, 4])
LAST = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def upgrade(extra: str = "", path: str = "/ws", version: str = "HTTP/1.1",
            protocol: str = "Sec-WebSocket-Protocol: ioap.v1\r\n", host: str = "Host: x\r\n") -> bytes:
    return (f"GET {path} {version}\r\n{host}Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n{protocol}{extra}\r\n").encode()


ACCEPTED = {  # upgrades: the 101, the first frames, the close echoed
    "upgrade": upgrade() + CLOSE,
    "no subprotocol offered": upgrade(protocol="") + CLOSE,
    "a query string": upgrade(path="/ws?token=1&x") + CLOSE,
    "two subprotocols": upgrade(protocol="Sec-WebSocket-Protocol: chat, ioap.v1\r\n") + CLOSE,
    "a frame with the request": upgrade() + PING + CLOSE,
    "Connection: keep-alive, Upgrade": upgrade().replace(b"Connection: Upgrade",
                                                        b"Connection: keep-alive, Upgrade") + CLOSE,
    "Connection: close, Upgrade": upgrade().replace(b"Connection: Upgrade",
                                                   b"Connection: close, Upgrade") + CLOSE,
    "upper-case names and values": upgrade().replace(b"Upgrade: websocket",
                                                     b"UPGRADE: WebSocket") + CLOSE,
    "bare LF line ends": upgrade().replace(b"\r\n", b"\n") + CLOSE,
    "an empty line first": b"\r\n" + upgrade() + CLOSE,
    "a browser from a refused origin (4403)": upgrade("Origin: http://elsewhere.example\r\n") + CLOSE,
    "cross-site with an origin": upgrade("Sec-Fetch-Site: cross-site\r\n"
                                         "Origin: http://elsewhere.example\r\n") + CLOSE,
    "X-Forwarded-For, not trusted": upgrade("X-Forwarded-For: 203.0.113.9\r\n") + CLOSE,
    "a body (Tornado's path reads it first)": upgrade("Content-Length: 5\r\n") + b"hello" + CLOSE,
    "an empty body": upgrade("Content-Length: 0\r\n") + CLOSE,
    "Expect: 100-continue": upgrade("Expect: 100-continue\r\n") + CLOSE,
    "compression offered (never negotiated)": upgrade(
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n") + CLOSE,
}
ANSWERED = {  # HTTP answers; the connection kept alive for the next request where HTTP says so
    "only another subprotocol": upgrade(protocol="Sec-WebSocket-Protocol: chat\r\n"),
    "version 8": upgrade().replace(b"Version: 13", b"Version: 8"),
    "no key": upgrade().replace(f"Sec-WebSocket-Key: {KEY}\r\n".encode(), b""),
    "a key not of 16 bytes": upgrade().replace(KEY.encode(), b"c2hvcnQ="),
    "no Host": upgrade(host=""),
    "an invalid Host": upgrade(host="Host: a b\r\n"),
    "two Hosts": upgrade(host="Host: a\r\nHost: b\r\n"),
    "Connection: keep-alive": upgrade().replace(b"Connection: Upgrade", b"Connection: keep-alive"),
    "no Upgrade": b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n",
    "Upgrade: h2c": upgrade().replace(b"Upgrade: websocket", b"Upgrade: h2c"),
    "POST": b"POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    "HEAD": b"HEAD /ws HTTP/1.1\r\nHost: x\r\n\r\n",
    "PUT with upgrade headers": upgrade().replace(b"GET", b"PUT"),
    "HTTP/1.0": upgrade(version="HTTP/1.0"),
    "/ws/": upgrade(path="/ws/"),
    "/WS": upgrade(path="/WS"),
    "cross-site without an origin (Tornado's 403)": upgrade("Sec-Fetch-Site: cross-site\r\n"),
    "a malformed request line": b"GARBAGE\r\n\r\n",
    "a header line without a colon": b"GET /ws HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
    "/health first, then an upgrade": b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + upgrade() + CLOSE,
    "a head over the size limit": b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
}
MASKS = [
    (rb"Date: [^\r\n]*", b"Date: *"),
    (rb'"(id|nonce|signature|timestamp|session_id|expires_at)": ?"[^"]*"', rb'"\1": "*"'),
    (rb'"(timestamp|uptime_seconds)": ?[0-9.e+-]+', rb'"\1": *'),
    (rb"Etag: [^\r\n]*", b"Etag: *"),
    (rb"Content-Length: [0-9]+", b"Content-Length: *"),  # (uptime's digits)
    (rb"\x81(~..|[\x00-\x7d])\{", b"<text frame>{"),  # (lengths: the masked values' digits)
]


def masked(answer: bytes) -> bytes:
    for pattern, replacement in MASKS:
        answer = re.sub(pattern, replacement, answer, flags=re.DOTALL)
    return answer


async def answer(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), 10)  # to the gateway's close
    finally:
        writer.close()


@pytest.fixture
def tornado_path(io_loop: IOLoop, gateway: Gateway) -> Iterator[Gateway]:
    """A second gateway, the same key and settings, where Tornado serves every request."""
    config = gateway.config.replace(port=0)
    other: Gateway = io_loop.run_sync(lambda: Gateway.start(config, identity=gateway.hub.identity))
    assert isinstance(other.server, GatewayServer) and other.server.endpoint is not None
    other.server.endpoint = None
    yield other
    io_loop.run_sync(lambda: other.stop(timeout=2.0))


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("name", list(ACCEPTED) + list(ANSWERED))
async def test_the_lean_path_answers_as_tornados_path_does(
        gateway: Gateway, tornado_path: Gateway, name: str) -> None:
    request = ACCEPTED.get(name) or ANSWERED[name] + LAST
    lean, plain = await asyncio.gather(answer(gateway.port, request),
                                       answer(tornado_path.port, request))
    assert masked(lean) == masked(plain)
    if name in ACCEPTED:
        assert b"HTTP/1.1 101 Switching Protocols\r\n" in lean
        assert b'"CHALLENGE"' in lean or b'"AUTH_FAILED"' in lean
    # every connection has ended; every admission slot came back
    await wait_for_no_connections(gateway)
    await wait_for_no_connections(tornado_path)


async def wait_for_no_connections(gateway: Gateway) -> None:
    admission = gateway.hub.connections.admission
    await wait_until(lambda: not gateway.hub.peers and not admission.per_ip, 5,
                     "the connection gone and its slot released")


@pytest.mark.gen_test(timeout=30)
async def test_a_clean_upgrade_never_reaches_tornados_http_path(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clean upgrades are the lean path's (else the path is dead code and the tests above
    compare Tornado with itself); anything else is handed over."""
    handed: list[bytes] = []
    server = gateway.server
    assert isinstance(server, GatewayServer)
    hand_over = server.hand_over

    def counted(stream: IOStream, context: UpgradeContext, head: bytes) -> None:
        handed.append(head)
        hand_over(stream, context, head)

    monkeypatch.setattr(server, "hand_over", counted)
    lean = await answer(gateway.port, upgrade() + CLOSE)
    assert lean.startswith(b"HTTP/1.1 101 ") and handed == []
    await answer(gateway.port, ANSWERED["version 8"] + LAST)
    assert handed == [ANSWERED["version 8"]]


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(max_connections_per_ip=1)
async def test_an_admission_refusal_the_lean_path_decided_is_answered_and_counted_once(
        gateway: Gateway) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(upgrade())  # holds the address's one connection
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
    for count in range(1, 4):
        refused = await answer(gateway.port, upgrade() + LAST)
        assert refused.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), refused
        assert b"\r\nRetry-After: " in refused and b'"error": "TOO_MANY_CONNECTIONS"' in refused
        assert b"HTTP/1.1 200 OK" in refused  # the connection served the next request too
        exposition = await metrics_of(gateway.http_url)
        assert metric(exposition, "aiconexus_connections_refused_total",
                      reason="max_connections_per_ip") == count
        assert metric(exposition, "aiconexus_connections_total", result="refused") == count
    assert gateway.hub.connections.admission.per_ip == {"127.0.0.1": 1}
    writer.close()
    await wait_for_no_connections(gateway)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("lean", [True, False])
async def test_a_connection_still_sending_its_head_does_not_hold_up_a_stop(
        gateway: Gateway, lean: bool) -> None:
    if not lean:
        gateway.server.endpoint = None  # type: ignore[attr-defined]
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    await wait_until(lambda: open_http_connections(gateway.server) == 1, 5, "the head being read")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await gateway.stop(timeout=2.0)
    assert loop.time() - started < 1.5
    with contextlib.suppress(ConnectionResetError):  # (the kernel may say it so)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped, no answer
    writer.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_bug_in_the_lean_path_drops_that_connection_and_nothing_else(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gateway.server, "dispatch", broken)
    for _ in range(2):  # the head there at once (read where accepted), or a moment later
        with contextlib.suppress(ConnectionResetError):
            assert await answer(gateway.port, upgrade()) == b""
    assert "Uncaught exception serving" in caplog.text and "a bug" in caplog.text
    monkeypatch.undo()
    assert (await answer(gateway.port, LAST)).startswith(b"HTTP/1.1 200 OK")  # still accepting
    assert open_http_connections(gateway.server) == 0
