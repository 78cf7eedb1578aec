"""The ioap.v1 envelope: parse and validate received frames, build and sign new ones.

Every message is one JSON object (docs/protocol.md, "Envelope"); its signature covers the RFC 8785
form of the object minus `signature`. Parsing happens once per frame; routed frames are forwarded
as the received text, so nothing here re-serializes them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import time
from binascii import a2b_base64, b2a_base64
from collections.abc import Callable
from typing import Any

import orjson
from nacl._sodium import ffi as _sodium_ffi  # type: ignore[import-not-found,unused-ignore]
from nacl._sodium import lib as _sodium  # type: ignore[import-not-found,unused-ignore]
from nacl.bindings import crypto_sign_open  # importing nacl.bindings runs sodium_init()
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .canonical import CanonicalizationError, canonicalize, is_plain
from .errors import ErrorCode, ProtocolError
from .keys import DIDKey
from .strictjson import MAX_DEPTH, StrictJSONError, loads

PROTOCOL_VERSION = "1.0"
MAX_ID_LENGTH = 128

# Types an agent may address to another agent; the gateway forwards them unchanged.
ROUTABLE_TYPES = frozenset(
    {"OFFER", "ANSWER", "ICE_CANDIDATE", "INTENT", "EXEC_REQUEST", "EXEC_RESPONSE", "ERROR",
     "PING", "PONG"}
)
# Types that belong to the conversation between an agent and the gateway.
CONTROL_TYPES = frozenset({"CHALLENGE", "REGISTER", "REGISTERED", "UNREGISTER"})
# The mailbox's conversation with the gateway (mailbox.py; docs/protocol.md "Mailbox"): ACK and
# MAILBOX from an agent, QUEUED, RECEIPT and MAILBOX from the gateway.
MAILBOX_TYPES = frozenset({"ACK", "MAILBOX", "QUEUED", "RECEIPT"})
MAILBOX_REQUESTS = frozenset({"ACK", "MAILBOX"})  # of those, what an agent sends the gateway
# Discovery and presence (directory.py; docs/protocol.md section 21): DISCOVER, WATCH and UNWATCH
# from an agent, DISCOVERED, WATCHING and PRESENCE from the gateway.
DISCOVERY_TYPES = frozenset({"DISCOVER", "DISCOVERED", "WATCH", "UNWATCH", "WATCHING", "PRESENCE"})
ALL_TYPES = ROUTABLE_TYPES | CONTROL_TYPES | MAILBOX_TYPES | DISCOVERY_TYPES

# the members every message has besides `signature`, which parse() takes out of the object
_FIELDS = ("id", "type", "from", "to", "timestamp", "version", "payload")
_FIELDS_SET = frozenset(_FIELDS)
# [0-9], never \d: in a str pattern \d also matches other scripts' digits ("١٢" is \d).
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)
_match_timestamp = _TIMESTAMP.match
_VERSION = re.compile(r"([0-9]{1,9})(\.[0-9]{1,9}){0,2}\Z")
_SIGNATURE_LENGTH = 88  # base64 of 64 bytes, padded
_BAD_SIGNATURE_TEXT = ("signature must be the canonical padded base64 (RFC 4648 section 4, "
                       "alphabet A-Z a-z 0-9 + /) of a 64-byte Ed25519 signature")


class Envelope:
    """A received message that passed structural validation (not yet its signature)."""

    __slots__ = ("canonical", "correlation_id", "fields", "id", "needs_full_jcs", "payload",
                 "recipient", "sender", "signature", "signature_bytes", "type")

    def __init__(self, fields: dict[str, Any], signature: str, needs_full_jcs: bool,
                 signature_bytes: bytes | None = None, canonical: bytes | None = None) -> None:
        self.fields = fields  # the object minus `signature`: exactly what the signature covers
        self.signature = signature
        self.canonical = canonical  # the RFC 8785 bytes of `fields`, when parse() has them
        # parse() decodes it while checking the text; decoded here when built some other way
        self.signature_bytes = (signature_bytes if signature_bytes is not None
                                else _signature_bytes(signature, fields.get("id")))
        self.needs_full_jcs = needs_full_jcs
        self.id: str = fields["id"]
        self.type: str = fields["type"]
        self.sender: str = fields["from"]
        self.recipient: str | None = fields["to"]
        self.payload: dict[str, Any] = fields["payload"]
        self.correlation_id: str | None = fields.get("correlation_id")

    def signing_input(self) -> bytes:
        if self.canonical is not None:
            return self.canonical
        return canonicalize(self.fields, needs_full=self.needs_full_jcs)

    def verify(self, verify_key: VerifyKey | bytes) -> None:
        """Raise INVALID_SIGNATURE unless `verify_key` (or the raw 32-byte public key) signed this
        envelope."""
        try:
            signed = self.signature_bytes + self.signing_input()
        except CanonicalizationError as exc:
            raise ProtocolError(
                ErrorCode.MALFORMED_MESSAGE, f"message cannot be canonicalized: {exc}",
                correlation_id=self.id,
            ) from None
        if not signature_valid(signed, bytes(verify_key)):
            raise ProtocolError(
                ErrorCode.INVALID_SIGNATURE,
                "signature does not verify against the sender's key over the RFC 8785 form "
                "of the message without 'signature'",
                correlation_id=self.id,
            )


_sign_open = _sodium.crypto_sign_open
_NULL = _sodium_ffi.NULL


def signature_valid(signed: bytes, public_key: bytes) -> bool:
    """Whether `signed` (a 64-byte Ed25519 signature, then the message) verifies under the raw
    32-byte `public_key`: libsodium's crypto_sign_open, the call nacl.bindings.crypto_sign_open
    and VerifyKey.verify make, without the output buffer they allocate and copy the message into
    (libsodium skips both when given NULL): ~1.2 us less per routed message.
    """
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return bool(_sign_open(_NULL, _NULL, signed, len(signed), public_key) == 0)


def reference_signature_valid(signed: bytes, public_key: bytes) -> bool:
    """signature_valid through PyNaCl's public binding (the tests' reference)."""
    try:
        crypto_sign_open(signed, public_key)
    except BadSignatureError:
        return False
    return True


def parse(text: str) -> Envelope:
    """Validate one frame's text as an ioap.v1 envelope, or raise a ProtocolError saying why."""
    exact = _parse_exact(text)
    if exact is not None:
        obj, signature, canonical = exact
        needs_full_jcs = False
    else:
        try:
            obj, needs_full_jcs = loads(text)
        except StrictJSONError as exc:
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, str(exc)) from None
        if type(obj) is not dict:
            raise ProtocolError(ErrorCode.MALFORMED_MESSAGE, "a message must be a JSON object")
        signature = obj.pop("signature", _MISSING)
        canonical = None
    message_id = obj.get("id")
    if type(message_id) is not str or not 0 < len(message_id) <= MAX_ID_LENGTH:
        raise ProtocolError(
            ErrorCode.MALFORMED_MESSAGE, f"'id' must be a string of 1-{MAX_ID_LENGTH} characters"
        )
    if signature is _MISSING or not obj.keys() >= _FIELDS_SET:
        missing = next((name for name in _FIELDS if name not in obj), "signature")
        raise _malformed(f"missing field '{missing}'", message_id)
    kind = obj["type"]
    version = obj["version"]
    timestamp = obj["timestamp"]
    to = obj["to"]
    if (
        type(kind) is not str
        or type(obj["from"]) is not str
        or type(timestamp) is not str
        or type(version) is not str
        or type(obj["payload"]) is not dict
        or type(signature) is not str
        or (to is not None and type(to) is not str)
    ):
        raise _malformed(_type_problem(obj, signature), message_id)
    correlation_id = obj.get("correlation_id")
    if correlation_id is not None and (
        type(correlation_id) is not str or not 0 < len(correlation_id) <= MAX_ID_LENGTH
    ):
        raise _malformed(
            f"'correlation_id' must be a string of 1-{MAX_ID_LENGTH} characters", message_id
        )
    if kind not in ALL_TYPES:
        raise _malformed(f"unknown message type {kind[:40]!r}", message_id)
    if version != PROTOCOL_VERSION:  # the usual "1.0" needs no pattern
        _check_version(version, message_id)
    if _match_timestamp(timestamp) is None:
        raise _malformed("'timestamp' must be RFC 3339, e.g. 2026-11-26T10:00:00.123Z", message_id)
    return Envelope(obj, signature, needs_full_jcs, _signature_bytes(signature, message_id),
                    canonical)


_MISSING: Any = object()  # a frame without `signature`
# What a frame's `"signature":"<88 characters>"` member and its comma add to the fields' text
_SIGNATURE_MEMBER = len(',"signature":""') + _SIGNATURE_LENGTH
_orjson_loads = orjson.loads


def _parse_exact(text: str) -> tuple[dict[str, Any], str, bytes] | None:
    """(fields, signature, their RFC 8785 bytes) of a frame written the way clients write one:
    the fields compact, each value in its RFC 8785 spelling, plus the signature member (any key
    order). None for every other frame: it takes the strict path (`strictjson.loads`), which
    accepts and refuses exactly what it always did. ~4.5 us less per routed message.

    orjson parses strict RFC 8259 JSON and refuses lone surrogates, NaN and trailing data, but
    keeps the last of duplicate keys silently. Lengths rule that out: for a value without floats
    (`is_plain`; integers beyond 64 bits come out of orjson as floats), the canonical form is
    never longer than the text it was parsed from (whitespace, escapes of characters RFC 8785
    writes as they are, and -0 only lengthen the text), and a dropped duplicate shortens it by at
    least 5 bytes (`,"":0`). So a text exactly as long as the canonical form plus one 88-character
    signature member holds no duplicate key, and the canonical form is what the signature covers.
    """
    # nesting is bounded before orjson recurses (its own limit is 1,024); strict loads says why
    if text.count("{") > MAX_DEPTH or ("[" in text and text.count("{") + text.count("[") > MAX_DEPTH):
        return None
    try:
        obj = _orjson_loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    signature = obj.pop("signature", None)
    ascii_text = text.isascii()
    if type(signature) is not str or len(signature) != _SIGNATURE_LENGTH or \
            not is_plain(obj, ascii_keys=ascii_text):
        return None
    try:
        canonical = canonicalize(obj, needs_full=False)
    except CanonicalizationError:
        return None
    size = len(text) if ascii_text else len(text.encode("utf-8"))
    if len(canonical) + _SIGNATURE_MEMBER != size:
        return None
    return obj, signature, canonical


def _signature_bytes(signature: str, message_id: str | None) -> bytes:
    """The 64 bytes `signature` encodes, when it is their one canonical base64 text.

    RFC 4648 section 3.5: exactly one text per byte string, so no whitespace, no base64url
    characters, `==` padding and zero padding bits. Strict decoders (Go's and Rust's defaults)
    refuse anything else, so a frame the gateway forwarded could not be read by its recipient.
    """
    if len(signature) == _SIGNATURE_LENGTH:
        try:
            raw = a2b_base64(signature)  # lenient: skips stray characters, ignores padding bits
        except (binascii.Error, ValueError):  # ValueError: not ASCII
            pass
        else:  # so the text must be exactly what encoding the bytes gives back
            if len(raw) == 64 and b2a_base64(raw, newline=False) == signature.encode("ascii"):
                return raw
    raise ProtocolError(ErrorCode.INVALID_SIGNATURE, _BAD_SIGNATURE_TEXT, correlation_id=message_id)


def _check_version(version: str, message_id: str) -> None:
    match = _VERSION.match(version)
    if match is None:
        raise _malformed("'version' must look like '1.0'", message_id)
    if match.group(1) != "1":
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version!r} is not supported; this gateway speaks "
            f"{PROTOCOL_VERSION}",
            details={"supported": [PROTOCOL_VERSION]},
            correlation_id=message_id,
        )


def readable_id(text: str) -> str | None:
    """The `id` of a frame that failed validation, when it can be read (for correlation_id)."""
    try:
        obj, _ = loads(text)
    except StrictJSONError:
        return None
    message_id = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(message_id, str) and 0 < len(message_id) <= MAX_ID_LENGTH:
        return message_id
    return None


def _malformed(message: str, message_id: str | None) -> ProtocolError:
    return ProtocolError(ErrorCode.MALFORMED_MESSAGE, message, correlation_id=message_id)


def _type_problem(obj: dict[str, Any], signature: Any) -> str:
    expected = {"type": "a string", "from": "a string", "timestamp": "a string",
                "version": "a string", "payload": "an object"}
    for name, kind in expected.items():
        wanted = dict if name == "payload" else str
        if type(obj[name]) is not wanted:
            return f"'{name}' must be {kind}"
    if type(signature) is not str:
        return "'signature' must be a string"
    return "'to' must be a DID string (null only in CHALLENGE)"


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")  # formatted once per second


def utc_timestamp(seconds: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. 2026-11-26T10:00:00.123Z.

    The text datetime.fromtimestamp(seconds, timezone.utc) would give (microseconds rounded half
    to even, then truncated to milliseconds), with the date and time of day formatted only when
    the second changes: every message the gateway signs carries one.
    """
    global _last_second
    fraction, whole = math.modf(seconds)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    second = int(whole)
    cached, prefix = _last_second
    if cached != second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _last_second = (second, prefix)
    return f"{prefix}{micros // 1000:03d}Z"


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> str:
    """A random UUID (version 4) string: str(uuid.uuid4()) without building a UUID object."""
    digits = f"{int.from_bytes(os.urandom(16), 'big') & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def sign_fields(key: DIDKey, fields: dict[str, Any]) -> str:
    """The frame text of `fields` signed by `key` (fields must not hold `signature`)."""
    signature = base64.b64encode(key.sign(canonicalize(fields))).decode("ascii")
    signed = {**fields, "signature": signature}
    try:
        return orjson.dumps(signed).decode("utf-8")
    except orjson.JSONEncodeError:  # integers beyond 64 bits (RFC 8785 gave them a number form)
        return json.dumps(signed, ensure_ascii=False, separators=(",", ":"))


def build(
    key: DIDKey,
    type: str,
    to: str | None,
    payload: dict[str, Any],
    *,
    correlation_id: str | None = None,
    message_id: str | None = None,
    now: float,
    extra: dict[str, Any] | None = None,
) -> tuple[str, str]:
    """A new signed message from `key`: its frame text and its id."""
    message_id = message_id or new_id()
    fields: dict[str, Any] = {
        "id": message_id,
        "type": type,
        "from": key.did,
        "to": to,
        "timestamp": utc_timestamp(now),
        "version": PROTOCOL_VERSION,
        "payload": payload,
    }
    if correlation_id is not None:
        fields["correlation_id"] = correlation_id
    if extra:
        fields.update(extra)
    return sign_fields(key, fields), message_id


class MessageFactory:
    """Builds the gateway's own signed messages (CHALLENGE, REGISTERED, PONG, ERROR)."""

    def __init__(self, key: DIDKey, wall_clock: Callable[[], float]) -> None:
        self.key = key
        self.did = key.did
        self._wall_clock = wall_clock

    def make(self, type: str, to: str | None, payload: dict[str, Any],
             correlation_id: str | None = None) -> str:
        text, _ = build(self.key, type, to, payload, correlation_id=correlation_id,
                        now=self._wall_clock())
        return text

    def error(self, to: str | None, error: ProtocolError) -> str:
        payload = {"code": error.code.value, "message": error.message, "details": error.details}
        return self.make("ERROR", to, payload, error.correlation_id)
