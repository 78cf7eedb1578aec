"""Discovery and presence (issue 15), in process: the hub with in-memory connections, no sockets.

    python -m benchmarks.discovery [--agents 10000] [--watchers 1000]

Measures, on one core:
- DISCOVER with `--agents` registered agents with cards (capabilities from a set of 50): a
  capability query (20 per page), a name prefix nobody has (the bounded worst scan), 100 DIDs;
  each through `Hub.receive` (the request's signature checked, the answer signed);
- the fan-out of one agent that joins and leaves, watched by `--watchers` agents (one signed
  PRESENCE each);
- routing (OFFER between two agents) on that loaded hub against a hub with two agents only, so
  a slower hot path would show.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from aiconexus_gateway import messages
from aiconexus_gateway.directory import DirectorySettings
from aiconexus_gateway.hub import Hub, HubSettings, Peer
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.session import SessionSettings

NONCE = bytes(range(32))
NONCE_TEXT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


class Sink:
    """A Connection that keeps the last frame only (the benchmark reads what it needs); each
    from an address of its own, as agents on many hosts (the per-address work budget)."""

    count = 0

    def __init__(self) -> None:
        Sink.count += 1
        self.remote_ip = f"10.{Sink.count >> 16 & 255}.{Sink.count >> 8 & 255}.{Sink.count & 255}"
        self.last = ""
        self.frames = 0

    def send(self, text: str, routed: Any = None) -> bool:
        self.last = text
        self.frames += 1
        return True

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        pass

    def registered(self) -> None:
        pass


def make_hub() -> Hub:
    settings = HubSettings(SessionSettings(30.0, 300.0, 20.0),
                           directory=DirectorySettings(watch_limit=100, coalesce=1.0,
                                                       discover_rate=0.0))
    hub = Hub(settings, DIDKey.generate(), nonce_source=lambda n: NONCE[:n])
    hub.directory.schedule = lambda delay, callback: None  # no timers: one event per window
    return hub


def join(hub: Hub, key: DIDKey, card: dict[str, Any] | None = None) -> tuple[Peer, Sink]:
    sink = Sink()
    peer = hub.open(sink)
    payload: dict[str, Any] = {"nonce": NONCE_TEXT}
    if card is not None:
        payload["card"] = card
    hub.receive(peer, messages.build(key, "REGISTER", hub.did, payload, now=time.time())[0])
    assert '"REGISTERED"' in sink.last, sink.last
    return peer, sink


def timed(runs: int, action: Callable[[], None]) -> float:
    """Median seconds of `action` over `runs` runs."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def request(hub: Hub, peer: Peer, key: DIDKey, type: str, payload: dict[str, Any]) -> float:
    texts = [messages.build(key, type, hub.did, payload, now=time.time())[0] for _ in range(50)]
    frames = iter(texts)
    return timed(len(texts), lambda: hub.receive(peer, next(frames)))


def routing(hub: Hub, runs: int = 2000) -> float:
    alice, bob = DIDKey.generate(), DIDKey.generate()
    sender, _ = join(hub, alice)
    join(hub, bob)
    texts = [messages.build(alice, "OFFER", bob.did, {"n": n}, now=time.time())[0]
             for n in range(runs)]
    frames = iter(texts)
    return timed(runs, lambda: hub.receive(sender, next(frames)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--watchers", type=int, default=1_000)
    args = parser.parse_args()

    hub = make_hub()
    started = time.perf_counter()
    for n in range(args.agents):
        join(hub, DIDKey.generate(), {"name": f"agent-{n}", "capabilities": [f"cap-{n % 50}"]})
    registering = time.perf_counter() - started
    seeker_key = DIDKey.generate()
    seeker, sink = join(hub, seeker_key)
    dids = [peer.did for peer in list(hub.registry)[:100]]
    print(f"{args.agents} agents registered with cards in {registering:.1f} s "
          f"({registering / args.agents * 1e6:.0f} us each, signature and card checks included)")
    for label, payload in (("capability, 20 per page", {"capability": "cap-7"}),
                           ("name prefix nobody has (bounded scan)", {"name_prefix": "zzz"}),
                           ("100 DIDs", {"dids": dids, "limit": 100})):
        seconds = request(hub, seeker, seeker_key, "DISCOVER", payload)
        print(f"DISCOVER {label}: {seconds * 1e6:.0f} us median; answer {len(sink.last)} bytes")

    target = DIDKey.generate()
    watchers = []
    for _ in range(args.watchers):
        key = DIDKey.generate()
        peer, _ = join(hub, key)
        hub.receive(peer, messages.build(key, "WATCH", hub.did, {"dids": [target.did]},
                                         now=time.time())[0])
        watchers.append(peer)
    before = hub.directory.events_sent
    started = time.perf_counter()
    joined, _ = join(hub, target)
    join_seconds = time.perf_counter() - started
    started = time.perf_counter()
    hub.closed(joined, 1000, "bye")
    leave_seconds = time.perf_counter() - started
    events = hub.directory.events_sent - before
    # the leave falls in the join's coalescing window: held, sent when the window ends
    print(f"fan-out to {args.watchers} watchers: join {join_seconds * 1e3:.1f} ms "
          f"({events} PRESENCE sent, {join_seconds / max(events, 1) * 1e6:.0f} us each); "
          f"a leave within the coalescing window: {leave_seconds * 1e6:.0f} us (held)")
    started = time.perf_counter()
    hub.directory.coalescer._quiet_until[target.did] = 0.0  # the window ends now
    hub.directory._due(target.did)
    print(f"the held leave, when its window ends: {(time.perf_counter() - started) * 1e3:.1f} ms "
          f"({hub.directory.events_sent - before - events} PRESENCE)")

    loaded = routing(hub)
    empty = routing(make_hub())
    print(f"routing an OFFER: {loaded * 1e6:.1f} us median with {len(hub.registry)} agents, "
          f"{len(hub.directory.index)} listed and {args.watchers} watches; "
          f"{empty * 1e6:.1f} us on a hub with 2 agents")


if __name__ == "__main__":
    main()
