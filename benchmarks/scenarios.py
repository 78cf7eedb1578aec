"""The scenarios of docs/performance.md, each a function that returns one `Result` row.

Every timed window is bracketed by CPU samples of the server process and of this (load
generator) process, so each row shows which side was busy. A row whose run lost, duplicated or
reordered a message, or got an ERROR, is marked invalid wherever it is shown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from time import perf_counter, process_time
from typing import Any

import psutil
from nacl.bindings import crypto_sign_open
from nacl.signing import VerifyKey

from aiconexus_gateway import messages
from aiconexus_gateway.did import public_key_from_did

from . import load
from .load import Link
from .servers import Measured, ServerProcess

DRAIN_TIMEOUT = 10.0
LOADGEN_SATURATED = 90.0  # % of one core: above this the figure is a lower bound
OTHER_LOAD_WARNING = 15.0  # % of one core used by other processes during a window


@dataclass
class Result:
    """One row of the report."""

    scenario: str
    name: str
    system: str
    msgs_per_s: float | None = None
    msgs_per_s_median: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    delivered: int | None = None
    sent: int | None = None
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    errors: int = 0
    failures: int = 0
    server_cpu_pct: float | None = None
    loadgen_cpu_pct: float | None = None
    other_cpu_pct: float | None = None
    server_us_per_msg: float | None = None  # server CPU time per delivered message (or agent)
    server_rss_mb: float | None = None
    agents: int | None = None
    seconds: float | None = None
    rss_per_agent_kb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No message lost, duplicated or reordered, no ERROR, every agent connected."""
        return not (self.lost or self.duplicated or self.out_of_order or self.errors or self.failures)

    @property
    def lower_bound(self) -> bool:
        return self.loadgen_cpu_pct is not None and self.loadgen_cpu_pct >= LOADGEN_SATURATED

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["valid"] = self.valid
        data["load_generator_saturated"] = self.lower_bound
        return data


@dataclass
class Options:
    """Sizes and durations of one benchmark run."""

    quick: bool = False
    agents: tuple[int, ...] = (1000, 5000, 10000)
    pairs: int = 100
    window: int = 8
    cycle: int = 64
    payload_bytes: int = 400
    warmup: float = 2.0
    duration: float = 8.0
    rate: int = 2000
    latency_duration: float = 6.0
    idle: int = 5000
    concurrency: int = 128
    verify_seconds: float = 2.0
    pin: bool = True
    modes: tuple[str, ...] = ("all", "handshake")
    gateway_env: dict[str, str] = field(default_factory=dict)  # --env: settings of every gateway
    relay_capacity: bool = True  # also connect max(agents) to the bare relay, for its KB/connection
    churn: int = 1000  # agents per churn round (scenario 8)
    churn_rounds: int = 5
    scenarios: frozenset[str] = frozenset(
        {"verify", "capacity", "churn", "throughput", "latency", "idle", "relay", "cluster",
         "peer"})
    redis_url: str | None = None
    instances: int = 3  # gateway instances of the cluster scenario (7)
    idle_agents: int = 19000  # (9) idle agents in one gateway process
    idle_window: float = 45.0  # (9) seconds measured: two ping intervals and more; (11) hold
    hundredk: int = 100000  # (11) agents on the host
    workers: int = 6  # (11) gateway workers (--workers) sharing them
    peer_channels: int = 100  # (12) channels opened one after the other
    peer_messages: int = 5000  # (12) 1 KiB messages over one channel, direct and relay

    @classmethod
    def quick_sizes(cls) -> Options:
        return cls(quick=True, agents=(300, 1000), pairs=50, warmup=0.3, duration=1.0,
                   latency_duration=1.0, idle=500, verify_seconds=0.3, relay_capacity=False,
                   churn=300, churn_rounds=3,
                   scenarios=cls.scenarios - {"peer"})  # (12) takes about a minute: --only peer


class Meter:
    """CPU of the server, of this process and of everything else over a window (% of one core).

    Other processes on the machine (a test suite, a build) take cores from both sides; their
    share is reported so a reader can tell a slow run from a busy machine.
    """

    def __init__(self, server: Measured | Sequence[Measured]) -> None:
        self.servers: Sequence[Measured] = [server] if isinstance(server, Measured) else server
        self.server_start = sum(s.cpu_sample().cpu for s in self.servers)
        self.own_start = time.process_time()
        self.busy_start = _machine_busy()
        self.wall_start = perf_counter()
        self.server_seconds = 0.0

    def stop(self, result: Result) -> None:
        wall = perf_counter() - self.wall_start
        server = sum(s.cpu_sample().cpu for s in self.servers) - self.server_start
        own = time.process_time() - self.own_start
        others = _machine_busy() - self.busy_start - server - own
        self.server_seconds = server
        result.server_cpu_pct = 100.0 * server / wall
        result.loadgen_cpu_pct = 100.0 * own / wall
        result.other_cpu_pct = max(0.0, 100.0 * others / wall)
        result.server_rss_mb = sum(s.rss() for s in self.servers) / 1e6
        if result.other_cpu_pct > OTHER_LOAD_WARNING:
            result.notes.append(f"other processes used {result.other_cpu_pct:.0f}% of a core "
                                "during this window: the figure is likely low")


def _machine_busy() -> float:
    """CPU seconds all cores spent on anything but idling since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return float("nan")
    rank = math.ceil(q / 100.0 * len(ordered))  # the smallest value with q% at or below it
    return ordered[max(0, min(len(ordered), rank) - 1)]


def _latency(result: Result, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    if ordered:
        result.p50_ms = percentile(ordered, 50) * 1e3
        result.p90_ms = percentile(ordered, 90) * 1e3
        result.p99_ms = percentile(ordered, 99) * 1e3
        result.max_ms = ordered[-1] * 1e3


def _integrity(result: Result, links: Sequence[Link]) -> None:
    result.sent = sum(link.sent for link in links)
    result.lost = sum(max(0, link.sent - link.delivered) for link in links)
    result.duplicated = sum(max(0, link.delivered - link.sent) for link in links)
    result.out_of_order = sum(link.out_of_order for link in links)
    result.errors = sum(link.errors for link in links)
    samples = [link.error_sample for link in links if link.error_sample]
    if samples:
        result.notes.append(f"first unexpected frame: {samples[0][:200]}")


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Keep the load generator's collector out of a timed window (its garbage waits seconds)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _reset(links: Sequence[Link]) -> None:
    for link in links:
        link.sent = link.delivered = link.out_of_order = link.errors = 0
        link.recording = link.refill_enabled = False
        link._expected = 0  # nothing is in flight between runs (checked by _integrity)
        link._credit = 0


# -- (5) the verify ceiling ------------------------------------------------------------------------


def verify_ceiling(frame_text: str, seconds: float) -> Result:
    """PyNaCl Ed25519 verifies per second on one core, for a frame of the benchmark's size."""
    envelope = messages.parse(frame_text)
    data = envelope.signing_input()
    signature = base64.b64decode(envelope.signature)
    public_key = public_key_from_did(envelope.sender)
    key = VerifyKey(public_key)

    def rate(work: Any) -> float:
        """Per second of this process's CPU time (what the gateway's rows are compared in): on
        a shared core, wall time would count other programs' turns as slow verifications."""
        count = 0
        deadline = perf_counter() + seconds
        cpu = process_time()
        while True:
            for _ in range(100):
                work()
            count += 100
            if perf_counter() >= deadline:
                return count / (process_time() - cpu)

    verifies = rate(lambda: key.verify(data, signature))
    opens = rate(lambda: crypto_sign_open(signature + data, public_key))
    full = rate(lambda: messages.parse(frame_text).verify(key))
    result = Result("5", "PyNaCl verify, one core", "pynacl", msgs_per_s=verifies)
    result.extra = {
        "verify_us": 1e6 / verifies,
        "crypto_sign_open_us": 1e6 / opens,
        "parse_and_verify_us": 1e6 / full,
        "signed_bytes": len(data),
    }
    result.notes.append(f"{1e6 / verifies:.1f} us per VerifyKey.verify of {len(data)} bytes; "
                        f"parse + RFC 8785 + verify in the gateway's code: {1e6 / full:.1f} us")
    return result


# -- (1) capacity ------------------------------------------------------------------------------------


async def capacity(server: ServerProcess, agent_keys: Sequence[Any], opts: Options, *,
                   relay: bool = False) -> Result:
    """Connect and register len(agent_keys) agents to a fresh server: time, RSS per agent."""
    n = len(agent_keys)
    await asyncio.sleep(0.2)
    rss_before = server.rss()
    meter = Meter(server)
    joined = await load.join_all(server, agent_keys, concurrency=opts.concurrency, relay=relay)
    result = Result("1" if not relay else "6", f"connect + register {n:,} agents"
                    if not relay else f"connect {n:,} agents", server.name, agents=n,
                    seconds=joined.seconds, failures=len(joined.failures))
    meter.stop(result)
    result.server_us_per_msg = 1e6 * meter.server_seconds / max(1, len(joined.clients))
    await asyncio.sleep(0.5)  # let the server finish logging before its memory is read
    rss_after = server.rss()
    result.server_rss_mb = rss_after / 1e6
    result.rss_per_agent_kb = (rss_after - rss_before) / max(1, len(joined.clients)) / 1024
    result.msgs_per_s = len(joined.clients) / joined.seconds  # agents per second
    result.extra = {"rss_before_mb": rss_before / 1e6, "agents_per_s": result.msgs_per_s}
    if joined.failures:
        result.notes.append(f"{len(joined.failures)} failed, e.g. {joined.failures[0][:160]}")
    load.close_all(joined.clients)
    return result


# -- (8) churn: does memory come back? ------------------------------------------------------------------


async def churn(server: ServerProcess, agent_keys: Sequence[Any], opts: Options) -> Result:
    """Connect and register the agents, drop them all, `opts.churn_rounds` times over, on a fresh
    gateway: the connection rate and server CPU per connection (the speed the GC tuning buys),
    and the RSS left above the baseline once every connection is gone (what it must not cost)."""
    n, rounds = len(agent_keys), opts.churn_rounds
    first = await load.join_all(server, agent_keys, concurrency=opts.concurrency)
    load.close_all(first.clients)  # a first round grows the heap to its working size
    await _wait_released(server)
    baseline = server.rss()
    meter = Meter(server)
    joined = failures = 0
    started = perf_counter()
    for _ in range(rounds):
        round_ = await load.join_all(server, agent_keys, concurrency=opts.concurrency)
        joined += len(round_.clients)
        failures += len(round_.failures)
        load.close_all(round_.clients)
        await _wait_released(server)
    seconds = perf_counter() - started
    result = Result("8", f"churn: {rounds} x {n:,} agents join and leave", server.name,
                    agents=joined, seconds=seconds, failures=failures)
    meter.stop(result)
    await asyncio.sleep(0.5)
    retained = server.rss() - baseline
    result.server_us_per_msg = 1e6 * meter.server_seconds / max(1, joined)
    result.msgs_per_s = joined / seconds  # connections per second
    result.rss_per_agent_kb = retained / max(1, joined) / 1024
    result.extra = {"baseline_rss_mb": baseline / 1e6, "retained_mb": retained / 1e6}
    result.notes.append(f"RSS {retained / 1e6:+.1f} MB over the baseline of {baseline / 1e6:.0f} MB "
                        f"after {joined:,} connections came and went")
    return result


async def _wait_released(server: ServerProcess, timeout: float = 30.0) -> None:
    """Until the gateway holds no agent (its /health says 0), so its memory is read at rest."""
    deadline = perf_counter() + timeout
    while perf_counter() < deadline:
        if await load.connected_agents(server) == 0:
            return
        await asyncio.sleep(0.05)


# -- (2)(4)(6) throughput: closed loop with a bounded window ------------------------------------------


async def closed_loop(server: ServerProcess | Sequence[Measured], links: Sequence[Link],
                      latencies: list[float], opts: Options, scenario: str, name: str,
                      system: str | None = None) -> Result:
    """Each pair keeps `window` messages in flight; delivered msgs/s over the timed window."""
    with quiet_gc():
        return await _closed_loop(server, links, latencies, opts, scenario, name, system)


async def _closed_loop(server: ServerProcess | Sequence[Measured], links: Sequence[Link],
                       latencies: list[float], opts: Options, scenario: str, name: str,
                       system: str | None) -> Result:
    _reset(links)
    latencies.clear()
    for link in links:
        link.start()
    await asyncio.sleep(opts.warmup)
    for link in links:
        link.recording = True
    meter = Meter(server)
    started = perf_counter()
    first = sum(link.delivered for link in links)
    per_pair = [link.delivered for link in links]
    interval = min(1.0, opts.duration)
    rates: list[float] = []
    last_count, last_time = first, started
    while last_time - started < opts.duration - 1e-3:
        await asyncio.sleep(max(0.0, last_time + interval - perf_counter()))
        now = perf_counter()
        count = sum(link.delivered for link in links)
        rates.append((count - last_count) / (now - last_time))
        last_count, last_time = count, now
    elapsed = last_time - started
    if system is None:
        assert isinstance(server, ServerProcess)
        system = server.name
    result = Result(scenario, name, system, delivered=last_count - first)
    meter.stop(result)
    per_pair = sorted(link.delivered - before for link, before in zip(links, per_pair, strict=True))
    for link in links:
        link.recording = False
    result.msgs_per_s = (last_count - first) / elapsed
    result.server_us_per_msg = 1e6 * meter.server_seconds / max(1, last_count - first)
    result.msgs_per_s_median = statistics.median(rates) if rates else None
    result.seconds = elapsed
    _latency(result, latencies)
    await load.drain(links, DRAIN_TIMEOUT)
    _integrity(result, links)
    result.extra = {"pairs": len(links), "window": opts.window,
                    "interval_rates": [round(r) for r in rates],
                    # fairness: messages each pair got through in the window (min, median, max)
                    "per_pair_delivered": [per_pair[0], per_pair[len(per_pair) // 2], per_pair[-1]]}
    return result


# -- (3) latency at a fixed rate ----------------------------------------------------------------------


async def fixed_rate(server: ServerProcess, links: Sequence[Link], latencies: list[float],
                     opts: Options, scenario: str, name: str) -> Result:
    """Open loop: `rate` msgs/s spread over the pairs; latency sender -> recipient."""
    with quiet_gc():
        return await _fixed_rate(server, links, latencies, opts, scenario, name)


async def _fixed_rate(server: ServerProcess, links: Sequence[Link], latencies: list[float],
                      opts: Options, scenario: str, name: str) -> Result:
    _reset(links)
    latencies.clear()
    count = len(links)
    started = perf_counter()
    measure_from = started + opts.warmup
    end = measure_from + opts.latency_duration
    sent = 0
    meter: Meter | None = None
    first = 0
    while True:
        now = perf_counter()
        if now >= end:
            break
        if meter is None and now >= measure_from:
            for link in links:
                link.recording = True
            meter = Meter(server)
            first = sum(link.delivered for link in links)
        due = int((now - started) * opts.rate)
        while sent < due:
            links[sent % count].send(1)
            sent += 1
        await asyncio.sleep(0.0005)
    result = Result(scenario, name, server.name)
    assert meter is not None
    meter.stop(result)
    window = perf_counter() - meter.wall_start
    for link in links:
        link.recording = False
    await load.drain(links, DRAIN_TIMEOUT)
    result.delivered = sum(link.delivered for link in links) - first
    result.msgs_per_s = result.delivered / window
    result.server_us_per_msg = 1e6 * meter.server_seconds / max(1, result.delivered)
    result.seconds = window
    _latency(result, latencies)
    _integrity(result, links)
    result.extra = {"pairs": count, "target_rate": opts.rate}
    return result


# -- helpers for the scenario plan ---------------------------------------------------------------------


async def connect_pairs(server: ServerProcess, senders: Sequence[Any], recipients: Sequence[Any],
                        frames: Sequence[load.Frames], opts: Options, *, relay: bool = False
                        ) -> tuple[list[Link], list[float], list[Any]]:
    joined = await load.join_all(server, [*senders, *recipients], concurrency=opts.concurrency,
                                 relay=relay)
    if joined.failures:
        load.close_all(joined.clients)
        raise RuntimeError(f"{server.name}: {len(joined.failures)} pair agents could not connect: "
                           f"{joined.failures[0]}")
    half = len(senders)
    links, latencies = load.link_pairs(joined.clients[:half], joined.clients[half:], frames,
                                       opts.window)
    return links, latencies, joined.clients
