"""Cluster mode on and off: no Redis import without REDIS_URL, a clear error without the extra,
prefixes that keep clusters apart, and an instance that starts before Redis does.

The gateways here run in-process (Gateway.start), which is faithful for these checks and faster.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from aiconexus_gateway.client import DIDKey
from aiconexus_gateway.config import Config
from aiconexus_gateway.server.app import Gateway
from tests.support.waiting import wait_until

from .harness import Inbox, agent, get_json, listed
from .processes import DELIVERY_TIMEOUT, HEARTBEAT, TTL, RedisServer

GATEWAY_KEY = DIDKey.generate()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_without_redis_url_the_gateway_never_imports_redis() -> None:
    result = _python(
        "import asyncio, sys\n"
        "from aiconexus_gateway.config import Config\n"
        "from aiconexus_gateway.server.app import Gateway\n"
        "async def main():\n"
        "    gateway = await Gateway.start(Config(port=0))\n"
        "    assert not gateway.hub.router.clustered\n"
        "    await gateway.stop(timeout=1)\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_cluster_mode_without_the_redis_client_names_the_extra_to_install() -> None:
    block = "import sys; sys.modules['redis'] = None\n"
    result = _python(block + "import aiconexus_gateway.backends.redis_backend\n")
    assert result.returncode != 0
    assert "pip install 'aiconexus-gateway[redis]'" in result.stderr
    command = _python(block + "from aiconexus_gateway.server.app import main\n"
                      "raise SystemExit(main(['--port', '0', '--redis-url', 'redis://127.0.0.1:1']))\n")
    assert command.returncode == 2
    assert command.stderr.strip().endswith(
        "cluster mode (REDIS_URL) needs the Redis client: pip install 'aiconexus-gateway[redis]'")


def _config(redis_url: str, instance_id: str, **changes: Any) -> Config:
    return Config(port=0, redis_url=redis_url, instance_id=instance_id, rate_limit=0,
                  drain_timeout=2.0, cluster_heartbeat_interval=HEARTBEAT,
                  cluster_heartbeat_ttl=TTL, cluster_delivery_timeout=DELIVERY_TIMEOUT
                  ).replace(**changes)


@asynccontextmanager
async def running(*configs: Config) -> AsyncIterator[list[Gateway]]:
    gateways: list[Gateway] = []
    try:
        for config in configs:
            gateways.append(await Gateway.start(config, identity=GATEWAY_KEY))
        yield gateways
    finally:
        for gateway in gateways:
            await gateway.stop(timeout=2.0)


@pytest.mark.gen_test(timeout=30)
async def test_prefixes_keep_clusters_on_one_redis_apart(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with running(_config(url, "one-a", redis_prefix="tenant-1"),
                       _config(url, "one-b", redis_prefix="tenant-1"),
                       _config(url, "two-a", redis_prefix="tenant-2")) as (one_a, one_b, two_a):
        alice = Inbox(await agent(one_a, "alice"))
        bob = Inbox(await agent(one_b, "bob"))
        stranger = Inbox(await agent(two_a, "stranger"))
        hello = await alice.client.send(bob.client.did, "OFFER", {})
        await bob.wait(lambda: hello in bob.ids(), 5, "delivery inside tenant-1")
        across = await alice.client.send(stranger.client.did, "OFFER", {})
        await alice.wait(lambda: across in alice.errors(), 5, "UNKNOWN_AGENT across prefixes")
        assert alice.errors()[across] == "UNKNOWN_AGENT"
        _, one = await get_json(f"{one_a.http_url}/health")
        _, two = await get_json(f"{two_a.http_url}/health")
        assert (one["connected_agents"], one["instances"]) == (2, 2)
        assert (two["connected_agents"], two["instances"]) == (1, 1)
        keys = redis_server.client().keys("*")
        assert keys and all(k.startswith((b"tenant-1:", b"tenant-2:")) for k in keys)
        for inbox in (alice, bob, stranger):
            await inbox.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_instance_started_before_redis_serves_locally_then_joins(tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path)  # not started yet
    try:
        async with running(_config(redis_server.url, "early")) as (early,):
            _, health = await get_json(f"{early.http_url}/health")
            assert health["status"] == "degraded"
            assert health["redis"]["state"] == "disconnected" and health["redis"]["error"]
            alice = Inbox(await agent(early, "alice"))
            bob = Inbox(await agent(early, "bob"))
            local = await alice.client.send(bob.client.did, "OFFER", {})
            await bob.wait(lambda: local in bob.ids(), 5, "local routing without Redis")
            remote = await alice.client.send(DIDKey.generate().did, "OFFER", {})
            await alice.wait(lambda: remote in alice.errors(), 1, "an immediate ERROR")
            assert alice.errors()[remote] == "DELIVERY_FAILED"
            message = next(m for m in alice.messages if m.correlation_id == remote)
            assert message.payload["details"]["reason"] == "unavailable"
            _, page = await get_json(f"{early.http_url}/agents")
            assert page["scope"] == "instance" and page["count"] == 2
            redis_server.start()

            async def joined() -> bool:
                _, health = await get_json(f"{early.http_url}/health")
                return health["status"] == "healthy" and health["connected_agents"] == 2

            await wait_until(joined, 5, "healthy once Redis is up, with its agents published")
            async with running(_config(redis_server.url, "late")) as (late,):
                assert await listed(late, alice.client.did) == "early"
            for inbox in (alice, bob):
                await inbox.close()
    finally:
        redis_server.kill()


@pytest.mark.gen_test(timeout=30)
async def test_an_instance_that_cannot_listen_leaves_the_cluster_it_joined(
        redis_server: RedisServer) -> None:
    async with running(_config(redis_server.url, "first")) as (first,):
        result = subprocess.run(
            [sys.executable, "-m", "aiconexus_gateway", "--port", str(first.port),
             "--redis-url", redis_server.url, "--instance-id", "second"],
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 1, result.stderr
        assert "cannot listen" in result.stderr
        client = redis_server.client()
        assert client.exists("aiconexus:heartbeat:first") == 1
        assert client.exists("aiconexus:heartbeat:second") == 0
        assert client.smembers("aiconexus:instances") == {b"first"}
        client.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_second_instance_with_a_live_instances_id_refuses_to_start(
        redis_server: RedisServer) -> None:
    """Issue 11: a duplicate INSTANCE_ID was only a warning; frames were then both delivered
    and answered with an ERROR. Now the second one exits with one line and leaves the first alone."""
    async with running(_config(redis_server.url, "twin")) as (first,):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aiconexus_gateway", "--port", "0", "--redis-url",
            redis_server.url, "--instance-id", "twin",
            "--cluster-heartbeat-interval", str(HEARTBEAT), "--cluster-heartbeat-ttl", str(TTL),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:  # it did not refuse: do not leave it running
                process.kill()
                await process.wait()
        assert process.returncode == 2, stderr
        lines = stderr.decode().strip().splitlines()
        assert lines[-1] == ("aiconexus-gateway: INSTANCE_ID twin is in use by another live "
                             f"instance of this cluster (Redis {redis_server.url}, prefix "
                             "aiconexus); give each instance its own INSTANCE_ID")
        alice = Inbox(await agent(first, "alice"))
        assert await listed(first, alice.client.did) == "twin"  # the first one still serves
        await alice.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_instance_id_left_by_a_stopped_instance_is_taken_over(
        redis_server: RedisServer) -> None:
    client = redis_server.client()
    client.set("aiconexus:heartbeat:phoenix", b"1:dead", px=int(TTL * 1000))  # never refreshed
    client.close()
    async with running(_config(redis_server.url, "phoenix")) as (gateway,):
        _, health = await get_json(f"{gateway.http_url}/health")
        assert health["status"] == "healthy" and health["instance_id"] == "phoenix"


@pytest.mark.gen_test(timeout=30)
async def test_a_huge_agents_offset_is_an_empty_page_in_cluster_mode(
        redis_server: RedisServer) -> None:
    """Issue 11: a huge offset reached Redis's ZRANGE and came back a 500 with a traceback."""
    async with running(_config(redis_server.url, "paged")) as (gateway,):
        alice = Inbox(await agent(gateway, "alice"))
        page = await gateway.hub.agents_report(100, 10**30)  # the core's bound, whatever HTTP allows
        assert page["agents"] == [] and page["count"] == 1
        assert page["scope"] == "cluster"
        await alice.close()
