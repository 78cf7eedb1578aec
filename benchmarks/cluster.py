"""Scenario (7): two gateway instances in cluster mode (REDIS_URL), agents spread over them.

Two placements of the same pairs and pre-signed frames as scenario (2):
- local: half of the pairs on each instance, so each instance routes its own traffic; this is how
  throughput grows with processes when a load balancer keeps conversations together;
- cross: every sender on instance A and every recipient on instance B, so every message goes
  through Redis (presence lookup, the recipient instance's inbox stream, the delivery answer).

Both instances share one gateway key (one DID for the cluster), as operators run them. Redis is a
private redis-server on an ephemeral port unless --redis-url names one. In this scenario nothing
is pinned: two gateways, Redis and the load generator share the machine's cores.
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
            for placement in ("local", "cross"):
                say(f"(7) two instances, VERIFY_SIGNATURES={mode}, pairs {placement}")
                results.append(await _placement(placement, mode, redis_url, key_file, redis,
                                                senders, recipients, frames, opts))
        finally:
            if redis is not None:
                await redis.stop()
    where = "a private redis-server" if opts.redis_url is None else "the given Redis"
    return results, f"(7) cross-instance: two gateway processes and {where}, all cores shared"


async def _placement(placement: str, mode: str, redis_url: str, key_file: Path,
                     redis: RedisProcess | None, senders: Sequence[DIDKey],
                     recipients: Sequence[DIDKey], frames: Sequence[load.Frames], opts: Options
                     ) -> Result:
    a = _instance("bench-a", mode, redis_url, key_file, opts)
    b = _instance("bench-b", mode, redis_url, key_file, opts)
    await asyncio.gather(a.start(), b.start())
    clients: list[WSClient] = []
    try:
        half = len(senders) // 2
        if placement == "local":
            groups = [(a, senders[:half], recipients[:half]), (b, senders[half:], recipients[half:])]
        else:
            groups = [(a, senders, []), (b, [], recipients)]
        by_key: dict[str, WSClient] = {}
        for server, group_senders, group_recipients in groups:
            keys = [*group_senders, *group_recipients]
            joined = await load.join_all(server, keys, concurrency=opts.concurrency)
            clients += joined.clients
            if joined.failures:
                raise RuntimeError(f"{server.name}: {joined.failures[0]}")
            by_key.update({key.did: client for key, client in zip(keys, joined.clients, strict=True)})
        await asyncio.sleep(0.5)  # presence reaches the other instance
        links, latencies = load.link_pairs([by_key[k.did] for k in senders],
                                           [by_key[k.did] for k in recipients], frames, opts.window)
        measured: list[servers.Measured] = [a, b] + ([redis] if redis is not None else [])
        where = ("half of the pairs on each instance" if placement == "local"
                 else "senders on A, recipients on B")
        before = [(process.cpu_sample().cpu, time.perf_counter()) for process in measured]
        row = await scenarios.closed_loop(measured, links, latencies, opts, "7",
                                          f"2 instances, {where}", f"cluster-{mode}-{placement}")
        shares = [100.0 * (process.cpu_sample().cpu - cpu) / (time.perf_counter() - wall)
                  for process, (cpu, wall) in zip(measured, before, strict=True)]
        names = ["A", "B", "Redis"][:len(shares)]
        row.extra["cpu_pct_by_process"] = dict(zip(names, (round(x, 1) for x in shares),
                                                   strict=True))
        row.notes.append("server CPU and RSS: both gateways" + (" + Redis" if redis else "")
                         + " (warm-up to drain: " + ", ".join(
                             f"{name} {share:.0f}%" for name, share in zip(names, shares,
                                                                         strict=True)) + ")")
        return row
    finally:
        load.close_all(clients)
        for server in (a, b):
            code = await server.stop()
            if code not in (0, None):
                print(f"warning: {server.name} exited with {code}:\n{server.log_tail()}",
                      file=sys.stderr)
