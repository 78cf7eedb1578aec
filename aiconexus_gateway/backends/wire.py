"""What cluster instances say to each other, and how it travels: typed messages, one codec. No I/O.

Theory of operation (docs/design.md has the long form): a frame for an agent connected to another
instance is appended to that instance's inbox as a `Deliver`; the owner writes it to its agent's
socket and answers `Delivered`, or `Failed` when it cannot. The sender keeps a pending entry per
frame until one of the two arrives (state.py), and answers its agent with an ERROR when none
arrives in time, so no accepted frame is dropped silently. A registration on one instance tells
the previous owner of the DID to close its session with `Takeover`; a cluster-wide generation
number orders competing sessions.

The messages are flat field maps so they travel as stream entries without a second encoding: the
routed frame's text is a field of its own, written and read as UTF-8 bytes, byte for byte.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ErrorCode, ProtocolError


class ClusterMessageError(ValueError):
    """A stream entry that is not a cluster message this version understands."""


# -- messages between instances ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Deliver:
    """Write `text` to the local agent `to`; answer the instance `origin` about `token`."""

    origin: str
    token: int
    to: str
    type: str
    text: str
    expires_ms: int  # Redis-clock milliseconds after which the origin has already answered ERROR

    KIND = b"D"


@dataclass(frozen=True, slots=True)
class Delivered:
    """The frames `tokens` (sent by the receiving instance) were written to their agents' sockets."""

    origin: str
    tokens: tuple[int, ...]

    KIND = b"A"


@dataclass(frozen=True, slots=True)
class Failed:
    """The frames `tokens` could not be delivered, for `reason`."""

    origin: str
    tokens: tuple[int, ...]
    reason: FailReason

    KIND = b"F"


@dataclass(frozen=True, slots=True)
class Takeover:
    """`did` registered on `origin` with cluster generation `generation`: close older sessions."""

    origin: str
    did: str
    generation: int

    KIND = b"T"


@dataclass(frozen=True, slots=True)
class Announce:
    """`did`'s session `session_id` on `origin` came online (`presence`: its Presence JSON, with
    its card) or went offline (`presence` empty); sent to every other instance (discovery and
    presence, directory.py)."""

    origin: str
    did: str
    session_id: str
    presence: bytes

    KIND = b"P"


ClusterMessage = Deliver | Delivered | Failed | Takeover | Announce


class FailReason(str, enum.Enum):
    """Why a cross-instance frame was not delivered; each maps to the ERROR its sender gets."""

    UNKNOWN = "unknown"  # no instance holds the recipient
    NOT_CONNECTED = "not_connected"  # the owner no longer holds it (it left a moment ago)
    INSTANCE_GONE = "instance_gone"  # the owner's heartbeat expired (crashed, partitioned)
    EXPIRED = "expired"  # the owner read it after the sender's deadline
    TIMEOUT = "timeout"  # no answer within the delivery timeout
    UNAVAILABLE = "unavailable"  # Redis is unreachable from the sender
    LOST = "lost"  # Redis restarted without the queued frames


_FAIL_MESSAGES = {
    FailReason.UNKNOWN: "the recipient is not connected to any instance of this gateway",
    FailReason.NOT_CONNECTED: "the recipient disconnected (or could not take more) before the "
                              "message could be delivered",
    FailReason.INSTANCE_GONE: "the gateway instance holding the recipient stopped responding",
    FailReason.EXPIRED: "the recipient's gateway instance received the message too late",
    FailReason.TIMEOUT: "no delivery confirmation from the recipient's gateway instance in time",
    FailReason.UNAVAILABLE: "the cluster bus (Redis) is unavailable; only agents on the same "
                            "gateway instance can be reached until it is back",
    FailReason.LOST: "the cluster bus (Redis) restarted and lost the message before delivery",
}


def delivery_error(reason: FailReason, *, to: str, message_id: str) -> ProtocolError:
    """The ERROR a sender gets for a frame that was not delivered: UNKNOWN_AGENT or DELIVERY_FAILED."""
    code = ErrorCode.UNKNOWN_AGENT if reason is FailReason.UNKNOWN else ErrorCode.DELIVERY_FAILED
    return ProtocolError(code, _FAIL_MESSAGES[reason], details={"to": to, "reason": reason.value},
                         correlation_id=message_id)


Fields = dict[bytes, bytes]


def encode(message: ClusterMessage) -> Fields:
    """The stream entry fields of `message` (the inverse of `decode`)."""
    origin = message.origin.encode()
    if isinstance(message, Deliver):
        return {b"k": Deliver.KIND, b"o": origin, b"t": b"%d" % message.token,
                b"d": message.to.encode(), b"y": message.type.encode(),
                b"x": b"%d" % message.expires_ms, b"m": message.text.encode("utf-8")}
    if isinstance(message, Delivered):
        return {b"k": Delivered.KIND, b"o": origin, b"t": _tokens(message.tokens)}
    if isinstance(message, Failed):
        return {b"k": Failed.KIND, b"o": origin, b"t": _tokens(message.tokens),
                b"r": message.reason.value.encode()}
    if isinstance(message, Announce):
        return {b"k": Announce.KIND, b"o": origin, b"d": message.did.encode(),
                b"s": message.session_id.encode(), b"j": message.presence}
    return {b"k": Takeover.KIND, b"o": origin, b"d": message.did.encode(),
            b"g": b"%d" % message.generation}


def decode(fields: Mapping[bytes, bytes]) -> ClusterMessage:
    """The message in a stream entry; ClusterMessageError when it is not one."""
    try:
        kind = fields[b"k"]
        origin = fields[b"o"].decode()
        if kind == Deliver.KIND:
            return Deliver(origin, int(fields[b"t"]), fields[b"d"].decode(), fields[b"y"].decode(),
                           fields[b"m"].decode("utf-8"), int(fields[b"x"]))
        if kind == Delivered.KIND:
            return Delivered(origin, _parse_tokens(fields[b"t"]))
        if kind == Failed.KIND:
            return Failed(origin, _parse_tokens(fields[b"t"]), FailReason(fields[b"r"].decode()))
        if kind == Takeover.KIND:
            return Takeover(origin, fields[b"d"].decode(), int(fields[b"g"]))
        if kind == Announce.KIND:
            return Announce(origin, fields[b"d"].decode(), fields[b"s"].decode(), fields[b"j"])
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ClusterMessageError(f"unreadable cluster message ({exc!r})") from None
    raise ClusterMessageError(f"unknown cluster message kind {kind[:8]!r}")


def _tokens(tokens: tuple[int, ...]) -> bytes:
    return b",".join(b"%d" % token for token in tokens)


def _parse_tokens(raw: bytes) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.split(b",")) if raw else ()
