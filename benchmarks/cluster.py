"""Scenario (7): gateway instances in cluster mode (REDIS_URL) and one Redis, measured as a whole.

The same pairs and pre-signed frames as scenario (2), placed three ways:
- one: every pair on a single instance (in cluster mode, Redis connected): the baseline;
- local: the pairs split over `--instances` instances (3 by default), each pair on one instance,
  so each routes its own traffic; how throughput grows with processes when a load balancer keeps
  conversations together;
- cross: pair j's sender on instance j, its recipient on instance j+1 (mod N), so every message
  goes through Redis (presence lookup, the recipient instance's inbox stream, the answer).

Every row reports the gateways' and Redis's CPU: messages per server CPU second (gateways +
Redis: the machine has fewer cores than processes, so absolute rates say little) and Redis CPU
per message. All instances share one gateway key (one DID for the cluster), as operators run
them. Redis is a private redis-server on an ephemeral port unless --redis-url names one. Nothing
is pinned: the gateways, Redis and the load generator share the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

from aiconexus_gateway.keys import DIDKey

from . import load, scenarios, servers
from .scenarios import Options, Result
from .servers import ServerProcess
from .wsclient import WSClient

REDIS_STARTUP_TIMEOUT = 10.0


class RedisProcess(servers.Measured):
    """A private redis-server: ephemeral loopback port, no persistence, killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self, executable: str) -> RedisProcess:
        self.proc = await asyncio.create_subprocess_exec(
            executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + REDIS_STARTUP_TIMEOUT
        while not await self._ping():
            if time.monotonic() > deadline or self.proc.returncode is not None:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            await asyncio.sleep(0.05)
        return self

    async def _ping(self) -> bool:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            return (await asyncio.wait_for(reader.readline(), 1.0)).startswith(b"+PONG")
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def _instance(name: str, mode: str, redis_url: str, key_file: Path, opts: Options
              ) -> ServerProcess:
    return servers.gateway(mode, None, name=name, extra_env={
        **opts.gateway_env,
        "REDIS_URL": redis_url, "INSTANCE_ID": name, "GATEWAY_KEY_FILE": str(key_file)})


async def run(opts: Options, senders: Sequence[DIDKey], recipients: Sequence[DIDKey],
              frames: Sequence[load.Frames], say: Callable[[str], None]) -> tuple[list[Result], str]:
    """The rows of scenario (7), and a line saying what ran (or why it did not)."""
    redis_server = shutil.which("redis-server")
    if not opts.redis_url and redis_server is None:
        return [], ("(7) cross-instance: not run - redis-server is not installed "
                    "(scripts/ensure-test-tools.sh installs it) and no --redis-url was given")
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))  # share every core from here on
    mode = opts.modes[0]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        directory = Path(tmp)
        key_file = directory / "gateway.key"
        DIDKey.generate().save(key_file)
        redis: RedisProcess | None = None
        redis_url = opts.redis_url
        if not redis_url:
            assert redis_server is not None
            redis = await RedisProcess(directory).start(redis_server)
            redis_url = redis.url
        try:
            for placement, count in (("one", 1), ("local", opts.instances),
                                     ("cross", opts.instances)):
                say(f"(7) {count} instance(s), VERIFY_SIGNATURES={mode}, pairs {placement}")
                results.append(await _placement(placement, count, mode, redis_url, key_file,
                                                redis, senders, recipients, frames, opts))
        finally:
            if redis is not None:
                await redis.stop()
    where = "a private redis-server" if opts.redis_url is None else "the given Redis"
    base = next((r for r in results if r.extra.get("placement") == "one"), None)
    for row in results:
        if base is not None and base.extra.get("msgs_per_cpu_s") and row is not base:
            row.extra["per_cpu_s_vs_one"] = round(
                row.extra["msgs_per_cpu_s"] / base.extra["msgs_per_cpu_s"], 3)
            row.notes.append(f"per server CPU second: {row.extra['per_cpu_s_vs_one']:.2f}x "
                             "the single instance of this run")
    return results, (f"(7) cluster: 1 and {opts.instances} gateway processes and {where}, "
                     "all cores shared")


async def _placement(placement: str, count: int, mode: str, redis_url: str, key_file: Path,
                     redis: RedisProcess | None, senders: Sequence[DIDKey],
                     recipients: Sequence[DIDKey], frames: Sequence[load.Frames], opts: Options
                     ) -> Result:
    instances = [_instance(f"bench-{i}", mode, redis_url, key_file, opts) for i in range(count)]
    await asyncio.gather(*(instance.start() for instance in instances))
    clients: list[WSClient] = []
    try:
        groups: list[list[DIDKey]] = [[] for _ in instances]
        for j, (sender, recipient) in enumerate(zip(senders, recipients, strict=True)):
            groups[j % count].append(sender)
            groups[(j + (1 if placement == "cross" else 0)) % count].append(recipient)
        by_key: dict[str, WSClient] = {}
        for server, keys in zip(instances, groups, strict=True):
            joined = await load.join_all(server, keys, concurrency=opts.concurrency)
            clients += joined.clients
            if joined.failures:
                raise RuntimeError(f"{server.name}: {joined.failures[0]}")
            by_key.update({key.did: client for key, client in zip(keys, joined.clients, strict=True)})
        await asyncio.sleep(0.5)  # presence reaches the other instances
        links, latencies = load.link_pairs([by_key[k.did] for k in senders],
                                           [by_key[k.did] for k in recipients], frames, opts.window)
        measured: list[servers.Measured] = [*instances] + ([redis] if redis is not None else [])
        where = {"one": "every pair on it",
                 "local": "each pair on one instance",
                 "cross": "every message crossing"}[placement]
        before = [process.cpu_sample().cpu for process in measured]
        row = await scenarios.closed_loop(measured, links, latencies, opts, "7",
                                          f"{count} instance(s), {where}",
                                          f"cluster-{mode}-{placement}")
        spent = [process.cpu_sample().cpu - cpu for process, cpu in zip(measured, before,
                                                                         strict=True)]
        names = [f"gw{i}" for i in range(count)] + (["Redis"] if redis is not None else [])
        row.extra["placement"] = placement
        row.extra["instances"] = count
        delivered = row.delivered or 0
        # the meter's window (server_us_per_msg): gateways + Redis CPU per delivered message
        if row.server_us_per_msg:
            row.extra["msgs_per_cpu_s"] = round(1e6 / row.server_us_per_msg)
        total = sum(link.delivered for link in links)  # warm-up to drain, as `spent`
        if redis is not None and delivered and total:
            row.extra["redis_us_per_msg"] = round(1e6 * spent[-1] / total, 2)
            row.notes.append(f"Redis: {row.extra['redis_us_per_msg']:.1f} us CPU per message")
        row.extra["cpu_s_by_process"] = dict(zip(names, (round(x, 2) for x in spent),
                                                 strict=True))
        row.notes.append("server CPU and RSS: every gateway" + (" + Redis" if redis else "")
                         + " (warm-up to drain, CPU s: " + ", ".join(
                             f"{name} {x:.1f}" for name, x in zip(names, spent, strict=True))
                         + ")")
        return row
    finally:
        load.close_all(clients)
        for server in instances:
            code = await server.stop()
            if code not in (0, None):
                print(f"warning: {server.name} exited with {code}:\n{server.log_tail()}",
                      file=sys.stderr)
