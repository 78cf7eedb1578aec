"""The systems under test, each started as its own process with the command a user would run.

`ServerProcess` starts the command, reads the ws:// URL it prints, and samples its CPU time and
RSS with psutil so each scenario can report what the server spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - the message says what to install
    raise SystemExit("the benchmark needs psutil: pip install -e '.[bench]'") from None

_URL = re.compile(r"(ws://[^\s/]+:(\d+)/ws)")
_DID = re.compile(r"gateway DID: (did:key:\S+)")
STARTUP_TIMEOUT = 30.0


@dataclass
class CPUSample:
    """CPU seconds and wall time at one moment, to take differences over a timed window."""

    cpu: float
    wall: float


class Measured:
    """A process whose CPU time and memory a scenario reports (through psutil, once started)."""

    ps: psutil.Process | None = None

    def cpu_sample(self) -> CPUSample:
        assert self.ps is not None
        times = self.ps.cpu_times()
        return CPUSample(times.user + times.system, time.perf_counter())

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)


class ServerProcess(Measured):
    """A running gateway or relay process: its URL, CPU and memory."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cpu: int | None,
                 *, prints_did: bool = True) -> None:
        self.name = name
        self.prints_did = prints_did
        self.argv = argv
        self.env = env
        self.cpu = cpu
        self.url = ""
        self.host = "127.0.0.1"
        # the clients' source address: one address has ~28,000 ephemeral ports toward one
        # host:port, so (11) gives each load generator its own (127.0.0.2, ...: all loopback)
        self.local_host: str | None = None
        self.port = 0
        self.did: str | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the process's life
            prefix=f"bench-{name}-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)

    async def start(self) -> ServerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=asyncio.subprocess.PIPE, stderr=self._log, env=self.env,
            stdin=asyncio.subprocess.DEVNULL)
        self.ps = psutil.Process(self.proc.pid)
        if self.cpu is not None:
            with contextlib.suppress(OSError, AttributeError):
                self.ps.cpu_affinity([self.cpu])
        deadline = time.monotonic() + STARTUP_TIMEOUT
        assert self.proc.stdout is not None
        while not self.url or (self.prints_did and self.did is None):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{self.name} did not print its URL: {self.log_tail()}")
            line = (await asyncio.wait_for(self.proc.stdout.readline(), remaining)).decode()
            if not line:
                raise RuntimeError(f"{self.name} exited at start: {self.log_tail()}")
            if match := _URL.search(line):
                self.url, self.port = match.group(1), int(match.group(2))
            if match := _DID.search(line):
                self.did = match.group(1)
        return self

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if proc.stdout is not None:
            with contextlib.suppress(Exception):
                await proc.stdout.read()
        self._log.close()
        if proc.returncode == 0:
            self.log_path.unlink(missing_ok=True)
        return proc.returncode


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without gateway settings a user may have exported, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GATEWAY_", "VERIFY_", "REDIS_", "LOG_", "MAX_", "RATE_",
                                 "CONNECTION_", "AGENT_", "PING_", "CHALLENGE_", "ADMIN_", "TLS_",
                                 "ALLOWED_", "TRUST_", "DRAIN_", "INSTANCE_", "CLUSTER_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# The load generator is one address doing what thousands of agents would do, so the abuse limits
# that protect a public gateway are raised out of its way (not switched off: the per-frame rate
# check still runs on every message, so its cost is in every figure).
BENCH_LIMITS = {
    "RATE_LIMIT": "1000000",  # frames/s per connection (default 100)
    "RATE_BURST": "1000000",
    "CONNECTION_RATE": "1000000",  # new connections/s (default 500)
    "CONNECTION_BURST": "1000000",
    "MAX_CONNECTIONS": "0",  # no cap (default 10,000: scenario (1) opens exactly that many)
    "ADDRESS_WORK_LIMIT": "1000",  # s/s of handshake work per address (default 0.25)
}


def gateway(verify: str, cpu: int | None, extra_env: dict[str, str] | None = None,
            name: str = "gateway") -> ServerProcess:
    """The gateway as users start it, on an ephemeral loopback port, limits raised (above)."""
    argv = [sys.executable, "-m", "aiconexus_gateway", "--host", "127.0.0.1", "--port", "0",
            "--verify-signatures", verify]
    return ServerProcess(f"{name}-{verify}", argv, child_env({**BENCH_LIMITS, **(extra_env or {})}),
                         cpu)


def relay(cpu: int | None) -> ServerProcess:
    """The bare Tornado relay (benchmarks/relay.py): the framework's own ceiling."""
    argv = [sys.executable, "-m", "benchmarks.relay", "--port", "0"]
    root = str(Path(__file__).resolve().parent.parent)  # benchmarks/ is not installed: run from here
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return ServerProcess("relay", argv, child_env({"PYTHONPATH": path}), cpu, prints_did=False)
