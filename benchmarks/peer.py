"""(12) Peer channels (issue 12): the time to open a channel, and a channel's throughput `direct`
(a WebRTC data channel, aiortc, on loopback) beside `relay` (the fallback through the gateway).

Two SDK agents (GatewayClient, the `webrtc` extra) on one gateway process. Opening: `channels`
channels one after the other, each timed from connect_peer to the open channel (OFFER, ANSWER,
trickled candidates, ICE, DTLS, SCTP, the identity proof), then closed. Throughput: `messages`
1 KiB binary messages on one open channel, timed from the first send to the last one read, each
checked for its number (lost, out of order). The relay row runs once with the bench gateway's
raised RATE_LIMIT (its own ceiling: every message a signed, end-to-end encrypted frame through
the gateway) and once at the default RATE_LIMIT 100 with RATE_BURST 10 (so that the steady
pace shows, not the burst), where the SDK paces the relay at 90 %.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from time import perf_counter
from typing import Any

from aiconexus_gateway.client import GatewayClient
from aiconexus_gateway.client.peer.channel import PeerChannel
from aiconexus_gateway.keys import DIDKey

from . import servers
from .scenarios import Meter, Options, Result, percentile

MESSAGE_BYTES = 1024
PACED = {"RATE_LIMIT": "100", "RATE_BURST": "10"}  # the default rate; a small burst


async def run(opts: Options, server_core: int | None, say: Callable[[str], None]) -> list[Result]:
    results: list[Result] = []
    gateway = servers.gateway("all", server_core, opts.gateway_env, name="gateway-peer")
    await gateway.start()
    try:
        say(f"(12) peer channels: open {opts.peer_channels} channels one after the other")
        results.append(await open_time(gateway, opts.peer_channels))
        for transport in ("direct", "relay"):
            say(f"(12) peer channels: {opts.peer_messages} x 1 KiB over {transport}")
            results.append(await throughput(gateway, transport, opts.peer_messages))
    finally:
        await gateway.stop()
    paced = servers.gateway("all", server_core, {**opts.gateway_env, **PACED},
                            name="gateway-peer-ratelimit")
    await paced.start()
    try:
        count = max(50, opts.peer_messages // 10)
        say(f"(12) peer channels: {count} x 1 KiB over relay at RATE_LIMIT 100")
        results.append(await throughput(paced, "relay", count,
                                        note="RATE_LIMIT 100, RATE_BURST 10"))
    finally:
        await paced.stop()
    return results


async def _agents(gateway: servers.ServerProcess) -> tuple[GatewayClient, GatewayClient]:
    alice = GatewayClient(gateway.url, DIDKey.generate(), expected_gateway_did=gateway.did)
    bob = GatewayClient(gateway.url, DIDKey.generate(), expected_gateway_did=gateway.did)
    await alice.connect()
    await bob.connect()
    return alice, bob


async def open_time(gateway: servers.ServerProcess, channels: int) -> Result:
    alice, bob = await _agents(gateway)
    accepted: list[PeerChannel] = []
    bob.on_peer(accepted.append)
    result = Result("12", f"open a channel ({channels}, loopback)", "peer-direct", sent=channels)
    seconds: list[float] = []
    meter = Meter(gateway)
    try:
        for n in range(channels):
            started = perf_counter()
            try:
                channel = await alice.connect_peer(bob.did, f"open-{n}", timeout=20, ice_servers=[])
            except Exception as exc:  # counted, and the run goes on
                result.failures += 1
                result.notes.append(f"channel {n}: {type(exc).__name__}: {exc}"[:200])
                continue
            seconds.append(perf_counter() - started)
            await channel.close()
    finally:
        meter.stop(result)
        await alice.close()
        await bob.close()
    ordered = sorted(seconds)
    result.delivered = len(ordered)
    result.lost = channels - len(ordered) - result.failures
    if ordered:
        result.msgs_per_s = len(ordered) / sum(ordered)  # channels opened per second
        result.p50_ms = percentile(ordered, 50) * 1000
        result.p90_ms = percentile(ordered, 90) * 1000
        result.p99_ms = percentile(ordered, 99) * 1000
        result.max_ms = ordered[-1] * 1000
    result.extra["unit"] = "channels/s; percentiles: connect_peer -> open, ms"
    return result


async def throughput(gateway: servers.ServerProcess, transport: str, messages: int,
                     note: str = "") -> Result:
    alice, bob = await _agents(gateway)
    incoming = bob.peers()
    options: dict[str, Any] = {"ice_servers": []}
    if transport == "relay":  # no candidates of its own: ICE fails at once, the relay takes over
        options.update(fallback=True, relay_only=True)
    name = f"channel throughput, 1 KiB{', ' + note if note else ''}"
    result = Result("12", name, f"peer-{transport}", sent=messages, delivered=0)
    try:
        ours = await alice.connect_peer(bob.did, "throughput", timeout=20, **options)
        theirs = await asyncio.wait_for(incoming.__anext__(), 20)
        if ours.transport != transport:
            result.errors += 1
            result.notes.append(f"the channel opened over {ours.transport}, not {transport}")
        filler = bytes(MESSAGE_BYTES - 4)

        async def send_all() -> None:
            for n in range(messages):
                await ours.send(n.to_bytes(4, "big") + filler)

        async def receive_all() -> None:
            expected = 0
            for _ in range(messages):
                data = await theirs.receive(timeout=30)
                number = int.from_bytes(data[:4], "big") if isinstance(data, bytes) else -1
                if number != expected:
                    result.out_of_order += 1
                expected = number + 1
                result.delivered = (result.delivered or 0) + 1

        meter = Meter(gateway)
        started = perf_counter()
        sending = asyncio.ensure_future(send_all())
        try:
            await receive_all()
        except (asyncio.TimeoutError, ConnectionError) as exc:
            result.notes.append(f"stopped: {type(exc).__name__}: {exc}"[:200])
        elapsed = perf_counter() - started
        meter.stop(result)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sending
        result.lost = messages - (result.delivered or 0)
        result.seconds = elapsed
        result.msgs_per_s = (result.delivered or 0) / elapsed
        result.extra["mb_per_s"] = round((result.delivered or 0) * MESSAGE_BYTES / elapsed / 1e6, 2)
        if meter.server_seconds and result.delivered:
            result.server_us_per_msg = meter.server_seconds / result.delivered * 1e6
        await ours.close()
    except Exception as exc:  # the row says why rather than ending the whole benchmark
        result.failures += 1
        result.notes.append(f"{type(exc).__name__}: {exc}"[:200])
    finally:
        await alice.close()
        await bob.close()
    return result
