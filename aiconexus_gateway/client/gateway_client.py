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
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from nacl.signing import VerifyKey
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .. import PROTOCOL
from ..did import public_key_from_did
from ..errors import ProtocolError
from ..keys import DIDKey
from ..limits import TokenBucket
from ..messages import Envelope, build, parse
from .errors import (
    ConnectionClosed,
    GatewayConnectionError,
    GatewayError,
    InvalidMessageError,
    SendQueueFull,
)
from .reconnect import (
    FINAL_CLOSE_CODES,
    FINAL_REGISTRATION_ERRORS,
    ConnectionEvent,
    ReconnectPolicy,
    backoff_delay,
)

log = logging.getLogger("aiconexus.client")

MessageHandler = Callable[["Message"], Awaitable[None] | None]
InvalidHandler = Callable[[InvalidMessageError], Awaitable[None] | None]
ConnectionHandler = Callable[[ConnectionEvent], Awaitable[None] | None]
_CLOSED = object()
PACING_MARGIN = 0.9  # pace at 90% of the gateway's announced rate, so jitter never trips it


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
        reconnect: bool | ReconnectPolicy = False,
        send_queue_size: int = 1000,
        ssl_options: ssl.SSLContext | None = None,
        pace: bool = True,
        close_timeout: float = 2.0,
        ping_interval: float | None = 20.0,
    ) -> None:
        """`reconnect`: come back by itself after losing the connection (True: the default
        ReconnectPolicy); meanwhile `send` queues up to `send_queue_size` messages.
        `ssl_options`: the TLS context for wss:// (a private CA, a client certificate for mutual
        TLS). `pace`: keep under the rate limit the gateway announces in REGISTERED.
        `ping_interval`: WebSocket ping period (None: off); a gateway that does not answer within
        it counts as gone (then reconnection starts, when enabled).
        """
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
        self.reconnect_policy = ReconnectPolicy() if reconnect is True else (reconnect or None)
        self.ssl_options = ssl_options
        self.pace = pace
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval  # WebSocket pings: a vanished gateway is noticed
        self.reconnects = 0  # successful reconnections so far
        self._send_queue_size = send_queue_size
        self._outbox: deque[str] = deque()  # signed frames waiting for a connection, in order
        self._flushing = False
        self._pacer: TokenBucket | None = None
        self._connection_handlers: list[ConnectionHandler] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._closing = False  # close() was called
        self._background: set[asyncio.Future[Any]] = set()

    @property
    def did(self) -> str:
        return self.key.did

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._closed and self.session_id is not None

    @property
    def reconnecting(self) -> bool:
        return self._reconnect_task is not None and not self._reconnect_task.done()

    @property
    def queued(self) -> int:
        """Messages waiting in the send queue for a connection."""
        return len(self._outbox)

    # -- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the WebSocket and register; GatewayError names the code when refused.

        One attempt: GatewayConnectionError when the gateway cannot be reached or refuses the
        handshake (its `status` and `retry_after` say why and when to retry).
        """
        self._closing = False
        await self._open()

    async def _open(self) -> None:
        request = HTTPRequest(self.gateway_url, connect_timeout=self.connect_timeout,
                              request_timeout=self.connect_timeout, ssl_options=self.ssl_options)
        try:
            ws = await websocket_connect(request, subprotocols=[PROTOCOL],
                                         max_message_size=self.max_message_size,
                                         ping_interval=self.ping_interval,
                                         ping_timeout=self.ping_interval)
        except HTTPClientError as exc:
            body = exc.response.body.decode("utf-8", "replace") if exc.response else ""
            raise GatewayConnectionError(
                f"gateway at {self.gateway_url} refused the WebSocket handshake: {exc.code} {body}",
                status=exc.code, retry_after=_retry_after(exc),
            ) from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise GatewayConnectionError(
                f"cannot connect to {self.gateway_url}: {exc}") from None
        self._ws = ws
        self._closed = self._finished = False
        self.close_code = self.close_reason = None
        self.session_id = None  # `connected` only once this connection's REGISTERED arrives
        try:
            await asyncio.wait_for(self._handshake(), self.connect_timeout)
        except BaseException:
            ws.close()
            self._closed = True
            raise
        self._tasks = [task for task in self._tasks if not task.done()]
        self._read_task = asyncio.create_task(self._read_loop(ws))
        self._tasks.append(self._read_task)
        if self.keepalive and self.agent_timeout:
            self._tasks.append(asyncio.create_task(self._keepalive_loop(ws, self.agent_timeout / 3)))

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
        self._pacer = _pacer(reply.payload.get("rate_limit")) if self.pace else None

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
        """Close the connection; pending receivers see the end of the stream.

        Messages already on their way to us are still received (up to `close_timeout` seconds
        for the gateway's close frame), so a graceful close loses nothing addressed to us.
        """
        self._closing = True
        if self._reconnect_task is not None and not self._reconnect_task.done():
            self._reconnect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnect_task
        if self._outbox:
            log.warning("closing with %d queued messages unsent", len(self._outbox))
            self._outbox.clear()
        if self._ws is not None and not self._closed:
            self._ws.close(code, reason)
            read_task = self._read_task
            if read_task is not None and read_task is not asyncio.current_task():
                await asyncio.wait({read_task}, timeout=self.close_timeout)
            self._closed = True
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in self._tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        self._finish()

    def on_connection_change(self, handler: ConnectionHandler) -> ConnectionHandler:
        """Call `handler(event)` (plain or async) on disconnection, reconnection and final close."""
        self._connection_handlers.append(handler)
        return handler

    def _emit(self, event: ConnectionEvent) -> None:
        for handler in self._connection_handlers:
            try:
                result = handler(event)
            except Exception:
                log.exception("on_connection_change handler failed")
                continue
            if inspect.isawaitable(result):
                future = asyncio.ensure_future(result)
                self._background.add(future)
                future.add_done_callback(self._background.discard)

    async def _reconnect(self) -> None:
        """Come back after a lost connection: jittered exponential backoff, then re-register."""
        policy = self.reconnect_policy
        assert policy is not None
        attempt = 0
        retry_after: float | None = None
        while not self._closing:
            delay = backoff_delay(policy, attempt, retry_after=retry_after)
            attempt += 1
            self._emit(ConnectionEvent("reconnecting", attempt=attempt, delay=delay))
            await asyncio.sleep(delay)
            if self._closing:
                return
            try:
                await self._open()
            except GatewayError as exc:
                if exc.code in FINAL_REGISTRATION_ERRORS:
                    log.warning("gateway refused to register us again (%s); giving up", exc.code)
                    self._give_up(f"registration refused: {exc.code}")
                    return
                retry_after = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                retry_after = getattr(exc, "retry_after", None)
                log.info("reconnection attempt %d failed: %s", attempt, exc)
            else:
                self.reconnects += 1
                log.info("reconnected to %s after %d attempt(s)", self.gateway_url, attempt)
                self._emit(ConnectionEvent("reconnected", attempt=attempt))
                if self._outbox:
                    await self._flush_outbox()
                return
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                self._give_up(f"no connection after {attempt} attempts")
                return

    def _give_up(self, reason: str) -> None:
        self.close_reason = reason
        self._closing = True
        if self._outbox:
            log.warning("giving up with %d queued messages unsent", len(self._outbox))
            self._outbox.clear()
        self._finish()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sending --------------------------------------------------------------------------------

    async def send(self, to: str, type: str, payload: dict[str, Any],
                   correlation_id: str | None = None) -> str:
        """Sign and send a message to the agent `to`; returns its id.

        While reconnecting, the message waits in the send queue (in order); SendQueueFull when
        that is full, ConnectionClosed when there is no connection and none is coming.
        """
        if self.connected and not self._outbox:
            return await self._send_frame(to, type, payload, correlation_id)
        if not (self.reconnecting or (self.connected and self._outbox)):
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        if len(self._outbox) >= self._send_queue_size:
            raise SendQueueFull(f"disconnected, and {len(self._outbox)} messages already wait to "
                                "be sent (send_queue_size)")
        text, message_id = build(self.key, type, to, payload, correlation_id=correlation_id,
                                 now=time.time())
        self._outbox.append(text)
        if self.connected and not self._flushing:
            await self._flush_outbox()
        return message_id

    async def _flush_outbox(self) -> None:
        """Send the queued frames in order; stop (keeping the rest) if the connection drops."""
        self._flushing = True
        try:
            while self._outbox and self.connected:
                ws = self._ws
                assert ws is not None
                await self._paced()
                try:
                    await ws.write_message(self._outbox[0])
                except WebSocketClosedError:
                    return
                self._outbox.popleft()
                self._last_send = time.monotonic()
        finally:
            self._flushing = False

    async def _paced(self) -> None:
        """Wait until the gateway's announced rate limit allows one more frame."""
        pacer = self._pacer
        if pacer is None:
            return
        while True:
            wait = pacer.take(time.monotonic())
            if not wait:
                return
            await asyncio.sleep(wait)

    async def send_raw(self, text: str) -> None:
        """Send a frame exactly as given (tests and tools; no signing, no checks)."""
        assert self._ws is not None
        await self._ws.write_message(text)

    async def _send_frame(self, to: str | None, type: str, payload: dict[str, Any],
                          correlation_id: str | None = None) -> str:
        assert self._ws is not None
        await self._paced()
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
        if not self.connected:
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
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

    async def _read_loop(self, ws: WebSocketClientConnection) -> None:
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
            if self._ws is ws:
                self._closed = True
                self._connection_lost(ws)

    def _connection_lost(self, ws: WebSocketClientConnection) -> None:
        """The connection ended: finish, or reconnect when enabled and the close allows it."""
        if self.close_code is None:
            self.close_code, self.close_reason = ws.close_code, ws.close_reason
        code = self.close_code
        if self._closing or self.reconnect_policy is None or code in FINAL_CLOSE_CODES:
            self._finish()
            return
        ws.close()  # release our side (a no-op once closed)
        self._fail_pings()
        self._cancel_tasks()
        log.warning("connection to %s lost (close code %s, %s); reconnecting", self.gateway_url,
                    code, self.close_reason)
        self._emit(ConnectionEvent("disconnected", code=code, reason=self.close_reason))
        self._reconnect_task = asyncio.create_task(self._reconnect())

    def _cancel_tasks(self) -> None:
        """Stop the lost connection's tasks (its keepalive), except the one running this."""
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current and not task.done():
                task.cancel()

    def _fail_pings(self) -> None:
        for future in self._pings.values():
            if not future.done():
                future.set_exception(ConnectionClosed(self.close_code, self.close_reason))
        self._pings.clear()

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._ws is not None:
            if self.close_code is None:
                self.close_code, self.close_reason = self._ws.close_code, self._ws.close_reason
            self._ws.close()  # release our side (a no-op once closed)
        self._fail_pings()
        self._cancel_tasks()
        self._emit(ConnectionEvent("closed", code=self.close_code, reason=self.close_reason))
        if self._queue.full():
            return  # the reader will see the end once it drains the queue
        self._queue.put_nowait(_CLOSED)

    async def _keepalive_loop(self, ws: WebSocketClientConnection, period: float) -> None:
        """Keep an idle agent registered: PING the gateway when nothing was sent for `period`."""
        while not self._closed and self._ws is ws:
            await asyncio.sleep(period)
            if self._closed or self._ws is not ws or self.gateway_did is None:
                return
            if time.monotonic() - self._last_send >= period:
                try:
                    self._keepalive_ids.add(
                        await self._send_frame(self.gateway_did, "PING", {}))
                except ConnectionClosed:
                    return


def _retry_after(error: HTTPClientError) -> float | None:
    """Seconds from a refusal's Retry-After header (delta-seconds form), if any."""
    if error.response is None:
        return None
    value = error.response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _pacer(announced: Any) -> TokenBucket | None:
    """A token bucket a little under the rate limit the gateway announced in REGISTERED."""
    if not isinstance(announced, dict):
        return None
    rate, burst = announced.get("messages_per_second"), announced.get("burst")
    if not isinstance(rate, (int, float)) or not isinstance(burst, (int, float)) or rate <= 0:
        return None
    return TokenBucket(rate * PACING_MARGIN, max(1.0, burst * PACING_MARGIN), time.monotonic())


async def _call(handler: Callable[[Any], Any], argument: Any) -> None:
    result = handler(argument)
    if inspect.isawaitable(result):
        await result
