"""Discovery and presence across real gateway processes behind one real Redis."""

from __future__ import annotations

import asyncio
import signal

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, PresenceEvent
from tests.cluster.conftest import StartGateways
from tests.cluster.harness import get_json
from tests.cluster.processes import TTL
from tests.support.process import GatewayProcess
from tests.support.sdk import collect, next_event
from tests.support.waiting import wait_until

PRESENCE_WINDOW = ("--presence-coalesce", "0.2")


async def member(gateway: object, key: DIDKey | None = None, **kwargs: object) -> GatewayClient:
    client = GatewayClient(gateway.ws_url, key or DIDKey.generate(),  # type: ignore[attr-defined]
                           connect_timeout=5, **kwargs)  # type: ignore[arg-type]
    await client.connect()
    return client


Watching = tuple[GatewayProcess, GatewayClient, "asyncio.Queue[PresenceEvent]", GatewayClient]


async def watching_across(start_gateways: StartGateways, name: str) -> Watching:
    """Two instances; a watcher on the first watches an agent called `name` on the second, once
    the first has heard of it (instances learn of each other's agents through Redis, a moment
    after the registration). Returns (the second instance, watcher, its events, the agent)."""
    a, b = start_gateways("gw-a", "gw-b", extra=PRESENCE_WINDOW)
    watcher = await member(a)
    events = collect(watcher)
    agent = await member(b, card={"name": name})

    async def listed() -> bool:
        page = await watcher.discover(name_prefix=name.lower())
        return [found.did for found in page.agents] == [agent.did]

    await wait_until(listed, 10, f"gw-b to announce {agent.did}")
    assert await watcher.watch([agent.did]) == {agent.did: "online"}
    return b, watcher, events, agent


@pytest.mark.gen_test(timeout=60)
async def test_discovery_and_presence_span_the_cluster(start_gateways: StartGateways) -> None:
    a, b = start_gateways("gw-a", "gw-b", extra=PRESENCE_WINDOW)
    seeker = await member(a)
    events = collect(seeker)
    key = DIDKey.generate()
    hidden_key = DIDKey.generate()
    assert await seeker.watch([key.did, hidden_key.did]) == {key.did: "offline",
                                                             hidden_key.did: "offline"}
    translator = await member(b, key, card={"name": "Translator", "capabilities": ["translate"]})
    assert await next_event(events) == PresenceEvent(key.did, "online", "online")
    hidden = await member(b, hidden_key, card={"name": "H", "capabilities": ["translate"]},
                          unlisted=True)
    page = await seeker.discover("translate")
    assert page.scope == "cluster" and [agent.did for agent in page.agents] == [key.did]
    assert page.agents[0].card == {"name": "Translator", "capabilities": ["translate"]}
    _, listing = await get_json(f"{a.http_url}/agents?capability=translate")  # operators: all
    assert listing["scope"] == "cluster" and listing["count"] == 2
    assert {agent["did"]: agent["instance"] for agent in listing["agents"]} == {
        key.did: "gw-b", hidden_key.did: "gw-b"}
    await hidden.watch([seeker.did])  # the unlisted agent shows itself to the seeker
    assert await next_event(events) == PresenceEvent(hidden_key.did, "online", "online")
    # takeover from the other instance: replaced; then gone: offline
    again = await member(a, key, card={"name": "Translator", "capabilities": ["translate"]})
    replaced = await next_event(events)
    assert (replaced.did, replaced.event) == (key.did, "replaced")
    await again.close()
    offline = await next_event(events)
    assert (offline.did, offline.state) == (key.did, "offline")
    assert (await seeker.discover("translate")).agents == []
    await translator.close()
    await hidden.close()
    assert (await next_event(events)).did == hidden_key.did
    await seeker.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_agents_of_a_killed_instance_go_offline_for_watchers(
        start_gateways: StartGateways) -> None:
    b, watcher, events, victim = await watching_across(start_gateways, "V")
    b.signal(signal.SIGKILL)
    b.wait(5)
    event = await next_event(events, timeout=TTL + 5)
    assert (event.did, event.event) == (victim.did, "offline")
    assert (await watcher.discover(name_prefix="v")).agents == []
    await watcher.close()


@pytest.mark.gen_test(timeout=60)
async def test_an_instance_started_later_sees_the_agents_already_there(
        start_gateways: StartGateways) -> None:
    (a,) = start_gateways("gw-a", extra=PRESENCE_WINDOW)
    early = await member(a, card={"name": "Early", "capabilities": ["x"]})
    (b,) = start_gateways("gw-b", extra=PRESENCE_WINDOW)
    late = await member(b)
    assert [agent.did for agent in (await late.discover("x")).agents] == [early.did]
    assert await late.watch([early.did]) == {early.did: "online"}
    await early.close()
    await late.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_drained_instance_takes_its_agents_offline_for_watchers(
        start_gateways: StartGateways) -> None:
    b, watcher, events, leaving = await watching_across(start_gateways, "L")
    b.signal(signal.SIGTERM)
    event = await next_event(events, timeout=10)
    assert (event.did, event.event) == (leaving.did, "offline")
    await wait_until(lambda: b.proc.poll() is not None, 15, "gw-b to finish its drain")
    assert b.proc.returncode == 0
    assert (await watcher.discover(name_prefix="l")).agents == []
    await leaving.close()
    await watcher.close()
