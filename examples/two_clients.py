#!/usr/bin/env python3
"""Two agents connect to a gateway, show up in GET /agents, and leave again.

Start a gateway first (`make run`), then:

    python examples/two_clients.py [--url ws://127.0.0.1:8000/ws]

Exit status 0 when every step succeeded, 1 otherwise (including an unreachable gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiconexus_gateway.client import (
    ConnectionClosed,
    DIDKey,
    GatewayClient,
    GatewayConnectionError,
    GatewayError,
    gateway_url_for,
)

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


class StepFailed(Exception):
    """A step did not give the expected result; the message says what was seen."""


def http_base(ws_url: str) -> str:
    """The gateway's HTTP base URL: same host and port as its WebSocket endpoint."""
    parts = urlsplit(ws_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, "", "", ""))


def get_json(url: str, timeout: float, token: str | None) -> Any:
    """GET `url` and decode its JSON body (blocking; run it in a thread)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


async def run(url: str, timeout: float, token: str | None) -> None:
    base = http_base(url)

    async def listed_dids() -> list[str]:
        page = await asyncio.to_thread(get_json, f"{base}/agents?limit=1000", timeout, token)
        return [agent["did"] for agent in page["agents"]]

    alice = GatewayClient(url, DIDKey.generate(), metadata={"name": "alice"}, connect_timeout=timeout)
    bob = GatewayClient(url, DIDKey.generate(), metadata={"name": "bob"}, connect_timeout=timeout)

    try:
        await alice.connect()
        print(f"[1] alice connected as {alice.did} (gateway {alice.gateway_did})")
        await bob.connect()
        print(f"[2] bob connected as {bob.did}")

        dids = await listed_dids()
        if alice.did not in dids or bob.did not in dids:
            raise StepFailed(f"GET {base}/agents does not list both agents: {dids}")
        agent = await asyncio.to_thread(get_json, f"{base}/agents/{alice.did}", timeout, token)
        print(f"[3] GET /agents lists alice and bob ({len(dids)} agents connected); "
              f"alice's metadata: {agent['metadata']}")
    finally:
        await alice.close()
        await bob.close()
    print("[4] alice and bob closed their connections")

    # The gateway removes an agent when it sees the close; allow it a moment to do so.
    deadline = time.monotonic() + timeout
    while True:
        dids = await listed_dids()
        if alice.did not in dids and bob.did not in dids:
            break
        if time.monotonic() > deadline:
            raise StepFailed(f"GET {base}/agents still lists the agents after they left: {dids}")
        await asyncio.sleep(0.05)
    print("[5] GET /agents no longer lists them")
    print("OK: two agents connected, were listed, and left")


def running_hint(error: GatewayConnectionError) -> str:
    """Where nothing answered, the likely cause (a refusal or the SDK's TLS hint says enough)."""
    if error.status is not None or "instead of" in str(error):
        return ""
    return " (is it running? Start one with `make run` or `aiconexus-gateway`)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the gateway's WebSocket URL (default {DEFAULT_URL})")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each step (default 10)")
    parser.add_argument("--admin-token", default=os.environ.get("ADMIN_TOKEN"),
                        help="bearer token for /agents when the gateway runs with ADMIN_TOKEN "
                             "(default: the ADMIN_TOKEN environment variable)")
    args = parser.parse_args(argv)
    try:
        args.url = gateway_url_for(args.url)  # http://, HOST:PORT... understood; else one line
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args.url, args.timeout, args.admin_token))
    except GatewayConnectionError as exc:
        print(f"error: cannot reach the gateway: {exc}{running_hint(exc)}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"error: the gateway refused registration: {exc}", file=sys.stderr)
        return 1
    except ConnectionClosed as exc:
        print(f"error: the gateway closed the connection: {exc}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: HTTP request to {http_base(args.url)} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the agents were closed on the way out
        print("interrupted", file=sys.stderr)
        return 130
    except (StepFailed, asyncio.TimeoutError) as exc:
        print(f"error: {exc or 'timed out'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
