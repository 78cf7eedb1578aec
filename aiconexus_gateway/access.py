"""Access control: which browser origins may open /ws, and the admin bearer token. Pure."""

from __future__ import annotations

import hmac
from collections.abc import Iterable


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
