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


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses (RFC 6455 7.4 plus the 4xxx application range)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    INVALID_PAYLOAD = 1007
    TOO_LARGE = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    MALFORMED_HANDSHAKE = 4400
    AUTH_FAILED = 4401
    SLOW_CONSUMER = 4008
    CHALLENGE_TIMEOUT = 4408
    SESSION_REPLACED = 4409
    RATE_LIMITED = 4429


# The close code an error produces when it happens before registration (the handshake).
HANDSHAKE_CLOSE_CODES: dict[ErrorCode, CloseCode] = {
    ErrorCode.AUTH_FAILED: CloseCode.AUTH_FAILED,
    ErrorCode.INVALID_SIGNATURE: CloseCode.AUTH_FAILED,
    ErrorCode.TIMEOUT: CloseCode.CHALLENGE_TIMEOUT,
    ErrorCode.MESSAGE_TOO_LARGE: CloseCode.TOO_LARGE,
    ErrorCode.SESSION_REPLACED: CloseCode.SESSION_REPLACED,
    ErrorCode.INTERNAL_ERROR: CloseCode.INTERNAL_ERROR,
}


def handshake_close_code(code: ErrorCode) -> CloseCode:
    """4400 for every handshake error that is not about authentication or time."""
    return HANDSHAKE_CLOSE_CODES.get(code, CloseCode.MALFORMED_HANDSHAKE)


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
