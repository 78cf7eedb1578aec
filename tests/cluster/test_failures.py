"""Instances and Redis failing under traffic: every accepted frame is delivered or answered ERROR."""

from __future__ import annotations

import asyncio
import signal
import time
from functools import partial

import pytest

from aiconexus_gateway.client import ConnectionClosed, GatewayClient
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

from .conftest import StartGateways
from .harness import Inbox, agent, get_json, listed
from .processes import DELIVERY_TIMEOUT, HEARTBEAT, TTL, RedisServer

# An instance that stops heartbeating is noticed by the others' next heartbeat after its TTL.
DEAD_BOUND = TTL + 2 * HEARTBEAT + 1.0


async def _absent(gateway: GatewayProcess, did: str) -> bool:
    return await listed(gateway, did) is None


@pytest.mark.gen_test(timeout=60)
async def test_sigkill_of_an_instance_answers_its_frames_with_error_and_forgets_its_agents(
        start_gateways: StartGateways) -> None:
    a, b, c = start_gateways("gw-a", "gw-b", "gw-c")
    alice = Inbox(await agent(a, "alice"))
    bob = Inbox(await agent(b, "bob"))
    carol = Inbox(await agent(c, "carol"))
    probe = await alice.client.send(bob.client.did, "OFFER", {})
    await bob.wait(lambda: probe in bob.ids(), 5, "a frame before the kill")

    b.signal(signal.SIGKILL)
    b.wait(5)
    killed = time.monotonic()
    ids = [await alice.client.send(bob.client.did, "OFFER", {"n": n}) for n in range(5)]
    took = await alice.wait(lambda: set(ids) <= set(alice.errors()), DELIVERY_TIMEOUT + 1.0,
                            "an ERROR for every frame sent to the killed instance")
    assert {alice.errors()[i] for i in ids} == {"DELIVERY_FAILED"}
    gone = [await wait_until(partial(_absent, g, bob.client.did), DEAD_BOUND,
                             f"bob gone from {g.name}'s view") for g in (a, c)]
    since_kill = time.monotonic() - killed
    for gateway in (a, c):
        _, health = await get_json(f"{gateway.http_url}/health")
        assert health["connected_agents"] == 2 and health["instances"] == 2
    after = await alice.client.send(bob.client.did, "OFFER", {})
    await alice.wait(lambda: after in alice.errors(), 1.0, "UNKNOWN_AGENT once bob is gone")
    assert alice.errors()[after] == "UNKNOWN_AGENT"
    still = await alice.client.send(carol.client.did, "OFFER", {})
    await carol.wait(lambda: still in carol.ids(), 5, "the surviving instances still route")
    print(f"ERROR for frames to the killed instance within {took:.2f} s; its agents gone from "
          f"the cluster view {since_kill:.2f} s after the kill (bound {DEAD_BOUND:.2f} s; "
          f"polls {max(gone):.2f} s)")
    for inbox in (alice, carol):
        await inbox.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_paused_instance_never_delivers_frames_whose_senders_got_an_error(
        start_gateways: StartGateways) -> None:
    """SIGSTOP then SIGCONT: the frames queued for it time out (ERROR), and when it resumes it
    drops them instead of delivering late, re-publishes its agents and routes again."""
    a, b = start_gateways("gw-a", "gw-b")
    alice = Inbox(await agent(a, "alice"))
    bob = Inbox(await agent(b, "bob"))
    b.signal(signal.SIGSTOP)
    ids = [await alice.client.send(bob.client.did, "OFFER", {"n": n}) for n in range(3)]
    await alice.wait(lambda: set(ids) <= set(alice.errors()), DELIVERY_TIMEOUT + 1.0,
                     "an ERROR for every frame sent to the paused instance")
    assert {alice.errors()[i] for i in ids} == {"DELIVERY_FAILED"}
    await wait_until(lambda: _absent(a, bob.client.did), DEAD_BOUND, "bob reaped while paused")
    b.signal(signal.SIGCONT)
    await wait_until(lambda: _is(a, bob.client.did, "gw-b"), 5, "bob re-published after resuming")
    again = await alice.client.send(bob.client.did, "OFFER", {"n": "again"})
    await bob.wait(lambda: again in bob.ids(), 5, "routing to the resumed instance")
    assert not set(ids) & set(bob.ids()), "a frame was delivered after its sender got ERROR"
    for inbox in (alice, bob):
        await inbox.close()


async def _is(gateway: GatewayProcess, did: str, instance: str) -> bool:
    return await listed(gateway, did) == instance


@pytest.mark.gen_test(timeout=90)
async def test_redis_killed_and_restarted_mid_traffic_loses_nothing_silently(
        start_gateways: StartGateways, redis_server: RedisServer) -> None:
    a, b = start_gateways("gw-a", "gw-b")
    sender = Inbox(await agent(a, "sender"))
    local = Inbox(await agent(a, "local"))
    remote = Inbox(await agent(b, "remote"))
    local_sent: list[str] = []
    remote_sent: list[str] = []
    phase = {"name": "before"}
    remote_by_phase: dict[str, list[str]] = {"before": [], "outage": [], "after": []}
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            local_sent.append(await sender.client.send(local.client.did, "OFFER", {}))
            message_id = await sender.client.send(remote.client.did, "OFFER", {})
            remote_sent.append(message_id)
            remote_by_phase[phase["name"]].append(message_id)
            await asyncio.sleep(0.01)  # paces the traffic

    task = asyncio.create_task(traffic())
    await remote.wait(lambda: len(set(remote_by_phase["before"]) & set(remote.ids())) >= 10, 5,
                      "cross-instance traffic flowing before the outage")
    redis_server.kill()
    phase["name"] = "outage"
    outage_started = time.monotonic()

    async def degraded() -> bool:
        _, health = await get_json(f"{a.http_url}/health")
        return health["status"] == "degraded" and health["redis"]["state"] == "disconnected"

    await wait_until(degraded, 3, "gw-a reports degraded")
    _, health = await get_json(f"{a.http_url}/health")
    assert health["redis"]["error"]
    late = Inbox(await agent(a, "registered-during-outage"))  # registrations go on
    await sender.wait(lambda: len(remote_by_phase["outage"]) >= 20, 5,
                      "20 cross-instance frames sent during the outage")
    redis_server.start()  # same port, empty: nothing was saved
    phase["name"] = "after"
    restarted = time.monotonic()

    async def healed() -> bool:
        for gateway in (a, b):
            _, health = await get_json(f"{gateway.http_url}/health")
            if health["status"] != "healthy" or health["connected_agents"] != 4:
                return False
        return await listed(b, late.client.did) == "gw-a" and await listed(
            a, remote.client.did) == "gw-b"

    heal = await wait_until(healed, 10, "both instances healthy with the full registry again")
    await remote.wait(lambda: bool(set(remote_by_phase["after"]) & set(remote.ids())), 5,
                      "cross-instance delivery resumed")
    await remote.wait(lambda: len(set(remote_by_phase["after"]) & set(remote.ids())) >= 20, 5,
                      "20 cross-instance frames delivered after the restart")
    stop.set()
    await asyncio.wait_for(task, 5)

    def settled() -> bool:
        answered = set(remote.ids()) | set(sender.errors())
        return set(remote_sent) <= answered and set(local_sent) <= set(local.ids())

    await sender.wait(settled, DELIVERY_TIMEOUT + 2.0, "every frame delivered or answered")
    delivered = set(remote.ids())
    errors = sender.errors()
    missing = [m for m in remote_sent if m not in delivered and m not in errors]
    assert missing == []
    assert set(local_sent) <= set(local.ids())  # local routing never stopped
    assert not set(local_sent) & set(errors)
    assert {errors[m] for m in remote_sent if m in errors} <= {"DELIVERY_FAILED"}
    outage = remote_by_phase["outage"]
    assert outage and all(m in errors for m in outage if m not in delivered)
    both = [m for m in remote_sent if m in delivered and m in errors]
    print(f"redis outage: {len(local_sent)} local frames all delivered; {len(remote_sent)} "
          f"cross-instance frames: {len(delivered & set(remote_sent))} delivered, "
          f"{sum(m in errors for m in remote_sent)} answered ERROR ({len(both)} both), 0 missing; "
          f"outage {restarted - outage_started:.2f} s; healed {heal:.2f} s after the restart")
    for inbox in (sender, local, remote, late):
        await inbox.close()


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_drains_one_instance_while_agents_talk_through_the_others(
        start_gateways: StartGateways) -> None:
    a, b, c = start_gateways("gw-a", "gw-b", "gw-c")
    alice = Inbox(await agent(a, "alice"))
    bob = Inbox(await agent(b, "bob"))
    carol_client = await agent(c, "carol")
    carol_key = carol_client.key
    sent: list[str] = []
    stop = asyncio.Event()

    async def talk() -> None:
        while not stop.is_set():
            sent.append(await alice.client.send(bob.client.did, "ICE_CANDIDATE", {}))
            sent.append(await bob.client.send(alice.client.did, "ICE_CANDIDATE", {}))
            await asyncio.sleep(0.005)  # paces the traffic

    task = asyncio.create_task(talk())
    await alice.wait(lambda: len(alice.ids()) >= 10, 5, "alice and bob talking")
    c.signal(signal.SIGTERM)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(carol_client.receive(), 5)
    assert carol_client.close_code == 1001
    # presence is withdrawn before agents are closed: by now nobody routes to gw-c
    assert await listed(a, carol_client.did) is None
    assert await asyncio.get_running_loop().run_in_executor(None, c.wait, 10) == 0
    carol = Inbox(GatewayClient(a.ws_url, carol_key, metadata={"name": "carol"}))
    await carol.client.connect()  # it reconnects to another instance
    await wait_until(lambda: _is(b, carol_key.did, "gw-a"), 5, "carol listed on gw-a")
    hello = await bob.client.send(carol_key.did, "ANSWER", {})
    await carol.wait(lambda: hello in carol.ids(), 5, "bob reaches carol on her new instance")
    talked = len(sent)
    await alice.wait(lambda: len(sent) >= talked + 20, 5, "alice and bob still talking after")
    stop.set()
    await asyncio.wait_for(task, 5)
    received = set(alice.ids()) | set(bob.ids())
    await alice.wait(lambda: set(sent) <= set(alice.ids()) | set(bob.ids()), 5,
                     "every frame between alice and bob delivered")
    received = set(alice.ids()) | set(bob.ids())
    assert set(sent) <= received
    assert alice.errors() == {} and bob.errors() == {}
    _, health = await get_json(f"{a.http_url}/health")
    assert health["instances"] == 2 and health["connected_agents"] == 3
    for inbox in (alice, bob, carol):
        await inbox.close()
