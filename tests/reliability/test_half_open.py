"""A peer that vanished without a FIN (it answers no ping) is found by the ping timeout, removed from
/agents, and messages to it are answered with ERROR from the moment the gateway gives up on it."""

from __future__ import annotations

import json
import time

import pytest

from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.reliability.support import fetch, raw_registered
from tests.support.waiting import wait_until


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(ping_interval=0.5)
async def test_a_vanished_peer_is_detected_by_the_ping_timeout_and_removed(gateway: Gateway) -> None:
    ghost, ghost_key, _ = await raw_registered(gateway.ws_url)
    ghost.stop_reading()  # from here on it answers nothing, like a host that lost power
    try:
        await vanished_peer_is_found(gateway, ghost_key.did)
    finally:
        ghost.abort()


async def vanished_peer_is_found(gateway: Gateway, ghost: str) -> None:
    sender = await connect_agent(gateway)
    started = time.monotonic()
    record = gateway.hub.registry.get(ghost)
    assert record is not None
    protocol = record.connection.ws_connection  # type: ignore[attr-defined,unused-ignore]
    await wait_until(protocol.is_closing, 5, "the ping timeout to give up on the peer")
    detected = time.monotonic() - started
    assert detected < 2.5, f"the ping timeout took {detected:.1f} s (ping interval 0.5 s)"

    message_id = await sender.send(ghost, "OFFER", {"sdp": "anyone there?"})
    error = await sender.receive(timeout=5)
    assert error.error_code == "DELIVERY_FAILED" and error.correlation_id == message_id

    await wait_until(lambda: gateway.hub.agent(ghost) is None, 15, "the peer removed")
    status, _, body = await fetch(f"{gateway.http_url}/agents")
    assert status == 200 and ghost not in body.decode()
    assert json.loads(body)["count"] == 1  # the sender only
    message_id = await sender.send(ghost, "OFFER", {"sdp": "still there?"})
    error = await sender.receive(timeout=5)
    assert error.error_code == "UNKNOWN_AGENT" and error.correlation_id == message_id
    await sender.close()
