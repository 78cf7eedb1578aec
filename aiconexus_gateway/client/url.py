"""What GatewayClient accepts as a gateway address, a key and a peer's DID, checked at once. Pure.

A new user's mistakes (an http:// URL copied from /health, a bare `host:port`, a DID string
where the key belongs) are either understood or refused here with one sentence that says what
is expected, instead of a KeyError or AttributeError from deep inside Tornado later.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..did import public_key_from_did
from ..errors import ProtocolError
from ..keys import DIDKey

EXPECTED_URL = "ws://HOST:PORT/ws (wss://HOST:PORT/ws when the gateway has TLS)"
# http(s) is what a browser or curl shows for the same host and port: the WebSocket is on it too.
SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
WEBSOCKET_PATH = "/ws"
HTTP_ENDPOINTS = ("/health", "/agents", "/metrics")
KEY_HINT = ("DIDKey.generate() for a new key, DIDKey.load(path) for a key file "
            "(python -m aiconexus_gateway.keygen PATH makes one)")


def gateway_url_for(url: Any) -> str:
    """The WebSocket URL for what a user gave as the gateway's address; ValueError otherwise.

    Understood: `ws://` and `wss://` URLs as they are; `http://` -> `ws://` and `https://` ->
    `wss://` (same host and port); `HOST:PORT` -> `ws://HOST:PORT/ws`; no path -> `/ws`.
    Refused: other schemes, no host, a bad port, a fragment, the gateway's HTTP endpoints.
    """
    if not isinstance(url, str):
        raise TypeError(f"gateway_url must be a string such as {EXPECTED_URL}, "
                        f"not {type(url).__name__}")
    text = url.strip()
    if not text:
        raise ValueError(f"gateway_url is empty; expected {EXPECTED_URL}")
    if "://" not in text:
        text = "ws://" + text  # HOST:PORT[/path]
    parts = urlsplit(text)
    scheme = SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"gateway_url {url!r}: unsupported scheme '{parts.scheme}'; expected "
                         f"{EXPECTED_URL} (http:// and https:// are understood too)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"gateway_url {url!r}: the port is not a number from 0 to 65535; "
                         f"expected {EXPECTED_URL}") from None
    if not parts.hostname:
        raise ValueError(f"gateway_url {url!r} has no host; expected {EXPECTED_URL}")
    if parts.fragment or text.endswith("#"):
        raise ValueError(f"gateway_url {url!r}: a WebSocket URL has no #fragment; "
                         f"expected {EXPECTED_URL}")
    path = parts.path.rstrip("/") or WEBSOCKET_PATH
    if path in HTTP_ENDPOINTS:
        raise ValueError(f"gateway_url {url!r} is the gateway's HTTP endpoint {path}; its "
                         f"WebSocket endpoint is {WEBSOCKET_PATH}: expected {EXPECTED_URL}")
    del port  # checked above; the netloc is kept as written
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def check_key(key: Any) -> DIDKey:
    """`key` when it is a DIDKey (the agent's private key); TypeError saying what is expected."""
    if isinstance(key, DIDKey):
        return key
    if isinstance(key, str) and key.startswith("did:"):
        raise TypeError(f"did_key must be the agent's private key (a DIDKey), not a DID string "
                        f"({key[:24]}...): a DID only names a key and cannot sign. Use {KEY_HINT}")
    raise TypeError(f"did_key must be a DIDKey, not {type(key).__name__}. Use {KEY_HINT}")


def check_did(did: Any, role: str) -> str:
    """`did` when it is a valid Ed25519 did:key (docs/protocol.md section 4); ValueError else."""
    try:
        public_key_from_did(did)
    except ProtocolError as exc:
        raise ValueError(f"{role} is not a valid did:key: {exc.message}") from None
    except TypeError:  # unhashable: not a string at all
        raise ValueError(f"{role} must be a did:key string, not {type(did).__name__}") from None
    return str(did)
