"""Admission and rate limits: pure policy, time passed in, no I/O.

The I/O layer asks `Admission.admit(ip, now)` before it upgrades a connection and calls `release`
when the connection ends; the hub asks each connection's `RateLimiter.take(now)` before it
parses a frame. Both are a few float operations, so they sit on the hot path at no real cost.

Refusals carry the HTTP status, the JSON error code and a retry hint, so the handshake answer
(429 / 503 with `Retry-After`) is decided here, not in Tornado code.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from .ratelimit import ABUSE_WINDOW, COST_UNIT, RateLimiter, TokenBucket

__all__ = ["ABUSE_WINDOW", "COST_UNIT", "RateLimiter", "TokenBucket"]

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


class Admission:
    """Counts open connections (registered or not) and decides whether one more may open."""

    __slots__ = ("_bucket", "per_ip", "settings", "total")

    def __init__(self, settings: AdmissionSettings, now: float) -> None:
        self.settings = settings
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


# -- access control ---------------------------------------------------------------------------


def parse_origins(text: str) -> tuple[str, ...]:
    """ALLOWED_ORIGINS: comma-separated origins (scheme://host[:port]) or `*`."""
    origins = tuple(item.strip().rstrip("/").lower() for item in text.split(",") if item.strip())
    for origin in origins:
        if origin != "*" and "://" not in origin:
            raise ValueError(f"must be origins like https://app.example.com or *; got {origin!r}")
    return origins


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """Non-browser clients send no Origin and are let in; browsers only from a listed origin."""
    if origin is None:
        return True
    allowed = tuple(allowed)
    return "*" in allowed or origin.strip().rstrip("/").lower() in allowed


def bearer_token_ok(authorization: str | None, token: str) -> bool:
    """True when `Authorization: Bearer <token>` carries `token` (constant-time comparison)."""
    if not authorization:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode("utf-8"), token.encode("utf-8"))


# -- metrics ----------------------------------------------------------------------------------


class LimitMetrics:
    """The limits' counters, in the hub's registry (so /metrics shows them)."""

    REFUSAL_REASONS = ("max_connections", "max_connections_per_ip", "connection_rate", "origin",
                       "draining")
    UNDELIVERED_REASONS = ("unknown_agent", "not_written", "lost_at_close")

    def __init__(self, registry: CollectorRegistry, admission: Admission) -> None:
        r = registry
        self.open_connections = Gauge(
            "aiconexus_open_connections",
            "Open WebSocket connections, registered or not (what MAX_CONNECTIONS counts)", registry=r)
        self.open_connections.set_function(lambda: admission.total)
        self.refused = Counter("aiconexus_connections_refused_total",
                               "New connections refused at the handshake, by reason", ["reason"],
                               registry=r)
        self.rate_limited = Counter("aiconexus_rate_limited_frames_total",
                                    "Frames refused by the per-connection rate limit (RATE_LIMIT)",
                                    registry=r)
        self.limit_closes = Counter(
            "aiconexus_limit_disconnects_total",
            "Connections closed by a limit: rate_limited (4429), slow_consumer (4008), "
            "invalid_utf8 (1007), too_large (1009)", ["reason"], registry=r)
        self.undelivered = Counter(
            "aiconexus_undelivered_messages_total",
            "Routable messages not written to their recipient (each sender still connected gets "
            "an ERROR), by reason", ["reason"], registry=r)
        self.refused_by = {reason: self.refused.labels(reason) for reason in self.REFUSAL_REASONS}
        self.undelivered_by = {reason: self.undelivered.labels(reason)
                               for reason in self.UNDELIVERED_REASONS}
        self.closes_by = {reason: self.limit_closes.labels(reason)
                          for reason in ("rate_limited", "slow_consumer", "invalid_utf8", "too_large")}
