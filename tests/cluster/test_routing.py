"""Three gateway processes behind one Redis act as one gateway: routing, views, sessions."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import pytest

from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient
from aiconexus_gateway.messages import ROUTABLE_TYPES
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

from .conftest import StartGateways
from .harness import Inbox, agent, get_json, get_text, listed, signed
from .processes import HEARTBEAT


@pytest.mark.gen_test(timeout=60)
async def test_every_routable_type_crosses_instances_byte_for_byte_and_in_order(
        start_gateways: StartGateways) -> None:
    a, b, c = start_gateways("gw-a", "gw-b", "gw-c")
    alice, carol = await agent(a, "alice"), await agent(c, "carol")
    receiver = await agent(b, "bob")
    sent: dict[str, list[str]] = {alice.did: [], carol.did: []}
    latencies: list[float] = []
    for n in range(40):  # one frame at a time first: the cross-instance round trip
        sender = (alice, carol)[n % 2]
        text, _ = signed(sender, receiver.did, "PING", {"probe": n})
        started = time.perf_counter()
        await sender.send_raw(text)
        assert (await receiver.receive(timeout=5)).raw == text
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    bob = Inbox(receiver)

    async def burst(sender: GatewayClient, rounds: int) -> None:
        for n in range(rounds):
            for type in sorted(ROUTABLE_TYPES):
                payload = {"n": n, "type": type, "text": "héllo \u00e9 \U0001f600 \"q\" \\ /",
                           "nested": {"b": [1, 2.5, None, True], "a": "z"}}
                text, _ = signed(sender, bob.client.did, type, payload)
                await sender.send_raw(text)
                sent[sender.did].append(text)

    await asyncio.gather(burst(alice, 30), burst(carol, 30))  # 2 x 270 frames, interleaved
    total = sum(len(texts) for texts in sent.values())
    await bob.wait(lambda: len(bob.messages) >= total, 15, f"{total} frames at bob")
    assert bob.raw(alice.did) == sent[alice.did]  # identical bytes, sender order kept
    assert bob.raw(carol.did) == sent[carol.did]
    assert {m.type for m in bob.messages} == ROUTABLE_TYPES
    assert alice.invalid_messages == carol.invalid_messages == bob.client.invalid_messages == 0
    _, metrics = await get_text(f"{a.http_url}/metrics")
    assert 'aiconexus_cluster_outbound_total{result="delivered"}' in metrics
    print(f"cross-instance latency, one frame at a time: p50 {latencies[20] * 1000:.2f} ms, "
          f"max {latencies[-1] * 1000:.2f} ms")
    for client in (alice, carol):
        await client.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
async def test_health_and_agents_agree_on_every_instance(start_gateways: StartGateways) -> None:
    gateways = start_gateways("gw-a", "gw-b", "gw-c")
    placement = {"gw-a": 2, "gw-b": 1, "gw-c": 3}
    clients = []
    where: dict[str, str] = {}
    for gateway in gateways:
        for n in range(placement[gateway.name]):
            client = await agent(gateway, f"{gateway.name}-{n}")
            clients.append(client)
            where[client.did] = gateway.name

    async def all_listed() -> bool:
        for gateway in gateways:
            _, health = await get_json(f"{gateway.http_url}/health")
            if health["connected_agents"] != 6:
                return False
        return True

    await wait_until(all_listed, 5, "6 agents in every /health")
    views = []
    for gateway in gateways:
        code, health = await get_json(f"{gateway.http_url}/health")
        assert code == 200
        assert health["status"] == "healthy"
        assert health["instance_id"] == gateway.name
        assert health["instance_agents"] == placement[gateway.name]
        assert health["instances"] == 3
        assert health["redis"]["state"] == "connected"
        assert health["redis"]["prefix"] == "aiconexus"
        _, page = await get_json(f"{gateway.http_url}/agents")
        assert page["count"] == 6 and page["scope"] == "cluster"
        assert {a["did"]: a["instance"] for a in page["agents"]} == where
        assert [a["connected_at"] for a in page["agents"]] == sorted(
            a["connected_at"] for a in page["agents"])
        views.append(page["agents"])
        _, second = await get_json(f"{gateway.http_url}/agents?limit=2&offset=2")
        assert [a["did"] for a in second["agents"]] == [a["did"] for a in page["agents"][2:4]]
        for did, instance in where.items():
            assert await listed(gateway, did) == instance

    def identity(agents: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(a["did"], a["instance"], a["connected_at"], str(a["metadata"])) for a in agents]

    assert identity(views[0]) == identity(views[1]) == identity(views[2])
    # Counters of remote agents are as of their instance's last heartbeat: after some traffic and
    # a quiet heartbeat or two, every instance shows the same numbers.
    for client in clients:
        await client.send(clients[0].did, "INTENT", {"hello": client.did[-6:]})
    await wait_until(lambda: _counters_settled(gateways), 5, "identical counters everywhere",
                     interval=HEARTBEAT)
    for client in clients:
        await client.close()


async def _counters_settled(gateways: list[GatewayProcess]) -> bool:
    pages = [(await get_json(f"{g.http_url}/agents"))[1]["agents"] for g in gateways]
    first = pages[0]
    return (sum(a["messages_received"] for a in first) == 6
            and all(page == first for page in pages[1:]))


@pytest.mark.gen_test(timeout=60)
async def test_unknown_agents_are_answered_at_once_cluster_wide(start_gateways: StartGateways
                                                                ) -> None:
    a, b = start_gateways("gw-a", "gw-b")
    alice = Inbox(await agent(a, "alice"))
    bob = await agent(b, "bob")
    ids = [await alice.client.send(DIDKey.generate().did, "OFFER", {}) for _ in range(5)]
    took = await alice.wait(lambda: set(ids) <= set(alice.errors()), 1.0, "5 UNKNOWN_AGENT")
    assert {alice.errors()[i] for i in ids} == {"UNKNOWN_AGENT"}
    # an agent that just left is gone cluster-wide too: an ERROR, never silence
    await bob.close()
    left = await alice.client.send(bob.did, "OFFER", {})
    await alice.wait(lambda: left in alice.errors(), 5, "an ERROR for the agent that left")
    assert alice.errors()[left] in ("UNKNOWN_AGENT", "DELIVERY_FAILED")
    print(f"UNKNOWN_AGENT for 5 frames within {took * 1000:.1f} ms")
    await alice.close()


@pytest.mark.gen_test(timeout=60)
async def test_registering_on_another_instance_replaces_the_session_cluster_wide(
        start_gateways: StartGateways) -> None:
    a, b, c = start_gateways("gw-a", "gw-b", "gw-c")
    key = DIDKey.generate()
    first = Inbox(await agent(a, "first", key))
    carol = Inbox(await agent(c, "carol"))
    await wait_until(lambda: _is_listed(c, key.did, "gw-a"), 5, "the DID on gw-a")
    second = Inbox(await agent(b, "second", key))
    # The close code can be known before the Inbox task has collected the ERROR: wait for both.
    await first.wait(lambda: first.client.close_code is not None
                     and any(m.type == "ERROR" for m in first.messages), 5, "the first session closed")
    assert first.client.close_code == 4409
    assert [m.payload["code"] for m in first.messages if m.type == "ERROR"] == ["SESSION_REPLACED"]
    for gateway in (a, b, c):
        await wait_until(partial(_is_listed, gateway, key.did, "gw-b"), 5,
                         f"{gateway.name} sees the DID on gw-b")
    message_id = await carol.client.send(key.did, "OFFER", {"to": "the new session"})
    await second.wait(lambda: message_id in second.ids(), 5, "delivery to the new session")
    assert message_id not in first.ids()
    # and back again, to the instance of the sender
    third = Inbox(await agent(c, "third", key))
    await second.wait(lambda: second.client.close_code == 4409, 5, "the second session closed")
    _, page = await get_json(f"{a.http_url}/agents")
    assert [(x["instance"], x["metadata"]) for x in page["agents"] if x["did"] == key.did] == [
        ("gw-c", {"name": "third"})]
    for inbox in (first, second, third, carol):
        await inbox.close()


async def _is_listed(gateway: GatewayProcess, did: str, instance: str) -> bool:
    return await listed(gateway, did) == instance


@pytest.mark.gen_test(timeout=30)
async def test_replaced_sessions_do_not_linger_after_closing(start_gateways: StartGateways) -> None:
    """The replaced session closing on A must not remove the new session's presence (on B)."""
    a, b = start_gateways("gw-a", "gw-b")
    key = DIDKey.generate()
    first = await agent(a, "first", key)
    second = await agent(b, "second", key)
    replaced = await first.receive(timeout=5)
    assert replaced.error_code == "SESSION_REPLACED"
    with pytest.raises(ConnectionClosed):
        await first.receive(timeout=5)
    await asyncio.sleep(3 * HEARTBEAT)  # on purpose: heartbeats in which a wrong removal would show
    assert await listed(a, key.did) == "gw-b"
    await second.close()
    await wait_until(lambda: _gone(a, key.did), 5, "gone after the last session closed")


async def _gone(gateway: GatewayProcess, did: str) -> bool:
    return await listed(gateway, did) is None
