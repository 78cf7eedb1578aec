"""Real processes: SIGTERM drains (503 at once, 1001 after the backlog, exit 0 in DRAIN_TIMEOUT);
SIGKILL, then SDK clients with reconnect enabled come back by themselves and re-register."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient
from aiconexus_gateway.client.reconnect import ConnectionEvent, ReconnectPolicy
from tests.reliability.support import (
    HandshakeRefused,
    RawWebSocket,
    fetch,
    metric,
    metrics_of,
    raw_registered,
)
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

DRAIN_TIMEOUT = 3.0


@pytest.mark.gen_test(timeout=40)
async def test_sigterm_drains_health_503_refuses_new_agents_flushes_then_1001_and_exits_0() -> None:
    process = GatewayProcess(env={"DRAIN_TIMEOUT": str(DRAIN_TIMEOUT), "LOG_LEVEL": "WARNING"})
    try:
        await drain(process)
    finally:
        process.stop(signal.SIGKILL)


async def drain(process: GatewayProcess) -> None:
    alice = GatewayClient(process.ws_url, DIDKey.generate())
    await alice.connect()
    bob, bob_key, _ = await raw_registered(process.ws_url)
    bob.stop_reading()  # a backlog builds up for Bob in the gateway
    stubborn, _, _ = await raw_registered(process.ws_url)
    stubborn.stop_reading()  # never answers the close: cut at the deadline
    ids = [await alice.send(bob_key.did, "EXEC_REQUEST", {"blob": "x" * 4000, "seq": i})
           for i in range(50)]

    async def all_routed() -> bool:
        return metric(await metrics_of(process.http_url), "aiconexus_messages_routed_total",
                      type="EXEC_REQUEST") == 50
    await wait_until(all_routed, 10, "the gateway to take the 50 messages")

    started = time.monotonic()
    process.proc.send_signal(signal.SIGTERM)

    async def draining() -> bool:
        status, _, body = await fetch(f"{process.http_url}/health")
        return status == 503 and json.loads(body)["status"] == "draining"
    await wait_until(draining, 1.0, "/health to say draining")
    with pytest.raises(HandshakeRefused) as refusal:
        await RawWebSocket.connect(process.ws_url)
    assert refusal.value.status == 503 and refusal.value.json()["error"] == "DRAINING"

    bob.resume_reading()
    code, texts = await bob.until_closed(timeout=DRAIN_TIMEOUT + 2)
    assert code == 1001 and bob.close_reason == "gateway shutting down"
    assert [json.loads(t)["id"] for t in texts] == ids  # the backlog went out before the 1001
    with pytest.raises(ConnectionClosed):
        await alice.receive(timeout=DRAIN_TIMEOUT + 2)
    assert alice.close_code == 1001

    returncode = await asyncio.get_running_loop().run_in_executor(
        None, lambda: process.proc.wait(DRAIN_TIMEOUT + 5))
    elapsed = time.monotonic() - started
    assert returncode == 0
    assert elapsed < DRAIN_TIMEOUT + 1.0, f"exit {elapsed:.2f} s after SIGTERM"
    stubborn.abort()
    await alice.close()


@pytest.mark.gen_test(timeout=60)
async def test_after_sigkill_sdk_clients_reconnect_with_jittered_backoff_and_reregister(
        tmp_path: Path) -> None:
    key_file = str(tmp_path / "gateway.key")
    first = GatewayProcess("--key-file", key_file, env={"LOG_LEVEL": "WARNING"})
    policy = ReconnectPolicy(initial_delay=0.2, max_delay=1.0)
    clients = [GatewayClient(first.ws_url, DIDKey.generate(), reconnect=policy) for _ in range(6)]
    events: dict[str, list[ConnectionEvent]] = {c.did: [] for c in clients}
    for client in clients:
        client.on_connection_change(events[client.did].append)
        await client.connect()
    second: GatewayProcess | None = None
    try:
        alice, bob = clients[0], clients[1]
        await alice.send(bob.did, "OFFER", {"before": "the crash"})
        assert (await bob.receive(timeout=5)).payload == {"before": "the crash"}

        first.stop(signal.SIGKILL)
        await wait_until(lambda: all(c.reconnecting for c in clients), 5, "every client to notice")
        queued = await alice.send(bob.did, "OFFER", {"during": "the outage"})  # waits in the queue
        assert alice.queued == 1
        await wait_until(lambda: all(any(e.attempt >= 2 for e in events[c.did]) for c in clients),
                         10, "every client to fail an attempt against the dead port")
        second = GatewayProcess("--key-file", key_file, port=first.port, env={"LOG_LEVEL": "WARNING"})
        assert second.did == first.did
        await wait_until(lambda: all(c.connected for c in clients), 20,
                       lambda: "every client to come back: " + repr(
                           [(c.connected, c.reconnecting, [(e.state, e.attempt, round(e.delay, 2))
                                                           for e in events[c.did]])
                            for c in clients]))

        status, _, body = await fetch(f"{second.http_url}/agents")
        assert status == 200
        assert {a["did"] for a in json.loads(body)["agents"]} == {c.did for c in clients}
        for client in clients:
            states = [e.state for e in events[client.did]]
            assert states[0] == "disconnected" and states[-1] == "reconnected", states
            assert "reconnecting" in states and client.reconnects == 1
        first_delays = [next(e.delay for e in events[c.did] if e.state == "reconnecting")
                        for c in clients]
        assert len(set(first_delays)) == len(clients)  # jittered (exact floats)
        assert all(0.1 <= d <= 0.2 for d in first_delays)

        # The queued message went out when Alice came back: delivered if Bob was back first,
        # else answered UNKNOWN_AGENT. Either way it is accounted for.
        to_bob = asyncio.ensure_future(bob.receive(timeout=5))
        to_alice = asyncio.ensure_future(alice.receive(timeout=5))
        await asyncio.wait({to_bob, to_alice}, return_when=asyncio.FIRST_COMPLETED)
        for waiting in (to_bob, to_alice):
            waiting.cancel()
        if to_bob.done() and not to_bob.cancelled():
            assert to_bob.result().id == queued
        else:
            alice_view = to_alice.result()
            assert alice_view.correlation_id == queued
            assert alice_view.error_code == "UNKNOWN_AGENT"

        message_id = await alice.send(bob.did, "OFFER", {"after": "the restart"})
        received = await bob.receive(timeout=5)
        assert received.id == message_id and received.payload == {"after": "the restart"}
    finally:
        for client in clients:
            await client.close()
        first.stop(signal.SIGKILL)
        if second is not None:
            assert second.stop() == 0


@pytest.mark.gen_test(timeout=40)
async def test_a_frozen_gateway_is_noticed_by_the_sdk_ping_and_the_sdk_comes_back_after() -> None:
    """A gateway that stops answering without closing (a hung host): the SDK's WebSocket ping
    finds out, the SDK reconnects once the gateway answers again."""
    process = GatewayProcess(env={"LOG_LEVEL": "WARNING"})
    client = GatewayClient(process.ws_url, DIDKey.generate(), ping_interval=0.3, connect_timeout=2,
                           reconnect=ReconnectPolicy(initial_delay=0.1, max_delay=0.5))
    try:
        await client.connect()
        first_session = client.session_id
        process.proc.send_signal(signal.SIGSTOP)
        await wait_until(lambda: client.reconnecting, 10, "the SDK to notice the silence")
        process.proc.send_signal(signal.SIGCONT)
        await wait_until(lambda: client.connected, 15, "the SDK to come back")
        assert client.session_id != first_session and client.reconnects == 1
        status, _, body = await fetch(f"{process.http_url}/agents")
        assert status == 200 and [a["did"] for a in json.loads(body)["agents"]] == [client.did]
    finally:
        process.proc.send_signal(signal.SIGCONT)
        await client.close()
        assert process.stop() == 0
