"""Discovery and presence through the real gateway and the SDK, over real sockets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from aiconexus_gateway.client import (
    DIDKey,
    GatewayClient,
    GatewayError,
    PresenceEvent,
    ReconnectPolicy,
)
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent, read_json
from tests.e2e.wire import registered, signed
from tests.support.sdk import collect, next_event
from tests.support.waiting import wait_until


@pytest.mark.gen_test
async def test_discover_by_capability_pages_through_verified_cards(gateway: Gateway) -> None:
    translators = [await connect_agent(gateway, card={"name": f"T{i}", "capabilities":
                                                      ["translate"]}) for i in range(5)]
    other = await connect_agent(gateway, card={"name": "S", "capabilities": ["summarize"]})
    seeker = await connect_agent(gateway)
    first = await seeker.discover("translate", limit=2)
    assert len(first.agents) == 2 and first.next is not None and first.rejected == 0
    found = [agent.did async for agent in seeker.discover_all("translate")]
    assert found == sorted(client.did for client in translators)
    page = await seeker.discover(name_prefix="s")
    assert [(a.did, a.name, a.capabilities) for a in page.agents] == [
        (other.did, "S", ["summarize"])]
    for client in [*translators, other, seeker]:
        await client.close()


@pytest.mark.gen_test
async def test_unlisted_agents_are_routable_but_not_discovered(gateway: Gateway) -> None:
    hidden = await connect_agent(gateway, card={"name": "H", "capabilities": ["x"]}, unlisted=True)
    seeker = await connect_agent(gateway)
    page = await seeker.discover(dids=[hidden.did])
    assert page.agents == [] and page.next is None
    assert (await seeker.discover("x")).agents == []
    assert await seeker.watch([hidden.did]) == {hidden.did: "offline"}
    await seeker.send(hidden.did, "INTENT", {"hi": 1})
    assert (await hidden.receive(timeout=5)).payload == {"hi": 1}
    await hidden.close()
    await seeker.close()


@pytest.mark.gen_test
async def test_a_malformed_query_is_answered_with_what_is_wrong(gateway: Gateway) -> None:
    seeker = await connect_agent(gateway)
    with pytest.raises(GatewayError) as raised:
        await seeker.discover(limit=1000)
    assert raised.value.code == "MALFORMED_MESSAGE" and "'limit'" in raised.value.message
    assert seeker.connected
    await seeker.close()


@pytest.mark.gen_test
async def test_a_bad_card_is_refused_by_the_sdk_and_by_the_gateway(gateway: Gateway) -> None:
    with pytest.raises(ValueError, match=r"card\.capabilities"):
        GatewayClient(gateway.ws_url, card={"name": "x", "capabilities": "translate"})
    ws, key = await registered(gateway)  # the gateway checks too (another client, raw frames)
    frame = json.loads(signed(key, "DISCOVER", gateway.hub.did, {"capability": "a b"}))
    await ws.write_message(json.dumps(frame))
    answer = await read_json(ws)
    assert answer is not None and answer["payload"]["code"] == "MALFORMED_MESSAGE"
    ws.close()


@pytest.mark.gen_test
@pytest.mark.gateway_config(presence_coalesce=0.2)
async def test_watch_reports_online_offline_and_replaced(gateway: Gateway) -> None:
    watcher = await connect_agent(gateway)
    events = collect(watcher)
    key = DIDKey.generate()
    assert await watcher.watch([key.did]) == {key.did: "offline"}
    first = await connect_agent(gateway, key)
    assert await next_event(events) == PresenceEvent(key.did, "online", "online")
    second = await connect_agent(gateway, key)  # takes over (4409 for the first)
    replaced = await next_event(events)
    assert (replaced.event, replaced.state) == ("replaced", "online")
    await second.close()
    assert (await next_event(events)).event == "offline"
    await first.close()
    await watcher.close()


@pytest.mark.gen_test
@pytest.mark.gateway_config(presence_coalesce=2.0)
async def test_a_flapping_agent_is_coalesced_for_its_watchers(gateway: Gateway) -> None:
    watcher = await connect_agent(gateway)
    events = collect(watcher)
    key = DIDKey.generate()
    await watcher.watch([key.did])
    for _ in range(10):
        flapper = await connect_agent(gateway, key)
        await flapper.close()
    first = await next_event(events)
    assert first.event == "online"
    last = await next_event(events)
    assert (last.event, last.state) == ("offline", "offline") and last.changes > 1
    # nothing more comes: a PING's PONG proves the gateway has answered everything before it
    await watcher.ping()
    assert events.empty()
    await watcher.close()


@pytest.mark.gen_test
@pytest.mark.gateway_config(watch_limit=2)
async def test_the_watch_bound_is_the_gateways(gateway: Gateway) -> None:
    watcher = await connect_agent(gateway)
    dids = [DIDKey.generate().did for _ in range(3)]
    with pytest.raises(GatewayError) as raised:
        await watcher.watch(dids)
    assert raised.value.code == "MALFORMED_MESSAGE"
    assert await watcher.watch(dids[:2]) == {did: "offline" for did in dids[:2]}
    await watcher.unwatch(dids[:1])
    assert watcher.watching == dids[1:2]
    await watcher.close()


@pytest.mark.gen_test
async def test_presence_iterator_ends_when_the_client_closes(gateway: Gateway) -> None:
    watcher = await connect_agent(gateway)
    other = DIDKey.generate()
    await watcher.watch([other.did])
    agent = await connect_agent(gateway, other)
    stream = watcher.presence()
    assert (await asyncio.wait_for(stream.__anext__(), 5)).event == "online"
    await watcher.close()
    assert [event async for event in stream] == []
    await agent.close()


async def get_agents(gateway: Gateway, query: str) -> tuple[int, dict[str, Any]]:
    response = await AsyncHTTPClient().fetch(f"{gateway.http_url}/agents{query}", raise_error=False)
    return response.code, json.loads(response.body)


@pytest.mark.gen_test
async def test_agents_shows_cards_and_filters_them_for_operators(gateway: Gateway) -> None:
    card = {"name": "Translator", "capabilities": ["translate"]}
    translator = await connect_agent(gateway, card=card)
    hidden = await connect_agent(gateway, card={"name": "Tr-hidden", "capabilities": ["translate"]},
                                 unlisted=True)
    plain = await connect_agent(gateway)
    code, body = await get_agents(gateway, "")
    assert code == 200 and body["count"] == 3
    views = {agent["did"]: agent for agent in body["agents"]}
    assert views[translator.did]["card"] == card and "unlisted" not in views[translator.did]
    assert views[hidden.did]["unlisted"] is True and "card" not in views[plain.did]
    code, body = await get_agents(gateway, "?capability=translate")
    assert body["count"] == 2  # operators see unlisted agents too
    assert [agent["did"] for agent in body["agents"]] == sorted([translator.did, hidden.did])
    code, body = await get_agents(gateway, "?capability=translate&name_prefix=TRANS&limit=1")
    assert (body["count"], [a["did"] for a in body["agents"]]) == (1, [translator.did])
    code, body = await get_agents(gateway, "?capability=no%20spaces")
    assert code == 400 and body["error"] == "BAD_REQUEST" and "capability" in body["message"]
    for client in (translator, hidden, plain):
        await client.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_reconnected_client_watches_the_same_agents_again(gateway: Gateway) -> None:
    watcher = GatewayClient(gateway.ws_url, DIDKey.generate(),
                            reconnect=ReconnectPolicy(initial_delay=0.05, max_delay=0.2))
    events = collect(watcher)
    reconnected = asyncio.Event()
    watcher.on_connection_change(
        lambda event: reconnected.set() if event.state == "reconnected" else None)
    await watcher.connect()
    other = DIDKey.generate()
    await watcher.watch([other.did])
    peer = gateway.hub.registry.get(watcher.did)
    assert peer is not None
    peer.connection.close(1001, "test drops the connection")
    await asyncio.wait_for(reconnected.wait(), 5)
    await wait_until(lambda: gateway.hub.directory.watches.watched(other.did), 5,
                     "the watch sent again after the reconnection")
    agent = await connect_agent(gateway, other)
    assert (await next_event(events)) == PresenceEvent(other.did, "online", "online")
    await agent.close()
    await watcher.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(discovery_rate=0.01)  # no token comes back during the test
async def test_hostile_queries_are_refused_or_bounded(gateway: Gateway) -> None:
    ws, key = await registered(gateway)
    huge = {"capability": "x", "padding": "y" * 60_000}  # an unknown member, near the frame limit
    await ws.write_message(signed(key, "DISCOVER", gateway.hub.did, huge))
    answer = await read_json(ws)
    assert answer is not None and answer["payload"]["code"] == "MALFORMED_MESSAGE"
    assert "'padding'" in answer["payload"]["message"]
    # a burst over DISCOVERY_BURST (20; the refused one above took a token too): the rest are
    # RATE_LIMITED, and the session stays
    for n in range(25):
        await ws.write_message(signed(key, "DISCOVER", gateway.hub.did, {"name_prefix": f"{n}"}))
    answers = [await read_json(ws) for _ in range(25)]
    kinds = [a["type"] if a["type"] != "ERROR" else a["payload"]["code"]
             for a in answers if a is not None]
    assert kinds.count("DISCOVERED") == 20 - 1 and kinds.count("RATE_LIMITED") == 6, kinds
    ws.close()
