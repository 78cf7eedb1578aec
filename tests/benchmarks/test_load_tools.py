"""The load generator's own pieces, checked with plain values: frames, integrity counts, the report."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import load, report, wsclient
from benchmarks.scenarios import Options, Result, percentile


def unmask(frame: bytes) -> tuple[int, bytes]:
    """(opcode, payload) of one masked client frame, decoded per RFC 6455 5.2 by hand."""
    opcode = frame[0] & 0x0F
    assert frame[0] & 0x80 and frame[1] & 0x80  # final, masked
    length, pos = frame[1] & 0x7F, 2
    if length == 126:
        length, pos = int.from_bytes(frame[2:4], "big"), 4
    elif length == 127:
        length, pos = int.from_bytes(frame[2:10], "big"), 10
    key, payload = frame[pos:pos + 4], frame[pos + 4:]
    assert len(payload) == length
    return opcode, bytes(b ^ key[i % 4] for i, b in enumerate(payload))


@given(st.binary(max_size=70000).filter(lambda b: len(b) < 200 or len(b) in (65535, 65536, 70000))
       | st.sampled_from([b"", b"x" * 125, b"x" * 126, b"x" * 65535, b"x" * 65536]))
def test_encoded_frames_unmask_to_the_payload(payload: bytes) -> None:
    assert unmask(wsclient.encode_frame(payload)) == (wsclient.OP_TEXT, payload)


def server_frame(payload: bytes, opcode: int = wsclient.OP_TEXT) -> bytes:
    return wsclient.encode_frame(payload, opcode, mask=False)


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def upgraded_client() -> tuple[wsclient.WSClient, FakeTransport]:
    client = wsclient.WSClient("127.0.0.1", 1, "/ws", "ioap.v1")
    transport = FakeTransport()
    client.connection_made(transport)
    accept = wsclient.base64.b64encode(
        wsclient.hashlib.sha1(client._key + wsclient._GUID).digest()).decode()
    client.data_received(f"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: {accept}\r\n"
                         "\r\n".encode())
    return client, transport


@pytest.mark.gen_test
async def test_frames_split_anywhere_across_reads_arrive_whole_and_in_order() -> None:
    client, _ = upgraded_client()
    got: list[bytes] = []
    client.on_frame = got.append
    payloads = [b"a", b"b" * 200, b"c" * 70000, b"{}"]
    stream = b"".join(server_frame(p) for p in payloads)
    for i in range(0, len(stream), 7):
        client.data_received(stream[i:i + 7])
    assert got == payloads


@pytest.mark.gen_test
async def test_pings_are_answered_with_masked_pongs_and_closes_are_echoed() -> None:
    client, transport = upgraded_client()
    transport.written = b""
    client.data_received(server_frame(b"hi", wsclient.OP_PING))
    assert unmask(transport.written) == (wsclient.OP_PONG, b"hi")
    transport.written = b""
    client.data_received(server_frame((1001).to_bytes(2, "big") + b"bye", wsclient.OP_CLOSE))
    assert client.close_code == 1001 and transport.closed
    assert unmask(transport.written) == (wsclient.OP_CLOSE, (1001).to_bytes(2, "big"))


@pytest.mark.gen_test
async def test_a_refused_upgrade_fails_the_connection_with_the_status() -> None:
    client = wsclient.WSClient("127.0.0.1", 1, "/ws", None)
    client.connection_made(FakeTransport())
    client.data_received(b'HTTP/1.1 503 Service Unavailable\r\n\r\n{"error": "DRAINING"}')
    with pytest.raises(wsclient.HandshakeError, match="503"):
        await client._upgraded


@pytest.mark.gen_test
async def test_link_counts_reordered_duplicated_and_foreign_frames() -> None:
    sender, sent = upgraded_client()
    recipient, _ = upgraded_client()
    frames = load.Frames(wire=[b"w%d" % i for i in range(8)], plain=[b"p%d" % i for i in range(8)])
    link = load.Link(sender, recipient, frames, window=2, latencies=[])
    sent.written = b""
    link.start()
    assert sent.written == b"w0w1" and link.in_flight == 2
    for payload in (b"p0", b"p1"):
        link.on_delivered(payload)
    link.refill()
    assert sent.written == b"w0w1w2w3"
    link.on_delivered(b"p3")  # p2 skipped: out of order
    link.on_delivered(b"p2")  # late: out of order again
    link.on_delivered(b'{"type":"ERROR"}')  # not one of ours
    link.on_sender_frame(b'{"type":"ERROR","payload":{"code":"UNKNOWN_AGENT"}}')
    assert (link.delivered, link.out_of_order, link.errors) == (4, 2, 2)
    assert link.error_sample == '{"type":"ERROR"}'


def test_sdp_payload_has_about_the_asked_size() -> None:
    for size in (100, 400, 1000):
        assert size <= len(json.dumps(load.sdp_payload(size))) < size + 100


def test_percentiles_use_the_nearest_rank() -> None:
    ordered = [float(i) for i in range(1, 101)]
    assert [percentile(ordered, q) for q in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([3.0], 99) == 3.0


def rows(**changes: Any) -> list[Result]:
    base = [
        Result("5", "verify", "pynacl", msgs_per_s=10000.0),
        Result("2", "pairs", "gateway-all", msgs_per_s=5500.0, p50_ms=1.0, p99_ms=2.0),
        Result("3", "fixed", "gateway-all", msgs_per_s=2000.0, p50_ms=0.3, p99_ms=2.0),
        Result("4", "idle", "gateway-all", msgs_per_s=5000.0),
        Result("2", "pairs", "gateway-handshake", msgs_per_s=9500.0),
        Result("6", "relay", "relay", msgs_per_s=10000.0),
        Result("1", "cap", "gateway-all", agents=10000, seconds=9.0, rss_per_agent_kb=21.0),
        Result("1", "cap", "relay", agents=10000, seconds=5.0, rss_per_agent_kb=15.0),
    ]
    for row in base:
        for name, value in changes.get(row.system + row.scenario, {}).items():
            setattr(row, name, value)
    return base


def test_targets_take_their_ratios_from_the_same_run() -> None:
    goals = {t.number: t for t in report.targets(rows(), Options())}
    assert goals[1].met and "0.55x" in goals[1].measured
    assert goals[2].met and "9,500 / 10,000 = 0.95x" in goals[2].measured  # not the capacity row
    assert goals[3].met and goals[4].met and goals[5].met and goals[6].met
    assert goals[7].met is None and goals[7].measured == "not run"  # no churn row here


def test_churn_meets_its_target_only_when_memory_came_back() -> None:
    def churn(retained_mb: float) -> Result:
        return Result("8", "churn", "gateway-all", agents=5000, seconds=5.0,
                      extra={"retained_mb": retained_mb, "baseline_rss_mb": 60.0})
    kept = {t.number: t for t in report.targets([*rows(), churn(1.2)], Options())}[7]
    assert kept.met is True and "+1.2 MB after 5,000 connections" in kept.measured
    assert {t.number: t for t in report.targets([*rows(), churn(30.0)], Options())}[7].met is False


def test_a_run_that_lost_messages_never_counts_as_meeting_a_target() -> None:
    goals = report.targets(rows(**{"gateway-all2": {"lost": 3}}), Options())
    assert goals[0].met is None  # target 1: not judged on a lossy run
    lossless = next(goal for goal in goals if goal.number == 6)
    assert lossless.met is False and "3 lost" in lossless.measured
    text = report.render({"date": "d", "commit": "c", "cores": 2, "cpu": "x", "python": "p",
                          "versions": {}}, rows(**{"gateway-all2": {"lost": 3}}), goals, Options(),
                         [])
    assert "INVALID: 3 lost" in text


def test_a_saturated_load_generator_marks_the_figure_as_a_lower_bound() -> None:
    goals = report.targets(rows(**{"relay6": {"loadgen_cpu_pct": 97.0}}), Options())
    assert "lower bound" in goals[1].note
