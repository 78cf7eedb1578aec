"""Real processes for the cluster tests: a private redis-server on an ephemeral port (never
6379, no persistence, a temp dir) and gateway instances run the way operators run them.

Gateways run with short heartbeats so failures show within a couple of seconds; every wait in
these tests is bounded by these numbers.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HEARTBEAT = 0.25  # CLUSTER_HEARTBEAT_INTERVAL
TTL = 1.5  # CLUSTER_HEARTBEAT_TTL
DELIVERY_TIMEOUT = 2.0  # CLUSTER_DELIVERY_TIMEOUT
LISTENING = re.compile(r"listening on (ws://\S+) and (http://\S+)")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class RedisServer:
    """A redis-server of our own: ephemeral port, no RDB/AOF, killed and restarted at will."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        assert self.port != 6379
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--daemonize", "no",
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ping():
                return
            assert self.proc.poll() is None, (self.directory / "redis.log").read_text()
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing saved (there is nothing to save anyway)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def client(self) -> Any:
        """A synchronous redis-py client, to look at the keys (close it after use)."""
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)


class ClusterGateway:
    """One gateway instance as an operator runs it: `python -m aiconexus_gateway --redis-url ...`."""

    def __init__(self, name: str, redis_url: str, key_file: Path, log_file: Path,
                 extra: tuple[str, ...] = ()) -> None:
        self.name = name
        self.log_file = log_file
        command = [sys.executable, "-m", "aiconexus_gateway", "--port", "0",
                   "--redis-url", redis_url, "--instance-id", name, "--key-file", str(key_file),
                   "--rate-limit", "0", "--drain-timeout", "3",
                   "--cluster-heartbeat-interval", str(HEARTBEAT),
                   "--cluster-heartbeat-ttl", str(TTL),
                   "--cluster-delivery-timeout", str(DELIVERY_TIMEOUT), *extra]
        self._log = open(log_file, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self._log, bufsize=0,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.ws_url = self.http_url = self.cluster_line = ""

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Read the startup lines (unbuffered, bounded): the URLs, then the `cluster:` line."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        buffer = b""
        while not self.cluster_line:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
            if not ready:
                raise AssertionError(f"{self.name} did not start in {timeout} s: {self.log_tail()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"{self.name} exited {self.proc.wait()}: {self.log_tail()}")
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            for line in (raw.decode() for raw in lines):
                match = LISTENING.search(line)
                if match:
                    self.ws_url, self.http_url = match.groups()
                elif line.startswith("cluster: "):
                    self.cluster_line = line.strip()

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"
