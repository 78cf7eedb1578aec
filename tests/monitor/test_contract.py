"""The monitor's parser fed with the real gateway's JSON: pins the HTTP contract both sides use."""

from __future__ import annotations

import httpx
import pytest

from aiconexus_gateway.server.app import Gateway
from monitor.api import GatewayAPI
from monitor.models import parse_agent, parse_agent_page, parse_health

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
