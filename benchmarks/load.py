"""The load generator: agents on raw WebSocket connections, pre-signed frames, and the two drivers.

Everything expensive happens before a timed window: keys are derived from fixed seeds, every
routed message is signed and encoded (masked) once, and each pair cycles through its own
`cycle` pre-signed frames. Inside the window, sending is a `transport.write` of ready bytes and
receiving is a byte comparison with the frame expected next, so the generator costs a few
microseconds per message and the gateway, not the generator, is what saturates.

Integrity: a pair's frames travel one sender connection -> gateway -> one recipient connection, so
they must arrive complete, unchanged and in order. The in-flight window is smaller than the cycle,
so any loss, duplicate or reordering shows as a frame that is not the one expected next; net
counts (sent minus delivered, after draining) give lost and duplicated messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from time import perf_counter

from aiconexus_gateway import PROTOCOL, messages
from aiconexus_gateway.keys import DIDKey

from . import wsclient
from .servers import ServerProcess
from .wsclient import WSClient

REGISTER_TIMEOUT = 60.0


async def connected_agents(server: ServerProcess) -> int:
    """The gateway's own count of its agents (GET /health)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    body = response.split(b"\r\n\r\n", 1)[1]
    return int(json.loads(body)["connected_agents"])


def keys(role: str, count: int, start: int = 0) -> list[DIDKey]:
    """`count` deterministic agent keys: the same DIDs in every run and every process."""
    return [DIDKey.from_seed(hashlib.sha256(f"aiconexus-bench/{role}/{i}".encode()).digest())
            for i in range(start, start + count)]


def sdp_payload(size: int) -> dict[str, str]:
    """A signaling payload (an SDP offer) whose JSON is about `size` bytes."""
    lines = ["v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0",
             "a=group:BUNDLE 0", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
             "c=IN IP4 0.0.0.0", "a=ice-ufrag:EsAw", "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1",
             "a=fingerprint:sha-256 D1:2C:BE:AD:C4:F6:64:5C:25:16:11:9C:AF:E7:0F:73:79:36:4E:9C",
             "a=setup:actpass", "a=mid:0", "a=sctp-port:5000"]
    sdp = ""
    i = 0
    while len(json.dumps({"sdp": sdp})) < size:
        sdp += lines[i % len(lines)] + "\r\n" if i < len(lines) else \
            f"a=candidate:{i} 1 udp 2122260223 192.168.1.{i % 250} {50000 + i} typ host\r\n"
        i += 1
    return {"sdp": sdp}


# -- connecting agents -------------------------------------------------------------------------------


class IdleSink:
    """Frames an idle agent receives: there should be none (pings are answered below this)."""

    def __init__(self) -> None:
        self.frames = 0
        self.sample: str | None = None

    def __call__(self, payload: bytes) -> None:
        self.frames += 1
        if self.sample is None:
            self.sample = payload[:300].decode("utf-8", "replace")


async def register(server: ServerProcess, key: DIDKey) -> WSClient:
    """Connect to the gateway and complete the challenge handshake as `key`'s agent."""
    client = await wsclient.connect(server.host, server.port, "/ws", subprotocol=PROTOCOL,
                                    timeout=REGISTER_TIMEOUT, local_host=server.local_host)
    try:
        challenge = json.loads(await client.next_text(REGISTER_TIMEOUT))
        if challenge.get("type") != "CHALLENGE":
            raise ConnectionError(f"expected CHALLENGE, got {challenge.get('type')}")
        text, _ = messages.build(key, "REGISTER", challenge["from"],
                                 {"nonce": challenge["payload"]["nonce"]}, now=time.time())
        client.send_text(text)
        reply = json.loads(await client.next_text(REGISTER_TIMEOUT))
        if reply.get("type") != "REGISTERED":
            raise ConnectionError(f"registration refused: {reply.get('payload')}")
    except BaseException:
        client.abort()
        raise
    return client


async def join_relay(server: ServerProcess, key: DIDKey) -> WSClient:
    """Connect to the bare relay under `key`'s DID (it has no handshake)."""
    return await wsclient.connect(server.host, server.port, f"/ws?id={key.did}",
                                  timeout=REGISTER_TIMEOUT)


@dataclass
class Joined:
    clients: list[WSClient]
    seconds: float
    failures: list[str] = field(default_factory=list)


async def join_all(server: ServerProcess, agent_keys: Sequence[DIDKey], *, concurrency: int,
                   relay: bool = False) -> Joined:
    """Connect (and register) every key, `concurrency` handshakes at a time; timed."""
    limit = asyncio.Semaphore(concurrency)
    connect = join_relay if relay else register
    failures: list[str] = []

    async def one(key: DIDKey) -> WSClient | None:
        async with limit:
            try:
                return await connect(server, key)
            except (OSError, asyncio.TimeoutError, ValueError, KeyError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                return None

    started = perf_counter()
    results = await asyncio.gather(*(one(k) for k in agent_keys))
    seconds = perf_counter() - started
    clients = [c for c in results if c is not None]
    for client in clients:
        client.on_frame = IdleSink()
    return Joined(clients, seconds, failures)


def close_all(clients: Sequence[WSClient]) -> None:
    for client in clients:
        client.abort()


# -- pairs and their pre-signed frames ----------------------------------------------------------------


@dataclass
class Frames:
    """One pair's cycle of pre-signed messages: masked frames to send, the bytes to expect."""

    wire: list[bytes]
    plain: list[bytes]


def presign(sender: DIDKey, recipient: DIDKey, pair: int, cycle: int,
            payload: dict[str, str]) -> Frames:
    wire: list[bytes] = []
    plain: list[bytes] = []
    for k in range(cycle):
        text, _ = messages.build(sender, "OFFER", recipient.did, payload,
                                 message_id=f"bench-{pair:05d}-{k:05d}", now=time.time())
        data = text.encode("utf-8")
        plain.append(data)
        wire.append(wsclient.encode_frame(data))
    return Frames(wire, plain)


class Link:
    """One sender -> recipient pair in a timed run: sends, checks and times its frames."""

    __slots__ = (
        "_credit",
        "_expected",
        "cycle",
        "delivered",
        "error_sample",
        "errors",
        "index",
        "latencies",
        "out_of_order",
        "plain",
        "recipient",
        "recording",
        "refill_enabled",
        "sender",
        "sent",
        "sent_at",
        "window",
        "wire",
    )

    def __init__(self, sender: WSClient, recipient: WSClient, frames: Frames, window: int,
                 latencies: list[float]) -> None:
        self.sender = sender
        self.recipient = recipient
        self.wire = frames.wire
        self.plain = frames.plain
        self.cycle = len(frames.wire)
        self.index = {data: k for k, data in enumerate(frames.plain)}
        self.window = window
        self.latencies = latencies
        self.sent_at = [0.0] * self.cycle
        self.sent = 0
        self.delivered = 0
        self.out_of_order = 0
        self.errors = 0
        self.error_sample: str | None = None
        self.recording = False
        self.refill_enabled = False
        self._credit = 0
        self._expected = 0
        recipient.on_frame = self.on_delivered
        recipient.after_frames = self.refill
        sender.on_frame = self.on_sender_frame

    # -- receiving ----------------------------------------------------------------------------------

    def on_delivered(self, payload: bytes) -> None:
        now = perf_counter()
        slot = self._expected
        if payload != self.plain[slot]:
            found = self.index.get(payload)
            if found is None:
                self._error(payload)
                return
            self.out_of_order += 1
            slot = found
        elif self.recording:
            self.latencies.append(now - self.sent_at[slot])
        self._expected = (slot + 1) % self.cycle
        self.delivered += 1
        self._credit += 1

    def on_sender_frame(self, payload: bytes) -> None:
        self._error(payload)  # nothing is addressed to a sender: an ERROR from the gateway

    def _error(self, payload: bytes) -> None:
        self.errors += 1
        if self.error_sample is None:
            self.error_sample = payload[:300].decode("utf-8", "replace")

    # -- sending ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Fill the window (closed loop: each delivery then releases the next frame)."""
        self.refill_enabled = True
        self.send(self.window)

    def refill(self) -> None:
        credit = self._credit
        if credit:
            self._credit = 0
            if self.refill_enabled:
                self.send(credit)

    def send(self, count: int) -> None:
        now = perf_counter()
        cycle = self.cycle
        first = self.sent % cycle
        if count == 1:
            self.sent_at[first] = now
            self.sender.send(self.wire[first])
        else:
            slots = [(first + i) % cycle for i in range(count)]
            for slot in slots:
                self.sent_at[slot] = now
            self.sender.send(b"".join([self.wire[slot] for slot in slots]))
        self.sent += count

    @property
    def in_flight(self) -> int:
        return self.sent - self.delivered


def link_pairs(senders: Sequence[WSClient], recipients: Sequence[WSClient],
               frames: Sequence[Frames], window: int) -> tuple[list[Link], list[float]]:
    latencies: list[float] = []
    links = [Link(s, r, f, window, latencies)
             for s, r, f in zip(senders, recipients, frames, strict=True)]
    return links, latencies


async def drain(links: Sequence[Link], timeout: float) -> None:
    """Stop sending and wait (bounded) for every frame in flight to arrive."""
    for link in links:
        link.refill_enabled = False
    deadline = time.monotonic() + timeout
    while any(link.in_flight > 0 for link in links) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
