"""One connection's protocol state: challenge -> registering -> registered -> closed. No I/O.

Theory of operation: the I/O layer feeds each received frame's text to `Session.receive` and
carries out the single action it returns: send a frame back, forward a frame to another agent,
register the agent, or close. Errors are ProtocolErrors turned into ERROR frames here; during the
handshake they also close the connection (4400/4401), afterwards the session stays open so one bad
message never costs an agent its session.

    state        event                         action
    CHALLENGED   valid REGISTER                Register(did, REGISTERED)  -> REGISTERING
    CHALLENGED   anything else / invalid       Close(4400 | 4401, ERROR)  -> CLOSED
    CHALLENGED   (timer) challenge expired     Close(4408, ERROR TIMEOUT) -> CLOSED
    REGISTERING  the router made it routable   registered()               -> REGISTERED
    REGISTER*    routable type to an agent     Forward(to, text)
    REGISTER*    PING to the gateway           Reply(PONG)
    REGISTER*    DISCOVER / WATCH / UNWATCH    Request(envelope)          (directory.py)
    REGISTER*    UNREGISTER to the gateway     Close(1000)                -> CLOSED
    REGISTER*    routable type with a `ttl`    Deposit(Forward, ttl)      (mailbox.py)
    REGISTER*    ACK / MAILBOX to the gateway  MailboxRequest             (mailbox.py)
    REGISTER*    invalid                       Reply(ERROR)
    any          the gateway ends it           end(ending)                -> CLOSED

REGISTERING lasts while the router makes the agent routable (at once on one instance; one Redis
round trip in a cluster): the agent has proven its key, so its frames are handled, but it is not
in the registry yet and only REGISTERED is answered once it is. `end` is the only way into CLOSED
and records the `Ending` (errors.py), so the hub counts and logs each connection's end once.

Handshake work is bounded and cheap checks come first: a REGISTER frame is at most
MAX_REGISTER_BYTES, and its type, recipient, nonce, expiry and metadata size are checked before
the envelope is canonicalized and its signature verified (the expensive part).
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import cards, messages
from .canonical import canonicalize
from .did import public_key_from_did
from .errors import Ending, ErrorCode, ProtocolError, handshake_ending
from .mailbox import parse_ttl
from .messages import Envelope, MessageFactory

MAX_METADATA_BYTES = 4096
_DIRECTORY_REQUESTS = frozenset({"DISCOVER", "WATCH", "UNWATCH"})
# A REGISTER frame is at most this many bytes of UTF-8: room for the envelope (~500 bytes) and
# MAX_METADATA_BYTES of metadata even when a client escapes every non-ASCII character (\uXXXX).
MAX_REGISTER_BYTES = 16384


class State(enum.Enum):
    CHALLENGED = "challenged"
    REGISTERING = "registering"  # key proven; the router is making the agent routable
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
    """Deliver the received frame `text`, unchanged, from the agent `sender` to the agent `to`.

    It travels with the frame to the recipient's connection, so a frame that never leaves the
    gateway can be answered to its sender (`sender`, `id`) without parsing `text` again.
    """

    to: str
    text: str
    type: str
    id: str
    sender: str


@dataclass(frozen=True, slots=True)
class Register:
    """The agent proved it holds `did`'s key: make it routable, then send `reply`."""

    did: str
    metadata: dict[str, Any]
    reply: str


@dataclass(frozen=True, slots=True)
class Close:
    """Send `text` (if any), then close with `ending`'s code and `reason`."""

    ending: Ending
    text: str | None = None
    error: ErrorCode | None = None

    @property
    def code(self) -> int:
        return int(self.ending.code)

    @property
    def reason(self) -> str:
        """The ending's reason; for most handshake failures, the ERROR code ("AUTH_FAILED")."""
        return self.ending.reason(self.error)


@dataclass(frozen=True, slots=True)
class Deposit:
    """A routable frame with a `ttl`: it goes through the recipient's mailbox (mailbox.py)."""

    forward: Forward
    ttl: int


@dataclass(frozen=True, slots=True)
class MailboxRequest:
    """An ACK or MAILBOX frame for the gateway, verified; the router's mailbox answers it."""

    type: str
    id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Request:
    """A verified DISCOVER, WATCH or UNWATCH for the gateway's directory (directory.py)."""

    envelope: Envelope


Action = Reply | Forward | Register | Close | Deposit | MailboxRequest | Request


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """The settings of one connection; those after `challenge_timeout` are announced in REGISTERED."""

    challenge_timeout: float
    agent_timeout: float  # a registered agent silent this long is closed (4408)
    ping_interval: float
    verify: VerifyMode = VerifyMode.ALL
    rate_limit: float = 0.0  # frames per second per connection (enforced by the hub); 0: none
    rate_burst: int = 0
    # the RTCIceServer list for an agent's DID (turn.IceServerIssuer); None: none announced
    ice_servers: Callable[[str], list[dict[str, Any]]] | None = None


class Session:
    """The ioap.v1 protocol state of one connection, driven by frames and time."""

    __slots__ = ("_expires_at", "_nonce", "_public_key", "did", "ending", "factory", "profile",
                 "session_id", "settings", "state")

    def __init__(self, factory: MessageFactory, settings: SessionSettings, *, nonce: bytes,
                 session_id: str, now: float) -> None:
        self.factory = factory
        self.settings = settings
        self.session_id = session_id
        self.state = State.CHALLENGED
        self.did: str | None = None  # set with REGISTERING: the DID whose key the agent proved
        self.ending: Ending | None = None  # set with CLOSED
        self.profile: cards.Profile | None = None  # set with REGISTERING: card, unlisted (cards.py)
        self._nonce = base64.urlsafe_b64encode(nonce).rstrip(b"=").decode("ascii")
        self._expires_at = now + settings.challenge_timeout
        self._public_key: bytes | None = None  # the proven DID's raw key (did.py), set with it

    def challenge(self) -> str:
        """The CHALLENGE frame to send when the connection opens."""
        payload = {"nonce": self._nonce, "expires_in": json_number(self.settings.challenge_timeout)}
        return self.factory.make("CHALLENGE", None, payload)

    def receive(self, text: str, now: float) -> Action:
        """The action one received text frame calls for."""
        state = self.state
        if state is State.CLOSED:
            return Close(Ending.SESSION_CLOSED)
        try:
            if state is State.CHALLENGED:
                return self._register(text, now)
            return self._routed(messages.parse(text), text)
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
        if self.state is State.REGISTERED or self.state is State.REGISTERING:
            return Reply(self.factory.error(self.did, error), error.code)
        return self._fail_handshake(error)

    def challenge_expired(self) -> Close | None:
        """Called when the challenge timer fires; None when the agent registered in time."""
        if self.state is not State.CHALLENGED:
            return None
        return self._fail_handshake(ProtocolError(
            ErrorCode.TIMEOUT,
            f"no valid REGISTER within {self.settings.challenge_timeout:g} s of the CHALLENGE"))

    def registered(self) -> None:
        """The router made the agent routable: REGISTERING -> REGISTERED."""
        if self.state is State.REGISTERING:
            self.state = State.REGISTERED

    def end(self, ending: Ending) -> bool:
        """Enter CLOSED, recording why; False when the session had already ended."""
        if self.state is State.CLOSED:
            return False
        self.state = State.CLOSED
        self.ending = ending
        return True

    @property
    def authenticated(self) -> bool:
        """True once the agent proved its DID (REGISTERING or REGISTERED)."""
        return self.state is State.REGISTERED or self.state is State.REGISTERING

    # -- handshake ---------------------------------------------------------------------------

    def _register(self, text: str, now: float) -> Action:
        if len(text) * 4 > MAX_REGISTER_BYTES and (
                len(text) > MAX_REGISTER_BYTES
                or len(text.encode("utf-8", "surrogatepass")) > MAX_REGISTER_BYTES):
            raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE,
                                f"a frame before registration is limited to {MAX_REGISTER_BYTES} "
                                "bytes", details={"max_bytes": MAX_REGISTER_BYTES})
        envelope = messages.parse(text)
        # The cheap checks first: only a REGISTER that could succeed is canonicalized and verified.
        if envelope.type != "REGISTER":
            raise ProtocolError(ErrorCode.NOT_REGISTERED,
                                f"send REGISTER first; got {envelope.type} before registration",
                                correlation_id=envelope.id)
        if envelope.recipient != self.factory.did:
            raise ProtocolError(ErrorCode.AUTH_FAILED,
                                "REGISTER must be addressed ('to') to this gateway's DID",
                                details={"gateway_did": self.factory.did},
                                correlation_id=envelope.id)
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
        _check_metadata_roughly(metadata, envelope.id)
        card = payload.get("card")
        card = cards.parse_card(card, envelope.id) if card is not None else None
        unlisted = cards.parse_unlisted(payload.get("unlisted"), envelope.id)
        public_key = _public_key(envelope.sender, envelope.id)
        envelope.verify(public_key)
        _check_metadata(metadata, envelope.id)
        if card is not None:
            cards.check_card_size(card, envelope.id)
        self.profile = cards.LISTED_WITHOUT_CARD if card is None and not unlisted else \
            cards.Profile(card, unlisted, None if card is None else
                          {**envelope.fields, "signature": envelope.signature})
        self.state = State.REGISTERING
        self.did = envelope.sender
        self._public_key = public_key
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
        if self.settings.ice_servers is not None:  # peer channels: protocol.md section 19
            registered["ice_servers"] = self.settings.ice_servers(self.did)
        reply = self.factory.make("REGISTERED", self.did, registered, envelope.id)
        return Register(self.did, metadata, reply)

    def _fail_handshake(self, error: ProtocolError) -> Close:
        ending = handshake_ending(error.code)
        self.end(ending)
        return Close(ending, self.factory.error(self.did, error), error.code)

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
            assert self._public_key is not None
            envelope.verify(self._public_key)
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
        if "ttl" in envelope.fields:  # one dict hit for frames without it
            return Deposit(Forward(to, text, envelope.type, envelope.id, envelope.sender),
                           parse_ttl(envelope.fields["ttl"], envelope.id))
        return Forward(to, text, envelope.type, envelope.id, envelope.sender)

    def _for_gateway(self, envelope: Envelope) -> Action:
        if envelope.type == "PING":
            payload = envelope.payload
            if payload.get("ice_servers") is True and self.settings.ice_servers is not None:
                payload = {**payload, "ice_servers": self.settings.ice_servers(envelope.sender)}
            return Reply(self.factory.make("PONG", self.did, payload, envelope.id))
        if envelope.type == "UNREGISTER":
            self.end(Ending.UNREGISTERED)
            return Close(Ending.UNREGISTERED)
        if envelope.type in _DIRECTORY_REQUESTS:
            return Request(envelope)
        if envelope.type in messages.MAILBOX_REQUESTS:
            return MailboxRequest(envelope.type, envelope.id, envelope.payload)
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            f"the gateway accepts PING and UNREGISTER (and the mailbox's ACK and "
                            f"MAILBOX, the directory's DISCOVER, WATCH and UNWATCH); not "
                            f"{envelope.type}",
                            correlation_id=envelope.id)


def json_number(seconds: float) -> int | float:
    """30.0 as 30: what a peer reads is then what RFC 8785 signs, in every JSON library."""
    return int(seconds) if float(seconds).is_integer() else seconds


def _public_key(did: str, message_id: str) -> bytes:
    try:  # did.py refuses anything but 32 bytes of a valid Ed25519 point (INVALID_DID)
        return public_key_from_did(did)
    except ProtocolError as error:
        error.correlation_id = message_id
        raise


def _check_metadata_roughly(metadata: Any, message_id: str) -> None:
    """Refuse metadata that is clearly too large, before any canonicalization (C-speed dumps).

    Its length in characters is within a small factor of the canonical size in bytes (number
    forms differ), hence the factor 2: only the exact check after verification decides the rest.
    """
    if type(metadata) is not dict:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "'metadata' must be an object",
                            correlation_id=message_id)
    if len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":"))) > 2 * MAX_METADATA_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            f"'metadata' is far over {MAX_METADATA_BYTES} bytes",
                            correlation_id=message_id)


def _check_metadata(metadata: dict[str, Any], message_id: str) -> None:
    """The exact bound, in canonical bytes. Called after the signature was verified, so the
    envelope (and the metadata in it) is known to canonicalize."""
    size = len(canonicalize(metadata))
    if size > MAX_METADATA_BYTES:
        raise ProtocolError(ErrorCode.MALFORMED_MESSAGE,
                            f"'metadata' is {size} bytes; at most {MAX_METADATA_BYTES}",
                            correlation_id=message_id)
