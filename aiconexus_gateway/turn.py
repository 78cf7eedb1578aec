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
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


_URL = re.compile(r"(?P<scheme>stuns?|turns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)"
                  r"(?::(?P<port>[0-9]{1,5}))?(?:\?transport=(?P<transport>udp|tcp))?\Z")


def parse_ice_urls(text: str, schemes: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of STUN or TURN URLs (RFC 7064 / RFC 7065: `stun:HOST[:PORT]`,
    `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:` for TLS); ValueError says what is wrong."""
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    for url in urls:
        match = _URL.match(url)
        if match is None or match.group("scheme") not in schemes:
            raise ValueError(f"{url!r} is not a {' / '.join(s + ':' for s in schemes)} URL "
                             f"(expected e.g. {schemes[0]}:example.org:3478)")
        port = match.group("port")
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"{url!r}: the port must be 1-65535")
        if match.group("transport") and match.group("scheme").startswith("stun"):
            raise ValueError(f"{url!r}: a STUN URL takes no ?transport= (RFC 7064)")
    return urls


@dataclass(frozen=True)
class IceServerIssuer:
    """What the gateway announces to each agent in REGISTERED: a fresh RTCIceServer list per
    DID (ice_servers above). The secret stays in this object, on the gateway."""

    stun_urls: tuple[str, ...]
    turn_urls: tuple[str, ...]
    secret: str | None = field(default=None, repr=False)
    ttl: float = 3600.0
    now: Callable[[], float] = time.time

    def __call__(self, did: str) -> list[dict[str, Any]]:
        return ice_servers(self.stun_urls, self.turn_urls, self.secret, did, self.ttl, now=self.now)

    @classmethod
    def from_settings(cls, stun_urls: tuple[str, ...], turn_urls: tuple[str, ...],
                      secret: str | None, ttl: float) -> IceServerIssuer | None:
        """None when there is nothing to announce (no STUN URL, and no TURN URL with a secret)."""
        if not stun_urls and not (turn_urls and secret):
            return None
        return cls(stun_urls, turn_urls, secret, ttl)
