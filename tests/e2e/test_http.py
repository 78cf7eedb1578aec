"""The operators' HTTP API against the real server: /health, /agents, /agents/<did>, /metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from aiconexus_gateway import __version__
from aiconexus_gateway.client import DIDKey
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent


async def get_json(gateway: Gateway, path: str, expect: int = 200) -> dict[str, Any]:
    try:
        response = await AsyncHTTPClient().fetch(gateway.http_url + path)
        status, body = response.code, response.body
    except HTTPClientError as exc:
        assert exc.response is not None
        status, body = exc.code, exc.response.body
    assert status == expect, body
    return json.loads(body)


@pytest.mark.gen_test
async def test_health_reports_status_agents_version_and_gateway_did(gateway: Gateway) -> None:
    agent = await connect_agent(gateway)
    health = await get_json(gateway, "/health")
    assert health["status"] == "healthy"
    assert health["connected_agents"] == 1
    assert health["version"] == __version__
    assert health["gateway_did"] == gateway.did
    assert health["timestamp"].endswith("Z") and health["uptime_seconds"] >= 0
    await agent.close()


@pytest.mark.gen_test
async def test_agents_lists_live_sessions_with_counters_in_connection_order(gateway: Gateway) -> None:
    alice = await connect_agent(gateway, metadata={"name": "alice"})
    bob = await connect_agent(gateway, metadata={"name": "bob"})
    for _ in range(3):
        await alice.send(bob.did, "INTENT", {})
    for _ in range(3):
        await bob.receive(timeout=5)
    listing = await get_json(gateway, "/agents")
    assert listing["count"] == 2
    assert [a["did"] for a in listing["agents"]] == [alice.did, bob.did]
    first, second = listing["agents"]
    assert first["metadata"] == {"name": "alice"}
    assert first["messages_sent"] == 3 and second["messages_received"] == 3
    assert first["connected_at"].endswith("Z") and first["last_activity"] >= first["connected_at"]
    await alice.close()
    await bob.close()


@pytest.mark.gen_test
async def test_agents_pages_with_limit_and_offset_keeping_the_total(gateway: Gateway) -> None:
    agents = [await connect_agent(gateway) for _ in range(5)]
    page = await get_json(gateway, "/agents?limit=2&offset=3")
    assert page["count"] == 5 and page["limit"] == 2 and page["offset"] == 3
    assert [a["did"] for a in page["agents"]] == [agents[3].did, agents[4].did]
    assert (await get_json(gateway, "/agents?offset=10"))["agents"] == []
    for bad in ("limit=0", "limit=abc", "offset=-1", "limit=100000"):
        error = await get_json(gateway, f"/agents?{bad}", expect=400)
        assert error["error"] == "BAD_REQUEST" and error["message"]
    for agent in agents:
        await agent.close()


@pytest.mark.gen_test
async def test_agent_by_did_and_404_json_for_an_unknown_one(gateway: Gateway) -> None:
    agent = await connect_agent(gateway, metadata={"role": "planner"})
    found = await get_json(gateway, f"/agents/{agent.did}")
    assert found["did"] == agent.did and found["metadata"] == {"role": "planner"}
    missing = await get_json(gateway, f"/agents/{DIDKey.generate().did}", expect=404)
    assert missing["error"] == "UNKNOWN_AGENT" and "no agent" in missing["message"]
    await agent.close()


@pytest.mark.gen_test
async def test_unknown_paths_and_methods_answer_json(gateway: Gateway) -> None:
    missing = await get_json(gateway, "/nope", expect=404)
    assert missing["error"] == "NOT_FOUND" and "/health" in missing["message"]
    with pytest.raises(HTTPClientError) as refused:
        await AsyncHTTPClient().fetch(gateway.http_url + "/health", method="POST", body="{}")
    assert refused.value.code == 405
    assert refused.value.response is not None
    assert json.loads(refused.value.response.body)["error"] == "METHOD_NOT_ALLOWED"
    plain = await get_json(gateway, "/ws", expect=400)
    assert "WebSocket" in plain["message"]


@pytest.mark.gen_test
async def test_metrics_count_real_traffic(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    await alice.send(bob.did, "OFFER", {})
    await bob.receive(timeout=5)
    await alice.send(DIDKey.generate().did, "OFFER", {})
    await alice.receive(timeout=5)
    response = await AsyncHTTPClient().fetch(gateway.http_url + "/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.body.decode()
    assert "aiconexus_connected_agents 2.0" in text
    assert 'aiconexus_messages_routed_total{type="OFFER"} 1.0' in text
    assert 'aiconexus_errors_total{code="UNKNOWN_AGENT"} 1.0' in text
    assert 'aiconexus_registrations_total{result="ok"} 2.0' in text
    assert 'aiconexus_connections_total{result="accepted"} 2.0' in text
    assert "aiconexus_routing_latency_seconds_count 1.0" in text
    await alice.close()
    await bob.close()
