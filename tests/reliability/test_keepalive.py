"""The gateway's keepalive (server/pinger.py over keepalive.py), against a real gateway over real
sockets: pings come every PING_INTERVAL to a connection that answers them, one that does not is
closed with 1000 "ping timed out" (docs/protocol.md section 13), and a closed connection leaves
the ping wheel at once, whichever way it closed."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.pinger import Pinger
from tests.reliability.support import CLOSE, PING, PONG, TEXT, RawWebSocket
from tests.support.waiting import wait_until


def pinger_of(gateway: Gateway) -> Pinger:
    peer = next(iter(gateway.hub.peers))
    pinger = peer.connection.pinger  # type: ignore[attr-defined]
    assert isinstance(pinger, Pinger)
    return pinger


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(ping_interval=0.5)
async def test_a_connection_that_answers_is_pinged_every_interval_and_stays(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url)
    try:
        opcode, _ = await ws.recv_frame()
        assert opcode == TEXT  # the CHALLENGE
        pings = []
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            opcode, payload = await ws.recv_frame(timeout=2.0)
            assert opcode == PING, f"unexpected frame {opcode:#x} {payload[:80]!r}"
            pings.append(time.monotonic())
            await ws.send_frame(PONG, payload)
        # the first one to two intervals after opening, then one per interval (0.5 s)
        assert 4 <= len(pings) <= 6, pings
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert all(0.3 < gap < 0.8 for gap in gaps), gaps
        assert not ws.closed
    finally:
        await ws.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(ping_interval=0.5)
async def test_no_pong_within_the_interval_closes_1000_ping_timed_out(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url)
    try:
        started = time.monotonic()
        pinged = None
        while True:
            opcode, _ = await ws.recv_frame(timeout=3.0)  # pings are read, never answered
            if opcode == PING and pinged is None:
                pinged = time.monotonic()
            if opcode == CLOSE:
                break
        closed = time.monotonic()
        assert (ws.close_code, ws.close_reason) == (1000, "ping timed out")
        assert pinged is not None and 0.4 < closed - pinged < 1.0  # one interval after the ping
        assert closed - started < 2.0  # at most 2 intervals to the ping, 1 more to give up
    finally:
        ws.abort()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(ping_interval=0.5)
async def test_closed_connections_leave_the_wheel_at_once(gateway: Gateway) -> None:
    sockets = [await RawWebSocket.connect(gateway.ws_url) for _ in range(30)]
    await wait_until(lambda: len(gateway.hub.peers) == 30, 5, "30 connections opened")
    pinger = pinger_of(gateway)
    assert len(pinger.wheel) == 30
    for ws in sockets[:10]:
        await ws.close()  # close handshake
    for ws in sockets[10:20]:
        ws.abort()  # TCP dropped without a close frame
    await wait_until(lambda: len(pinger.wheel) == 10, 5, "20 closed connections leave the wheel")
    assert len(gateway.hub.peers) == 10
    await asyncio.gather(*(ws.close() for ws in sockets[20:]))
    await wait_until(lambda: len(pinger.wheel) == 0, 5, "the last connections leave the wheel")
    # the timer stops with the last connection, at its next tick
    await wait_until(lambda: pinger._timer is None, 2, "the pinger's timer stopped")
    # and starts again with the next one
    ws = await RawWebSocket.connect(gateway.ws_url)
    await wait_until(lambda: len(pinger.wheel) == 1 and pinger._timer is not None, 5,
                     "a new connection in the wheel, the timer running")
    await ws.close()
