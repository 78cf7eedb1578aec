"""RFC 6455 to the letter: frames that break the framing rules fail the connection with close
1002 (7.1.7, 5.1-5.5) instead of a silent TCP drop, and a Close frame with a code a peer may not
send is answered 1002, not echoed (7.4). Pings, pongs and fragments are budgeted (SECURITY.md)."""

from __future__ import annotations

import logging
import os
import struct

import pytest

from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.websocket import CONTROL_BURST
from tests.reliability.support import CLOSE, PING, TEXT, RawWebSocket, raw_registered
from tests.support.waiting import wait_until


def raw_frame(first: int, payload: bytes, *, masked: bool = True) -> bytes:
    """One frame with the given first byte (FIN, RSV, opcode), masked unless told otherwise."""
    length = len(payload)
    second = (0x80 if masked else 0) | (length if length < 126 else 126)
    header = bytes([first, second]) + (struct.pack("!H", length) if length >= 126 else b"")
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def challenged(gateway: Gateway) -> RawWebSocket:
    ws = await RawWebSocket.connect(gateway.ws_url)
    challenge = await ws.recv_json()
    assert challenge is not None and challenge["type"] == "CHALLENGE"
    return ws


VIOLATIONS = {
    "unmasked": raw_frame(0x81, b'{"a": 1}', masked=False),
    "reserved_bit_1": raw_frame(0x81 | 0x40, b"{}"),
    "reserved_bit_3": raw_frame(0x81 | 0x10, b"{}"),
    "unknown_data_opcode": raw_frame(0x83, b"x"),
    "unknown_control_opcode": raw_frame(0x8B, b""),
    "fragmented_ping": raw_frame(0x09, b"x"),
    "long_ping": raw_frame(0x89, b"x" * 126),
    "continuation_of_nothing": raw_frame(0x80, b"x"),
    "new_message_inside_a_fragmented_one": raw_frame(0x01, b"{") + raw_frame(0x81, b"{}"),
}


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
async def test_a_frame_that_breaks_rfc6455_framing_is_closed_with_1002(
        gateway: Gateway, kind: str) -> None:
    ws = await challenged(gateway)
    ws.writer.write(VIOLATIONS[kind])
    code, _ = await ws.until_closed()
    assert code == 1002, f"{kind}: close code {code}"


@pytest.mark.gen_test(timeout=20)
async def test_a_registered_agent_breaking_the_framing_is_closed_1002_and_unregistered(
        gateway: Gateway) -> None:
    ws, key, _ = await raw_registered(gateway.ws_url)
    ws.writer.write(VIOLATIONS["unmasked"])
    code, _ = await ws.until_closed()
    assert code == 1002
    await wait_until(lambda: gateway.hub.agent(key.did) is None, 5, "the agent unregistered")


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
async def test_a_close_frame_with_a_reserved_or_invalid_code_is_answered_1002(
        gateway: Gateway, code: int) -> None:
    ws = await challenged(gateway)
    await ws.send_frame(CLOSE, struct.pack("!H", code) + b"bye")
    opcode, payload = await ws.recv_frame()
    ws.abort()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1002


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 3000, 4999])
async def test_a_close_frame_with_a_valid_code_is_echoed(gateway: Gateway, code: int) -> None:
    ws = await challenged(gateway)
    await ws.send_frame(CLOSE, struct.pack("!H", code))
    opcode, payload = await ws.recv_frame()
    ws.abort()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == code


@pytest.mark.gen_test(timeout=20)
async def test_a_close_frame_with_a_one_byte_payload_is_answered_1002(gateway: Gateway) -> None:
    ws = await challenged(gateway)
    await ws.send_frame(CLOSE, b"\x03")
    opcode, payload = await ws.recv_frame()
    ws.abort()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1002


@pytest.mark.gen_test(timeout=20)
async def test_a_close_reason_that_is_not_utf8_is_answered_1007(gateway: Gateway) -> None:
    ws = await challenged(gateway)
    await ws.send_frame(CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")
    opcode, payload = await ws.recv_frame()
    ws.abort()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1007


@pytest.mark.gen_test(timeout=30)
async def test_a_ping_flood_from_an_unregistered_connection_is_closed_4429(
        gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "aiconexus")
    ws = await challenged(gateway)
    pongs = 0
    for _ in range(400):
        ws.writer.write(raw_frame(0x80 | PING, b"p"))
    await ws.writer.drain()
    while True:
        opcode, _ = await ws.recv_frame()
        if opcode == CLOSE:
            break
        pongs += 1
    for _ in range(400):  # the flood goes on after the close frame: dropped, logged no more
        ws.writer.write(raw_frame(0x80 | PING, b"p"))
    await ws.writer.drain()
    await ws.send_frame(CLOSE, struct.pack("!H", 1000))
    await ws.until_closed()
    assert ws.close_code == 4429, ws.close_code
    assert pongs <= CONTROL_BURST + 1
    closes = [r for r in caplog.records if "too many control frames" in r.getMessage()]
    assert len(closes) == 1, [r.getMessage() for r in closes[:3]]


@pytest.mark.gen_test(timeout=30)
async def test_empty_continuation_fragments_are_budgeted_and_closed_4429(gateway: Gateway) -> None:
    ws = await challenged(gateway)
    ws.writer.write(raw_frame(TEXT, b"{"))  # a text message begun, never finished
    for _ in range(400):
        ws.writer.write(raw_frame(0x00, b""))
    await ws.writer.drain()
    code, _ = await ws.until_closed()
    assert code == 4429


@pytest.mark.gen_test(timeout=30)
async def test_an_honest_agent_pinging_now_and_then_is_not_closed(gateway: Gateway) -> None:
    ws, _, _ = await raw_registered(gateway.ws_url)
    for _ in range(50):  # within the burst
        await ws.send_frame(PING, b"keepalive")
        opcode, payload = await ws.recv_frame()
        assert (opcode, payload) == (0xA, b"keepalive")
    await ws.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_address_over_its_work_budget_loses_its_unregistered_pingers_not_its_agents(
        gateway: Gateway) -> None:
    agent, _, _ = await raw_registered(gateway.ws_url)
    stranger = await challenged(gateway)
    gateway.hub.charge("127.0.0.1", 5.0)  # the address has spent its budget (say, on handshakes)
    await stranger.send_frame(PING, b"p")
    code, _ = await stranger.until_closed()
    assert code == 4429
    await agent.send_frame(PING, b"still here")
    assert await agent.recv_frame() == (0xA, b"still here")  # a registered agent is its own
    await agent.close()
