"""ADMIN_TOKEN on the operator endpoints, ALLOWED_ORIGINS at the WebSocket handshake."""

from __future__ import annotations

import json

import pytest

from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.reliability.support import HandshakeRefused, RawWebSocket, fetch, metric, metrics_of

TOKEN = "test-admin-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(admin_token=TOKEN)
@pytest.mark.parametrize("path", [
    "/agents", "/agents/did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH", "/metrics"])
async def test_with_admin_token_the_operator_endpoints_require_the_bearer_token(
        gateway: Gateway, path: str) -> None:
    for headers in (None, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
        status, response_headers, body = await fetch(gateway.http_url + path, headers=headers)
        assert status == 401, (headers, body)
        assert json.loads(body)["error"] == "UNAUTHORIZED"
        assert response_headers["Www-Authenticate"].startswith("Bearer")
        assert response_headers["Content-Type"].startswith("application/json")
    status, _, body = await fetch(gateway.http_url + path, headers=BEARER)
    assert status in (200, 404)  # 404: that agent is not connected; the token was accepted
    assert TOKEN not in body.decode()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(admin_token=TOKEN)
async def test_health_stays_open_and_shows_no_agent_list(gateway: Gateway) -> None:
    agent = await connect_agent(gateway)
    status, _, body = await fetch(gateway.http_url + "/health")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "healthy" and health["connected_agents"] == 1
    assert agent.did not in body.decode() and "agents" not in health
    status, _, body = await fetch(gateway.http_url + "/agents", headers=BEARER)
    assert status == 200 and json.loads(body)["agents"][0]["did"] == agent.did
    await agent.close()


@pytest.mark.gen_test(timeout=20)
async def test_without_admin_token_the_operator_endpoints_are_open(gateway: Gateway) -> None:
    status, _, _ = await fetch(gateway.http_url + "/agents")
    assert status == 200


@pytest.mark.gen_test(timeout=20)
async def test_agents_without_an_origin_header_are_accepted(gateway: Gateway) -> None:
    agent = await connect_agent(gateway)  # the SDK, like every non-browser client, sends none
    assert agent.connected
    await agent.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_a_browser_origin_is_refused_unless_listed(gateway: Gateway, origin: str) -> None:
    with pytest.raises(HandshakeRefused) as refusal:
        await RawWebSocket.connect(gateway.ws_url, headers={"Origin": origin})
    assert refusal.value.status == 403 and refusal.value.json()["error"] == "ORIGIN_NOT_ALLOWED"
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_connections_refused_total", reason="origin") == 1


@pytest.mark.gen_test(timeout=20)
async def test_a_page_claiming_the_gateway_host_as_origin_is_refused_too(gateway: Gateway) -> None:
    """DNS rebinding: Origin equal to Host is not proof of anything for a gateway serving no pages."""
    host = gateway.http_url.split("://", 1)[1]
    with pytest.raises(HandshakeRefused) as refusal:
        await RawWebSocket.connect(gateway.ws_url, headers={"Origin": f"http://{host}"})
    assert refusal.value.status == 403


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(allowed_origins=("https://app.example.com",))
async def test_a_listed_browser_origin_is_accepted(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url, headers={"Origin": "https://app.example.com"})
    challenge = await ws.recv_json()
    assert challenge is not None and challenge["type"] == "CHALLENGE"
    await ws.close()
    with pytest.raises(HandshakeRefused):
        await RawWebSocket.connect(gateway.ws_url, headers={"Origin": "https://other.example.com"})


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(allowed_origins=("*",))
async def test_star_accepts_any_browser_origin(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url, headers={"Origin": "https://anywhere.example"})
    challenge = await ws.recv_json()
    assert challenge is not None and challenge["type"] == "CHALLENGE"
    await ws.close()
