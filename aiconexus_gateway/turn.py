"""TURN REST credentials: time-limited TURN usernames and passwords from a shared secret. Pure.

The scheme coturn implements with `use-auth-secret` / `static-auth-secret` (draft-uberti-behave-
turn-rest-00, section 2.2): the username is `<expiry>:<user>` (expiry in Unix seconds), the
password is base64(HMAC-SHA1(secret, username)). The TURN server recomputes the password from
the secret it shares with the gateway and refuses expired usernames, so an agent can use the
TURN server until `expiry` and the secret itself never leaves the gateway. HMAC and SHA-1 come
from the standard library: this module only composes them as the scheme says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TurnCredential:
    """One agent's TURN credential: the username, the password, and when it expires."""

    username: str
    credential: str
    expires: int  # Unix seconds


def turn_password(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)), as coturn computes it for use-auth-secret."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_credential(secret: str, user: str, ttl: float, *,
                    now: Callable[[], float] = time.time) -> TurnCredential:
    """A credential for `user` (an agent's DID) valid for `ttl` seconds from now."""
    if not secret:
        raise ValueError("a TURN secret is needed to issue TURN credentials")
    if ttl <= 0:
        raise ValueError("the TURN credential lifetime (TURN_TTL) must be above 0 seconds")
    if ":" in user and not user.startswith("did:"):
        raise ValueError("the TURN user must not contain ':' (it separates the expiry)")
    expires = int(now() + ttl)
    username = f"{expires}:{user}"
    return TurnCredential(username, turn_password(secret, username), expires)


def check_turn_credential(secret: str, username: str, password: str, *,
                          now: Callable[[], float] = time.time) -> bool:
    """What a TURN server checks: the password matches and the expiry has not passed."""
    expiry, _, _ = username.partition(":")
    if not expiry.isdigit() or int(expiry) < now():
        return False
    return hmac.compare_digest(turn_password(secret, username), password)


def ice_servers(stun_urls: Sequence[str], turn_urls: Sequence[str], secret: str | None,
                user: str, ttl: float, *, now: Callable[[], float] = time.time
                ) -> list[dict[str, Any]]:
    """The RTCIceServer list (WebRTC's shape: `urls`, `username`, `credential`) for one agent:
    the STUN URLs as they are, the TURN URLs with a fresh credential when there is a secret."""
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and secret:
        issued = turn_credential(secret, user, ttl, now=now)
        servers.append({"urls": list(turn_urls), "username": issued.username,
                        "credential": issued.credential})
    return servers
