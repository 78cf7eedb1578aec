"""Error codes of the ioap.v1 protocol and the close codes they map to, in one place.

Like h11's errors, each ProtocolError knows whose fault it is (always the peer's here) and what it
should produce: an ERROR message with a code, and, during the handshake, a WebSocket close code.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(str, enum.Enum):
    """Codes carried in the `code` field of an ERROR payload."""

    MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    INVALID_DID = "INVALID_DID"
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    AUTH_FAILED = "AUTH_FAILED"
    NOT_REGISTERED = "NOT_REGISTERED"
    SENDER_MISMATCH = "SENDER_MISMATCH"
    UNKNOWN_AGENT = "UNKNOWN_AGENT"
    SESSION_REPLACED = "SESSION_REPLACED"
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"
    TIMEOUT = "TIMEOUT"
    RATE_LIMITED = "RATE_LIMITED"
    DELIVERY_FAILED = "DELIVERY_FAILED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    MAILBOX_FULL = "MAILBOX_FULL"  # a message with a ttl over a mailbox bound: not stored
    MAILBOX_REFUSED = "MAILBOX_REFUSED"  # the recipient (or the gateway) takes no stored messages


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses (RFC 6455 7.4 plus the 4xxx application range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    INVALID_PAYLOAD = 1007
    TOO_LARGE = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    MALFORMED_HANDSHAKE = 4400
    AUTH_FAILED = 4401
    SLOW_CONSUMER = 4008
    TIMEOUT = 4408  # no valid REGISTER in time, or a registered agent silent for AGENT_TIMEOUT
    SESSION_REPLACED = 4409
    RATE_LIMITED = 4429


class Ending(enum.Enum):
    """Every way the gateway ends a connection, one row each: the close code and reason on the
    wire, the ERROR code sent just before closing (None: no ERROR, or the one the caller has), the
    metric label, and whether it is a limit's doing (aiconexus_limit_disconnects_total).

    A reason of None means "the ERROR's code": handshake failures close with reason e.g.
    "AUTH_FAILED". The session records its ending (Session.end), so whoever closed the socket,
    the hub counts and logs one ending per connection.
    """

    UNREGISTERED = (CloseCode.NORMAL, "unregistered", None, "normal", False)
    SESSION_CLOSED = (CloseCode.NORMAL, "session closed", None, "normal", False)
    GOING_AWAY = (CloseCode.GOING_AWAY, "gateway shutting down", None, "going_away", False)
    PROTOCOL_ERROR = (CloseCode.PROTOCOL_ERROR, "protocol error", None, "protocol_error", False)
    INVALID_UTF8 = (CloseCode.INVALID_PAYLOAD, "invalid UTF-8", ErrorCode.MALFORMED_MESSAGE,
                    "invalid_utf8", True)
    TOO_LARGE = (CloseCode.TOO_LARGE, "message too big", ErrorCode.MESSAGE_TOO_LARGE, "too_large",
                 True)
    INTERNAL_ERROR = (CloseCode.INTERNAL_ERROR, None, ErrorCode.INTERNAL_ERROR, "internal_error",
                      False)
    SLOW_CONSUMER = (CloseCode.SLOW_CONSUMER, "slow consumer", None, "slow_consumer", True)
    HANDSHAKE_FAILED = (CloseCode.MALFORMED_HANDSHAKE, None, None, "handshake_failed", False)
    AUTH_FAILED = (CloseCode.AUTH_FAILED, None, None, "auth_failed", False)
    CHALLENGE_TIMEOUT = (CloseCode.TIMEOUT, None, ErrorCode.TIMEOUT, "challenge_timeout", False)
    AGENT_TIMEOUT = (CloseCode.TIMEOUT, "agent timeout", ErrorCode.TIMEOUT, "agent_timeout", False)
    SESSION_REPLACED = (CloseCode.SESSION_REPLACED, "SESSION_REPLACED", ErrorCode.SESSION_REPLACED,
                        "session_replaced", False)
    RATE_LIMITED = (CloseCode.RATE_LIMITED, "rate limited", None, "rate_limited", True)

    close_code: CloseCode
    error: ErrorCode | None
    label: str
    limit: bool

    def __init__(self, code: CloseCode, reason: str | None, error: ErrorCode | None, label: str,
                 limit: bool) -> None:
        self.close_code = code
        self._reason = reason
        self.error = error
        self.label = label
        self.limit = limit

    @property
    def code(self) -> CloseCode:
        return self.close_code

    def reason(self, error: ErrorCode | None = None) -> str:
        """The close reason on the wire."""
        if self._reason is not None:
            return self._reason
        code = error or self.error
        return code.value if code is not None else self.label


# The ending of a handshake that fails with an ERROR of this code (4400 for every other code).
HANDSHAKE_ENDINGS: dict[ErrorCode, Ending] = {
    ErrorCode.AUTH_FAILED: Ending.AUTH_FAILED,
    ErrorCode.INVALID_SIGNATURE: Ending.AUTH_FAILED,
    ErrorCode.TIMEOUT: Ending.CHALLENGE_TIMEOUT,
    ErrorCode.MESSAGE_TOO_LARGE: Ending.TOO_LARGE,
    ErrorCode.SESSION_REPLACED: Ending.SESSION_REPLACED,
    ErrorCode.INTERNAL_ERROR: Ending.INTERNAL_ERROR,
}


def handshake_ending(code: ErrorCode) -> Ending:
    """How a handshake that fails with `code` ends: 4400 unless it is about authentication or time."""
    return HANDSHAKE_ENDINGS.get(code, Ending.HANDSHAKE_FAILED)


def handshake_close_code(code: ErrorCode) -> CloseCode:
    return handshake_ending(code).code


# The `reason` label of aiconexus_disconnections_total when the agent closed (its close code).
PEER_CLOSE_LABELS = {CloseCode.NORMAL: "normal", CloseCode.GOING_AWAY: "going_away"}


def peer_close_label(code: int | None) -> str:
    return PEER_CLOSE_LABELS.get(code or 0, "other")  # type: ignore[call-overload]


class ProtocolError(Exception):
    """A peer broke the protocol: answered with an ERROR message carrying `code`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}
        self.correlation_id = correlation_id

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value}, {self.message!r})"
