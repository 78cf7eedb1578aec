#!/usr/bin/env python3
"""A message that waits for an agent that is offline, and the receipt that says it arrived.

Start a gateway first (`make run`), then:

    python examples/mailbox.py [--url ws://127.0.0.1:8000/ws]

alice sends three INTENTs with a `ttl` to bob, who is not connected: the gateway keeps them and
answers QUEUED. bob connects, gets them in order (the SDK acknowledges each once bob's code has
it), and alice gets a DELIVERED receipt for each (docs/protocol.md section 22, docs/sdk.md).
Exit status 0 when every step succeeded, 1 otherwise (including an unreachable gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiconexus_gateway.client import (
    ConnectionClosed,
    DIDKey,
    GatewayClient,
    GatewayConnectionError,
    GatewayError,
    Message,
)

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


async def next_of(client: GatewayClient, type: str, timeout: float) -> Message:
    """The next message of `type`; an ERROR from the gateway instead ends the example."""
    while True:
        message = await client.receive(timeout=timeout)
        if message.type == type:
            return message
        if message.type == "ERROR":
            raise GatewayError(str(message.error_code), str(message.payload.get("message")))


async def run(url: str, timeout: float) -> None:
    bob_key = DIDKey.generate()
    async with GatewayClient(url, DIDKey.generate(), connect_timeout=timeout) as alice:
        print(f"[1] alice connected; bob ({bob_key.did[:24]}...) is offline")
        ids = [await alice.send(bob_key.did, "INTENT", {"task": f"job {n}"}, ttl=300)
               for n in range(3)]
        for message_id in ids:
            queued = await next_of(alice, "QUEUED", timeout)
            assert queued.correlation_id == message_id
        print("[2] alice sent 3 INTENTs with ttl=300; the gateway answered QUEUED for each")
        async with GatewayClient(url, bob_key, connect_timeout=timeout) as bob:
            got = [await next_of(bob, "INTENT", timeout) for _ in ids]
            if [m.id for m in got] != ids:
                raise RuntimeError(f"bob got {[m.id for m in got]}, expected {ids} in order")
            print("[3] bob connected and received them in order: "
                  + ", ".join(str(m.payload["task"]) for m in got))
            statuses = [await alice.receipt(message_id, timeout=timeout) for message_id in ids]
            print(f"[4] alice's receipts: {', '.join(statuses)}")
            if statuses != ["DELIVERED"] * 3:
                raise RuntimeError(f"expected three DELIVERED receipts, got {statuses}")
    print("OK: 3 messages waited for bob, arrived in order, and alice knows it")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--url", default=DEFAULT_URL, help=f"gateway WebSocket URL ({DEFAULT_URL})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step")
    args = parser.parse_args()
    try:
        asyncio.run(run(args.url, args.timeout))
    except (GatewayConnectionError, GatewayError, ConnectionClosed, RuntimeError,
            AssertionError, TimeoutError, asyncio.TimeoutError) as exc:
        print(f"FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
