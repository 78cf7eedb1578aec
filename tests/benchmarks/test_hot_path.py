"""The per-message fast paths give exactly what the slow paths they replace would give.

docs/performance.md lists the optimizations; each one here is pinned to its reference:
RFC 8785's full algorithm, prometheus-client's own histogram, Tornado's own framing, and the
order and integrity of frames on a real socket.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram

from aiconexus_gateway.canonical import canonicalize
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import (
    new_id,
    reference_signature_valid,
    signature_valid,
    utc_timestamp,
)
from aiconexus_gateway.metrics import LATENCY_BUCKETS, GatewayMetrics
from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.websocket import frame_header
from aiconexus_gateway.strictjson import MAX_SAFE_INTEGER, StrictJSONError, loads
from tests.conftest import raw_connect
from tests.e2e.wire import registered, signed

FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, 30.0, 1e21, 1e20, 2.0**53, 2.0**53 - 1, -(2.0**53), 1e-7, 123.5, 5e-324])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | FLOATS | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400)
@given(JSON)
def test_the_path_chosen_by_inspection_gives_the_full_algorithms_bytes(value: Any) -> None:
    assert canonicalize(value) == canonicalize(value, needs_full=True)


@pytest.mark.parametrize(("value", "expected"), [
    ({"expires_in": 30.0}, b'{"expires_in":30}'),
    ({"z": -0.0, "a": [1.0, 2]}, b'{"a":[1,2],"z":0}'),
    ({"n": float(MAX_SAFE_INTEGER)}, b'{"n":9007199254740991}'),
    ({"n": 2.0**60}, b'{"n":1152921504606847000}'),  # beyond 2**53: ECMAScript digits, not int()
    ({"n": 1e21}, b'{"n":1e+21}'),
    ({"n": 0.5}, b'{"n":0.5}'),
])
def test_integral_floats_print_as_ecmascript_does(value: dict[str, Any], expected: bytes) -> None:
    assert canonicalize(value) == expected


@given(JSON)
def test_strict_loads_flag_still_picks_a_path_that_gives_the_full_result(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    parsed, needs_full = loads(text)
    assert canonicalize(parsed, needs_full=needs_full) == canonicalize(parsed, needs_full=True)


@pytest.mark.parametrize(("text", "needs_full"), [
    ('{"a": "\\u00e9"}', False),  # an escape in a value: ASCII keys still
    ('{"\\u00e9": 1, "a": 2}', True),  # an escaped non-ASCII key in ASCII text
    ('{"é": 1}', True),
    ('{"a": "é"}', False),
    ('  {"a": [1, {"b": null}]}\n', False),
])
def test_non_ascii_keys_are_noticed_however_they_are_spelled(text: str, needs_full: bool) -> None:
    assert loads(text)[1] is needs_full


@pytest.mark.parametrize(("text", "message"), [
    ("", "Expecting value at line 1 column 1"),
    ("   ", "Expecting value at line 1 column 4"),
    ('{"a": 1} x', "extra data"),
    ('{"\\ud800": 1}', "lone surrogate"),
])
def test_errors_say_what_the_slow_parser_said(text: str, message: str) -> None:
    with pytest.raises(StrictJSONError, match=message):
        loads(text)


@given(st.floats(min_value=-1e9, max_value=4.1e9, allow_nan=False)
       | st.integers(0, 4 * 10**9).map(lambda s: s + 0.9999995))
def test_timestamps_are_what_datetime_would_print(seconds: float) -> None:
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert utc_timestamp(seconds) == expected


def test_new_ids_are_the_canonical_text_of_random_uuid4s() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        value = uuid.UUID(text)
        assert (str(value), value.version, value.variant) == (text, 4, uuid.RFC_4122)


@given(st.lists(st.floats(min_value=0, max_value=3, allow_nan=False) | st.sampled_from(
    list(LATENCY_BUCKETS)), max_size=50))
def test_routing_tallies_export_what_prometheus_would(latencies: list[float]) -> None:
    reference = Histogram("ref_seconds", "reference", buckets=LATENCY_BUCKETS,
                          registry=CollectorRegistry())
    metrics = GatewayMetrics(lambda: 0)
    for value in latencies:
        reference.observe(value)
        metrics.observe_latency(value)
        metrics.routed_by_type["OFFER"].inc()
    for bound in [*map(str, LATENCY_BUCKETS), "+Inf"]:
        le = "+Inf" if bound == "+Inf" else _go(float(bound))
        ours = metrics.registry.get_sample_value("aiconexus_routing_latency_seconds_bucket",
                                                 {"le": le})
        theirs = sum(1 for v in latencies if bound == "+Inf" or v <= float(bound))
        assert ours == theirs
    assert metrics.registry.get_sample_value("aiconexus_routing_latency_seconds_count") == len(
        latencies)
    assert math.isclose(metrics.registry.get_sample_value("aiconexus_routing_latency_seconds_sum")
                        or 0.0, sum(latencies), abs_tol=1e-9)
    assert metrics.registry.get_sample_value("aiconexus_messages_routed_total",
                                             {"type": "OFFER"}) == len(latencies)


def _go(value: float) -> str:
    from prometheus_client.utils import floatToGoString

    return floatToGoString(value)


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 1 << 20])
def test_frame_header_is_rfc6455_for_every_length_class(length: int) -> None:
    header = frame_header(length)
    assert header[0] == 0x81  # FIN + text
    assert header[1] & 0x80 == 0  # servers do not mask
    code = header[1] & 0x7F
    if length < 126:
        assert (code, len(header)) == (length, 2)
    elif length < 65536:
        assert (code, int.from_bytes(header[2:], "big"), len(header)) == (126, length, 4)
    else:
        assert (code, int.from_bytes(header[2:], "big"), len(header)) == (127, length, 10)


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(rate_limit=0)  # 300 frames at once: more than the default burst
async def test_a_burst_to_one_agent_arrives_complete_in_order_and_unchanged(gateway: Gateway) -> None:
    sender, sender_key = await registered(gateway)
    recipient, recipient_key = await registered(gateway)
    frames = [signed(sender_key, "ICE_CANDIDATE", recipient_key.did, {"seq": i, "pad": "x" * (i * 7)})
              for i in range(300)]
    writes = [sender.write_message(frame) for frame in frames]  # one burst, nothing awaited between
    await asyncio.gather(*writes)
    got = [await asyncio.wait_for(recipient.read_message(), 5) for _ in frames]
    assert got == frames
    sender.close()
    recipient.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_error_queued_in_the_same_turn_as_a_close_arrives_before_it(gateway: Gateway) -> None:
    first, key = await registered(gateway)
    second, _ = await registered(gateway, DIDKey.from_seed(key.seed))  # replaces the first session
    texts = []
    while (text := await asyncio.wait_for(first.read_message(), 5)) is not None:
        texts.append(text)
    first.close()  # release the client side too (Tornado warns about unclosed clients)
    assert first.close_code == 4409
    assert json.loads(texts[-1])["payload"]["code"] == "SESSION_REPLACED"
    second.close()


@pytest.mark.gen_test(timeout=30)
async def test_connections_that_never_send_leave_nothing_queued(gateway: Gateway) -> None:
    connections = [await raw_connect(gateway) for _ in range(20)]  # CHALLENGE only: no on_message
    for ws in connections:
        frame = await asyncio.wait_for(ws.read_message(), 5)
        assert frame is not None and json.loads(frame)["type"] == "CHALLENGE"
    assert not gateway.write_batch.queued  # each handler left the batch when its frames were written
    for ws in connections:
        ws.close()


def test_strings_escape_as_rfc8785_for_every_code_point() -> None:
    """The fast path's encoder (orjson) against the full algorithm, which writes RFC 8785 3.2.2.2."""
    points = [*range(0xD800), *range(0xE000, 0x110000)]
    for start in range(0, len(points), 4096):
        text = "".join(map(chr, points[start:start + 4096]))
        value = {"s": text, "a": [text[:64], {"k": text[-64:]}]}
        assert canonicalize(value, needs_full=False) == canonicalize(value, needs_full=True)


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(0, 2**16), st.integers(0, 7),
       st.sampled_from(["none", "signed", "key", "truncate", "small-order key"]))
def test_the_direct_libsodium_verify_accepts_what_pynacl_accepts(
        message: bytes, where: int, bit: int, edit: str) -> None:
    key = DIDKey.from_seed(bytes([where % 256]) * 32)
    signed = key.sign(message) + message
    public_key = key.public_key
    if edit == "signed":
        i = where % len(signed)
        signed = signed[:i] + bytes([signed[i] ^ (1 << bit)]) + signed[i + 1:]
    elif edit == "key":
        i = where % 32
        public_key = public_key[:i] + bytes([public_key[i] ^ (1 << bit)]) + public_key[i + 1:]
    elif edit == "truncate":
        signed = signed[:where % len(signed)]
    elif edit == "small-order key":
        public_key = bytes([1]) + bytes(31)  # the identity point
    expected = reference_signature_valid(signed, public_key)
    assert signature_valid(signed, public_key) is expected
    assert expected is (edit == "none")
