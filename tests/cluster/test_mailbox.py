"""The mailbox in cluster mode: real Redis, real gateway processes (backends/mailroom.py)."""

from __future__ import annotations

import signal
from functools import partial

import pytest

from aiconexus_gateway.client import DIDKey
from tests.support.process import GatewayProcess
from tests.support.sdk import next_of_type
from tests.support.waiting import wait_until

from .conftest import StartGateways
from .harness import agent, get_json, listed
from .processes import RedisServer


@pytest.mark.gen_test(timeout=60)
async def test_messages_wait_in_redis_through_the_death_of_the_instance_that_took_them(
        start_gateways: StartGateways) -> None:
    a, b = start_gateways("gw-a", "gw-b", extra=("--mailbox-max-per-sender", "10"))
    alice_key, bob_key = DIDKey.generate(), DIDKey.generate()
    alice = await agent(a, "alice", alice_key)
    ids = [await alice.send(bob_key.did, "INTENT", {"n": n}, ttl=60) for n in range(6)]
    for message_id in ids:
        assert (await next_of_type(alice, "QUEUED")).correlation_id == message_id
    a.signal(signal.SIGKILL)  # the instance that accepted them dies; alice is cut off
    a.wait(5)
    await alice.close()

    bob = await agent(b, "bob", bob_key)  # returns to the other instance
    got = [await next_of_type(bob, "INTENT") for _ in ids]
    assert [m.id for m in got] == ids and [m.payload["n"] for m in got] == list(range(6))
    alice = await agent(b, "alice", alice_key)  # the receipts waited for her, in Redis
    assert [await alice.receipt(message_id, timeout=10) for message_id in ids] == ["DELIVERED"] * 6
    marker = await alice.send(bob_key.did, "INTENT", {"marker": True})
    assert (await bob.receive(timeout=5)).id == marker  # nothing was written to bob twice
    assert bob.duplicates == 0
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
async def test_across_instances_delivery_receipts_rules_bounds_and_expiry(
        start_gateways: StartGateways) -> None:
    a, b = start_gateways("gw-a", "gw-b", extra=("--mailbox-max-per-sender", "2"))
    alice, carol = await agent(a, "alice"), await agent(a, "carol")
    bob = await agent(b, "bob")
    sent = await alice.send(bob.did, "EXEC_REQUEST", {"x": 1}, ttl=30)  # bob is on the other one
    received = await next_of_type(bob, "EXEC_REQUEST")
    assert (received.id, received.fields["ttl"]) == (sent, 30)
    assert await alice.receipt(sent, timeout=10) == "DELIVERED"

    view = await bob.mailbox(blocked=[carol.did])
    assert view["blocked"] == [carol.did] and view["enabled"] is True
    _, detail = await get_json(f"{a.http_url}/agents/{bob.did}")  # the other instance asks Redis
    assert detail["mailbox"] == view
    refused = await carol.send(bob.did, "INTENT", {}, ttl=30)
    error = await next_of_type(carol, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MAILBOX_REFUSED", refused)
    await bob.close()

    absent = DIDKey.generate().did
    for _ in range(2):
        await alice.send(absent, "INTENT", {}, ttl=1)
        await next_of_type(alice, "QUEUED")
    over = await alice.send(absent, "INTENT", {}, ttl=1)
    error = await next_of_type(alice, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MAILBOX_FULL", over)
    assert error.payload["details"]["reason"] == "pair_messages"
    expired = [await next_of_type(alice, "RECEIPT") for _ in range(2)]  # nobody came within 1 s
    assert {m.payload["status"] for m in expired} == {"EXPIRED"}
    await alice.close()
    await carol.close()


@pytest.mark.gen_test(timeout=60)
async def test_while_redis_is_down_a_ttl_is_refused_at_once_and_works_again_after(
        start_gateways: StartGateways, redis_server: RedisServer) -> None:
    a, b = start_gateways("gw-a", "gw-b")
    alice, bob = await agent(a, "alice"), await agent(b, "bob")
    redis_server.kill()
    await wait_until(partial(_redis_is, a, "disconnected"), 10, "gw-a to see Redis down")
    refused = await alice.send(DIDKey.generate().did, "INTENT", {}, ttl=30)
    error = await next_of_type(alice, "ERROR")
    assert (error.error_code, error.correlation_id) == ("MAILBOX_REFUSED", refused)
    assert error.payload["details"]["reason"] == "unavailable"
    redis_server.start()  # empty: bob's presence comes back with the re-publishing
    await wait_until(partial(_redis_is, a, "connected"), 10, "gw-a to reconnect")
    await wait_until(partial(_listed_on, a, bob.did), 10, "bob re-published")
    sent = await alice.send(bob.did, "INTENT", {"again": True}, ttl=30)
    assert (await next_of_type(bob, "INTENT")).id == sent
    assert await alice.receipt(sent, timeout=10) == "DELIVERED"
    await alice.close()
    await bob.close()


async def _redis_is(gateway: GatewayProcess, state: str) -> bool:
    _, health = await get_json(f"{gateway.http_url}/health")
    return bool(health["redis"]["state"] == state)


async def _listed_on(gateway: GatewayProcess, did: str) -> bool:
    return await listed(gateway, did) is not None


@pytest.mark.gen_test(timeout=60)
async def test_a_backlog_larger_than_the_outbound_buffer_drains_across_instances(
        start_gateways: StartGateways) -> None:
    a, b = start_gateways("gw-a", "gw-b", extra=("--max-outbound-buffer", "65536"))
    alice, bob_key = await agent(a, "alice"), DIDKey.generate()
    ids = [await alice.send(bob_key.did, "INTENT", {"n": n, "data": "x" * 4000}, ttl=120)
           for n in range(40)]
    for _ in ids:
        await next_of_type(alice, "QUEUED")
    bob = await agent(b, "bob", bob_key)
    assert [(await next_of_type(bob, "INTENT")).id for _ in ids] == ids
    assert bob.reconnects == 0 and bob.close_code is None
    assert [await alice.receipt(i, timeout=10) for i in ids] == ["DELIVERED"] * 40
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
async def test_an_emptied_mailbox_leaves_no_keys_in_redis(
        start_gateways: StartGateways, redis_server: RedisServer) -> None:
    [a] = start_gateways("gw-a")
    alice, bob = await agent(a, "alice"), await agent(a, "bob")
    ids = [await alice.send(bob.did, "INTENT", {}, ttl=30) for _ in range(3)]
    assert [(await next_of_type(bob, "INTENT")).id for _ in ids] == ids  # each acknowledged
    for message_id in ids:
        assert await alice.receipt(message_id, timeout=10) == "DELIVERED"
    redis = redis_server.client()
    try:
        await wait_until(lambda: not redis.keys("aiconexus:mb:did:*"), 5,
                         lambda: f"the boxes' keys to go: {redis.keys('aiconexus:mb:did:*')}")
        assert redis.get("aiconexus:mb:letters") == b"0" and redis.get("aiconexus:mb:bytes") == b"0"
    finally:
        redis.close()
    await alice.close()
    await bob.close()
