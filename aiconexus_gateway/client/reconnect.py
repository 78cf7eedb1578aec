"""The SDK's reconnection policy: when to try again, and how long to wait, as pure functions.

Jittered exponential backoff spreads the reconnects of many agents after a gateway restart, so
they do not all come back in the same instant (a reconnect storm); a `Retry-After` the gateway
sends with a 503/429 refusal is honoured on top of it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ..backoff import backoff

# Close codes after which reconnecting cannot help: the gateway ended the session on purpose (1000)
# or said it must not come back as it was (4409: another connection took over the DID;
# 4401/4400: our handshake is wrong). Every other loss (1001 restart, 1006 crash, 4008, 4429,
# a timeout) is worth another attempt, after the backoff.
FINAL_CLOSE_CODES = frozenset({1000, 4400, 4401, 4409})
# ERROR codes during registration that the same attempt would get again.
FINAL_REGISTRATION_ERRORS = frozenset({"AUTH_FAILED", "INVALID_DID", "INVALID_SIGNATURE",
                                       "MALFORMED_MESSAGE", "UNSUPPORTED_VERSION"})


@dataclass(frozen=True)
class ReconnectPolicy:
    """How GatewayClient reconnects after it lost its connection.

    The n-th wait (n from 0) is uniformly random between half and all of
    min(max_delay, initial_delay * multiplier**n): "equal jitter", see `aiconexus_gateway.backoff`.
    """

    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0
    max_attempts: int | None = None  # None: keep trying until close()

    def __post_init__(self) -> None:
        if not 0 < self.initial_delay <= self.max_delay or self.multiplier < 1:
            raise ValueError("need 0 < initial_delay <= max_delay and multiplier >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None)")


def backoff_delay(policy: ReconnectPolicy, attempt: int, *, retry_after: float | None = None,
                  jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait before reconnection attempt `attempt` (0 for the first).

    The policy's jittered backoff, or the gateway's Retry-After when that is longer (but never
    beyond max_delay, unless the backoff itself is)."""
    delay = backoff(attempt, base=policy.initial_delay, cap=policy.max_delay,
                    multiplier=policy.multiplier, jitter=jitter)
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, max(policy.max_delay, delay))
    return delay


@dataclass(frozen=True)
class ConnectionEvent:
    """What `on_connection_change` handlers are told.

    state: "disconnected" (code/reason of the loss), "reconnecting" (attempt, delay before it),
    "reconnected" (attempt that succeeded), "closed" (final: close() was called, the gateway
    closed for good, or max_attempts ran out; reason says which).
    """

    state: str
    code: int | None = None
    reason: str | None = None
    attempt: int = 0
    delay: float = 0.0
