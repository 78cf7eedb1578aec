"""Fixtures for cluster tests against a real Redis and real gateway processes (processes.py)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aiconexus_gateway.keys import DIDKey
from tests.conftest import require_tool
from tests.support.process import GatewayProcess

from .processes import REDIS_SERVER, RedisServer, cluster_gateway


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    require_tool(os.access(REDIS_SERVER, os.X_OK), "redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


StartGateways = Callable[..., list[GatewayProcess]]


@pytest.fixture
def start_gateways(redis_server: RedisServer, tmp_path: Path) -> Iterator[StartGateways]:
    """start_gateways("gw-a", "gw-b", ...) -> started instances sharing one Redis and one key."""
    key_file = tmp_path / "gateway.key"
    DIDKey.generate().save(key_file)  # one gateway DID for the whole cluster
    started: list[GatewayProcess] = []

    def start(*names: str, extra: tuple[str, ...] = ()) -> list[GatewayProcess]:
        batch = [cluster_gateway(name, redis_server.url, key_file, extra) for name in names]
        started.extend(batch)
        for gateway in batch:  # they start in parallel; read their lines in turn
            gateway.wait_ready()
        return batch

    yield start
    for gateway in started:
        gateway.stop(signal.SIGKILL)
        tail = "\n".join(gateway.lines[-25:])
        print(f"--- {gateway.name} output (tail) ---\n{tail}")
