"""Real processes for the cluster tests: a private redis-server on an ephemeral port (never
6379, no persistence, a temp dir) and gateway instances run the way operators run them.

Gateways run with short heartbeats so failures show within a couple of seconds; every wait in
these tests is bounded by these numbers.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.process import GatewayProcess, free_port

HEARTBEAT = 0.25  # CLUSTER_HEARTBEAT_INTERVAL
TTL = 1.5  # CLUSTER_HEARTBEAT_TTL
DELIVERY_TIMEOUT = 2.0  # CLUSTER_DELIVERY_TIMEOUT
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


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


def cluster_gateway(name: str, redis_url: str, key_file: Path,
                    extra: tuple[str, ...] = ()) -> GatewayProcess:
    """One gateway instance as an operator runs it (`--redis-url ...`), started; ready after
    `wait_ready()`, which waits for its `cluster:` line too."""
    return GatewayProcess(
        "--redis-url", redis_url, "--instance-id", name, "--key-file", str(key_file),
        "--rate-limit", "0", "--drain-timeout", "3",
        "--cluster-heartbeat-interval", str(HEARTBEAT), "--cluster-heartbeat-ttl", str(TTL),
        "--cluster-delivery-timeout", str(DELIVERY_TIMEOUT), *extra,
        name=name, ready="^cluster: ", wait=False)
