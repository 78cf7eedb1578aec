"""Frames no library client sends: invalid UTF-8 (1007), binary, oversized, fragmented."""

from __future__ import annotations

import pytest

from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.reliability.support import BINARY, TEXT, RawWebSocket, metric, metrics_of, raw_registered, signed

INVALID_UTF8 = b'{"id": "\xff\xfe"}'


@pytest.mark.gen_test(timeout=20)
async def test_invalid_utf8_in_a_text_frame_is_error_then_close_1007(gateway: Gateway) -> None:
    ws, key, _ = await raw_registered(gateway.ws_url)
    await ws.send_frame(TEXT, INVALID_UTF8)
    code, texts = await ws.until_closed()
    assert code == 1007 and ws.close_reason == "invalid UTF-8"
    assert '"MALFORMED_MESSAGE"' in texts[0] and "UTF-8" in texts[0]
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_limit_disconnects_total", reason="invalid_utf8") == 1
    assert gateway.hub.agent(key.did) is None


@pytest.mark.gen_test(timeout=20)
async def test_invalid_utf8_before_registration_is_also_close_1007(gateway: Gateway) -> None:
    ws = await RawWebSocket.connect(gateway.ws_url)
    assert (await ws.recv_json()) is not None  # CHALLENGE
    await ws.send_frame(TEXT, b"\xc3\x28")
    code, _ = await ws.until_closed()
    assert code == 1007


@pytest.mark.gen_test(timeout=20)
async def test_utf8_split_across_fragments_is_reassembled_and_accepted(gateway: Gateway) -> None:
    bob = await connect_agent(gateway)
    ws, key, _ = await raw_registered(gateway.ws_url)
    frame = signed(key, "OFFER", bob.did, {"sdp": "é" * 10}).encode()
    cut = frame.index("é".encode()) + 1  # in the middle of a two-byte character
    await ws.send_frame(TEXT, frame[:cut], fin=False)
    await ws.send_frame(0x0, frame[cut:])
    assert (await bob.receive(timeout=5)).payload == {"sdp": "é" * 10}
    await ws.close()
    await bob.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_binary_frame_after_registration_is_malformed_and_the_session_stays(
        gateway: Gateway) -> None:
    ws, key, _ = await raw_registered(gateway.ws_url)
    await ws.send_frame(BINARY, b"\x00\x01")
    reply = await ws.recv_json()
    assert reply is not None and reply["payload"]["code"] == "MALFORMED_MESSAGE"
    await ws.send_text(signed(key, "PING", gateway.did, {}))
    pong = await ws.recv_json()
    assert pong is not None and pong["type"] == "PONG"
    await ws.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(max_message_size=4096)
async def test_an_oversized_frame_is_error_then_close_1009_and_twice_the_limit_is_cut_at_once(
        gateway: Gateway) -> None:
    ws, _, _ = await raw_registered(gateway.ws_url)
    await ws.send_text("x" * 5000)
    code, texts = await ws.until_closed()
    assert code == 1009 and '"MESSAGE_TOO_LARGE"' in texts[0]
    huge, _, _ = await raw_registered(gateway.ws_url)
    await huge.send_text("x" * 100_000)  # beyond 2x the limit: Tornado stops reading it
    code, texts = await huge.until_closed()
    assert code == 1009 and texts == []
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_limit_disconnects_total", reason="too_large") == 1
