"""GatewayClient: the agent side of ioap.v1, a Tornado pump around the pure `ClientSession`.

The session (client/session.py) decides everything about the protocol; this module owns the
socket and the tasks: it opens WebSockets, reads frames and feeds them in with the time, writes
what the session says to send, sleeps for pacing and backoff, and hands messages to the
application.

Every received message is verified before the application sees it: gateway messages against the
gateway DID announced in the CHALLENGE (or pinned with `expected_gateway_did`), agents' messages
against their sender's did:key. A message that fails is reported to `on_invalid` handlers and
logged, never passed on.

Messages go to the `on_message` handlers when there are any, else to `receive()` (and async
iteration): one consumer, so a client that only uses handlers never fills a queue nobody reads
and keeps reading, as the gateway expects of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect

from .. import PROTOCOL
from ..keys import DIDKey
from ..messages import build
from .directory import (
    DIRECTORY_ANSWERS,
    DiscoveredAgent,
    DiscoveryPage,
    PresenceEvent,
    WatchState,
    answer_error,
    check_card,
    discovery_page,
    presence_event,
    request_payload,
    watch_states,
)
from .errors import ConnectionClosed, GatewayConnectionError, GatewayError, InvalidMessageError
from .handlers import Background, call_handler
from .reconnect import ConnectionEvent, ReconnectPolicy
from .session import (
    PACING_MARGIN,
    ClientSession,
    ClientSettings,
    ClientState,
    Decision,
    Deliver,
    Fail,
    Finish,
    Message,
    PingAnswered,
    Reconnect,
    Refused,
    Registered,
    Report,
    Send,
)
from .url import check_did, check_key, gateway_url_for

if TYPE_CHECKING:  # pragma: no cover
    from .peer.channel import PeerChannel
    from .peer.manager import AcceptPolicy, PeerHandler, PeerManager

log = logging.getLogger("aiconexus.client")

MessageHandler = Callable[[Message], Awaitable[None] | None]
InvalidHandler = Callable[[InvalidMessageError], Awaitable[None] | None]
PresenceHandler = Callable[[PresenceEvent], Awaitable[None] | None]
ConnectionHandler = Callable[[ConnectionEvent], Awaitable[None] | None]
_CLOSED = object()
RECEIPT_MEMORY = 10_000  # receipt statuses kept for receipt() calls made after they came

__all__ = ["PACING_MARGIN", "GatewayClient", "Message"]


class GatewayClient:
    """An agent's connection to an AIConexus Gateway."""

    def __init__(
        self,
        gateway_url: str = "ws://127.0.0.1:8000/ws",
        did_key: DIDKey | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        card: dict[str, Any] | None = None,
        unlisted: bool = False,
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
        """`gateway_url`: the gateway's WebSocket URL, `ws://HOST:PORT/ws` (`wss://` with TLS);
        `http(s)://...` and a bare `HOST:PORT` are understood too. `did_key`: this agent's key
        (a `DIDKey`: `DIDKey.generate()`, or `DIDKey.load(path)` for a key file); a new one when
        omitted. ValueError/TypeError at once when either cannot be used.

        `reconnect`: come back by itself after losing the connection (True: the default
        ReconnectPolicy); meanwhile `send` queues up to `send_queue_size` messages.
        `queue_size`: messages waiting for `receive()` before the client stops reading (the
        gateway then closes it as a slow consumer). `ssl_options`: the TLS context for wss://
        (a private CA, a client certificate for mutual TLS). `pace`: keep under the rate limit
        the gateway announces in REGISTERED. `ping_interval`: WebSocket ping period (None: off);
        a gateway that does not answer within it counts as gone (then reconnection starts, when
        enabled).
        """
        self.gateway_url = gateway_url_for(gateway_url)
        self.key = check_key(did_key) if did_key is not None else DIDKey.generate()
        if reconnect is True:
            reconnect = ReconnectPolicy()
        elif reconnect is not False and not isinstance(reconnect, ReconnectPolicy):
            raise TypeError("reconnect must be True, False or a ReconnectPolicy, "
                            f"not {type(reconnect).__name__}")
        if expected_gateway_did is not None:
            check_did(expected_gateway_did, "expected_gateway_did")
        if metadata is not None and not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, not {type(metadata).__name__}")
        if queue_size < 1 or send_queue_size < 0:
            raise ValueError("queue_size must be at least 1 and send_queue_size 0 or more")
        if card is not None:
            card = check_card(card)
        self._session = ClientSession(self.key, ClientSettings(
            metadata=dict(metadata or {}), card=card, unlisted=bool(unlisted),
            expected_gateway_did=expected_gateway_did,
            reconnect=reconnect or None, send_queue_size=send_queue_size, pace=pace,
            keepalive=keepalive))
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self.ssl_options = ssl_options
        self.close_timeout = close_timeout
        self.ping_interval = ping_interval  # WebSocket pings: a vanished gateway is noticed
        self._ws: WebSocketClientConnection | None = None
        self._queue_size = queue_size
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._handlers: list[MessageHandler] = []
        self._invalid_handlers: list[InvalidHandler] = []
        self._connection_handlers: list[ConnectionHandler] = []
        self._pings: dict[str, asyncio.Future[None]] = {}
        self._read_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._flushing = False
        self._done = asyncio.Event()  # set once the end was carried out (_finish)
        self._background = Background()
        self._peers: PeerManager | None = None  # peer channels, from their first use
        # the mailbox's receipts (docs/sdk.md "Mailbox"): statuses by message id, and waiters
        self._receipts: OrderedDict[str, str] = OrderedDict()
        self._receipt_waiters: dict[str, list[asyncio.Future[str]]] = {}
        self._mailbox_requests: dict[str, asyncio.Future[dict[str, Any]]] = {}
        # discovery and presence (client/directory.py; docs/sdk.md "Discovery and presence")
        self._directory_requests: dict[str, asyncio.Future[Message]] = {}
        self._watching = WatchState()
        self._presence_handlers: list[PresenceHandler] = []
        self._presence_queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)

    # -- what the session knows ------------------------------------------------------------------

    @property
    def did(self) -> str:
        return self.key.did

    @property
    def state(self) -> ClientState:
        """Where the protocol is (client/session.py's ClientState)."""
        return self._session.state

    @property
    def connected(self) -> bool:
        """Registered on an open connection: `send` writes at once."""
        return self._session.registered

    @property
    def reconnecting(self) -> bool:
        """The connection was lost and the client is coming back by itself."""
        return self._session.reconnecting

    @property
    def queued(self) -> int:
        """Messages waiting in the send queue for a connection."""
        return len(self._session.outbox)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._session.settings.metadata

    @property
    def expected_gateway_did(self) -> str | None:
        return self._session.settings.expected_gateway_did

    @property
    def reconnect_policy(self) -> ReconnectPolicy | None:
        return self._session.settings.reconnect

    @property
    def pace(self) -> bool:
        return self._session.settings.pace

    @property
    def keepalive(self) -> bool:
        return self._session.settings.keepalive

    @property
    def gateway_did(self) -> str | None:
        return self._session.gateway_did

    @property
    def session_id(self) -> str | None:
        return self._session.session_id

    @property
    def agent_timeout(self) -> float | None:
        return self._session.agent_timeout

    @property
    def invalid_messages(self) -> int:
        return self._session.invalid_messages

    @property
    def reconnects(self) -> int:
        """Successful reconnections so far."""
        return self._session.reconnects

    @property
    def ice_servers(self) -> list[dict[str, Any]] | None:
        """The STUN/TURN servers the gateway announced in REGISTERED (RTCIceServer dicts)."""
        return self._session.ice_servers

    @property
    def close_code(self) -> int | None:
        return self._session.close_code

    @property
    def close_reason(self) -> str | None:
        return self._session.close_reason

    # -- lifecycle ------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the WebSocket and register; GatewayError names the code when refused.

        One attempt: GatewayConnectionError when the gateway cannot be reached or refuses the
        handshake (its `status` and `retry_after` say why and when to retry).
        """
        try:
            await self._open()
        except BaseException:
            self._session.connect_failed()
            raise

    async def _open(self) -> Registered:
        """One attempt: open a WebSocket, register on it, start its reader and keepalive."""
        self._session.connecting()
        ws = await self._websocket()
        self._ws = ws
        try:
            registered = await asyncio.wait_for(self._handshake(ws), self.connect_timeout)
        except asyncio.TimeoutError:
            ws.close()
            raise GatewayConnectionError(
                f"no registration at {self.gateway_url} within {self.connect_timeout:g} s "
                "(connect_timeout)") from None
        except BaseException:
            ws.close()
            raise
        self._read_task = asyncio.create_task(self._read_loop(ws))
        if self._session.keepalive_period:
            self._keepalive_task = asyncio.create_task(self._keepalive_loop(ws))
        return registered

    async def _websocket(self) -> WebSocketClientConnection:
        request = HTTPRequest(self.gateway_url, connect_timeout=self.connect_timeout,
                              request_timeout=self.connect_timeout, ssl_options=self.ssl_options)
        try:
            return await websocket_connect(request, subprotocols=[PROTOCOL],
                                           max_message_size=self.max_message_size,
                                           ping_interval=self.ping_interval,
                                           ping_timeout=self.ping_interval)
        except HTTPClientError as exc:
            if exc.response is None:  # 599: no HTTP answer at all (timeout, closed, TLS)
                raise GatewayConnectionError(
                    f"cannot connect to {self.gateway_url}: {exc.message}{self._tls_hint(exc.message)}"
                ) from None
            body = exc.response.body.decode("utf-8", "replace")
            raise GatewayConnectionError(
                f"gateway at {self.gateway_url} refused the WebSocket handshake: {exc.code} {body}",
                status=exc.code, retry_after=_retry_after(exc),
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise GatewayConnectionError(
                f"cannot connect to {self.gateway_url}: the gateway's TLS certificate was not "
                f"accepted ({exc.reason}: {exc.verify_message}); for a private CA, pass "
                "ssl_options=ssl.create_default_context(cafile=...)") from None
        except ssl.SSLError as exc:
            raise GatewayConnectionError(
                f"cannot connect to {self.gateway_url}: TLS handshake failed: "
                f"{exc.reason or exc}") from None
        except (OSError, asyncio.TimeoutError) as exc:
            hint = self._tls_hint("reset") if isinstance(exc, ConnectionResetError) else ""
            raise GatewayConnectionError(
                f"cannot connect to {self.gateway_url}: {exc or type(exc).__name__}{hint}"
            ) from None

    def _tls_hint(self, failure: str | None) -> str:
        """A hint when a failure without an HTTP answer may be TLS on one side only."""
        if self.gateway_url.startswith("wss:"):
            return (". Is the gateway serving plain WebSocket (no TLS_CERT)? Then use ws:// "
                    "instead of wss://")
        if failure and any(word in failure.lower() for word in ("closed", "reset", "tls")):
            return ". If the gateway has TLS (TLS_CERT), use wss:// instead of ws://"
        return ""

    async def _handshake(self, ws: WebSocketClientConnection) -> Registered:
        """Feed frames to the session until it registers, fails, or is refused."""
        while True:
            decision = self._session_receive(await self._read_frame(ws))
            if isinstance(decision, Registered):
                return decision
            if isinstance(decision, Send):
                await self._write(ws, decision.text)
            elif isinstance(decision, Fail):
                raise decision.error
            elif isinstance(decision, Refused):
                await _read_until_closed(ws)
                decision.error.close_code = ws.close_code
                raise decision.error

    async def _read_frame(self, ws: WebSocketClientConnection) -> str | bytes:
        message = await ws.read_message()
        if message is None:
            raise ConnectionClosed(ws.close_code, ws.close_reason)
        return message

    def _session_receive(self, frame: str | bytes) -> Decision:
        if isinstance(frame, str):
            return self._session.receive(frame, time.monotonic())
        return self._session.receive_binary()

    async def close(self, code: int = 1000, reason: str = "client closing") -> None:
        """Close the connection; pending receivers see the end of the stream.

        Messages already on their way to us are still received (up to `close_timeout` seconds
        for the gateway's close frame), so a graceful close loses nothing addressed to us.
        """
        if self._peers is not None:
            await self._peers.close()
        unsent = self._session.close()
        if unsent:
            log.warning("closing with %d queued messages unsent", unsent)
        await _cancel(self._reconnect_task)
        ws, read_task = self._ws, self._read_task
        if ws is not None and read_task is not None and not read_task.done():
            ws.close(code, reason)
            if read_task is not asyncio.current_task():
                await asyncio.wait({read_task}, timeout=self.close_timeout)
        await _cancel(self._keepalive_task)
        await _cancel(self._read_task)
        self._finish(self._session.finish(*(_close_of(ws))))

    async def wait_closed(self) -> None:
        """Wait until the client is finished (closed, or gave up reconnecting)."""
        await self._done.wait()

    async def __aenter__(self) -> GatewayClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def on_connection_change(self, handler: ConnectionHandler) -> ConnectionHandler:
        """Call `handler(event)` (plain or async) on disconnection, reconnection and final close."""
        self._connection_handlers.append(handler)
        return handler

    def _emit(self, event: ConnectionEvent) -> None:
        self._background.notify(self._connection_handlers, event, "on_connection_change")

    def _connection_lost(self, ws: WebSocketClientConnection) -> None:
        """The registered connection ended: finish, or reconnect when the session says so."""
        decision = self._session.connection_lost(ws.close_code, ws.close_reason)
        ws.close()  # release our side (a no-op once closed)
        self._fail_pings()
        self._stop_keepalive()
        if isinstance(decision, Finish):
            self._finish(decision)
            return
        log.warning("connection to %s lost (close code %s, %s); reconnecting", self.gateway_url,
                    self.close_code, self.close_reason)
        self._emit(ConnectionEvent("disconnected", code=self.close_code, reason=self.close_reason))
        self._reconnect_task = asyncio.create_task(self._reconnect(decision))

    async def _reconnect(self, decision: Reconnect) -> None:
        """Come back after a lost connection: wait as the session says, then re-register."""
        while True:
            self._emit(ConnectionEvent("reconnecting", attempt=decision.attempt,
                                       delay=decision.delay))
            await asyncio.sleep(decision.delay)
            try:
                registered = await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("reconnection attempt %d failed: %s", decision.attempt, exc)
                following = self._session.attempt_failed(exc)
                if isinstance(following, Finish):
                    log.warning("giving up reconnecting to %s: %s", self.gateway_url,
                                following.reason)
                    self._finish(following)
                    return
                decision = following
                continue
            log.info("reconnected to %s after %d attempt(s)", self.gateway_url, registered.attempt)
            self._emit(ConnectionEvent("reconnected", attempt=registered.attempt))
            await self._flush_outbox()
            await self._watch_again()
            return

    def _finish(self, decision: Finish) -> None:
        """The client is finished: release the socket, end receive(), tell handlers (once)."""
        if self._done.is_set():
            return
        if decision.unsent:
            log.warning("finished with %d queued messages unsent", decision.unsent)
        if self._ws is not None:
            self._ws.close()  # release our side (a no-op once closed)
        self._fail_pings()
        self._stop_keepalive()
        self._done.set()
        self._fail_directory_requests()
        self._emit(ConnectionEvent("closed", code=decision.code, reason=decision.reason))
        if not self._queue.full():  # else receive() adds the end once the queue has room
            self._queue.put_nowait(_CLOSED)

    def _stop_keepalive(self) -> None:
        task = self._keepalive_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _fail_pings(self) -> None:
        for future in self._pings.values():
            if not future.done():
                future.set_exception(ConnectionClosed(self.close_code, self.close_reason))
        self._pings.clear()

    # -- sending --------------------------------------------------------------------------------

    async def send(self, to: str, type: str, payload: dict[str, Any],
                   correlation_id: str | None = None, *, encrypt: bool = False,
                   ttl: int | None = None) -> str:
        """Sign and send a message to the agent `to`; returns its id.

        With `encrypt=True` the payload travels encrypted end to end for `to` (the gateway
        routes it without reading it; docs/protocol.md section 20); received encrypted
        messages are decrypted before delivery (`message.encrypted`), or reported to
        on_invalid when they do not open.

        With `ttl` (seconds, at most the gateway's MAILBOX_MAX_TTL) the message may wait in the
        gateway's mailbox for a recipient that is offline: the gateway answers QUEUED then, and
        a RECEIPT (DELIVERED or EXPIRED) follows; `await client.receipt(id)` waits for it.

        While reconnecting, the message waits in the send queue (in order); SendQueueFull when
        that is full, ConnectionClosed when there is no connection and none is coming;
        ValueError at once when `to` is not a valid did:key.
        """
        check_did(to, "the recipient ('to')")
        if self.connected and not self.queued:
            await self._paced()
        message_id, text = self._session.send(to, type, payload, correlation_id,
                                              time.monotonic(), encrypt, ttl)
        if text is not None:
            ws = self._ws
            assert ws is not None
            try:
                await ws.write_message(text)
            except WebSocketClosedError:
                raise ConnectionClosed(self.close_code, self.close_reason) from None
        elif self.connected:
            await self._flush_outbox()
        return message_id

    async def _flush_outbox(self) -> None:
        """Send the queued frames in order; stop (keeping the rest) if the connection drops."""
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._session.next_queued() is not None:
                await self._paced()
                text, ws = self._session.next_queued(), self._ws
                if text is None or ws is None:
                    return
                try:
                    await ws.write_message(text)
                except WebSocketClosedError:
                    return
                self._session.sent_queued(time.monotonic())
        finally:
            self._flushing = False

    async def _paced(self) -> None:
        """Wait until the gateway's announced rate limit allows one more frame."""
        while wait := self._session.pace(time.monotonic()):
            await asyncio.sleep(wait)

    async def _write(self, ws: WebSocketClientConnection, text: str) -> None:
        try:
            await ws.write_message(text)
        except WebSocketClosedError:
            raise ConnectionClosed(ws.close_code, ws.close_reason) from None

    async def send_raw(self, text: str) -> None:
        """Send a frame exactly as given (tests and tools; no signing, no checks)."""
        if self._ws is None:
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        await self._write(self._ws, text)

    async def ping(self, timeout: float = 5.0, *, payload: dict[str, Any] | None = None) -> float:
        """PING the gateway; the round-trip time in seconds."""
        await self._paced()
        ping_id, text = self._session.ping(time.monotonic(), payload)
        ws = self._ws
        assert ws is not None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[ping_id] = future
        started = time.perf_counter()
        try:
            await self._write(ws, text)
            await asyncio.wait_for(future, timeout)
        finally:
            self._pings.pop(ping_id, None)
            self._session.forget_ping(ping_id)
        return time.perf_counter() - started

    async def _keepalive_loop(self, ws: WebSocketClientConnection) -> None:
        """Keep an idle agent registered: PING the gateway when the session says it is time."""
        while self._ws is ws:
            wait = self._session.keepalive_in(time.monotonic())
            if wait is None:
                return
            await asyncio.sleep(wait)
            decision = self._session.keepalive(time.monotonic())
            if decision is None:
                continue
            try:
                await ws.write_message(decision.text)
            except WebSocketClosedError:
                return

    # -- receiving ------------------------------------------------------------------------------

    def on_message(self, handler: MessageHandler) -> MessageHandler:
        """Call `handler(message)` (plain or async) for every verified message.

        With handlers registered, messages go to them and not to `receive()`; an async handler
        is awaited before the next frame is read (order and back-pressure, as in Tornado)."""
        self._handlers.append(handler)
        return handler

    def on_invalid(self, handler: InvalidHandler) -> InvalidHandler:
        """Call `handler(error)` for every message that failed verification."""
        self._invalid_handlers.append(handler)
        return handler

    async def receive(self, timeout: float | None = None) -> Message:
        """The next verified message (gateway ERRORs included); ConnectionClosed at the end.

        RuntimeError when on_message handlers are registered: they get every message."""
        if self._handlers and self._queue.empty():
            raise RuntimeError("this client hands every message to its on_message handlers; "
                               "use receive() (or async iteration) or handlers, not both "
                               "(wait_closed() waits for the end)")
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # every later receive sees the end too
            raise ConnectionClosed(self.close_code, self.close_reason)
        if self._done.is_set() and self._queue.empty():
            self._queue.put_nowait(_CLOSED)  # the end came while the queue was full
        await self._handled(item)
        return item  # type: ignore[no-any-return,unused-ignore]

    def __aiter__(self) -> GatewayClient:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    async def _read_loop(self, ws: WebSocketClientConnection) -> None:
        try:
            while True:
                frame = await ws.read_message()
                if frame is None:
                    break
                await self._carry_out(self._session_receive(frame))
        finally:
            if self._ws is ws:
                self._connection_lost(ws)

    async def _carry_out(self, decision: Decision) -> None:
        """Do what the session decided about one frame received after registration."""
        if isinstance(decision, Deliver):
            message = decision.message
            if message.sender == self.gateway_did:
                if message.type == "RECEIPT":  # the SDK keeps it for receipt(): acknowledged now
                    self._receipt_arrived(message)
                    await self._handled(message)
                elif self._mailbox_answered(message) or self._directory_answered(message):
                    return
                elif message.type == "PRESENCE":
                    await self._presence_arrived(message)
                    return
            if self._peers is not None and self._peers.takes(message):
                await self._handled(message)
                return
            if not self._handlers:
                await self._queue.put(message)  # acknowledged when receive() returns it
                return
            for handler in self._handlers:
                await call_handler(handler, message, "on_message")
            await self._handled(message)
        elif isinstance(decision, Send):  # a mailbox message again: acknowledged again
            await self._write_quietly(decision.text)
        elif isinstance(decision, PingAnswered):
            future = self._pings.get(decision.ping_id)
            if future is not None and not future.done():
                future.set_result(None)
        elif isinstance(decision, Report):
            log.warning("dropped an invalid message: %s", decision.error.reason)
            for invalid_handler in self._invalid_handlers:
                await call_handler(invalid_handler, decision.error, "on_invalid")


    # -- the mailbox (client/mailbox.py; docs/sdk.md "Mailbox") --------------------------------

    async def _handled(self, message: Message) -> None:
        """The application is done with `message`: acknowledge it if the gateway keeps it."""
        text = self._session.handled(message)
        if text is not None:
            await self._write_quietly(text)

    async def _write_quietly(self, text: str) -> None:
        """Write an ACK, under the announced rate limit like every frame (a burst of waiting
        messages is acknowledged at the pace the gateway takes); when the connection is gone,
        the gateway sends the message again."""
        await self._paced()
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(WebSocketClosedError):
            await ws.write_message(text)

    def _receipt_arrived(self, message: Message) -> None:
        message_id, status = message.payload.get("id"), message.payload.get("status")
        if not isinstance(message_id, str) or not isinstance(status, str):
            return
        self._receipts[message_id] = status
        if len(self._receipts) > RECEIPT_MEMORY:
            self._receipts.popitem(last=False)
        for future in self._receipt_waiters.pop(message_id, []):
            if not future.done():
                future.set_result(status)

    async def receipt(self, message_id: str, timeout: float | None = None) -> str:
        """What became of the message `message_id` sent with a ttl: "DELIVERED" (its recipient
        acknowledged it) or "EXPIRED" (its time to live ran out first). Waits for the RECEIPT
        (asyncio.TimeoutError after `timeout` seconds); one that already came is answered at
        once. The RECEIPT also reaches on_message / receive() as a message."""
        status = self._receipts.get(message_id)
        if status is not None:
            return status
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        waiters = self._receipt_waiters.setdefault(message_id, [])
        waiters.append(future)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._receipt_waiters.pop(message_id, None)

    async def mailbox(self, *, enabled: bool | None = None, blocked: list[str] | None = None,
                      timeout: float = 5.0) -> dict[str, Any]:
        """This agent's mailbox at the gateway: `enabled=False` refuses every stored message
        (senders get MAILBOX_REFUSED), `blocked` the DIDs whose messages it refuses (replacing
        the list); None leaves a rule as it is. Returns the mailbox as the gateway reports it:
        enabled, blocked, messages and bytes waiting, receipts waiting. GatewayError when the
        gateway refuses (no mailbox there: MAILBOX_REFUSED)."""
        payload: dict[str, Any] = {}
        if enabled is not None:
            payload["enabled"] = bool(enabled)
        if blocked is not None:
            for did in blocked:
                check_did(did, "a blocked DID")
            payload["blocked"] = list(blocked)
        if not self.connected or self._ws is None or self.gateway_did is None:
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        await self._paced()
        text, request_id = build(self.key, "MAILBOX", self.gateway_did, payload, now=time.time())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._mailbox_requests[request_id] = future
        try:
            await self._write(self._ws, text)
            return await asyncio.wait_for(future, timeout)
        finally:
            self._mailbox_requests.pop(request_id, None)

    def _mailbox_answered(self, message: Message) -> bool:
        """A MAILBOX answer (or an ERROR) to mailbox(): resolve its call, deliver nothing."""
        future = self._mailbox_requests.get(message.correlation_id or "")
        if future is None or message.type not in ("MAILBOX", "ERROR"):
            return False
        if not future.done():
            if message.type == "MAILBOX":
                future.set_result(dict(message.payload))
            else:
                details = message.payload.get("details")
                future.set_exception(GatewayError(
                    str(message.payload.get("code")), str(message.payload.get("message")),
                    details if isinstance(details, dict) else None))
        return True

    @property
    def duplicates(self) -> int:
        """Mailbox messages received again (after a reconnection) and not handed on twice."""
        return self._session.acks.duplicates

    # -- discovery and presence (client/directory.py; docs/protocol.md section 21) -------------

    async def discover(self, capability: str | None = None, *, name_prefix: str | None = None,
                       dids: list[str] | None = None, limit: int | None = None,
                       cursor: str | None = None, timeout: float = 10.0) -> DiscoveryPage:
        """One page of the agents online now that match (all of) the filters given, each card
        checked against its agent's signature. `page.next` is the `cursor` of the next page
        (None: the last). GatewayError when the gateway refuses the query (MALFORMED_MESSAGE
        says what is wrong; RATE_LIMITED: more than DISCOVERY_RATE per second)."""
        payload = request_payload(capability=capability, name_prefix=name_prefix, dids=dids,
                                  limit=limit, cursor=cursor)
        return discovery_page(await self._ask("DISCOVER", payload, timeout))

    async def discover_all(self, capability: str | None = None, *,
                           name_prefix: str | None = None, dids: list[str] | None = None,
                           timeout: float = 10.0) -> AsyncIterator[DiscoveredAgent]:
        """Every matching agent, page after page."""
        cursor: str | None = None
        while True:
            page = await self.discover(capability, name_prefix=name_prefix, dids=dids,
                                       limit=100, cursor=cursor, timeout=timeout)
            for agent in page.agents:
                yield agent
            if page.next is None:
                return
            cursor = page.next

    async def watch(self, dids: list[str], timeout: float = 10.0) -> dict[str, str]:
        """Watch these agents' presence: their state now (DID -> "online" / "offline"); from then
        on a PresenceEvent for each change (`presence()`, `on_presence`). Watched again by
        itself after a reconnection. GatewayError over the gateway's WATCH_LIMIT."""
        for did in dids:
            check_did(did, "a watched DID")
        states = watch_states(await self._ask("WATCH", {"dids": list(dids)}, timeout))
        self._watching.dids.update(dict.fromkeys(dids))
        return states

    async def unwatch(self, dids: list[str], timeout: float = 10.0) -> None:
        """Stop watching these agents."""
        for did in dids:
            self._watching.dids.pop(did, None)
        await self._ask("UNWATCH", {"dids": list(dids)}, timeout)

    @property
    def watching(self) -> list[str]:
        """The DIDs this client watches."""
        return list(self._watching.dids)

    def on_presence(self, handler: PresenceHandler) -> PresenceHandler:
        """Call `handler(event)` (plain or async) for each PresenceEvent (then `presence()`
        gets none)."""
        self._presence_handlers.append(handler)
        return handler

    async def presence(self) -> AsyncIterator[PresenceEvent]:
        """The PresenceEvents of watched agents, as they come; ends when the client is closed."""
        while True:
            item = await self._presence_queue.get()
            if item is _CLOSED:
                self._presence_queue.put_nowait(_CLOSED)
                return
            yield item

    async def _ask(self, type: str, payload: dict[str, Any], timeout: float) -> Message:
        """Send a request to the gateway; its answer, or GatewayError for an ERROR answer."""
        if not self.connected or self._ws is None or self.gateway_did is None:
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        await self._paced()
        text, request_id = build(self.key, type, self.gateway_did, payload, now=time.time())
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._directory_requests[request_id] = future
        try:
            await self._write(self._ws, text)
            answer = await asyncio.wait_for(future, timeout)
        finally:
            self._directory_requests.pop(request_id, None)
        error = answer_error(answer)
        if error is not None:
            raise error
        return answer

    def _directory_answered(self, message: Message) -> bool:
        future = self._directory_requests.get(message.correlation_id or "")
        if future is None or message.type not in DIRECTORY_ANSWERS:
            return False
        if not future.done():
            future.set_result(message)
        return True

    async def _presence_arrived(self, message: Message) -> None:
        event = presence_event(message)
        if event is None:
            log.warning("dropped a malformed PRESENCE message: %s", message.payload)
            return
        if self._presence_handlers:
            for handler in self._presence_handlers:
                await call_handler(handler, event, "on_presence")
            return
        if self._presence_queue.full():  # nobody reads presence(): keep the newest
            self._presence_queue.get_nowait()
        self._presence_queue.put_nowait(event)

    async def _watch_again(self) -> None:
        """After a reconnection the new session watches nothing: watch the same DIDs again."""
        dids = list(self._watching.dids)
        for start in range(0, len(dids), 100):
            try:
                await self._ask("WATCH", {"dids": dids[start:start + 100]}, 10.0)
            except Exception as exc:  # the application sees the connection events
                log.warning("could not watch %d DIDs again after reconnecting: %s",
                            len(dids[start:start + 100]), exc)

    def _fail_directory_requests(self) -> None:
        for future in self._directory_requests.values():
            if not future.done():
                future.set_exception(ConnectionClosed(self.close_code, self.close_reason))
        if self._presence_queue.full():
            self._presence_queue.get_nowait()
        self._presence_queue.put_nowait(_CLOSED)

    # -- peer channels (client/peer/; docs/sdk.md "Peer channels") ----------------------------

    def _peer_manager(self) -> PeerManager:
        if self._peers is None:
            from .peer.manager import PeerManager

            self._peers = PeerManager(self)
        return self._peers

    async def connect_peer(self, did: str, label: str = "default", timeout: float = 20.0, *,
                           fallback: bool = False, relay_only: bool | None = None,
                           ice_servers: list[dict[str, Any]] | None = None) -> PeerChannel:
        """Open a DID-authenticated data channel to the agent `did`; the open PeerChannel.

        Raises, within `timeout` seconds: PeerUnknownAgent (no such agent connected),
        PeerRefused, PeerTimeout (no answer), PeerICEFailed (no route; `fallback=True` relays
        through the gateway instead), PeerIdentityError (the certificate does not match the
        signed SDP). `ice_servers` (RTCIceServer dicts) replaces the gateway's; `relay_only`
        uses TURN candidates only.
        """
        check_did(did, "the peer's DID")
        return await self._peer_manager().connect(did, label, timeout, fallback=fallback,
                                                  relay_only=relay_only, ice_servers=ice_servers)

    def on_peer(self, handler: PeerHandler) -> PeerHandler:
        """Accept peer channels: call `handler(channel)` (plain or async) with each open one."""
        return self._peer_manager().on_peer(handler)

    def peers(self) -> AsyncIterator[PeerChannel]:
        """Accept peer channels: `async for channel in client.peers()` (ends when closed)."""
        return self._peer_manager().peers()

    def on_peer_request(self, policy: AcceptPolicy) -> AcceptPolicy:
        """Decide on each OFFER: `policy(peer_did, label)` returns (or resolves to) True to
        accept, False to refuse (the caller gets PeerRefused, PEER_REFUSED)."""
        self._peer_manager().accept_policy(policy)
        return policy

    async def refresh_ice_servers(self, timeout: float = 5.0) -> list[dict[str, Any]] | None:
        """Ask the gateway for fresh ICE servers (new TURN credentials); the new `ice_servers`.
        Peer channels do this by themselves when the credentials are about to expire."""
        await self.ping(timeout, payload={"ice_servers": True})
        return self.ice_servers

    def configure_peers(self, *, ice_servers: list[dict[str, Any]] | None = None,
                        relay_only: bool = False) -> None:
        """Defaults for every peer channel of this client, incoming ones included."""
        manager = self._peer_manager()
        manager.ice_servers = ice_servers
        manager.relay_only = relay_only


def _retry_after(error: HTTPClientError) -> float | None:
    """Seconds from a refusal's Retry-After header (delta-seconds form), if any."""
    if error.response is None:
        return None
    value = error.response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _close_of(ws: WebSocketClientConnection | None) -> tuple[int | None, str | None]:
    return (ws.close_code, ws.close_reason) if ws is not None else (None, None)


async def _read_until_closed(ws: WebSocketClientConnection) -> None:
    """After a refusal, read until the close frame so its code is known."""
    with contextlib.suppress(asyncio.TimeoutError):
        while await asyncio.wait_for(ws.read_message(), 2.0) is not None:
            pass


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done() or task is asyncio.current_task():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
