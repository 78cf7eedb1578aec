"""The mailbox beside direct routing, in one run, in process: the gateway's CPU per message and
the memory per waiting message (issue 14's benchmark).

    python -m benchmarks.mailbox [--messages 20000] [--size 200]

The core is driven the way the I/O layer drives it (Hub.receive with frames signed beforehand, so
the agents' signing is not counted), with VERIFY_SIGNATURES=all: every frame is verified.
Scenarios: `direct` (the recipient connected, no ttl), `store` (ttl, the recipient offline: kept,
QUEUED answered), `deliver + ack` (it registers: a window written after REGISTERED, the rest as
it acknowledges each; each removed, a DELIVERED receipt written to the sender). Memory per waiting
message is what tracemalloc sees the store step keep, divided by the messages, beside the
frame's own size.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import time
import tracemalloc
from typing import Any

from aiconexus_gateway.clock import Clock
from aiconexus_gateway.hub import Hub, HubSettings
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.mailbox import MailboxSettings
from aiconexus_gateway.messages import build
from aiconexus_gateway.peer import Peer
from aiconexus_gateway.session import SessionSettings


class Sink:
    """A connection that keeps nothing: only counts frames."""

    remote_ip = "127.0.0.1"

    def __init__(self) -> None:
        self.frames = 0
        self.last = ""

    def send(self, text: str, routed: Any = None) -> bool:
        self.frames += 1
        self.last = text
        return True

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass

    def registered(self) -> None:
        pass


def _register(hub: Hub, key: DIDKey) -> tuple[Peer, Sink]:
    connection = Sink()
    peer = hub.open(connection)
    nonce = json.loads(connection.last)["payload"]["nonce"]
    text, _ = build(key, "REGISTER", hub.did, {"nonce": nonce}, now=time.time())
    hub.receive(peer, text)
    return peer, connection


def _frames(sender: DIDKey, to: str, count: int, size: int, ttl: int | None) -> list[str]:
    filler = base64.b64encode(b"x" * size).decode()[:size]
    return [build(sender, "INTENT", to, {"n": n, "data": filler}, now=time.time(),
                  extra={"ttl": ttl} if ttl else None)[0] for n in range(count)]


def _acks(recipient: DIDKey, gateway: str, sender: str, ids: list[str]) -> list[str]:
    return [build(recipient, "ACK", gateway, {"from": sender, "id": i}, now=time.time())[0]
            for i in ids]


def run(messages: int, size: int) -> dict[str, float]:
    settings = HubSettings(SessionSettings(challenge_timeout=30, agent_timeout=300,
                                           ping_interval=20),
                           mailbox=MailboxSettings(max_messages=messages,
                                                   max_per_sender=messages,
                                                   max_bytes=1 << 40, max_total_bytes=1 << 40))
    hub = Hub(settings, DIDKey.generate(), clock=Clock())
    alice, bob, carol, dave = (DIDKey.generate() for _ in range(4))
    sender, _ = _register(hub, alice)
    _register(hub, carol)
    results: dict[str, float] = {}

    direct = _frames(alice, carol.did, messages, size, None)
    started = time.perf_counter()
    for text in direct:
        hub.receive(sender, text)
    results["direct_us"] = (time.perf_counter() - started) / messages * 1e6

    stored = _frames(alice, bob.did, messages, size, 600)
    ids = [f.split('"id":"', 1)[1].split('"', 1)[0] for f in stored]
    started = time.perf_counter()
    for text in stored:
        hub.receive(sender, text)
    results["store_us"] = (time.perf_counter() - started) / messages * 1e6

    measured = _frames(alice, dave.did, messages, size, 600)  # the same again, for memory only
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for text in measured:
        hub.receive(sender, text)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    del measured
    kept = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    results["bytes_per_waiting"] = kept / messages
    results["frame_bytes"] = sum(len(t) for t in stored) / messages

    acks = _acks(bob, hub.did, alice.did, ids)
    started = time.perf_counter()
    recipient, connection = _register(hub, bob)  # a window is written at once, the rest per ACK
    for text in acks:
        hub.receive(recipient, text)
    results["deliver_ack_us"] = (time.perf_counter() - started) / messages * 1e6
    assert connection.frames >= messages + 1, "not every waiting message was written"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--size", type=int, default=200, help="payload bytes per message")
    args = parser.parse_args()
    r = run(args.messages, args.size)
    print(f"{args.messages} messages, {args.size}-byte payloads (frames {r['frame_bytes']:.0f} B)")
    print(f"  direct routing           {r['direct_us']:7.1f} us/message")
    print(f"  store (recipient away)   {r['store_us']:7.1f} us/message")
    print(f"  deliver + acknowledge    {r['deliver_ack_us']:7.1f} us/message (with its receipt)")
    total = r["store_us"] + r["deliver_ack_us"]
    print(f"  store + deliver + ack    {total:7.1f} us/message ({1e6 / total:,.0f} messages/s)")
    print(f"  memory per waiting message {r['bytes_per_waiting']:,.0f} B "
          f"({r['bytes_per_waiting'] - r['frame_bytes']:,.0f} B beyond the frame's text)")


if __name__ == "__main__":
    main()
