"""Exceptions the SDK raises, each saying what went wrong in words an agent developer can act on."""

from __future__ import annotations

from typing import Any


class GatewayConnectionError(ConnectionError):
    """The gateway could not be reached, or refused the WebSocket handshake.

    For a refusal, `status` is the HTTP status (429: this client has too many connections, 503:
    the gateway is full, draining or limiting new connections) and `retry_after` the seconds
    it asked to wait (Retry-After), when it said.
    """

    def __init__(self, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class GatewayError(Exception):
    """The gateway answered with an ERROR (during connect: registration was refused)."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None,
                 close_code: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details or {}
        self.close_code = close_code


class InvalidMessageError(Exception):
    """A received message failed validation or its signature did not verify; it was not passed on."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.text = text


class SendQueueFull(ConnectionError):
    """Disconnected, reconnecting, and the bounded queue of messages waiting to go out is full."""


class ConnectionClosed(ConnectionError):
    """The connection to the gateway is closed."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"connection closed (code {code}, reason {reason!r})")
        self.code = code
        self.reason = reason
