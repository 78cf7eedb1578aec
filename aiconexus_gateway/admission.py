"""Connection admission: may one more connection open? Pure policy, time passed in, no I/O.

The I/O layer asks `Admission.admit(ip, now)` before it upgrades a connection and calls `release`
when the connection ends. Refusals carry the HTTP status, the JSON error code and a retry hint, so
the handshake answer (429 / 503 with `Retry-After`) is decided here, not in Tornado code. The
per-address work budget (ratelimit.WorkBudget) is consulted here too: an address that has cost
the gateway more unauthenticated work than it may is refused until its budget refills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .ratelimit import WORK_BURST, WORK_RATE, TokenBucket, WorkBudget


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a new connection is refused at the handshake, and what to answer."""

    status: int  # 429: this client asks too much; 503: the gateway as a whole is at its limit
    code: str  # the "error" of the JSON body
    message: str
    retry_after: float  # seconds; sent as Retry-After (rounded up to whole seconds)
    reason: str  # metric label


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    max_connections: int = 0  # 0: no limit (likewise below)
    max_connections_per_ip: int = 0
    connection_rate: float = 0.0  # new connections per second, whole gateway
    connection_burst: int = 0
    work_rate: float = WORK_RATE  # seconds of unauthenticated work per second per address
    work_burst: float = WORK_BURST


class Admission:
    """Counts open connections (registered or not) and decides whether one more may open."""

    __slots__ = ("_bucket", "per_ip", "settings", "total", "work")

    def __init__(self, settings: AdmissionSettings, now: float,
                 work: WorkBudget | None = None) -> None:
        self.settings = settings
        self.work = work or WorkBudget(settings.work_rate, settings.work_burst)
        self.total = 0
        self.per_ip: dict[str, int] = {}
        rate = settings.connection_rate
        self._bucket = (TokenBucket(rate, max(1, settings.connection_burst or math.ceil(rate)), now)
                        if rate > 0 else None)

    def admit(self, ip: str, now: float) -> Refusal | None:
        """Reserve a slot for a connection from `ip`, or say why not (nothing reserved then)."""
        settings = self.settings
        per_ip = settings.max_connections_per_ip
        if per_ip and self.per_ip.get(ip, 0) >= per_ip:
            return Refusal(429, "TOO_MANY_CONNECTIONS",
                           f"at most {per_ip} connections per client address; close one first",
                           1.0, "max_connections_per_ip")
        if self.work.over(ip, now):
            return Refusal(429, "TOO_MUCH_WORK",
                           "connections from this address cost the gateway more unauthenticated "
                           "work than it allows; retry after the delay",
                           self.work.retry_after(ip, now), "address_work")
        if settings.max_connections and self.total >= settings.max_connections:
            return Refusal(503, "GATEWAY_FULL",
                           f"the gateway holds its maximum of {settings.max_connections} connections; "
                           "retry later or connect to another instance", 1.0, "max_connections")
        if self._bucket is not None:
            wait = self._bucket.take(now)
            if wait:
                return Refusal(503, "CONNECTION_RATE_LIMITED",
                               "too many new connections per second; retry after the delay",
                               wait, "connection_rate")
        self.total += 1
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return None

    def release(self, ip: str) -> None:
        """The connection admitted for `ip` has ended."""
        count = self.per_ip.get(ip, 0)
        if count <= 1:
            self.per_ip.pop(ip, None)
        else:
            self.per_ip[ip] = count - 1
        if self.total > 0:
            self.total -= 1


def retry_after_header(seconds: float) -> str:
    """The Retry-After value (RFC 9110 10.2.3: whole seconds, at least 1)."""
    return str(max(1, math.ceil(seconds)))
