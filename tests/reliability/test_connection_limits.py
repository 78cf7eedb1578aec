"""MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP, CONNECTION_RATE, TRUST_PROXY at the handshake."""

from __future__ import annotations

import asyncio
import time

import pytest

from aiconexus_gateway.client import GatewayConnectionError
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.reliability.support import HandshakeRefused, RawWebSocket, metric, metrics_of
from tests.support.waiting import wait_until


async def refused(url: str, **kwargs: object) -> HandshakeRefused:
    with pytest.raises(HandshakeRefused) as info:
        await RawWebSocket.connect(url, **kwargs)  # type: ignore[arg-type]
    return info.value


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(max_connections_per_ip=2)
async def test_over_the_per_ip_limit_the_handshake_is_refused_429_with_a_json_reason(
        gateway: Gateway) -> None:
    first = await RawWebSocket.connect(gateway.ws_url)  # never registers: still counts
    second = await RawWebSocket.connect(gateway.ws_url)
    refusal = await refused(gateway.ws_url)
    assert refusal.status == 429 and refusal.headers["retry-after"] == "1"
    assert refusal.headers["content-type"].startswith("application/json")
    assert refusal.json()["error"] == "TOO_MANY_CONNECTIONS" and "2" in refusal.json()["message"]
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_connections_refused_total",
                  reason="max_connections_per_ip") == 1
    assert metric(exposition, "aiconexus_open_connections") == 2
    await first.close()
    await first_closed(gateway, 1)
    third = await RawWebSocket.connect(gateway.ws_url)  # the slot is free again
    await second.close()
    await third.close()


async def first_closed(gateway: Gateway, remaining: int) -> None:
    await wait_until(lambda: gateway.hub.connections.admission.total == remaining, 5,
                     lambda: f"{gateway.hub.connections.admission.total} connections open, not {remaining}")


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(max_connections_per_ip=1, challenge_timeout=0.5)
async def test_unregistered_connections_count_until_the_challenge_timeout_closes_them(
        gateway: Gateway) -> None:
    silent = await RawWebSocket.connect(gateway.ws_url)
    assert (await refused(gateway.ws_url)).status == 429
    code, texts = await silent.until_closed(timeout=5)
    assert code == 4408 and '"TIMEOUT"' in texts[-1]
    await first_closed(gateway, 0)
    agent = await connect_agent(gateway)
    await agent.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(max_connections=2)
async def test_over_max_connections_the_handshake_is_refused_503(gateway: Gateway) -> None:
    agents = [await connect_agent(gateway) for _ in range(2)]
    refusal = await refused(gateway.ws_url)
    assert refusal.status == 503 and refusal.json()["error"] == "GATEWAY_FULL"
    with pytest.raises(GatewayConnectionError) as error:
        await connect_agent(gateway)
    assert error.value.status == 503 and error.value.retry_after == 1.0
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_connections_refused_total", reason="max_connections") == 2
    for agent in agents:
        await agent.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(connection_rate=2, connection_burst=3)
async def test_a_burst_of_new_connections_beyond_the_rate_cap_gets_503_and_retry_after(
        gateway: Gateway) -> None:
    sockets = [await RawWebSocket.connect(gateway.ws_url) for _ in range(3)]
    refusal = await refused(gateway.ws_url)
    assert refusal.status == 503 and refusal.json()["error"] == "CONNECTION_RATE_LIMITED"
    assert refusal.headers["retry-after"] == "1"
    await asyncio.sleep(0.6)  # one token back at 2 per second
    sockets.append(await RawWebSocket.connect(gateway.ws_url))
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_connections_refused_total", reason="connection_rate") == 1
    for ws in sockets:
        await ws.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(max_connections_per_ip=1, trust_proxy=True)
async def test_behind_a_trusted_proxy_the_limit_applies_to_the_forwarded_address(
        gateway: Gateway) -> None:
    a = await RawWebSocket.connect(gateway.ws_url, headers={"X-Forwarded-For": "203.0.113.7"})
    b = await RawWebSocket.connect(gateway.ws_url, headers={"X-Forwarded-For": "203.0.113.8"})
    again = await refused(gateway.ws_url, headers={"X-Forwarded-For": "203.0.113.7"})
    assert again.status == 429
    assert gateway.hub.connections.admission.per_ip == {"203.0.113.7": 1, "203.0.113.8": 1}
    await a.close()
    await b.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(max_connections_per_ip=1)
async def test_without_trust_proxy_x_forwarded_for_is_ignored(gateway: Gateway) -> None:
    a = await RawWebSocket.connect(gateway.ws_url, headers={"X-Forwarded-For": "203.0.113.7"})
    spoofed = await refused(gateway.ws_url, headers={"X-Forwarded-For": "198.51.100.1"})
    assert spoofed.status == 429
    assert gateway.hub.connections.admission.per_ip == {"127.0.0.1": 1}
    await a.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(challenge_timeout=0.5)
async def test_a_request_that_never_finishes_its_headers_is_dropped(gateway: Gateway) -> None:
    """Slowloris: sockets that never complete an HTTP request do not pile up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), 5)  # end of stream when the gateway drops it
    assert data == b"" and time.monotonic() - started < 3
    writer.close()
