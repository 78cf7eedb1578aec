"""The agent side of ioap.v1 as a pure state machine: frames and events in, decisions out. No I/O.

Theory of operation: `GatewayClient` (the Tornado pump) owns the socket and the tasks; this
`ClientSession` owns every fact about the protocol: where the handshake is, the gateway's DID and
key, the session id, the frames waiting for a connection, the pacing bucket, the PINGs in flight,
the reconnection attempt. The pump feeds it what happened (a frame arrived, the connection
opened, failed or was lost, the application wants to send) with the time, and carries out the
one decision it returns. Time and randomness are passed in, so tests drive it without sockets.

    state          event                                decision                   next state
    IDLE           connecting()                         -                          CONNECTING
    CONNECTING     CHALLENGE (valid, expected DID)      Send(REGISTER)             REGISTERING
    CONNECTING     anything else                        Fail(GatewayConnectionError)  (see lost)
    REGISTERING    REGISTERED (correlation = REGISTER)  Registered                 REGISTERED
    REGISTERING    ERROR                                Refused(GatewayError)      (see lost)
    REGISTERED     valid routed message / ERROR         Deliver(Message)
    REGISTERED     PONG to our keepalive PING           None (consumed)
    REGISTERED     PONG to ping()                       PingAnswered(id)
    REGISTERED     invalid (parse, DID, signature)      Report(InvalidMessageError)
    any open       close()                              -                          CLOSING
    CONNECTING..   connection_lost / attempt_failed     Reconnect(attempt, delay)  RECONNECTING
                   (reconnection on, loss not final)
    CONNECTING..   the same, otherwise                  Finish(code, reason)       CLOSED
                   (or IDLE after a failed first connect(): the caller sees the exception)
    RECONNECTING   connecting()                         -                          CONNECTING

A loss is final when close() was called (CLOSING), reconnection is off, the close code says the
gateway will not take us back as we were (FINAL_CLOSE_CODES), a reconnection attempt was refused
for a reason the next attempt would meet again (FINAL_REGISTRATION_ERRORS), or the policy's
max_attempts ran out.
"""

from __future__ import annotations

import enum
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import ValueError as NaClValueError
from nacl.signing import VerifyKey

from ..did import public_key_from_did
from ..e2e import E2E, E2EError
from ..e2e import MEMBER as E2E_MEMBER
from ..errors import ErrorCode, ProtocolError
from ..keys import DIDKey
from ..messages import Envelope, build, new_id, parse
from ..ratelimit import TokenBucket
from .errors import (
    ConnectionClosed,
    GatewayConnectionError,
    GatewayError,
    InvalidMessageError,
    SendQueueFull,
)
from .mailbox import Acknowledgements, Seen, acknowledged, check_ttl
from .reconnect import FINAL_CLOSE_CODES, FINAL_REGISTRATION_ERRORS, ReconnectPolicy, backoff_delay

PACING_MARGIN = 0.9  # pace at 90% of the gateway's announced rate, so jitter never trips it


class ClientState(enum.Enum):
    IDLE = "idle"  # not connected yet, or the first connect() failed
    CONNECTING = "connecting"  # the WebSocket is opening; waiting for the CHALLENGE
    REGISTERING = "registering"  # REGISTER sent; waiting for REGISTERED
    REGISTERED = "registered"  # the agent is routable: send and receive
    RECONNECTING = "reconnecting"  # the connection was lost; waiting out the backoff
    CLOSING = "closing"  # close() was called; reading what is still on its way
    CLOSED = "closed"  # final: nothing more is sent or received


class Message:
    """A verified message received from the gateway or another agent."""

    __slots__ = ("correlation_id", "encrypted", "fields", "id", "payload", "raw", "recipient",
                 "sender", "timestamp", "type")

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
        self.encrypted = False  # True: `payload` was decrypted (end to end, e2e.py); `fields` as sent

    @property
    def error_code(self) -> str | None:
        """The code of an ERROR message, else None."""
        return str(self.payload.get("code")) if self.type == "ERROR" else None

    def __repr__(self) -> str:
        return f"Message({self.type} {self.id} from {self.sender})"


# -- decisions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Write `text` on the connection."""

    text: str


@dataclass(frozen=True, slots=True)
class Registered:
    """The handshake is complete: the agent is routable (flush the send queue, start keepalive)."""

    session_id: str
    reconnected: bool  # after a lost connection (the attempt number is in `attempt`)
    attempt: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand `message` to the application (on_message handlers, else the receive() queue)."""

    message: Message


@dataclass(frozen=True, slots=True)
class Report:
    """A received frame failed verification: tell on_invalid handlers; it is not delivered."""

    error: InvalidMessageError


@dataclass(frozen=True, slots=True)
class PingAnswered:
    """The PONG to the PING `ping_id` that ping() sent arrived."""

    ping_id: str


@dataclass(frozen=True, slots=True)
class Fail:
    """The gateway broke the handshake: close the socket; the attempt failed with `error`."""

    error: GatewayConnectionError


@dataclass(frozen=True, slots=True)
class Refused:
    """The gateway refused our REGISTER; it closes the connection (read to its close frame)."""

    error: GatewayError


@dataclass(frozen=True, slots=True)
class Reconnect:
    """Wait `delay` seconds, then make reconnection attempt `attempt` (1 for the first)."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class Finish:
    """The client is finished (CLOSED): end receive(), fail pending pings, tell handlers."""

    code: int | None
    reason: str | None
    unsent: int = 0  # queued frames dropped


Decision = Send | Registered | Deliver | Report | PingAnswered | Fail | Refused | None


@dataclass
class ClientSettings:
    """What the application chose for this client (fixed for its lifetime)."""

    metadata: dict[str, Any] = field(default_factory=dict)
    card: dict[str, Any] | None = None  # the agent card, signed in REGISTER (docs/protocol.md 21)
    unlisted: bool = False  # routable, but never discovered (protocol 21.4)
    expected_gateway_did: str | None = None
    reconnect: ReconnectPolicy | None = None
    send_queue_size: int = 1000
    pace: bool = True
    keepalive: bool = True


class ClientSession:
    """The protocol state of one agent across its connections, driven by frames and time."""

    def __init__(self, key: DIDKey, settings: ClientSettings, *,
                 wall_clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] = random.random) -> None:
        self.key = key
        self.settings = settings
        self.state = ClientState.IDLE
        self.gateway_did: str | None = None
        self.session_id: str | None = None
        self.agent_timeout: float | None = None
        self.ice_servers: list[dict[str, Any]] | None = None  # REGISTERED's, for peer channels
        self.invalid_messages = 0  # received frames that failed verification
        self.reconnects = 0  # successful reconnections so far
        self.attempt = 0  # reconnection attempts since the connection was lost (0: none)
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.outbox: deque[str] = deque()  # signed frames waiting for a connection, in order
        self._wall_clock = wall_clock
        self._jitter = jitter
        self._gateway_key: VerifyKey | None = None
        self._register_id: str | None = None
        self._pacer: TokenBucket | None = None
        self._last_send = 0.0
        self._keepalive_ids: set[str] = set()
        self._ping_ids: set[str] = set()
        self._retry_after: float | None = None
        self._e2e: E2E | None = None  # made on first use of end-to-end encryption
        self.acks = Acknowledgements()  # mailbox messages handed on (client/mailbox.py)

    @property
    def registered(self) -> bool:
        return self.state is ClientState.REGISTERED

    @property
    def reconnecting(self) -> bool:
        """The connection was lost and the client is coming back (waiting, or re-registering)."""
        return self.attempt > 0 and self.state in (ClientState.RECONNECTING, ClientState.CONNECTING,
                                                   ClientState.REGISTERING)

    # -- the connection's life -------------------------------------------------------------------

    def connecting(self) -> None:
        """The pump is opening a WebSocket (first connect() or a reconnection attempt)."""
        if self.state in (ClientState.CLOSING, ClientState.CLOSED):
            raise ConnectionClosed(self.close_code, "this client was closed; make a new "
                                   "GatewayClient to connect again")
        if self.state is not ClientState.IDLE and self.state is not ClientState.RECONNECTING:
            raise RuntimeError(f"connect() while {self.state.value}: this client is already "
                               "connected or connecting")
        self.state = ClientState.CONNECTING
        self.session_id = None  # `registered` only once this connection's REGISTERED arrives
        self._register_id = None

    def receive(self, text: str, now: float) -> Decision:
        """The decision one received text frame calls for."""
        if self.state is ClientState.CONNECTING:
            return self._challenge(text, now)
        if self.state is ClientState.REGISTERING:
            return self._registered(text, now)
        if self.state in (ClientState.REGISTERED, ClientState.CLOSING):
            return self._routed(text, now)
        return None  # after the end: nothing more is handed on

    def receive_binary(self) -> Decision:
        """A binary frame: the gateway never sends one."""
        error = GatewayConnectionError("the gateway sent a binary frame")
        if self.state in (ClientState.CONNECTING, ClientState.REGISTERING):
            return Fail(error)
        self.invalid_messages += 1
        return Report(InvalidMessageError("binary frame", ""))

    def connection_lost(self, code: int | None, reason: str | None) -> Reconnect | Finish:
        """The open connection ended (the gateway closed it, or it broke)."""
        self.close_code, self.close_reason = code, reason
        if (self.state in (ClientState.CLOSING, ClientState.CLOSED) or self.settings.reconnect is None
                or self.close_code in FINAL_CLOSE_CODES):
            return self._finish()
        self._keepalive_ids.clear()
        self._ping_ids.clear()
        self._retry_after = None
        return self._next_attempt()

    def attempt_failed(self, error: Exception) -> Reconnect | Finish:
        """A reconnection attempt did not get to REGISTERED (refused, unreachable, broken)."""
        if self.state in (ClientState.CLOSING, ClientState.CLOSED):
            return self._finish()
        if isinstance(error, GatewayError) and error.code in FINAL_REGISTRATION_ERRORS:
            self.close_code = error.close_code
            self.close_reason = f"registration refused: {error.code}"
            return self._finish()
        self._retry_after = getattr(error, "retry_after", None)
        return self._next_attempt()

    def connect_failed(self) -> None:
        """The first connect() failed; the caller sees the exception and may call connect() again."""
        if self.state not in (ClientState.CLOSING, ClientState.CLOSED):
            self.state = ClientState.IDLE

    def close(self) -> int:
        """The application closes: no more sends; the number of queued frames dropped."""
        unsent = len(self.outbox)
        self.outbox.clear()
        if self.state is not ClientState.CLOSED:
            self.state = ClientState.CLOSING  # still reading what is on its way to us
        return unsent

    def finish(self, code: int | None = None, reason: str | None = None) -> Finish:
        """Enter CLOSED (idempotent: the Finish of the first call is returned again)."""
        if self.close_code is None and self.close_reason is None:
            self.close_code, self.close_reason = code, reason
        return self._finish()

    def _finish(self) -> Finish:
        unsent = len(self.outbox)
        self.outbox.clear()
        self.state = ClientState.CLOSED
        self.attempt = 0
        self._ping_ids.clear()
        self._keepalive_ids.clear()
        return Finish(self.close_code, self.close_reason, unsent)

    def _next_attempt(self) -> Reconnect | Finish:
        policy = self.settings.reconnect
        assert policy is not None
        if policy.max_attempts is not None and self.attempt >= policy.max_attempts:
            self.close_reason = f"no connection after {self.attempt} attempts"
            return self._finish()
        delay = backoff_delay(policy, self.attempt, retry_after=self._retry_after,
                              jitter=self._jitter)
        self.attempt += 1
        self.state = ClientState.RECONNECTING
        self.session_id = None
        return Reconnect(self.attempt, delay)

    # -- handshake -----------------------------------------------------------------------------

    def _challenge(self, text: str, now: float) -> Decision:
        try:
            envelope = parse(text)
        except ProtocolError as exc:
            return Fail(GatewayConnectionError(f"the gateway's first frame is not a valid "
                                               f"message: {exc.message}"))
        if envelope.type != "CHALLENGE":
            return Fail(GatewayConnectionError(f"expected CHALLENGE, got {envelope.type}"))
        expected = self.settings.expected_gateway_did
        if expected and envelope.sender != expected:
            return Fail(GatewayConnectionError(
                f"the gateway is {envelope.sender}, not the expected {expected}"))
        try:
            gateway_key = _verify_key(envelope.sender)
            envelope.verify(gateway_key)
        except ProtocolError as exc:
            return Fail(GatewayConnectionError(
                f"the CHALLENGE does not verify ({exc.code.value}: {exc.message})"))
        nonce = envelope.payload.get("nonce")
        if not isinstance(nonce, str):
            return Fail(GatewayConnectionError("the CHALLENGE has no nonce"))
        self._gateway_key = gateway_key
        self.gateway_did = envelope.sender
        payload: dict[str, Any] = {"nonce": nonce}
        if self.settings.metadata:
            payload["metadata"] = self.settings.metadata
        if self.settings.card is not None:
            payload["card"] = self.settings.card
        if self.settings.unlisted:
            payload["unlisted"] = True
        text, self._register_id = build(self.key, "REGISTER", envelope.sender, payload,
                                        now=self._wall_clock())
        self.state = ClientState.REGISTERING
        return Send(text)

    def _registered(self, text: str, now: float) -> Decision:
        try:
            reply = self._verified(text)
        except InvalidMessageError as exc:
            return Fail(GatewayConnectionError(f"invalid answer to REGISTER: {exc.reason}"))
        if reply.type == "ERROR" and reply.sender == self.gateway_did:
            payload = reply.payload
            details = payload.get("details")
            return Refused(GatewayError(str(payload.get("code")), str(payload.get("message")),
                                        details if isinstance(details, dict) else None))
        if reply.type != "REGISTERED" or reply.correlation_id != self._register_id:
            return Fail(GatewayConnectionError(f"expected REGISTERED, got {reply.type}"))
        payload = reply.payload
        self.session_id = str(payload.get("session_id"))
        timeout = payload.get("agent_timeout")
        self.agent_timeout = _positive(timeout)
        self.ice_servers = _ice_servers(payload.get("ice_servers"))
        self._pacer = _pacer(payload.get("rate_limit"), now) if self.settings.pace else None
        self._last_send = now
        self.state = ClientState.REGISTERED
        self.close_code = self.close_reason = None  # of the connection lost before this one
        attempt, self.attempt = self.attempt, 0
        if attempt:
            self.reconnects += 1
        return Registered(self.session_id, attempt > 0, attempt)

    # -- registered ----------------------------------------------------------------------------

    def _routed(self, text: str, now: float) -> Decision:
        try:
            message = self._verified(text)
        except InvalidMessageError as exc:
            self.invalid_messages += 1
            return Report(exc)
        if E2E_MEMBER in message.payload and message.sender != self.gateway_did:
            try:
                message.payload = self._encryption().open(
                    message.sender, str(message.recipient), message.type, message.id,
                    message.payload)
            except E2EError as exc:
                self.invalid_messages += 1
                return Report(InvalidMessageError(str(exc), text))
            message.encrypted = True
        if acknowledged(message.sender, message.type, "ttl" in message.fields, self.gateway_did):
            seen = self.acks.arrived(message.sender, message.id)
            if seen is not Seen.NEW:  # a repeat: the application had it already
                return Send(self._ack(message)) if seen is Seen.DONE else None
        if message.type == "PONG" and message.sender == self.gateway_did:
            if message.correlation_id in self._keepalive_ids:
                self._keepalive_ids.discard(message.correlation_id)
                return None
            if message.correlation_id in self._ping_ids:
                self._ping_ids.discard(message.correlation_id)
                if "ice_servers" in message.payload:  # refresh_ice_servers(): fresh credentials
                    self.ice_servers = _ice_servers(message.payload["ice_servers"])
                return PingAnswered(message.correlation_id)
        if message.type == "ERROR" and message.sender == self.gateway_did \
                and message.payload.get("code") == "RATE_LIMITED":
            self._rate_limited(message.payload.get("details"), now)
        return Deliver(message)

    def _rate_limited(self, details: Any, now: float) -> None:
        """The gateway refused a frame: it charged more than the pacer knew (a slow frame costs
        extra tokens, ratelimit.COST_UNIT). The pacer owes it `retry_after`: the next frame waits."""
        retry = details.get("retry_after") if isinstance(details, dict) else None
        if self._pacer is None or isinstance(retry, bool) or not isinstance(retry, (int, float)) \
                or not 0 <= retry <= 60:
            return
        self._pacer.take(now)  # brings the bucket up to now (a token taken or not: it owes)
        self._pacer.tokens = min(self._pacer.tokens, -retry * self._pacer.rate)

    def _verified(self, text: str) -> Message:
        try:
            envelope = parse(text)
            if envelope.sender == self.gateway_did:
                assert self._gateway_key is not None
                envelope.verify(self._gateway_key)
            else:
                envelope.verify(_verify_key(envelope.sender))
        except ProtocolError as exc:
            raise InvalidMessageError(f"{exc.code.value}: {exc.message}", text) from None
        return Message(envelope, text)

    # -- sending -------------------------------------------------------------------------------

    def send(self, to: str | None, type: str, payload: dict[str, Any],
             correlation_id: str | None, now: float,
             encrypt: bool = False, ttl: int | None = None) -> tuple[str, str | None]:
        """Sign a message: (its id, the frame to write now, or None when it waits in the queue).

        While reconnecting, or while earlier frames still wait, the frame is queued (in order);
        SendQueueFull when the queue is full, ConnectionClosed when no connection is coming.
        With `encrypt`, the payload travels encrypted for `to` (e2e.py); ValueError when `to` is
        not an agent's did:key. With `ttl` (seconds), the gateway keeps the message for an
        offline recipient (docs/protocol.md "Mailbox").
        """
        extra = {"ttl": check_ttl(ttl)} if ttl is not None else None
        direct = self.state is ClientState.REGISTERED and not self.outbox
        if not direct and not (self.reconnecting or self.state is ClientState.REGISTERED):
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        if not direct and len(self.outbox) >= self.settings.send_queue_size:
            raise SendQueueFull(f"disconnected, and {len(self.outbox)} messages already wait to "
                                "be sent (send_queue_size)")
        message_id = None
        if encrypt:
            if to is None or to == self.gateway_did:
                raise ValueError("only messages to another agent can be encrypted; the gateway "
                                 "reads the messages addressed to it")
            message_id = new_id()
            payload = self._encryption().seal(to, type, message_id, payload)
        text, message_id = build(self.key, type, to, payload, correlation_id=correlation_id,
                                 message_id=message_id, now=self._wall_clock(), extra=extra)
        if direct:
            self._last_send = now
            return message_id, text
        self.outbox.append(text)
        return message_id, None

    def _encryption(self) -> E2E:
        if self._e2e is None:
            self._e2e = E2E(self.key)
        return self._e2e

    def handled(self, message: Message) -> str | None:
        """The application is done with `message`: the ACK frame to write now, if it needs one."""
        if not acknowledged(message.sender, message.type, "ttl" in message.fields,
                            self.gateway_did):
            return None
        if not self.acks.finished(message.sender, message.id):
            return None
        return self._ack(message)

    def _ack(self, message: Message) -> str:
        assert self.gateway_did is not None
        text, _ = build(self.key, "ACK", self.gateway_did,
                        {"from": message.sender, "id": message.id}, now=self._wall_clock())
        return text

    def ping(self, now: float, payload: dict[str, Any] | None = None) -> tuple[str, str]:
        """A PING for the gateway whose PONG becomes PingAnswered: (its id, the frame).
        `{"ice_servers": true}` asks for fresh ICE servers (protocol.md section 19)."""
        if self.state is not ClientState.REGISTERED or self.gateway_did is None:
            raise ConnectionClosed(self.close_code, self.close_reason or "not connected")
        text, message_id = build(self.key, "PING", self.gateway_did, payload or {},
                                 now=self._wall_clock())
        self._ping_ids.add(message_id)
        self._last_send = now
        return message_id, text

    def forget_ping(self, ping_id: str) -> None:
        """ping() gave up waiting for this PONG."""
        self._ping_ids.discard(ping_id)

    def next_queued(self) -> str | None:
        """The oldest queued frame, when registered (remove it with `sent_queued` once written)."""
        if self.state is not ClientState.REGISTERED or not self.outbox:
            return None
        return self.outbox[0]

    def sent_queued(self, now: float) -> None:
        """The frame `next_queued` returned was written."""
        self.outbox.popleft()
        self._last_send = now

    def pace(self, now: float) -> float:
        """Seconds to wait before the next frame keeps under the announced rate limit; 0: go.

        A zero takes the token, so call it once per frame, right before writing."""
        return self._pacer.take(now) if self._pacer is not None else 0.0

    @property
    def keepalive_period(self) -> float | None:
        """How often the pump should call `keepalive` (a third of agent_timeout), or None."""
        if not self.settings.keepalive or not self.agent_timeout:
            return None
        return self.agent_timeout / 3

    def keepalive_in(self, now: float) -> float | None:
        """Seconds until `keepalive` will have a PING to send; None: no keepalive (now)."""
        period = self.keepalive_period
        if period is None or self.state is not ClientState.REGISTERED:
            return None
        return max(0.0, self._last_send + period - now)

    def keepalive(self, now: float) -> Send | None:
        """A PING for the gateway when nothing was sent for keepalive_period (AGENT_TIMEOUT)."""
        period = self.keepalive_period
        if (period is None or self.state is not ClientState.REGISTERED or self.gateway_did is None
                or now - self._last_send < period):
            return None
        text, message_id = build(self.key, "PING", self.gateway_did, {}, now=self._wall_clock())
        self._keepalive_ids.add(message_id)
        self._last_send = now
        return Send(text)


def _verify_key(did: str) -> VerifyKey:
    """The key inside an Ed25519 did:key; ProtocolError (INVALID_DID) when there is none."""
    try:
        return VerifyKey(public_key_from_did(did))
    except NaClValueError:
        raise ProtocolError(ErrorCode.INVALID_DID, "the DID's key is not an Ed25519 point") from None


def _positive(value: Any) -> float | None:
    """A JSON number above zero as a float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return None
    return float(value)


def _ice_servers(announced: Any) -> list[dict[str, Any]] | None:
    """REGISTERED's `ice_servers` (RTCIceServer objects: urls, username, credential), keeping
    the well-formed entries; None when the gateway announced none."""
    if not isinstance(announced, list):
        return None
    servers = []
    for server in announced:
        if not isinstance(server, dict):
            continue
        urls = server.get("urls")
        urls = [urls] if isinstance(urls, str) else urls
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            continue
        entry: dict[str, Any] = {"urls": urls}
        for member in ("username", "credential"):
            if isinstance(server.get(member), str):
                entry[member] = server[member]
        servers.append(entry)
    return servers


def _pacer(announced: Any, now: float) -> TokenBucket | None:
    """A token bucket a little under the rate limit the gateway announced in REGISTERED."""
    if not isinstance(announced, dict):
        return None
    rate, burst = _positive(announced.get("messages_per_second")), _positive(announced.get("burst"))
    if rate is None or burst is None:
        return None
    return TokenBucket(rate * PACING_MARGIN, max(1.0, burst * PACING_MARGIN), now)
