"""PeerChannel: what the application holds, whatever carries it (WebRTC or the gateway relay)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..handlers import Background
from .errors import PeerClosed

log = logging.getLogger("aiconexus.client.peer")
_END = object()


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """A change of a channel's state: `state` (open, closed, failed), `reason` (closed, failed)."""

    state: str
    reason: str | None = None


PeerEventHandler = Callable[[PeerEvent], Awaitable[None] | None]


class Link(Protocol):
    """What carries a channel's messages: the data channel, or the gateway relay."""

    async def send(self, data: str | bytes) -> None: ...


class PeerChannel:
    """An ordered, reliable, DID-authenticated channel to one agent.

    `state`: connecting, open, closed or failed. `transport`: direct, turn or relay (None until
    open). `peer_did`: the agent at the other end, whose signed SDP the DTLS certificate matched
    (or, for relay, whose signature every message carries).
    """

    def __init__(self, peer_did: str, label: str, negotiation_id: str,
                 closer: Callable[[PeerChannel, str], Awaitable[None]],
                 consumed: Callable[[PeerChannel], None] | None = None) -> None:
        self.peer_did = peer_did
        self.label = label
        self.negotiation_id = negotiation_id
        self.state = "connecting"
        self.transport: str | None = None
        self.close_reason: str | None = None
        self.link: Link | None = None
        self._closer = closer
        self._consumed = consumed
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._handlers: list[PeerEventHandler] = []
        self._done = asyncio.Event()
        self._background = Background()

    def __repr__(self) -> str:
        return (f"PeerChannel({self.label!r} with {self.peer_did}, {self.state}, "
                f"{self.transport or '-'})")

    # -- the application's side ------------------------------------------------------------------

    async def send(self, data: str | bytes) -> None:
        """Send one message (text or bytes); PeerClosed when the channel is not open."""
        if not isinstance(data, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"a channel sends str or bytes, not {type(data).__name__}")
        if self.state != "open" or self.link is None:
            raise PeerClosed(f"the channel to {self.peer_did} is {self.state}"
                             f"{': ' + self.close_reason if self.close_reason else ''}",
                             peer_did=self.peer_did)
        await self.link.send(data if isinstance(data, (str, bytes)) else bytes(data))

    async def receive(self, timeout: float | None = None) -> str | bytes:
        """The next message, in order; PeerClosed once the channel ended and every message
        before the end was read; asyncio.TimeoutError after `timeout` seconds."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _END:
            self._queue.put_nowait(_END)  # every later receive sees the end too
            raise PeerClosed(f"the channel to {self.peer_did} is {self.state}"
                             f"{': ' + self.close_reason if self.close_reason else ''}",
                             peer_did=self.peer_did)
        if self._consumed is not None:
            self._consumed(self)
        return item

    def __aiter__(self) -> PeerChannel:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except PeerClosed:
            raise StopAsyncIteration from None

    async def close(self, reason: str = "closed by the application") -> None:
        """Close the channel; the peer sees it closed too. Idempotent."""
        if self.state in ("closed", "failed"):
            return
        await self._closer(self, reason)

    async def wait_closed(self) -> None:
        """Wait until the channel is closed or failed."""
        await self._done.wait()

    def on_event(self, handler: PeerEventHandler) -> PeerEventHandler:
        """Call `handler(PeerEvent)` (plain or async) when the channel opens, closes or fails."""
        self._handlers.append(handler)
        return handler

    async def __aenter__(self) -> PeerChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the pump's side -------------------------------------------------------------------------

    def opened(self, transport: str, link: Link) -> None:
        self.transport, self.link, self.state = transport, link, "open"
        self._emit(PeerEvent("open"))

    def delivered(self, data: str | bytes) -> None:
        if not self._done.is_set():
            self._queue.put_nowait(data)

    def ended(self, state: str, reason: str) -> None:
        """The channel is over (closed or failed): receivers see the end after what was queued."""
        if self._done.is_set():
            return
        self.state, self.close_reason = state, reason
        self._done.set()
        self._queue.put_nowait(_END)
        self._emit(PeerEvent(state, reason))

    def _emit(self, event: PeerEvent) -> None:
        self._background.notify(self._handlers, event, "peer channel event")
