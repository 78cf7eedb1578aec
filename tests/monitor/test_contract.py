"""The monitor's parser fed with the real gateway's JSON: pins the HTTP contract both sides use."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from aiconexus_gateway.server.app import Gateway
from monitor.api import GatewayAPI
from monitor.contract import (
    AgentPage,
    Health,
    MalformedResponse,
    merge_pages,
    parse_agent,
    parse_agent_page,
    parse_health,
    parse_timestamp,
)

from .builders import DID_A, DID_B, DID_C, HEALTH_JSON, T0, agent, agent_json
from .helpers import agents, exchange


@pytest.mark.gen_test(timeout=15)
async def test_real_health_and_agents_output_parses_into_the_monitors_models(
    gateway: Gateway,
) -> None:
    async with agents(gateway, "alice", "bob") as (alice, bob), httpx.AsyncClient() as http:
        await exchange(alice, bob, 3)
        health_response = await http.get(f"{gateway.http_url}/health")
        page_response = await http.get(f"{gateway.http_url}/agents", params={"limit": 1000})
        one_response = await http.get(f"{gateway.http_url}/agents/{bob.did}")

    assert health_response.status_code == 200
    health = parse_health(health_response.json())
    assert (health.status, health.connected_agents) == ("healthy", 2)
    assert health.gateway_did == gateway.did
    assert health.version and health.uptime_seconds >= 0

    page = parse_agent_page(page_response.json())
    assert (page.count, page.limit, page.offset) == (2, 1000, 0)
    assert [a.did for a in page.agents] == [alice.did, bob.did]  # ordered by connected_at
    by_did = {a.did: a for a in page.agents}
    assert by_did[alice.did].name == "alice" and by_did[bob.did].name == "bob"
    assert by_did[alice.did].messages_sent == 3
    assert by_did[bob.did].messages_received == 3
    assert by_did[alice.did].connected_at <= by_did[alice.did].last_activity <= health.timestamp

    assert parse_agent(one_response.json()).did == bob.did


@pytest.mark.gen_test(timeout=15)
async def test_monitor_api_reads_a_real_gateway_page_by_page(gateway: Gateway) -> None:
    async with (
        agents(gateway, "a", "b", "c") as clients,
        GatewayAPI(gateway.http_url, page_size=2) as api,
    ):
        snapshot = await api.snapshot()
    assert list(snapshot.agents) == [client.did for client in clients]
    assert snapshot.total == 3 and not snapshot.partial
    assert snapshot.health.gateway_did == gateway.did


@pytest.mark.gen_test(timeout=15)
async def test_gateway_errors_are_json_as_the_monitor_expects(gateway: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        unknown = await http.get(f"{gateway.http_url}/agents/did:key:z6MkNobody")
        bad_page = await http.get(f"{gateway.http_url}/agents", params={"limit": 0})
    assert unknown.status_code == 404 and unknown.json()["error"] == "UNKNOWN_AGENT"
    assert bad_page.status_code == 400 and bad_page.json()["error"] == "BAD_REQUEST"


# -------------------------------------------------------------------- parsing, pure


def test_contract_example_health_parses() -> None:
    parsed = parse_health(HEALTH_JSON)
    assert parsed == Health(
        status="healthy",
        connected_agents=2,
        timestamp=datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=timezone.utc),
        version="0.1.0",
        gateway_did=DID_C,
        uptime_seconds=12.3,
    )


def test_health_ignores_unknown_fields_so_the_gateway_can_add_some() -> None:
    assert parse_health({**HEALTH_JSON, "region": "eu"}).status == "healthy"


@pytest.mark.parametrize(
    "broken",
    [
        [],
        "healthy",
        {**HEALTH_JSON, "status": None},
        {**HEALTH_JSON, "connected_agents": "2"},
        {**HEALTH_JSON, "connected_agents": True},
        {**HEALTH_JSON, "connected_agents": -1},
        {**HEALTH_JSON, "timestamp": "yesterday"},
        {**HEALTH_JSON, "uptime_seconds": "long"},
    ],
)
def test_malformed_health_is_refused(broken: object) -> None:
    with pytest.raises(MalformedResponse):
        parse_health(broken)


def test_contract_example_agent_parses() -> None:
    parsed = parse_agent(agent_json())
    assert parsed.did == DID_A
    assert parsed.connected_at == datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=timezone.utc)
    assert parsed.last_activity == datetime(2026, 11, 26, 10, 0, 5, 456000, tzinfo=timezone.utc)
    assert (parsed.messages_sent, parsed.messages_received, parsed.messages) == (3, 4, 7)
    assert parsed.name == "alice"


def test_agent_without_metadata_has_no_name() -> None:
    assert parse_agent(agent_json(metadata=None)).name == ""
    assert parse_agent(agent_json(metadata={"name": 7})).name == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"did": None},
        {"connected_at": 1764150000},
        {"last_activity": "not a time"},
        {"messages_sent": 1.5},
        {"messages_received": None},
        {"metadata": ["name"]},
    ],
)
def test_malformed_agent_is_refused_naming_the_field(changes: dict[str, Any]) -> None:
    field = next(iter(changes))
    with pytest.raises(MalformedResponse, match=field):
        parse_agent(agent_json(**changes))


def test_agent_page_parses() -> None:
    page = parse_agent_page(
        {"agents": [agent_json(DID_A), agent_json(DID_B)], "count": 5, "limit": 2, "offset": 0}
    )
    assert [a.did for a in page.agents] == [DID_A, DID_B]
    assert (page.count, page.limit, page.offset) == (5, 2, 0)


@pytest.mark.parametrize(
    "broken",
    [
        {"agents": {}, "count": 0, "limit": 100, "offset": 0},
        {"agents": [], "limit": 100, "offset": 0},
        {"agents": [{"did": DID_A}], "count": 1, "limit": 100, "offset": 0},
        None,
    ],
)
def test_malformed_agent_page_is_refused(broken: object) -> None:
    with pytest.raises(MalformedResponse):
        parse_agent_page(broken)


def test_timestamps_without_zone_are_taken_as_utc() -> None:
    assert parse_timestamp("2026-11-26T10:00:00") == T0
    assert parse_timestamp("2026-11-26T11:00:00+01:00") == T0


def test_pages_merge_in_order_and_an_agent_shifted_onto_two_pages_counts_once() -> None:
    a, b, c = agent(DID_A), agent(DID_B), agent(DID_C)
    first = AgentPage(agents=(a, b), count=3, limit=2, offset=0)
    second = AgentPage(agents=(b, c), count=4, limit=2, offset=2)
    agents, total = merge_pages([first, second])
    assert list(agents) == [DID_A, DID_B, DID_C]
    assert total == 4


def test_merged_total_is_never_less_than_what_was_fetched() -> None:
    agents, total = merge_pages([AgentPage(agents=(agent(DID_A),), count=0, limit=1, offset=0)])
    assert total == len(agents) == 1
