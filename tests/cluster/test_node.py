"""The node's tasks (backends/node.py) over an in-memory Bus: connecting, retrying with backoff,
refusing a duplicate INSTANCE_ID, publishing batches, reading the inbox, leaving. No Redis."""

from __future__ import annotations

import asyncio

import pytest

from aiconexus_gateway.backends.bus import (
    BusError,
    DuplicateInstanceError,
    HeartbeatResult,
    Op,
    PresenceOp,
    Published,
    Result,
    Route,
    RouteKind,
    SendOp,
)
from aiconexus_gateway.backends.presence import Activity, Presence
from aiconexus_gateway.backends.router import ClusterRouter
from aiconexus_gateway.backends.settings import ClusterSettings
from aiconexus_gateway.backends.wire import ClusterMessage, Deliver
from aiconexus_gateway.hub import Hub, HubSettings
from aiconexus_gateway.session import SessionSettings
from tests.support.waiting import wait_until

from .support import ALICE, BOB, GATEWAY, NONCE, frame, send_register


class MemoryBus:
    """The Bus protocol in memory: what the node asked of it, and an inbox the test fills."""

    description = "memory"
    clock_offset_ms = 0.0

    def __init__(self, *, refuse_connects: int = 0, duplicate: bool = False) -> None:
        self.refuse_connects = refuse_connects
        self.duplicate = duplicate
        self.connects: list[bool] = []  # the `first` flag of each successful connect
        self.published: list[Op] = []
        self.restored: list[list[Presence]] = []
        self.activity: list[Published] = []
        self.inbox: asyncio.Queue[ClusterMessage] = asyncio.Queue()
        self.left = self.disconnected = False
        self.hold_restore: asyncio.Event | None = None  # set: the next restore waits for it
        self.restoring = asyncio.Event()

    async def connect(self, *, first: bool) -> bool:
        if self.refuse_connects:
            self.refuse_connects -= 1
            raise BusError("Connection refused")
        if self.duplicate and first:
            raise DuplicateInstanceError("INSTANCE_ID gw-a is in use by another live instance")
        self.connects.append(first)
        return False

    async def rejoin(self) -> bool:
        return True

    async def restore(self, presences: list[Presence], gone: list[Presence] | None = None
                      ) -> list[int]:
        self.restored.append(list(presences))
        if self.hold_restore is not None:
            hold, self.hold_restore = self.hold_restore, None
            self.restoring.set()
            await hold.wait()
        return [100 + i for i in range(len(presences))]

    async def publish(self, batch: list[Op]) -> list[Result]:
        self.published.extend(batch)
        results: list[Result] = []
        for op in batch:
            if isinstance(op, SendOp):
                results.append(Route(RouteKind.REMOTE, "gw-b"))
            elif isinstance(op, PresenceOp):
                results.append(7 if op.up else None)
            else:
                results.append(True)
        return results

    async def listen(self) -> list[ClusterMessage]:
        try:
            return [await asyncio.wait_for(self.inbox.get(), 0.05)]
        except asyncio.TimeoutError:
            return []

    async def heartbeat(self, activity: list[Published]) -> HeartbeatResult:
        self.activity.extend(activity)
        return HeartbeatResult()

    async def leave(self) -> None:
        self.left = True

    async def disconnect(self) -> None:
        self.disconnected = True

    async def totals(self) -> tuple[int, int]:
        return 0, 0

    async def page(self, limit: int, offset: int) -> tuple[int, list[tuple[Presence, Activity]]]:
        return 0, []

    async def lookup(self, dids: list[str]) -> list[tuple[Presence, Activity]]:
        return []

    async def everyone(self) -> list[Presence]:
        return []


def _router(hub: Hub, bus: MemoryBus) -> ClusterRouter:
    settings = ClusterSettings("redis://memory", instance_id="gw-a", heartbeat_interval=0.05,
                               heartbeat_ttl=0.2, delivery_timeout=2.0)
    router = ClusterRouter(hub.registry, hub.actions, hub.metrics, hub.clock, settings, bus,
                           jitter=lambda: 0.0)
    hub.use(router, hub.views)
    return router


def _hub() -> Hub:
    """A hub on real time: the node's tasks sleep and wait for real."""
    return Hub(HubSettings(SessionSettings(30.0, 300.0, 20.0)), GATEWAY,
               nonce_source=lambda n: NONCE[:n])


@pytest.mark.gen_test(timeout=10)
async def test_a_duplicate_instance_id_stops_the_start_and_the_node() -> None:
    bus = MemoryBus(duplicate=True)
    router = _router(_hub(), bus)
    with pytest.raises(DuplicateInstanceError, match="in use"):
        await router.node.start(connect_wait=1.0)
    assert bus.disconnected and not router.node.up and bus.connects == []


@pytest.mark.gen_test(timeout=10)
async def test_a_refused_bus_is_retried_with_backoff_until_it_answers() -> None:
    bus = MemoryBus(refuse_connects=2)
    hub = _hub()
    router = _router(hub, bus)
    await router.node.start(connect_wait=0.01)  # returns after the first attempt failed
    assert not router.node.up and router.node.state()["error"] == "Connection refused"
    await wait_until(lambda: router.node.up, 5, "the third attempt to connect")
    assert bus.connects == [True]  # only the first successful connect checks the instance id
    assert hub.metrics.registry.get_sample_value("aiconexus_cluster_redis_up") == 1
    await router.close(timeout=1.0)
    assert bus.left and bus.disconnected


@pytest.mark.gen_test(timeout=10)
async def test_a_registration_is_answered_once_the_writer_published_it() -> None:
    bus = MemoryBus()
    hub = _hub()
    router = _router(hub, bus)
    await router.node.start(connect_wait=1.0)
    peer, connection = send_register(hub, ALICE)
    await wait_until(connection.registered_ok, 5, "REGISTERED after the presence was published")
    assert [op.presence.did for op in bus.published if isinstance(op, PresenceOp)] == [ALICE.did]
    assert router.state.generation(ALICE.did, peer) == 7
    assert peer.record is not None
    peer.record.messages_sent = 1  # counters that never moved are not published
    await wait_until(lambda: bool(bus.activity), 5, "the counters in a heartbeat")
    await router.close(timeout=1.0)


@pytest.mark.gen_test(timeout=10)
async def test_the_reader_hands_inbox_messages_to_the_router() -> None:
    bus = MemoryBus()
    hub = _hub()
    router = _router(hub, bus)
    router.node.withdrawn = True  # registrations complete locally: the agent is here at once
    await router.node.start(connect_wait=1.0)
    _, bob = send_register(hub, BOB)
    text, _ = frame(ALICE, BOB.did)
    await bus.inbox.put(Deliver("gw-b", 1, BOB.did, "OFFER", text, int(hub.clock.wall() * 1000
                                                                         + 10_000)))
    await wait_until(lambda: text in bob.sent, 5, "the frame from another instance delivered")
    await router.close(timeout=1.0)


@pytest.mark.gen_test(timeout=10)
async def test_agents_registered_while_the_bus_was_down_are_restored_when_it_is_back() -> None:
    bus = MemoryBus(refuse_connects=1)
    hub = _hub()
    router = _router(hub, bus)
    await router.node.start(connect_wait=0.01)
    peer, connection = send_register(hub, ALICE)
    assert connection.registered_ok()  # at once, locally
    await wait_until(lambda: router.node.up, 5, "the bus back")
    assert [[p.did for p in batch] for batch in bus.restored] == [[ALICE.did]]
    assert router.state.generation(ALICE.did, peer) == 100
    await router.close(timeout=1.0)


@pytest.mark.gen_test(timeout=10)
async def test_an_agent_registered_while_the_presence_is_restored_is_published_too() -> None:
    """A registration while the restore after reconnecting is in flight completes locally (the
    bus is not up yet); the node publishes it before it says the bus is up."""
    bus = MemoryBus(refuse_connects=1)
    bus.hold_restore = hold = asyncio.Event()
    hub = _hub()
    router = _router(hub, bus)
    await router.node.start(connect_wait=0.01)
    await wait_until(bus.restoring.is_set, 5, "the restore after connecting")
    peer, connection = send_register(hub, ALICE)
    assert connection.registered_ok()  # at once, locally
    hold.set()
    await wait_until(lambda: router.node.up, 5, "the bus back")
    assert [[p.did for p in batch] for batch in bus.restored] == [[], [ALICE.did]]
    assert router.state.generation(ALICE.did, peer) == 100
    await router.close(timeout=1.0)
