"""ADMIN_TOKEN on the operator endpoints, ALLOWED_ORIGINS at the WebSocket handshake."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.reliability.support import RawWebSocket, fetch, metric, metrics_of

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


async def refused_for_origin(gateway: Gateway, origin: str) -> tuple[dict[str, Any], int | None]:
    """A page from `origin` opens /ws: the ERROR it reads, and the close code its onclose sees.

    A browser cannot read the HTTP status of a refused upgrade, so the gateway accepts it to say
    why (docs/protocol.md, close code 4403)."""
    ws = await RawWebSocket.connect(gateway.ws_url, headers={"Origin": origin})
    code, texts = await ws.until_closed()
    assert len(texts) == 1, texts
    assert ws.close_reason is not None and "ALLOWED_ORIGINS" in ws.close_reason
    return json.loads(texts[0]), code


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_a_browser_origin_is_refused_unless_listed_and_the_page_is_told_why(
        gateway: Gateway, origin: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "aiconexus")
    error, code = await refused_for_origin(gateway, origin)
    assert code == 4403
    assert error["type"] == "ERROR" and error["payload"]["details"]["origin"] == origin
    assert "ALLOWED_ORIGINS" in error["payload"]["message"]
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_connections_refused_total", reason="origin") == 1
    refusals = [r for r in caplog.records if r.levelno == logging.INFO and "origin" in r.getMessage()]
    assert refusals and origin in refusals[0].getMessage()


@pytest.mark.gen_test(timeout=20)
async def test_a_page_claiming_the_gateway_host_as_origin_is_refused_too(gateway: Gateway) -> None:
    """DNS rebinding: Origin equal to Host is not proof of anything for a gateway serving no pages."""
    host = gateway.http_url.split("://", 1)[1]
    _, code = await refused_for_origin(gateway, f"http://{host}")
    assert code == 4403


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(allowed_origins=("https://app.example.com",))
async def test_a_listed_browser_origin_is_accepted(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url, headers={"Origin": "https://app.example.com"})
    challenge = await ws.recv_json()
    assert challenge is not None and challenge["type"] == "CHALLENGE"
    await ws.close()
    _, code = await refused_for_origin(gateway, "https://other.example.com")
    assert code == 4403


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(allowed_origins=("*",))
async def test_star_accepts_any_browser_origin(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url, headers={"Origin": "https://anywhere.example"})
    challenge = await ws.recv_json()
    assert challenge is not None and challenge["type"] == "CHALLENGE"
    await ws.close()
