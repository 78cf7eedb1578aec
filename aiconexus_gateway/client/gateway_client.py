"""GatewayClient: the agent side of ioap.v1 over Tornado's WebSocket client.

Every received message is verified before the application sees it: gateway messages against the
gateway DID announced in the CHALLENGE (or pinned with `expected_gateway_did`), agents' messages
against their sender's did:key. A message that fails is reported to `on_invalid` handlers and
logged, never passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nacl.signing import VerifyKey
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .. import PROTOCOL
from ..did import public_key_from_did
from ..errors import ProtocolError
from ..keys import DIDKey
from ..messages import Envelope, build, parse
from .errors import ConnectionClosed, GatewayConnectionError, GatewayError, InvalidMessageError

log = logging.getLogger("aiconexus.client")

MessageHandler = Callable[["Message"], Awaitable[None] | None]
InvalidHandler = Callable[[InvalidMessageError], Awaitable[None] | None]
_CLOSED = object()


class Message:
    """A verified message received from the gateway or another agent."""

    __slots__ = ("correlation_id", "fields", "id", "payload", "raw", "recipient", "sender",
                 "timestamp", "type")

    def __init__(self, envelope: Envelope, raw: str) -> None:
        self.id = envelope.id
        self.type = envelope.type
        self.sender = envelope.sender
        self.recipient = envelope.recipient
        self.payload = envelope.payload
        self.correlation_id = envelope.correlation_id
        self.timestamp: str = envelope.fields["timestamp"]
        self.fields = envelope.fields
        self.raw = raw  # the frame exactly as received

    @property
    def error_code(self) -> str | None:
        """The code of an ERROR message, else None."""
        return str(self.payload.get("code")) if self.type == "ERROR" else None

    def __repr__(self) -> str:
        return f"Message({self.type} {self.id} from {self.sender})"


class GatewayClient:
    """An agent's connection to an AIConexus Gateway."""

    def __init__(
        self,
        gateway_url: str = "ws://127.0.0.1:8000/ws",
        did_key: DIDKey | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        expected_gateway_did: str | None = None,
        connect_timeout: float = 10.0,
        queue_size: int = 10_000,
        keepalive: bool = True,
        max_message_size: int = 10 * 1024 * 1024,
    ) -> None:
        self.gateway_url = gateway_url
        self.key = did_key or DIDKey.generate()
        self.metadata = metadata or {}
        self.expected_gateway_did = expected_gateway_did
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.max_message_size = max_message_size
        self.gateway_did: str | None = None
        self.session_id: str | None = None
        self.agent_timeout: float | None = None
        self.invalid_messages = 0
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._ws: WebSocketClientConnection | None = None
        self._gateway_key: VerifyKey | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._handlers: list[MessageHandler] = []
        self._invalid_handlers: list[InvalidHandler] = []
        self._pings: dict[str, asyncio.Future[float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._keepalive_ids: set[str] = set()
        self._last_send = 0.0
        self._closed = False
        self._finished = False

    @property
    def did(self) -> str:
        return self.key.did

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._closed and self.session_id is not None

    # -- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the WebSocket and register; GatewayError names the code when refused."""
        request = HTTPRequest(self.gateway_url, connect_timeout=self.connect_timeout,
                              request_timeout=self.connect_timeout)
        try:
            self._ws = await websocket_connect(request, subprotocols=[PROTOCOL],
                                               max_message_size=self.max_message_size)
        except HTTPClientError as exc:
            body = exc.response.body.decode("utf-8", "replace") if exc.response else ""
            raise GatewayConnectionError(
                f"gateway at {self.gateway_url} refused the WebSocket handshake: {exc.code} {body}"
            ) from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise GatewayConnectionError(
                f"cannot connect to {self.gateway_url}: {exc}") from None
        self._closed = self._finished = False
        try:
            await asyncio.wait_for(self._handshake(), self.connect_timeout)
        except BaseException:
            self._ws.close()
            self._closed = True
            raise
        self._tasks.append(asyncio.create_task(self._read_loop()))
        if self.keepalive and self.agent_timeout:
            self._tasks.append(asyncio.create_task(self._keepalive_loop(self.agent_timeout / 3)))

    async def _handshake(self) -> None:
        challenge = await self._read_raw()
        envelope = parse(challenge)
        if envelope.type != "CHALLENGE":
            raise GatewayConnectionError(f"expected CHALLENGE, got {envelope.type}")
        if self.expected_gateway_did and envelope.sender != self.expected_gateway_did:
            raise GatewayConnectionError(
                f"the gateway is {envelope.sender}, not the expected {self.expected_gateway_did}")
        self._gateway_key = VerifyKey(public_key_from_did(envelope.sender))
        envelope.verify(self._gateway_key)
        self.gateway_did = envelope.sender
        payload: dict[str, Any] = {"nonce": envelope.payload.get("nonce")}
        if self.metadata:
            payload["metadata"] = self.metadata
        register_id = await self._send_frame(self.gateway_did, "REGISTER", payload)
        reply = self._verified(await self._read_raw())
        if reply.type == "ERROR":
            await self._wait_closed()
            raise GatewayError(str(reply.payload.get("code")), str(reply.payload.get("message")),
                               reply.payload.get("details"), self.close_code)
        if reply.type != "REGISTERED" or reply.correlation_id != register_id:
            raise GatewayConnectionError(f"expected REGISTERED, got {reply.type}")
        self.session_id = reply.payload.get("session_id")
        self.agent_timeout = reply.payload.get("agent_timeout")

    async def _read_raw(self) -> str:
        assert self._ws is not None
        text = await self._ws.read_message()
        if text is None:
            self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason
            raise ConnectionClosed(self.close_code, self.close_reason)
        if not isinstance(text, str):
            raise GatewayConnectionError("the gateway sent a binary frame")
        return text

    async def _wait_closed(self) -> None:
        """After a refusal, read until the close frame so its code is known."""
        try:
            while True:
                await asyncio.wait_for(self._read_raw(), 2.0)
        except (ConnectionClosed, asyncio.TimeoutError, GatewayConnectionError):
            pass

    async def close(self, code: int = 1000, reason: str = "client closing") -> None:
        """Close the connection; pending receivers see the end of the stream."""
        if self._ws is not None and not self._closed:
            self._closed = True
            self._ws.close(code, reason)
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        self._finish()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sending --------------------------------------------------------------------------------

    async def send(self, to: str, type: str, payload: dict[str, Any],
                   correlation_id: str | None = None) -> str:
        """Sign and send a message to the agent `to`; returns its id."""
        if not self.connected:
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        return await self._send_frame(to, type, payload, correlation_id)

    async def send_raw(self, text: str) -> None:
        """Send a frame exactly as given (tests and tools; no signing, no checks)."""
        assert self._ws is not None
        await self._ws.write_message(text)

    async def _send_frame(self, to: str | None, type: str, payload: dict[str, Any],
                          correlation_id: str | None = None) -> str:
        assert self._ws is not None
        text, message_id = build(self.key, type, to, payload, correlation_id=correlation_id,
                                 now=time.time())
        try:
            await self._ws.write_message(text)
        except WebSocketClosedError:
            raise ConnectionClosed(self.close_code, self.close_reason) from None
        self._last_send = time.monotonic()
        return message_id

    async def ping(self, timeout: float = 5.0) -> float:
        """PING the gateway; the round-trip time in seconds."""
        assert self.gateway_did is not None
        started = time.perf_counter()
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        message_id = await self.send(self.gateway_did, "PING", {})
        self._pings[message_id] = future
        try:
            await asyncio.wait_for(future, timeout)
        finally:
            self._pings.pop(message_id, None)
        return time.perf_counter() - started

    # -- receiving ------------------------------------------------------------------------------

    def on_message(self, handler: MessageHandler) -> MessageHandler:
        """Call `handler(message)` (plain or async) for every verified message."""
        self._handlers.append(handler)
        return handler

    def on_invalid(self, handler: InvalidHandler) -> InvalidHandler:
        """Call `handler(error)` for every message that failed verification."""
        self._invalid_handlers.append(handler)
        return handler

    async def receive(self, timeout: float | None = None) -> Message:
        """The next verified message; ConnectionClosed when the connection ended."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # every later receive sees the end too
            raise ConnectionClosed(self.close_code, self.close_reason)
        return item  # type: ignore[no-any-return,unused-ignore]

    def __aiter__(self) -> GatewayClient:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    def _verified(self, text: str) -> Message:
        try:
            envelope = parse(text)
            if envelope.sender == self.gateway_did:
                assert self._gateway_key is not None
                envelope.verify(self._gateway_key)
            else:
                envelope.verify(VerifyKey(public_key_from_did(envelope.sender)))
        except ProtocolError as exc:
            raise InvalidMessageError(f"{exc.code.value}: {exc.message}", text) from None
        return Message(envelope, text)

    async def _read_loop(self) -> None:
        try:
            while True:
                text = await self._read_raw()
                try:
                    message = self._verified(text)
                except InvalidMessageError as exc:
                    self.invalid_messages += 1
                    log.warning("dropped an invalid message: %s", exc.reason)
                    for invalid_handler in self._invalid_handlers:
                        await _call(invalid_handler, exc)
                    continue
                if message.type == "PONG" and message.correlation_id in self._keepalive_ids:
                    self._keepalive_ids.discard(message.correlation_id)
                    continue
                if message.type == "PONG" and message.correlation_id in self._pings:
                    future = self._pings.pop(message.correlation_id)
                    if not future.done():
                        future.set_result(time.perf_counter())
                    continue
                for handler in self._handlers:
                    await _call(handler, message)
                await self._queue.put(message)
        except (ConnectionClosed, GatewayConnectionError):
            pass
        finally:
            self._closed = True
            self._finish()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._ws is not None:
            if self.close_code is None:
                self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason
            self._ws.close()  # release our side (a no-op once closed)
        for future in self._pings.values():
            if not future.done():
                future.set_exception(ConnectionClosed(self.close_code, self.close_reason))
        self._pings.clear()
        if self._queue.full():
            return  # the reader will see the end once it drains the queue
        self._queue.put_nowait(_CLOSED)

    async def _keepalive_loop(self, period: float) -> None:
        """Keep an idle agent registered: PING the gateway when nothing was sent for `period`."""
        while not self._closed:
            await asyncio.sleep(period)
            if self._closed or self.gateway_did is None:
                return
            if time.monotonic() - self._last_send >= period:
                try:
                    self._keepalive_ids.add(
                        await self._send_frame(self.gateway_did, "PING", {}))
                except ConnectionClosed:
                    return


async def _call(handler: Callable[[Any], Any], argument: Any) -> None:
    result = handler(argument)
    if inspect.isawaitable(result):
        await result
