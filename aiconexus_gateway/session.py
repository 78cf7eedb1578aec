"""One connection's protocol state: challenge -> registered -> closed. No I/O.

Theory of operation: the I/O layer feeds each received frame's text to `Session.receive` and
carries out the single action it returns: send a frame back, forward a frame to another agent,
register the agent, or close. Errors are ProtocolErrors turned into ERROR frames here; during the
handshake they also close the connection (4400/4401), afterwards the session stays open so one bad
message never costs an agent its session.

    state        frame                         action
    CHALLENGED   valid REGISTER                Register(did, REGISTERED)  -> REGISTERED
    CHALLENGED   anything else / invalid       Close(4400 | 4401, ERROR)  -> CLOSED
    CHALLENGED   (timer) challenge expired     Close(4408, ERROR TIMEOUT) -> CLOSED
    REGISTERED   routable type to an agent     Forward(to, text)
    REGISTERED   PING to the gateway           Reply(PONG)
    REGISTERED   UNREGISTER to the gateway     Close(1000)                -> CLOSED
    REGISTERED   invalid                       Reply(ERROR)
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import ValueError as NaClValueError
from nacl.signing import VerifyKey

from . import messages
from .canonical import CanonicalizationError, canonicalize
from .did import public_key_from_did
from .errors import CloseCode, ErrorCode, ProtocolError, handshake_close_code
from .messages import Envelope, MessageFactory

MAX_METADATA_BYTES = 4096


class State(enum.Enum):
    CHALLENGED = "challenged"
    REGISTERED = "registered"
    CLOSED = "closed"


class VerifyMode(str, enum.Enum):
    """Which signatures the gateway checks (VERIFY_SIGNATURES)."""

    ALL = "all"  # every message: nothing unverified ever leaves the gateway
    HANDSHAKE = "handshake"  # REGISTER only; recipients verify routed messages end to end


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `text` back on this connection."""

    text: str
    error: ErrorCode | None = None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 0.35 us more, once per routed frame
class Forward:
    """Deliver the received frame `text`, unchanged, to the agent `to`."""

    to: str
    text: str
    type: str
    id: str


@dataclass(frozen=True, slots=True)
class Register:
    """The agent proved it holds `did`'s key: make it routable, then send `reply`."""

    did: str
    metadata: dict[str, Any]
    reply: str


@dataclass(frozen=True, slots=True)
class Close:
    """Send `text` (if any), then close with `code`."""

    code: int
    reason: str
    text: str | None = None
    error: ErrorCode | None = None


Action = Reply | Forward | Register | Close


@dataclass(frozen=True, slots=True)
class SessionSettings:
    challenge_timeout: float
    agent_timeout: float
    ping_interval: float
    verify: VerifyMode = VerifyMode.ALL
    rate_limit: float = 0.0  # announced in REGISTERED so clients can pace themselves; 0: none
    rate_burst: int = 0


class Session:
    """The ioap.v1 protocol state of one connection, driven by frames and time."""

    __slots__ = ("_expires_at", "_nonce", "_verify_key", "did", "factory", "session_id",
                 "settings", "state")

    def __init__(self, factory: MessageFactory, settings: SessionSettings, *, nonce: bytes,
                 session_id: str, now: float) -> None:
        self.factory = factory
        self.settings = settings
        self.session_id = session_id
        self.state = State.CHALLENGED
        self.did: str | None = None
        self._nonce = base64.urlsafe_b64encode(nonce).rstrip(b"=").decode("ascii")
        self._expires_at = now + settings.challenge_timeout
        self._verify_key: VerifyKey | None = None

    def challenge(self) -> str:
        """The CHALLENGE frame to send when the connection opens."""
        payload = {"nonce": self._nonce, "expires_in": json_number(self.settings.challenge_timeout)}
        return self.factory.make("CHALLENGE", None, payload)

    def receive(self, text: str, now: float) -> Action:
        """The action one received text frame calls for."""
        if self.state is State.CLOSED:
            return Close(CloseCode.NORMAL, "session closed")
        try:
            envelope = messages.parse(text)
            if self.state is State.REGISTERED:
                return self._routed(envelope, text)
            return self._register(envelope, now)
        except ProtocolError as error:
            if error.correlation_id is None:
                error.correlation_id = messages.readable_id(text)
            return self.reject(error)

    def receive_binary(self) -> Action:
        """A binary frame: the protocol is text frames only."""
        return self.reject(ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                                         "binary frames are not accepted; send UTF-8 JSON text"))

    def reject(self, error: ProtocolError) -> Action:
        """The action for an error found outside `receive` (frame size, rate limit...)."""
        if self.state is State.REGISTERED:
            return Reply(self.factory.error(self.did, error), error.code)
        return self._fail_handshake(error)

    def challenge_expired(self) -> Close | None:
        """Called when the challenge timer fires; None when the agent registered in time."""
        if self.state is not State.CHALLENGED:
            return None
        return self._fail_handshake(ProtocolError(
            ErrorCode.TIMEOUT,
            f"no valid REGISTER within {self.settings.challenge_timeout:g} s of the CHALLENGE"))

    def close(self) -> None:
        self.state = State.CLOSED

    # -- handshake ---------------------------------------------------------------------------

    def _register(self, envelope: Envelope, now: float) -> Action:
        if envelope.type != "REGISTER":
            raise ProtocolError(ErrorCode.NOT_REGISTERED,
                                f"send REGISTER first; got {envelope.type} before registration",
                                correlation_id=envelope.id)
        verify_key = _verify_key(envelope.sender, envelope.id)
        if envelope.recipient != self.factory.did:
            raise ProtocolError(ErrorCode.AUTH_FAILED,
                                "REGISTER must be addressed ('to') to this gateway's DID",
                                details={"gateway_did": self.factory.did},
                                correlation_id=envelope.id)
        envelope.verify(verify_key)
        payload = envelope.payload
        if payload.get("nonce") != self._nonce:
            raise ProtocolError(ErrorCode.AUTH_FAILED,
                                "the nonce is not the one this connection's CHALLENGE issued",
                                correlation_id=envelope.id)
        if now > self._expires_at:
            raise ProtocolError(ErrorCode.AUTH_FAILED, "the nonce has expired",
                                correlation_id=envelope.id)
        metadata = payload.get("metadata", {})
        if metadata is None:
            metadata = {}
        _check_metadata(metadata, envelope.id)
        self.state = State.REGISTERED
        self.did = envelope.sender
        self._verify_key = verify_key
        self._nonce = ""  # single use: nothing can match it again
        registered: dict[str, Any] = {
            "did": self.did,
            "session_id": self.session_id,
            "agent_timeout": json_number(self.settings.agent_timeout),
            "ping_interval": json_number(self.settings.ping_interval),
        }
        if self.settings.rate_limit > 0:
            registered["rate_limit"] = {"messages_per_second": self.settings.rate_limit,
                                        "burst": self.settings.rate_burst}
        reply = self.factory.make("REGISTERED", self.did, registered, envelope.id)
        return Register(self.did, metadata, reply)

    def _fail_handshake(self, error: ProtocolError) -> Close:
        self.state = State.CLOSED
        return Close(handshake_close_code(error.code), error.code.value,
                     self.factory.error(self.did, error), error.code)

    # -- registered --------------------------------------------------------------------------

    def _routed(self, envelope: Envelope, text: str) -> Action:
        if envelope.sender != self.did:
            raise ProtocolError(ErrorCode.SENDER_MISMATCH,
                                "'from' must be the DID this connection registered",
                                details={"registered_did": self.did},
                                correlation_id=envelope.id)
        to = envelope.recipient
        gateway_did = self.factory.did
        if self.settings.verify is VerifyMode.ALL or to == gateway_did:
            assert self._verify_key is not None
            envelope.verify(self._verify_key)
        if to == gateway_did:
            return self._for_gateway(envelope)
        if to is None:
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "'to' must be a DID",
                                correlation_id=envelope.id)
        try:
            public_key_from_did(to)  # cached: a DID seen before costs a dictionary lookup
        except ProtocolError as error:
            error.correlation_id = envelope.id
            raise
        if envelope.type not in messages.ROUTABLE_TYPES:
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                                f"{envelope.type} is a control type; it cannot be sent to an agent",
                                correlation_id=envelope.id)
        return Forward(to, text, envelope.type, envelope.id)

    def _for_gateway(self, envelope: Envelope) -> Action:
        if envelope.type == "PING":
            return Reply(self.factory.make("PONG", self.did, envelope.payload, envelope.id))
        if envelope.type == "UNREGISTER":
            self.state = State.CLOSED
            return Close(CloseCode.NORMAL, "unregistered")
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            f"the gateway accepts PING and UNREGISTER; not {envelope.type}",
                            correlation_id=envelope.id)


def json_number(seconds: float) -> int | float:
    """30.0 as 30: what a peer reads is then what RFC 8785 signs, in every JSON library."""
    return int(seconds) if float(seconds).is_integer() else seconds


def _verify_key(did: str, message_id: str) -> VerifyKey:
    try:
        return VerifyKey(public_key_from_did(did))
    except ProtocolError as error:
        error.correlation_id = message_id
        raise
    except NaClValueError:
        raise ProtocolError(ErrorCode.INVALID_DID, "the DID's key is not an Ed25519 point",
                            correlation_id=message_id) from None


def _check_metadata(metadata: Any, message_id: str) -> None:
    if type(metadata) is not dict:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "'metadata' must be an object",
                            correlation_id=message_id)
    try:
        size = len(canonicalize(metadata))
    except CanonicalizationError as exc:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, f"'metadata': {exc}",
                            correlation_id=message_id) from None
    if size > MAX_METADATA_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            f"'metadata' is {size} bytes; at most {MAX_METADATA_BYTES}",
                            correlation_id=message_id)
