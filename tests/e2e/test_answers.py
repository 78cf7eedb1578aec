"""What the HTTP side answers, to the letter of the docs: JSON bodies (with a final newline)
everywhere, /ws refusals included; HEAD on every GET endpoint; refusals logged with their reason;
a bounded /agents."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from aiconexus_gateway.ratelimit import WorkBudget
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent

WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "ioap.v1"}


async def request(gateway: Gateway, path: str, method: str = "GET",
                  headers: dict[str, str] | None = None,
                  body: str | None = None) -> tuple[int, dict[str, str], bytes]:
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(gateway.http_url + path, method=method, headers=headers, body=body,
                    allow_nonstandard_methods=True), raise_error=False)
    return response.code, dict(response.headers), response.body or b""


def json_body(body: bytes) -> dict[str, Any]:
    assert body.endswith(b"\n"), f"no final newline: {body[-40:]!r}"
    return json.loads(body)


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/health", "/agents", "/metrics"])
async def test_head_answers_like_get_without_a_body(gateway: Gateway, path: str) -> None:
    get_status, get_headers, _ = await request(gateway, path)
    status, headers, body = await request(gateway, path, "HEAD")
    assert (status, body) == (get_status, b"")
    assert headers["Content-Type"] == get_headers["Content-Type"]


@pytest.mark.gen_test
@pytest.mark.parametrize("path", ["/health", "/agents", "/nowhere", "/agents/did:key:z6Mkx"])
async def test_json_answers_end_with_a_newline(gateway: Gateway, path: str) -> None:
    _, headers, body = await request(gateway, path)
    assert headers["Content-Type"].startswith("application/json")
    json_body(body)


@pytest.mark.gen_test
async def test_a_method_not_allowed_is_json_naming_get_and_head(gateway: Gateway) -> None:
    status, _, body = await request(gateway, "/health", "DELETE")
    assert status == 405 and "GET or HEAD" in json_body(body)["message"]


@pytest.mark.gen_test
@pytest.mark.parametrize(("method", "headers", "status", "error"), [
    ("POST", {}, 405, "METHOD_NOT_ALLOWED"),
    ("PUT", WS_HEADERS, 405, "METHOD_NOT_ALLOWED"),
    ("GET", {}, 400, "NOT_A_WEBSOCKET"),
    ("GET", {**WS_HEADERS, "Connection": "keep-alive"}, 400, "BAD_HANDSHAKE"),
    ("GET", {**WS_HEADERS, "Sec-WebSocket-Key": "not base64 of 16 bytes"}, 400, "BAD_HANDSHAKE"),
    ("GET", {**WS_HEADERS, "Sec-WebSocket-Key": ""}, 400, "BAD_HANDSHAKE"),
    ("GET", {**WS_HEADERS, "Sec-WebSocket-Version": "8"}, 426, "UNSUPPORTED_WEBSOCKET_VERSION"),
    ("GET", {**WS_HEADERS, "Sec-WebSocket-Protocol": "chat"}, 400, "UNSUPPORTED_SUBPROTOCOL"),
])
async def test_every_ws_refusal_is_the_documented_json_and_is_logged_with_its_reason(
        gateway: Gateway, caplog: pytest.LogCaptureFixture, method: str, headers: dict[str, str],
        status: int, error: str) -> None:
    caplog.set_level(logging.INFO, "aiconexus")
    body = "x" if method in ("POST", "PUT") else None
    got, response_headers, text = await request(gateway, "/ws", method, headers, body)
    assert got == status, text
    assert response_headers["Content-Type"].startswith("application/json")
    assert json_body(text)["error"] == error
    if status == 426:
        assert response_headers["Sec-Websocket-Version"] == "13"
    if method == "GET":
        logged = [r.getMessage() for r in caplog.records
                  if r.levelno == logging.INFO and r.name.startswith("aiconexus")]
        assert any(error in line and "/ws" in line for line in logged), logged


@pytest.mark.gen_test
@pytest.mark.parametrize("offset", ["99999999999999999999", "2147483648", "-1", "%D9%A1%D9%A2", "1e3", "%20"])
async def test_an_offset_out_of_range_or_not_a_number_is_400_saying_why(
        gateway: Gateway, offset: str) -> None:
    status, _, body = await request(gateway, f"/agents?offset={offset}")
    assert status == 400, body
    message = json_body(body)["message"]
    assert "offset" in message


@pytest.mark.gen_test
async def test_the_largest_offset_is_an_empty_page(gateway: Gateway) -> None:
    status, _, body = await request(gateway, "/agents?offset=2147483647")
    assert status == 200 and json_body(body)["agents"] == []


@pytest.mark.gen_test
async def test_agents_pages_are_charged_to_the_address_and_refused_429_when_it_is_spent(
        gateway: Gateway) -> None:
    agents = [await connect_agent(gateway) for _ in range(3)]
    gateway.http_budget.work = WorkBudget(rate=1e-6, burst=1e-6)  # spent by the first page
    status, _, _ = await request(gateway, "/agents?offset=0")
    assert status == 200
    status, headers, body = await request(gateway, "/agents?offset=1")  # not cached: built
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert json_body(body)["error"] == "RATE_LIMITED"
    status, _, body = await request(gateway, "/agents?offset=0")  # the same page: from the cache
    assert status == 200 and json_body(body)["count"] == 3
    for agent in agents:
        await agent.close()


@pytest.mark.gen_test
async def test_a_cached_agents_page_still_shows_an_agent_that_just_arrived(gateway: Gateway) -> None:
    _, _, body = await request(gateway, "/agents")
    assert json_body(body)["count"] == 0
    agent = await connect_agent(gateway)
    _, _, body = await request(gateway, "/agents")
    assert [a["did"] for a in json_body(body)["agents"]] == [agent.did]
    await agent.close()


@pytest.mark.gen_test
@pytest.mark.gateway_config(max_connections=1)
async def test_a_storm_of_admission_refusals_is_logged_once_per_second_not_once_each(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "aiconexus")
    agent = await connect_agent(gateway)  # the one connection MAX_CONNECTIONS allows
    for _ in range(10):
        status, _, body = await request(gateway, "/ws", "GET", WS_HEADERS)
        assert status == 503 and json_body(body)["error"] == "GATEWAY_FULL"
    logged = [r.getMessage() for r in caplog.records if "GATEWAY_FULL" in r.getMessage()]
    assert 1 <= len(logged) <= 2, logged  # one per second (the ten took well under two)
    await agent.close()


@pytest.mark.gen_test
async def test_a_flood_of_bad_upgrade_requests_is_logged_once_per_second(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "aiconexus")
    for _ in range(20):  # refused before any limit counts them: only the log line could grow
        status, _, _ = await request(gateway, "/ws", "GET",
                                     {**WS_HEADERS, "Sec-WebSocket-Protocol": "chat"})
        assert status == 400
    logged = [r for r in caplog.records if "UNSUPPORTED_SUBPROTOCOL" in r.getMessage()]
    assert 1 <= len(logged) <= 2, [r.getMessage() for r in logged]
