#!/usr/bin/env python3
"""Two agents open a peer-to-peer channel through a gateway and exchange messages over it.

The gateway carries only the signed OFFER / ANSWER / ICE_CANDIDATE; the messages go over a
WebRTC data channel, authenticated by the agents' DIDs (SECURITY.md). Needs the `webrtc` extra
(`pip install 'aiconexus-gateway[webrtc]'`). Start a gateway first (`make run`), then:

    python examples/p2p_channel.py [--url ws://127.0.0.1:8000/ws] [--count 100]
    python examples/p2p_channel.py --relay-only --fallback   # no TURN: through the gateway

Prints which transport the channel got (direct, turn or relay). Exit status 0 only when every
message arrived, in order, both ways; 1 otherwise (an unreachable gateway included).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from aiconexus_gateway.client import (
    ConnectionClosed,
    DIDKey,
    GatewayClient,
    GatewayConnectionError,
    GatewayError,
    gateway_url_for,
)
from aiconexus_gateway.client.peer import PeerChannel, PeerError

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


async def run(url: str, count: int, timeout: float, *, fallback: bool, relay_only: bool) -> None:
    alice = GatewayClient(url, DIDKey.generate(), metadata={"name": "alice"},
                          connect_timeout=timeout)
    bob = GatewayClient(url, DIDKey.generate(), metadata={"name": "bob"}, connect_timeout=timeout)
    try:
        await alice.connect()
        await bob.connect()
        print(f"[1] alice {alice.did}\n    bob   {bob.did}")
        incoming = bob.peers()  # bob accepts channels
        if relay_only:
            bob.configure_peers(relay_only=True)
        started = time.perf_counter()
        ours = await alice.connect_peer(bob.did, "p2p-example", timeout=timeout,
                                        fallback=fallback, relay_only=relay_only or None)
        theirs = await asyncio.wait_for(incoming.__anext__(), timeout)
        print(f"[2] channel open in {(time.perf_counter() - started) * 1000:.0f} ms, "
              f"transport: {ours.transport}")

        async def send_all(channel: PeerChannel, name: str) -> None:
            for n in range(count):  # odd: text, even: bytes
                await channel.send(f"{name} {n}" if n % 2 else f"{name} {n}".encode())

        async def receive_all(channel: PeerChannel) -> list[str | bytes]:
            return [await channel.receive(timeout=timeout) for _ in range(count)]

        started = time.perf_counter()
        _, _, at_bob, at_alice = await asyncio.gather(
            send_all(ours, "alice"), send_all(theirs, "bob"), receive_all(theirs),
            receive_all(ours))
        elapsed = time.perf_counter() - started
        for got, name in ((at_bob, "alice"), (at_alice, "bob")):
            expected = [f"{name} {n}" if n % 2 else f"{name} {n}".encode() for n in range(count)]
            if got != expected:
                raise PeerError(f"the messages from {name} did not all arrive in order")
        print(f"[3] {count} messages each way, in order ({2 * count / elapsed:.0f} messages/s)")
        await ours.close()
        await theirs.wait_closed()
        print(f"[4] alice closed the channel; bob saw it {theirs.state}")
    finally:
        await alice.close()
        await bob.close()
    print(f"OK: a {ours.transport} channel carried {2 * count} messages")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the gateway's WebSocket URL (default {DEFAULT_URL})")
    parser.add_argument("--count", type=int, default=100,
                        help="messages each way (default 100)")
    parser.add_argument("--timeout", type=float, default=20.0,
                        help="seconds to wait for each step (default 20)")
    parser.add_argument("--fallback", action="store_true",
                        help="relay through the gateway when no direct or TURN route works")
    parser.add_argument("--relay-only", action="store_true",
                        help="use TURN candidates only (the gateway's TURN_URLS)")
    args = parser.parse_args(argv)
    try:
        url = gateway_url_for(args.url)
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(url, args.count, args.timeout, fallback=args.fallback,
                        relay_only=args.relay_only))
    except GatewayConnectionError as exc:
        print(f"error: cannot reach the gateway: {exc}", file=sys.stderr)
        return 1
    except (GatewayError, ConnectionClosed) as exc:
        print(f"error: the gateway refused or closed: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # aiortc missing: the message names the extra
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (PeerError, asyncio.TimeoutError) as exc:
        print(f"error: {type(exc).__name__}: {exc or 'timed out'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
