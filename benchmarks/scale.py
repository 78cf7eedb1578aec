"""Scale scenarios of issue 17 (docs/performance.md "Sizing"), run by `--only` name:

- `idlecost` (9): N idle registered agents (19,000 by default: one process here holds at most
  ~19,600, its descriptor hard limit being 20,000) on a gateway with its default timers (pings
  every PING_INTERVAL, idle timeout, no traffic): after two ping intervals of settling (every
  agent in its steady ping cycle), the gateway's CPU over a window of at least two ping
  intervals, scaled to 20,000 agents; then the latency of /health, /agents?limit=100 (a new
  offset each time, so the page cache never answers) and /metrics with all of them connected.
- `gil` (10): does PyNaCl's Ed25519 verification release the GIL? Verifies per second in 1 and
  2 threads of this process against 1 and 2 processes: when threads scale like processes, the
  GIL is released and a verification thread pool could use more cores.
- `hundredk` (11): 100,000 registered agents on this host: a `--workers N` gateway and several
  load-generator processes (each under the per-process descriptor cap) through one Redis; RSS of
  every process, registrations per gateway CPU second, /health's count. Heavy: run it alone,
  `python -m benchmarks --only hundredk [--hundredk 100000] [--workers 6]`.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from queue import Empty
from time import perf_counter
from typing import Any

import psutil
from nacl.signing import VerifyKey
from tornado.httpclient import AsyncHTTPClient

from aiconexus_gateway.keys import DIDKey

from . import load, servers
from .scenarios import Meter, Options, Result, _machine_busy, percentile
from .servers import ServerProcess

PING_INTERVAL = 20.0  # the gateway's default (config.py), which scenario (9) keeps unless --env
PER_PROCESS = 19_000  # agents per gateway worker or load generator: under the 20,000 descriptors


# -- (9) what idle agents cost, and the HTTP views at full load ---------------------------------------


def _timed_gets(port: int, n: int) -> dict[str, list[float]]:
    """Milliseconds of each request (a new connection each, as curl or a probe makes), from a
    process of its own: the benchmark process holds the idle agents' connections, and its own
    event loop's turns would count as the gateway's latency."""
    import http.client

    def timed(path: str) -> float:
        started = perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        elapsed = (perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
        return elapsed

    return {
        "health": sorted(timed("/health") for _ in range(200)),
        "agents": sorted(timed(f"/agents?limit=100&offset={(i * 100) % max(1, n - 100)}")
                         for i in range(100)),  # a new offset each time: no cached page
        "metrics": sorted(timed("/metrics") for _ in range(50)),
    }


async def idle_cost(server: ServerProcess, agent_keys: Sequence[DIDKey], opts: Options
                    ) -> list[Result]:
    joined = await load.join_all(server, agent_keys, concurrency=opts.concurrency)
    n = len(joined.clients)
    # The gateway's pinger first pings a connection one to two intervals after it opens: the
    # window starts once every agent is in its steady ping cycle.
    await asyncio.sleep(2 * float(opts.gateway_env.get("PING_INTERVAL", PING_INTERVAL)))
    meter = Meter(server)
    await asyncio.sleep(opts.idle_window)
    row = Result("9", f"{n:,} idle agents, default PING_INTERVAL and AGENT_TIMEOUT", server.name,
                 agents=n, seconds=opts.idle_window, failures=len(joined.failures))
    meter.stop(row)
    assert row.server_cpu_pct is not None
    row.extra = {"cpu_pct_per_20000": round(row.server_cpu_pct * 20000 / max(1, n), 2),
                 "window_s": opts.idle_window}
    row.notes.append(f"{row.extra['cpu_pct_per_20000']:.2f}% of a core per 20,000 idle agents "
                     f"(window {opts.idle_window:g} s)")
    views = Result("9", f"/health, /agents?limit=100, /metrics with {n:,} agents", server.name,
                   agents=n)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as apart:
        times = await asyncio.get_running_loop().run_in_executor(apart, _timed_gets,
                                                                 server.port, n)
    views.extra = {name: {"p50_ms": round(percentile(t, 50), 2),
                          "p99_ms": round(percentile(t, 99), 2), "max_ms": round(t[-1], 2)}
                   for name, t in times.items()}
    views.notes.append("p50 / p99 / max ms: " + ", ".join(
        f"{name} {v['p50_ms']:.1f} / {v['p99_ms']:.1f} / {v['max_ms']:.1f}"
        for name, v in views.extra.items()))
    stray = sum(getattr(c.on_frame, "frames", 0) for c in joined.clients)
    if stray:
        row.errors += stray
        row.notes.append(f"idle agents received {stray} unexpected frames")
    load.close_all(joined.clients)
    return [row, views]


# -- (10) PyNaCl and the GIL ----------------------------------------------------------------------------


def _verify_loop(seconds: float, out: Any = None) -> int:
    key = DIDKey.generate()
    data = os.urandom(600)
    signature = key.sign(data)
    verify = VerifyKey(key.public_key).verify
    count = 0
    deadline = perf_counter() + seconds
    while perf_counter() < deadline:
        for _ in range(50):
            verify(data, signature)
        count += 50
    if out is not None:
        out.put(count)
    return count


def gil(seconds: float) -> Result:
    """Verifies per second: 1 thread, 2 threads, 2 processes (each for `seconds`), on every core
    (the benchmark pins itself to one core for the other scenarios; restored after)."""
    pinned = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if pinned is not None:
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        return _gil(seconds)
    finally:
        if pinned is not None:
            os.sched_setaffinity(0, pinned)


def _gil(seconds: float) -> Result:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    one = _verify_loop(seconds) / seconds
    counts: list[int] = []
    threads = [threading.Thread(target=lambda: counts.append(_verify_loop(seconds)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    two_threads = sum(counts) / seconds
    queue: Any = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_verify_loop, args=(seconds, queue))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    two_procs = sum(queue.get() for _ in procs) / seconds
    for proc in procs:
        proc.join()
    with ThreadPoolExecutor(1) as runner:  # its own event loop: gil() runs inside the benchmark's
        pooled, pool_cpu = runner.submit(asyncio.run, _pooled(seconds)).result()
    row = Result("10", "Ed25519 verify: 1 thread, 2 threads, 2 processes", "pynacl",
                 msgs_per_s=one)
    row.extra = {"one_thread": round(one), "two_threads": round(two_threads),
                 "two_processes": round(two_procs), "cores": cores,
                 "threads_speedup": round(two_threads / one, 2),
                 "processes_speedup": round(two_procs / one, 2),
                 "event_loop_with_2_thread_pool": round(pooled),
                 "pool_speedup": round(pooled / one, 2),
                 "pool_cpu_us_per_verify": round(pool_cpu, 1),
                 "inline_cpu_us_per_verify": round(1e6 / one, 1)}
    row.notes.append(f"2 threads {two_threads / one:.2f}x, 2 processes {two_procs / one:.2f}x one "
                     f"thread ({cores} cores; other load on the machine lowers both alike)")
    row.notes.append(f"an event loop handing batches of {POOL_BATCH} to 2 threads: "
                     f"{pooled / one:.2f}x one thread, {pool_cpu:.1f} us CPU per verify "
                     f"(inline {1e6 / one:.1f})")
    return row


POOL_BATCH = 64


async def _pooled(seconds: float) -> tuple[float, float]:
    """Verifies per second of an event loop keeping two batches in a 2-thread pool; CPU us per
    verify of the whole process."""
    key = DIDKey.generate()
    data = os.urandom(600)
    signature = key.sign(data)
    verify = VerifyKey(key.public_key).verify
    loop = asyncio.get_running_loop()

    def batch() -> None:
        for _ in range(POOL_BATCH):
            verify(data, signature)

    count = 0
    with ThreadPoolExecutor(2) as pool:
        cpu = time.process_time()
        started = perf_counter()
        while perf_counter() - started < seconds:
            await asyncio.gather(loop.run_in_executor(pool, batch),
                                 loop.run_in_executor(pool, batch))
            count += 2 * POOL_BATCH
        elapsed = perf_counter() - started
        cpu = time.process_time() - cpu
    return count / elapsed, 1e6 * cpu / count


# -- (11) 100,000 agents on one host ------------------------------------------------------------------


def _generator(url_port: int, role: str, index: int, start: int, count: int, concurrency: int,
               out: Any, check: Any) -> None:
    """One load-generator process: register `count` agents and report; when `check` is set,
    report how many of its connections are still open (none closed by the gateway: no agent was
    replaced or reaped), then hold them until terminated."""
    async def main() -> None:
        server = ServerProcess("host", [], {}, None)
        server.port = url_port
        server.local_host = f"127.0.0.{2 + index}"  # a source address each: ephemeral ports
        keys = load.keys(role, count, start)
        joined = await load.join_all(server, keys, concurrency=concurrency)
        me = psutil.Process()
        out.put({"index": index, "joined": len(joined.clients), "failures": len(joined.failures),
                 "seconds": joined.seconds, "rss": me.memory_info().rss,
                 "cpu": sum(me.cpu_times()[:2]), "first_failure": joined.failures[:1]})
        await asyncio.to_thread(check.wait)
        out.put({"index": index, "open": sum(not c.closed.done() for c in joined.clients)})
        await asyncio.sleep(3600)
    asyncio.run(main())


async def _redis_info(url: str) -> tuple[float, dict[str, tuple[int, int]]]:
    """Redis's own CPU seconds (user + sys) and its command stats: name -> (calls, usec)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        cpu = await client.info("cpu")
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    commands = {name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
                for name, v in stats.items()}
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), commands


async def _redis_counts(url: str, prefix: str) -> dict[str, int]:
    """What the cluster's presence keys hold (every agent once in each)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=False)
        for kind in ("route", "session", "agents"):
            pipe.hlen(f"{prefix}:{kind}")
        pipe.zcard(f"{prefix}:order")
        route, session, agents, order = await pipe.execute()
    finally:
        await client.aclose()
    return {"route": route, "session": session, "agents": agents, "order": order}


async def hundredk(opts: Options, say: Callable[[str], None]) -> Result:
    total, workers = opts.hundredk, opts.workers
    generators = -(-total // PER_PROCESS)
    redis_server = shutil.which("redis-server")
    if redis_server is None and not opts.redis_url:
        raise RuntimeError("scenario (11) needs redis-server or --redis-url")
    from .cluster import RedisProcess

    with tempfile.TemporaryDirectory(prefix="bench-100k-") as tmp:
        redis = None
        redis_url = opts.redis_url
        if not redis_url:
            assert redis_server is not None
            redis = await RedisProcess(Path(tmp)).start(redis_server)
            redis_url = redis.url
        prefix = f"bench{os.getpid()}"  # a Redis given by --redis-url may hold other clusters
        # AGENT_TIMEOUT: the load generators' agents send nothing once registered, and
        # registering 100,000 here takes longer than the default 300 s
        host = servers.gateway("all", None, {"AGENT_TIMEOUT": "3600", "LOG_LEVEL": "WARNING",
                                             **opts.gateway_env, "REDIS_URL": redis_url,
                                             "REDIS_PREFIX": prefix,
                                             "GATEWAY_WORKERS": str(workers)}, name="workers")
        await host.start()
        procs: list[Any] = []
        try:
            supervisor = psutil.Process(host.proc.pid if host.proc else 0)
            await _wait_workers(supervisor, workers)
            gateways = supervisor.children()
            pids = {p.pid for p in gateways}
            cpu_before = sum(sum(p.cpu_times()[:2]) for p in gateways)
            redis_cpu_before, commands_before = await _redis_info(redis_url)
            busy_before, own_before = _machine_busy(), time.process_time()
            say(f"(11) {total:,} agents: {workers} gateway workers, {generators} load generators "
                f"({max(16, opts.concurrency // generators)} handshakes in flight each)")
            context = multiprocessing.get_context("spawn")
            queue, check = context.Queue(), context.Event()
            share = -(-total // generators)
            procs = [context.Process(target=_generator, args=(
                host.port, "hk", i, i * share, min(share, total - i * share),
                max(16, opts.concurrency // generators), queue, check))
                for i in range(generators)]
            started = perf_counter()
            for proc in procs:
                proc.start()
            reports = [await _report(queue, procs) for _ in procs]
            seconds = perf_counter() - started
            live = [p for p in supervisor.children() if p.pid in pids]  # none restarted
            cpu = sum(sum(p.cpu_times()[:2]) for p in live) - cpu_before
            redis_cpu, commands = await _redis_info(redis_url)
            redis_cpu -= redis_cpu_before
            generator_cpu = sum(r["cpu"] for r in reports)
            others = (_machine_busy() - busy_before - cpu - redis_cpu - generator_cpu
                      - (time.process_time() - own_before))
            await asyncio.sleep(1.0)  # announcements in flight reach every worker
            rss = [p.memory_info().rss for p in live]
            code, health = await _get_json(host.port, "/health")
            _, agents = await _get_json(host.port, "/agents?limit=1")
            counts = await _redis_counts(redis_url, prefix)
            check.set()
            still = [await _report(queue, procs) for _ in procs]
            joined = sum(r["joined"] for r in reports)
            still_open = sum(r["open"] for r in still)
            row = Result("11", f"{total:,} agents, {workers} workers, {generators} load generators, "
                         "one Redis", "workers-all", agents=joined, seconds=seconds,
                         failures=sum(r["failures"] for r in reports),
                         msgs_per_s=joined / seconds)
            row.other_cpu_pct = max(0.0, 100.0 * others / seconds)
            row.server_cpu_pct = 100.0 * cpu / seconds
            row.server_rss_mb = sum(rss) / 1e6
            row.rss_per_agent_kb = sum(rss) / max(1, joined) / 1024
            row.server_us_per_msg = 1e6 * cpu / max(1, joined)
            calls = {name: (c - commands_before.get(name, (0, 0))[0],
                            u - commands_before.get(name, (0, 0))[1])
                     for name, (c, u) in commands.items()}
            top = sorted(calls.items(), key=lambda item: -item[1][1])[:8]
            row.lost = total - still_open  # never registered, or closed by the gateway since
            row.extra = {
                "health_connected_agents": health.get("connected_agents"),
                "health_instances": health.get("instances"),
                "agents_count": agents.get("count"),
                "redis_presence": counts,
                "still_open": still_open,
                "registrations_per_gateway_cpu_s": round(joined / max(cpu, 1e-9)),
                "redis_us_per_registration": round(1e6 * redis_cpu / max(1, joined), 1),
                "redis_commands_per_registration": {
                    name: {"calls": round(c / max(1, joined), 2),
                           "us": round(u / max(1, joined), 1)} for name, (c, u) in top},
                "gateway_cpu_s": round(cpu, 1), "redis_cpu_s": round(redis_cpu, 1),
                "generator_cpu_s": round(generator_cpu, 1),
                "supervisor_rss_mb": round(supervisor.memory_info().rss / 1e6),
                "worker_rss_mb": [round(r / 1e6) for r in rss],
                "redis_rss_mb": round(redis.rss() / 1e6) if redis else None,
                "generator_rss_mb": [round(r["rss"] / 1e6) for r in
                                     sorted(reports, key=lambda r: r["index"])]}
            exact = (health.get("connected_agents") == agents.get("count") == total
                     and set(counts.values()) == {total})
            row.notes.append(f"/health ({code}) counts {health.get('connected_agents')} agents on "
                             f"{health.get('instances')} instances, /agents {agents.get('count')}, "
                             f"Redis {counts}: " + ("each agent exactly once" if exact
                                                    else "NOT each agent exactly once"))
            if not exact:
                row.errors += 1
            row.notes.append(f"Redis {row.extra['redis_us_per_registration']} us CPU per "
                             f"registration; {row.extra['registrations_per_gateway_cpu_s']} "
                             "registrations per gateway CPU second; top commands per "
                             "registration: " + ", ".join(
                                 f"{name} {v['calls']}x {v['us']} us" for name, v in
                                 row.extra["redis_commands_per_registration"].items()))
            row.notes.append(f"still connected at the end: {still_open:,} of {joined:,}"
                             + ("" if len(live) == workers else
                                f"; {workers - len(live)} worker(s) died"))
            if row.failures:
                first = next(r["first_failure"] for r in reports if r["first_failure"])
                row.notes.append(f"{row.failures} failed, e.g. {first}")
            return row
        finally:
            for proc in procs:  # they hold their agents until now
                proc.terminate()
                proc.join(10)
            await host.stop(60)
            if redis is not None:
                await redis.stop()


async def _report(queue: Any, procs: Sequence[Any]) -> dict[str, Any]:
    """The next load generator's report; RuntimeError when one of them died instead."""
    while True:
        try:
            report: dict[str, Any] = await asyncio.to_thread(queue.get, True, 1.0)
            return report
        except Empty:
            died = [proc.exitcode for proc in procs if proc.exitcode is not None]
            if died:
                raise RuntimeError(f"a load generator exited with code {died[0]}") from None


async def _wait_workers(supervisor: psutil.Process, workers: int) -> None:
    deadline = time.monotonic() + 60
    while len(supervisor.children()) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway workers did not start")
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.0)  # each joins the cluster (the supervisor prints once all are ready)


async def _get_json(port: int, path: str) -> tuple[int, dict[str, Any]]:
    response = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}{path}", raise_error=False,
                                             request_timeout=60)
    return response.code, json.loads(response.body)


def run_gil(opts: Options) -> Result:
    return gil(max(0.5, opts.verify_seconds))
