"""SDK reconnection in-process: bounded queue, order kept, Retry-After honoured, final closes final."""

from __future__ import annotations

import asyncio

import pytest

from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient, Message
from aiconexus_gateway.client.errors import SendQueueFull
from aiconexus_gateway.client.reconnect import ConnectionEvent, ReconnectPolicy
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.support.waiting import wait_until

FAST = ReconnectPolicy(initial_delay=0.05, max_delay=0.2)


def drop(gateway: Gateway, did: str, code: int = 1001) -> None:
    peer = gateway.hub.registry.get(did)
    assert peer is not None
    peer.connection.close(code, "test drops the connection")


@pytest.mark.gen_test(timeout=20)
async def test_while_reconnecting_sends_wait_in_a_bounded_queue_and_go_out_in_order(
        gateway: Gateway) -> None:
    bob = await connect_agent(gateway)
    alice = GatewayClient(gateway.ws_url, DIDKey.generate(), reconnect=FAST, send_queue_size=3)
    events: list[ConnectionEvent] = []
    alice.on_connection_change(events.append)
    await alice.connect()
    gateway.hub.draining = True  # new handshakes get 503 + Retry-After: Alice stays out
    drop(gateway, alice.did)
    await wait_until(lambda: alice.reconnecting, 5, "alice to notice the drop")
    queued = [await alice.send(bob.did, "ICE_CANDIDATE", {"seq": i}) for i in range(3)]
    with pytest.raises(SendQueueFull):
        await alice.send(bob.did, "ICE_CANDIDATE", {"seq": 3})
    assert alice.queued == 3
    await wait_until(lambda: sum(e.state == "reconnecting" for e in events) >= 2, 5,
                     "an attempt refused with Retry-After")
    gateway.hub.draining = False
    await wait_until(lambda: alice.connected, 5, "alice back")
    received = [await bob.receive(timeout=5) for _ in range(3)]
    assert [m.id for m in received] == queued and alice.queued == 0
    after = await alice.send(bob.did, "ICE_CANDIDATE", {"seq": "after"})
    assert (await bob.receive(timeout=5)).id == after
    states = [e.state for e in events]
    assert states[0] == "disconnected" and states[-1] == "reconnected"
    assert events[0].code == 1001
    refused_attempts = [e for e in events if e.state == "reconnecting"][1:]
    assert refused_attempts and all(e.delay >= 0.2 for e in refused_attempts)  # Retry-After: 1, capped
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=20)
async def test_session_replaced_is_final_and_does_not_fight_back(gateway: Gateway) -> None:
    key = DIDKey.generate()
    first = GatewayClient(gateway.ws_url, key, reconnect=FAST)
    events: list[ConnectionEvent] = []
    first.on_connection_change(events.append)
    await first.connect()
    second = await connect_agent(gateway, key)
    notice = await first.receive(timeout=5)
    assert notice.error_code == "SESSION_REPLACED"
    with pytest.raises(ConnectionClosed):
        await first.receive(timeout=5)
    assert first.close_code == 4409 and not first.reconnecting
    assert [e.state for e in events] == ["closed"]
    await asyncio.sleep(0.3)  # on purpose: longer than FAST's backoff, had it tried to come back
    assert gateway.hub.registry.get(key.did).session.session_id == second.session_id  # type: ignore[union-attr]
    await second.close()


@pytest.mark.gen_test(timeout=20)
async def test_the_sdk_gives_up_after_max_attempts_and_says_so(gateway: Gateway) -> None:
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.05, max_attempts=3)
    alice = GatewayClient(gateway.ws_url, DIDKey.generate(), reconnect=policy)
    events: list[ConnectionEvent] = []
    alice.on_connection_change(events.append)
    await alice.connect()
    gateway.hub.draining = True
    drop(gateway, alice.did)
    with pytest.raises(ConnectionClosed):
        await alice.receive(timeout=5)
    assert [e.state for e in events] == ["disconnected", "reconnecting", "reconnecting",
                                         "reconnecting", "closed"]
    assert "after 3 attempts" in (events[-1].reason or "")
    assert alice.close_code == events[-1].code == 1001  # how the last connection ended
    with pytest.raises(ConnectionClosed):
        await alice.send(DIDKey.generate().did, "OFFER", {})
    gateway.hub.draining = False


@pytest.mark.gen_test(timeout=20)
async def test_without_reconnect_a_lost_connection_ends_the_client(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    drop(gateway, alice.did)
    with pytest.raises(ConnectionClosed):
        await alice.receive(timeout=5)
    assert alice.close_code == 1001 and not alice.reconnecting
    with pytest.raises(ConnectionClosed):
        await alice.send(DIDKey.generate().did, "OFFER", {})


@pytest.mark.gen_test(timeout=20)
async def test_close_during_reconnection_stops_it_and_drops_the_queue(gateway: Gateway) -> None:
    alice = GatewayClient(gateway.ws_url, DIDKey.generate(), reconnect=FAST)
    await alice.connect()
    gateway.hub.draining = True
    drop(gateway, alice.did)
    await wait_until(lambda: alice.reconnecting, 5, "alice to notice the drop")
    await alice.send(DIDKey.generate().did, "OFFER", {})
    await alice.close()
    assert not alice.reconnecting and alice.queued == 0
    gateway.hub.draining = False
    await asyncio.sleep(0.3)  # on purpose: longer than FAST's backoff, had it gone on trying
    assert gateway.hub.agent(alice.did) is None


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(max_outbound_buffer=262144, rate_limit=0)
async def test_a_handler_only_client_is_never_cut_off_as_a_slow_consumer(gateway: Gateway) -> None:
    """Regression: with on_message handlers only, every message also went into the bounded
    receive() queue; once full, the client stopped reading, the gateway closed it (4008) and
    the blocked client never noticed."""
    alice = await connect_agent(gateway)
    bob = GatewayClient(gateway.ws_url, DIDKey.generate(), queue_size=5, reconnect=FAST)
    events: list[ConnectionEvent] = []
    bob.on_connection_change(events.append)
    total, received = 2000, []
    everything = asyncio.Event()

    @bob.on_message
    def collect(message: Message) -> None:
        received.append(message.id)
        if len(received) == total:
            everything.set()

    await bob.connect()
    padding = "x" * 200  # 2000 frames of ~600 bytes: several times MAX_OUTBOUND_BUFFER
    sent = [await alice.send(bob.did, "INTENT", {"n": n, "pad": padding}) for n in range(total)]
    await wait_until(everything, 15, lambda: f"bob's {len(received)} of {total} messages")
    assert received == sent
    assert events == [] and bob.connected and bob.reconnects == 0
    await alice.close()
    await bob.close()
