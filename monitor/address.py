"""Where the gateway is: the HTTP base URL the monitor polls, from what the operator typed.

Pure (no I/O). `http_base_url` either returns a base URL (scheme, host, port, optional path
prefix for a gateway behind a reverse proxy) or raises `BadURL` saying what is expected.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

EXAMPLE = "http://127.0.0.1:8000"
ENDPOINTS = ("/health", "/agents", "/metrics", "/ws")
"""The gateway's own paths: given at the end of the URL, they are taken off (the operator
copied the address of `curl .../health`, or the agents' `ws://.../ws`)."""


class BadURL(ValueError):
    """A gateway address the monitor cannot turn into an HTTP base URL."""


def http_base_url(url: str) -> str:
    """The gateway's HTTP base URL from what the user typed.

    `http://host:8000` is kept (a path prefix too, for a gateway behind a reverse proxy); a
    bare `host:8000` gets `http://`; `ws://` becomes `http://` and `wss://` `https://`; one of
    the gateway's endpoints at the end (`/health`, `/agents`, `/metrics`, `/ws`) is taken
    off, so the agents' address `ws://host:8000/ws`, an easy mistake, becomes
    `http://host:8000`. Anything else is refused with a message saying what is expected.
    """
    text = url.strip()
    if not text:
        raise BadURL(f"the gateway URL is empty; expected e.g. {EXAMPLE}")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    path = parts.path.rstrip("/")
    for endpoint in ENDPOINTS:
        if path.endswith(endpoint):
            path = path[: -len(endpoint)].rstrip("/")
            break
    if scheme in ("ws", "wss"):
        scheme = "http" if scheme == "ws" else "https"
    elif scheme not in ("http", "https"):
        raise BadURL(
            f"unsupported URL scheme {parts.scheme!r} in {url!r}; "
            f"expected the gateway's HTTP address, e.g. {EXAMPLE}"
        )
    try:
        port = parts.port
    except ValueError:
        raise BadURL(f"bad port in {url!r}; expected e.g. {EXAMPLE}") from None
    if not parts.hostname or port == 0:
        raise BadURL(f"no host or port in {url!r}; expected e.g. {EXAMPLE}")
    if parts.query or parts.fragment:
        raise BadURL(f"{url!r} has a query or fragment; give the gateway's base URL only")
    return urlunsplit((scheme, parts.netloc, path, "", ""))
