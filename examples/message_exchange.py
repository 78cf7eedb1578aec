#!/usr/bin/env python3
"""Two agents exchange OFFER -> ANSWER -> ICE_CANDIDATE through a gateway, verifying every message.

Start a gateway first (`make run`), then:

    python examples/message_exchange.py [--url ws://127.0.0.1:8000/ws]

Exit status 0 only when every message arrived and its signature verified against its sender's
did:key; 1 otherwise, with a message saying which step failed (or that the gateway is unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from nacl.signing import VerifyKey

from aiconexus_gateway.client import (
    ConnectionClosed,
    DIDKey,
    GatewayClient,
    GatewayConnectionError,
    GatewayError,
    InvalidMessageError,
    Message,
    gateway_url_for,
)
from aiconexus_gateway.did import public_key_from_did
from aiconexus_gateway.errors import ProtocolError
from aiconexus_gateway.messages import parse

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


class StepFailed(Exception):
    """A message did not arrive, or arrived different from what was sent."""


def check_signature(message: Message) -> None:
    """Verify the frame as received against the key inside its sender's DID.

    The SDK already did this before handing the message over; doing it again here shows that
    the gateway forwarded the sender's signed bytes untouched (end-to-end verification).
    """
    parse(message.raw).verify(VerifyKey(public_key_from_did(message.sender)))


async def expect(receiver: GatewayClient, name: str, *, type: str, sender: GatewayClient,
                 message_id: str, payload: dict[str, Any], correlation_id: str | None,
                 timeout: float) -> Message:
    """The next message `receiver` gets, checked against what `sender` sent."""
    try:
        message = await receiver.receive(timeout=timeout)
    except asyncio.TimeoutError:
        raise StepFailed(f"{name} did not receive the {type} within {timeout:g} s") from None
    seen = (message.type, message.sender, message.id, message.payload, message.correlation_id)
    wanted = (type, sender.did, message_id, payload, correlation_id)
    if seen != wanted:
        raise StepFailed(f"{name} expected {wanted}, received {seen}")
    check_signature(message)
    return message


async def run(url: str, timeout: float, linger: float = 0.0) -> None:
    alice = GatewayClient(url, DIDKey.generate(), metadata={"name": "alice"}, connect_timeout=timeout)
    bob = GatewayClient(url, DIDKey.generate(), metadata={"name": "bob"}, connect_timeout=timeout)
    invalid: list[InvalidMessageError] = []
    alice.on_invalid(invalid.append)
    bob.on_invalid(invalid.append)
    try:
        await alice.connect()
        print(f"[1] alice registered as {alice.did}")
        await bob.connect()
        print(f"[2] bob registered as {bob.did} (gateway {bob.gateway_did})")

        offer = {"sdp": "v=0\r\no=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\ns=-\r\n"}
        offer_id = await alice.send(bob.did, "OFFER", offer)
        print(f"[3] alice -> bob  OFFER {offer_id}")
        await expect(bob, "bob", type="OFFER", sender=alice, message_id=offer_id, payload=offer,
                     correlation_id=None, timeout=timeout)
        print("    bob received the OFFER; signature verified against alice's did:key")

        answer = {"sdp": "v=0\r\no=bob 2890844730 2890844730 IN IP4 127.0.0.1\r\ns=-\r\n"}
        answer_id = await bob.send(alice.did, "ANSWER", answer, correlation_id=offer_id)
        print(f"[4] bob -> alice  ANSWER {answer_id} (correlation_id {offer_id})")
        await expect(alice, "alice", type="ANSWER", sender=bob, message_id=answer_id,
                     payload=answer, correlation_id=offer_id, timeout=timeout)
        print("    alice received the ANSWER; signature verified against bob's did:key")

        candidate = {"candidate": "candidate:1 1 UDP 2130706431 127.0.0.1 54400 typ host",
                     "sdpMid": "0", "sdpMLineIndex": 0}
        candidate_id = await alice.send(bob.did, "ICE_CANDIDATE", candidate)
        print(f"[5] alice -> bob  ICE_CANDIDATE {candidate_id}")
        await expect(bob, "bob", type="ICE_CANDIDATE", sender=alice, message_id=candidate_id,
                     payload=candidate, correlation_id=None, timeout=timeout)
        print("    bob received the ICE_CANDIDATE; signature verified against alice's did:key")
        delivered = 3
        if linger > 0:  # keep trickling candidates, e.g. while aiconexus-monitor watches
            print(f"    lingering {linger:g} s: alice trickles an ICE_CANDIDATE to bob every 0.5 s")
            deadline = asyncio.get_running_loop().time() + linger
            while asyncio.get_running_loop().time() < deadline:
                extra = {**candidate, "sdpMLineIndex": delivered}
                extra_id = await alice.send(bob.did, "ICE_CANDIDATE", extra)
                await expect(bob, "bob", type="ICE_CANDIDATE", sender=alice, message_id=extra_id,
                             payload=extra, correlation_id=None, timeout=timeout)
                delivered += 1
                await asyncio.sleep(0.5)
    finally:
        await alice.close()
        await bob.close()
    if invalid:
        raise StepFailed(f"{len(invalid)} message(s) failed verification: {invalid[0].reason}")
    print("[6] both agents disconnected")
    print(f"OK: {delivered} of {delivered} messages arrived and verified")


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
    parser.add_argument("--linger", type=float, default=0.0,
                        help="after the exchange, keep sending ICE candidates for this many seconds "
                             "(to watch the agents in aiconexus-monitor; default 0)")
    args = parser.parse_args(argv)
    try:
        args.url = gateway_url_for(args.url)  # http://, HOST:PORT... understood; else one line
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args.url, args.timeout, args.linger))
    except GatewayConnectionError as exc:
        print(f"error: cannot reach the gateway: {exc}{running_hint(exc)}", file=sys.stderr)
        return 1
    except GatewayError as exc:
        print(f"error: the gateway refused registration: {exc}", file=sys.stderr)
        return 1
    except ConnectionClosed as exc:
        print(f"error: the gateway closed the connection: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the agents were closed on the way out
        print("interrupted", file=sys.stderr)
        return 130
    except StepFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ProtocolError as exc:  # a received frame that does not verify
        print(f"error: a received message failed verification: {exc.code.value}: {exc.message}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
