"""Run the benchmark: `python -m benchmarks [--quick] [--json PATH]` (also `make bench`).

Scenarios (docs/performance.md): (1) capacity, (2) throughput with pairs, (3) latency at a fixed
rate, (4) throughput with idle agents connected, (5) the PyNaCl verify ceiling, (6) a bare
Tornado relay driven the same way, (7) cross-instance when REDIS_URL cluster mode is available,
(8) connection churn: the connection rate and the memory left once the connections are gone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import sys
import time
from collections.abc import AsyncIterator, Sequence

from . import cluster, load, peer, report, scale, scenarios, servers
from .scenarios import Options, Result

ALL_SCENARIOS = ("verify", "capacity", "churn", "throughput", "latency", "idle", "relay", "cluster",
                 "peer",  # (12) peer channels: not in --quick (about a minute)
                 "idlecost", "gil", "hundredk")  # the last three only with --only (scale.py)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str] | None) -> tuple[Options, str | None]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, under 30 s")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--only", metavar="LIST",
                        help=f"comma-separated subset of: {', '.join(ALL_SCENARIOS)}")
    parser.add_argument("--agents", type=_sizes, metavar="N,N,...", help="capacity sizes")
    parser.add_argument("--pairs", type=int, help="sender/recipient pairs for throughput")
    parser.add_argument("--window", type=int, help="messages in flight per pair")
    parser.add_argument("--duration", type=float, help="seconds in each throughput window")
    parser.add_argument("--warmup", type=float, help="seconds of load before each window")
    parser.add_argument("--rate", type=int, help="msgs/s of the latency scenario")
    parser.add_argument("--latency-duration", type=float, help="seconds of the latency window")
    parser.add_argument("--idle", type=int, help="idle agents connected in scenario (4)")
    parser.add_argument("--churn", type=int, help="agents per round of scenario (8)")
    parser.add_argument("--churn-rounds", type=int, help="rounds of scenario (8)")
    parser.add_argument("--payload-bytes", type=int, help="JSON size of each message's payload")
    parser.add_argument("--concurrency", type=int, help="handshakes in progress at once")
    parser.add_argument("--verify-seconds", type=float, help="seconds of the verify ceiling")
    parser.add_argument("--modes", type=lambda t: tuple(m.strip() for m in t.split(",") if m.strip()),
                        metavar="all,handshake", help="VERIFY_SIGNATURES modes for (2) and (4)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="gateway setting for every gateway process (repeatable), e.g. "
                             "LOG_LEVEL=WARNING")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the server and the load generator to separate cores")
    parser.add_argument("--idle-agents", type=int,
                        help="idle agents of scenario (9) idlecost (19000)")
    parser.add_argument("--idle-window", type=float,
                        help="seconds scenario (9) measures them (45); (11) holds its agents")
    parser.add_argument("--hundredk", type=int, help="agents of scenario (11) (100000)")
    parser.add_argument("--workers", type=int, help="gateway workers of scenario (11) (6)")
    parser.add_argument("--instances", type=int,
                        help="gateway instances of the cluster scenario (7), 3 by default")
    parser.add_argument("--peer-channels", type=int,
                        help="channels opened one after the other in scenario (12) peer (100)")
    parser.add_argument("--peer-messages", type=int,
                        help="1 KiB messages per channel in scenario (12) peer (5000)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"),
                        help="Redis for the cross-instance scenario [env BENCH_REDIS_URL]")
    args = parser.parse_args(argv)
    opts = Options.quick_sizes() if args.quick else Options()
    changes = {name: getattr(args, name) for name in (
        "agents", "pairs", "window", "duration", "warmup", "rate", "latency_duration", "idle",
        "churn", "churn_rounds", "payload_bytes", "concurrency", "verify_seconds", "redis_url",
        "modes", "instances", "idle_agents", "idle_window", "hundredk", "workers",
        "peer_channels", "peer_messages")
        if getattr(args, name)}
    if args.only:
        chosen = frozenset(part.strip() for part in args.only.split(",") if part.strip())
        unknown = chosen - set(ALL_SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
        changes["scenarios"] = chosen
    if args.no_pin:
        changes["pin"] = False
    if args.env:
        pairs = [item.partition("=") for item in args.env]
        if any(not sep or not name for name, sep, _ in pairs):
            parser.error("--env takes NAME=VALUE")
        changes["gateway_env"] = {name: value for name, _, value in pairs}
    opts = Options(**{**opts.__dict__, **changes})
    opts.cycle = max(opts.cycle, 4 * opts.window)
    return opts, args.json


def _raise_fd_limit() -> None:
    """10,000 agents need 10,000 descriptors here and in the gateway (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _cores(opts: Options) -> tuple[int | None, int | None]:
    """(server core, load generator core) when pinning is possible."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None, None
    if not opts.pin or len(available) < 2:
        return None, None
    return available[0], available[1]


async def run(opts: Options) -> tuple[list[Result], list[str]]:
    """Every chosen scenario, in an order that keeps one server process per configuration."""
    server_core, own_core = _cores(opts)
    if own_core is not None:
        os.sched_setaffinity(0, {own_core})
    results: list[Result] = []
    pending: list[str] = []
    want = opts.scenarios

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    say("preparing keys and pre-signed frames")
    senders = load.keys("sender", opts.pairs)
    recipients = load.keys("recipient", opts.pairs)
    payload = load.sdp_payload(opts.payload_bytes)
    frames = [load.presign(s, r, i, opts.cycle, payload)
              for i, (s, r) in enumerate(zip(senders, recipients, strict=True))]
    biggest = max(opts.agents) if "capacity" in want and opts.agents else 0
    agent_keys = load.keys("agent", biggest)
    idle_keys = load.keys("idle", opts.idle) if "idle" in want else []
    gc.collect()
    gc.freeze()  # keys and frames live for the whole run: no collection needs to look at them

    if "verify" in want:
        say("(5) verify ceiling")
        results.append(scenarios.verify_ceiling(frames[0].plain[0].decode(), opts.verify_seconds))

    if "capacity" in want:
        for n in opts.agents:
            say(f"(1) capacity: {n:,} agents")
            async with _server(servers.gateway("all", server_core, opts.gateway_env)) as gw:
                results.append(await scenarios.capacity(gw, agent_keys[:n], opts))
        if "relay" in want and biggest and opts.relay_capacity:
            say(f"(6) bare relay: {biggest:,} connections")
            async with _server(servers.relay(server_core)) as relay:
                results.append(await scenarios.capacity(relay, agent_keys, opts, relay=True))

    if "churn" in want:
        say(f"(8) churn: {opts.churn_rounds} x {opts.churn:,} agents join and leave")
        async with _server(servers.gateway("all", server_core, opts.gateway_env)) as gw:
            results.append(await scenarios.churn(gw, load.keys("churn", opts.churn), opts))

    traffic = want & {"throughput", "latency", "idle"}
    for mode in opts.modes:
        if not traffic:
            continue
        async with _server(servers.gateway(mode, server_core, opts.gateway_env)) as gw:
            links, _, clients = await scenarios.connect_pairs(gw, senders, recipients, frames, opts)
            latencies = links[0].latencies
            try:
                if want & {"throughput", "idle"}:
                    say(f"(2) throughput, VERIFY_SIGNATURES={mode}")
                    results.append(await scenarios.closed_loop(
                        gw, links, latencies, opts, "2", f"{opts.pairs} pairs, window {opts.window}"))
                if "latency" in want:
                    say(f"(3) latency at {opts.rate:,} msgs/s, VERIFY_SIGNATURES={mode}")
                    results.append(await scenarios.fixed_rate(
                        gw, links, latencies, opts, "3", f"fixed {opts.rate:,} msgs/s"))
                if "idle" in want and idle_keys:
                    say(f"(4) throughput with {opts.idle:,} idle agents, VERIFY_SIGNATURES={mode}")
                    idle = await load.join_all(gw, idle_keys, concurrency=opts.concurrency)
                    row = await scenarios.closed_loop(
                        gw, links, latencies, opts, "4",
                        f"{opts.pairs} pairs + {len(idle.clients):,} idle")
                    row.failures += len(idle.failures)
                    stray = sum(getattr(c.on_frame, "frames", 0) for c in idle.clients)
                    if stray:
                        row.errors += stray
                        row.notes.append(f"idle agents received {stray} unexpected frames")
                    results.append(row)
                    load.close_all(idle.clients)
            finally:
                load.close_all(clients)

    if "relay" in want:
        say("(6) bare Tornado relay throughput")
        async with _server(servers.relay(server_core)) as relay:
            links, latencies, clients = await scenarios.connect_pairs(
                relay, senders, recipients, frames, opts, relay=True)
            try:
                results.append(await scenarios.closed_loop(
                    relay, links, latencies, opts, "6", f"{opts.pairs} pairs, window {opts.window}"))
                if "latency" in want:
                    say(f"(6) bare Tornado relay at {opts.rate:,} msgs/s")
                    results.append(await scenarios.fixed_rate(
                        relay, links, latencies, opts, "6", f"fixed {opts.rate:,} msgs/s"))
            finally:
                load.close_all(clients)

    if "gil" in want:
        say("(10) PyNaCl verify and the GIL: threads against processes")
        results.append(scale.run_gil(opts))

    if "idlecost" in want:
        say(f"(9) {opts.idle_agents:,} idle agents for {opts.idle_window:g} s, then the HTTP views")
        async with _server(servers.gateway("all", server_core, {
                "MAX_CONNECTIONS": str(opts.idle_agents + 100), **opts.gateway_env})) as gw:
            results += await scale.idle_cost(gw, load.keys("idle", opts.idle_agents), opts)

    if "hundredk" in want:
        results.append(await scale.hundredk(opts, say))

    if "peer" in want:
        results += await peer.run(opts, server_core, say)

    if "cluster" in want:
        rows, line = await cluster.run(opts, senders, recipients, frames, say)
        results += rows
        pending.append(line)
    return results, pending


@contextlib.asynccontextmanager
async def _server(process: servers.ServerProcess) -> AsyncIterator[servers.ServerProcess]:
    await process.start()
    try:
        yield process
    finally:
        code = await process.stop()
        if code not in (0, None):
            print(f"warning: {process.name} exited with {code}; log {process.log_path}:\n"
                  f"{process.log_tail()}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    opts, json_path = parse_args(argv)
    _raise_fd_limit()
    info = report.machine()
    started = time.monotonic()
    results, pending = asyncio.run(run(opts))
    info["seconds"] = round(time.monotonic() - started, 1)
    goals = report.targets(results, opts)
    print(report.render(info, results, goals, opts, pending))
    if json_path:
        report.write_json(json_path, info, results, goals, opts, pending)
        print(f"\nJSON: {json_path}")
    return 0 if all(r.valid for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
