"""`--workers N` (server/workers.py): one command, N gateway processes on one port, one Redis.

Real processes: the supervisor as an operator starts it, its workers, and the redis-server of
tests/cluster. Agents land on both workers (the kernel spreads connections over SO_REUSEPORT
listeners), reach each other across them, /health and /agents count the whole host, and one
SIGTERM to the supervisor drains every worker.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from aiconexus_gateway.client import GatewayClient
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

from .harness import Inbox, agent, get_json, signed
from .processes import HEARTBEAT, TTL, RedisServer


def test_more_than_one_worker_without_redis_is_refused_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    result = subprocess.run([sys.executable, "-m", "aiconexus_gateway", "--port", "0"],
                            env={**env, "GATEWAY_WORKERS": "3"}, capture_output=True, text=True,
                            timeout=30, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "aiconexus-gateway: GATEWAY_WORKERS=3 (--workers) needs REDIS_URL: the workers share "
        "their agents through Redis (or run one worker)"]


def got_one(inbox: Inbox) -> bool:
    return len(inbox.messages) == 1


def worker_pids(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@pytest.mark.gen_test(timeout=60)
async def test_two_workers_share_one_port_route_across_and_drain_on_one_sigterm(
        redis_server: RedisServer, tmp_path: Path) -> None:
    host = GatewayProcess(
        "--workers", "2", "--redis-url", redis_server.url, "--instance-id", "host",
        "--rate-limit", "0", "--drain-timeout", "3", "--key-file", str(tmp_path / "gateway.key"),
        "--cluster-heartbeat-interval", str(HEARTBEAT), "--cluster-heartbeat-ttl", str(TTL),
        name="workers", ready=r"^workers: 2 gateway processes share port", wait=False)
    clients: list[GatewayClient] = []
    try:
        host.wait_ready(30)
        workers = worker_pids(host.pid)
        assert len(workers) == 2
        assert host.output().count(f"gateway DID: {host.did}") == 2  # one key, one DID
        # the kernel spreads connections: within a few dozen, both workers hold agents
        on: dict[str, list[GatewayClient]] = {}
        while len(on) < 2 and len(clients) < 40:
            client = await agent(host, f"a{len(clients)}")
            clients.append(client)
            _, view = await get_json(f"{host.http_url}/agents/{client.did}")
            on.setdefault(view["instance"], []).append(client)
        assert sorted(on) == ["host-w0", "host-w1"], on.keys()
        # /health and /agents answer for the whole host, whichever worker takes the request
        for _ in range(4):
            code, health = await get_json(f"{host.http_url}/health")
            assert code == 200 and health["instances"] == 2
            assert health["connected_agents"] == len(clients)
        _, page = await get_json(f"{host.http_url}/agents?limit=100")
        assert page["scope"] == "cluster" and page["count"] == len(clients)
        # routing across the workers, both ways
        first, second = on["host-w0"][0], on["host-w1"][0]
        inboxes = Inbox(first), Inbox(second)
        for sender, inbox in ((first, inboxes[1]), (second, inboxes[0])):
            text, _ = signed(sender, inbox.client.did, "PING", {"across": True})
            await sender.send_raw(text)
            await inbox.wait(partial(got_one, inbox), 10, "the crossing frame")
            assert inbox.messages[0].raw == text
        # a worker that dies is reported and restarted under a fresh INSTANCE_ID
        os.kill(workers[1], signal.SIGKILL)
        line = host.wait_for_output(r"worker 1 .* was killed by signal 9; restarted as", 15)
        assert "instance host-w1," in line and "restarted as host-w1.1" in line
        workers = worker_pids(host.pid)
        assert len(workers) == 2

        async def restarted_joined() -> bool:
            _, view = await get_json(f"{host.http_url}/health")
            return bool(view.get("instance_id") == "host-w1.1")

        # until a /health request lands on the restarted worker (it starts in a second or so)
        await wait_until(restarted_joined, 20, "a /health answer from the restarted worker")
        # one SIGTERM to the supervisor: every worker drains (agents get 1001), all exit, code 0
        assert host.stop(timeout=20) == 0
        assert all(not Path(f"/proc/{pid}").exists() or
                   "zombie" in Path(f"/proc/{pid}/status").read_text() for pid in workers)
        assert host.output().count("gateway stopped") == 2
        for client in on["host-w0"]:  # the killed worker's agents were cut without a 1001
            await asyncio.wait_for(client.wait_closed(), 5)
            assert client.close_code == 1001
    finally:
        host.stop()
        for client in clients:
            await client.close()
