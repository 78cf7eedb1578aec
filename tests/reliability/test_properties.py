"""Property tests of the pure core: whatever text arrives, the envelope parser and the session
answer with a valid event or a ProtocolError carrying a code, never an unexpected exception, and
in bounded time. Plus the adversarial frame shapes at the size limit, timed."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.errors import CloseCode, ErrorCode, ProtocolError
from aiconexus_gateway.hub import Hub, HubSettings
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import ALL_TYPES, Envelope, MessageFactory, build, parse
from aiconexus_gateway.session import Close, Forward, Register, Reply, Session, SessionSettings, State
from tests.support.memory import MemoryConnection

GATEWAY = DIDKey.from_seed(b"\x01" * 32)
ALICE = DIDKey.from_seed(b"\x0a" * 32)
BOB = DIDKey.from_seed(b"\x0b" * 32)
NONCE = bytes(range(32))
NONCE_TEXT = base64.urlsafe_b64encode(NONCE).rstrip(b"=").decode()
SETTINGS = SessionSettings(challenge_timeout=30, agent_timeout=300, ping_interval=20)
PER_FRAME_SECONDS = 0.5  # catches super-linear blow-ups (seconds); the slowest shapes take ~50 ms here
HANDSHAKE_CLOSES = {CloseCode.MALFORMED_HANDSHAKE, CloseCode.AUTH_FAILED, CloseCode.TOO_LARGE,
                    CloseCode.TIMEOUT, CloseCode.INTERNAL_ERROR}

FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | st.text(max_size=20))
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8), inner, max_size=4), max_leaves=20)
field_values = (json_values | st.sampled_from(sorted(ALL_TYPES)) | st.just(ALICE.did)
                | st.just(BOB.did) | st.just(GATEWAY.did) | st.just("1.0")
                | st.just("2026-11-26T10:00:00.123Z") | st.just("A" * 86 + "=="))
envelope_like = st.fixed_dictionaries(
    {}, optional={name: field_values for name in
                  ("id", "type", "from", "to", "timestamp", "version", "payload", "signature",
                   "correlation_id")}).map(lambda d: json.dumps(d))


def signed_frame(key: DIDKey, type: str, to: str | None, payload: dict[str, Any]) -> str:
    text, _ = build(key, type, to, payload, now=1_790_000_000.0)
    return text


def mutate(text: str, position: int, replacement: str) -> str:
    position %= len(text)
    return text[:position] + replacement + text[position + 1:]


valid_frames = st.sampled_from([
    signed_frame(ALICE, "OFFER", BOB.did, {"sdp": "v=0"}),
    signed_frame(ALICE, "PING", GATEWAY.did, {}),
    signed_frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_TEXT}),
    signed_frame(ALICE, "EXEC_REQUEST", BOB.did, {"args": [1.5, -0.0, 1e300, "é"], "k": {"z": 1}}),
])
mutated_frames = st.builds(mutate, valid_frames, st.integers(min_value=0),
                           st.sampled_from(['"', "{", "}", "\\", "0", "x", "\\ud800", "é", ""]))
any_frame = st.text(max_size=300) | envelope_like | mutated_frames | valid_frames


def new_session(clock: ManualClock) -> Session:
    return Session(MessageFactory(GATEWAY, clock.wall), SETTINGS, nonce=NONCE, session_id="s",
                   now=clock.monotonic())


def registered_session(clock: ManualClock) -> Session:
    session = new_session(clock)
    action = session.receive(signed_frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_TEXT}),
                             clock.monotonic())
    assert isinstance(action, Register)
    session.registered()  # what the router does once the agent is routable
    return session


def error_code_of(text: str) -> str:
    frame = json.loads(text)
    assert frame["type"] == "ERROR" and frame["from"] == GATEWAY.did
    code = frame["payload"]["code"]
    assert code in ErrorCode.__members__
    return str(code)


@FUZZ
@given(any_frame)
@example("[" * 100_000)
@example('{"a":' * 5000)
@example("1" * 5000)
@example('{"id": "x", "id": "y"}')
@example('"\\ud800"')
def test_parse_gives_an_envelope_or_a_protocol_error_with_a_code(text: str) -> None:
    started = time.perf_counter()
    try:
        envelope = parse(text)
    except ProtocolError as error:
        assert isinstance(error.code, ErrorCode) and error.message
    else:
        assert isinstance(envelope, Envelope) and envelope.type in ALL_TYPES
    assert time.perf_counter() - started < PER_FRAME_SECONDS


@FUZZ
@given(any_frame)
def test_before_registration_any_frame_registers_or_closes_with_a_handshake_code(text: str) -> None:
    clock = ManualClock()
    session = new_session(clock)
    started = time.perf_counter()
    action = session.receive(text, clock.monotonic())
    assert time.perf_counter() - started < PER_FRAME_SECONDS
    if isinstance(action, Register):
        assert action.did == ALICE.did and session.state is State.REGISTERING
    else:
        assert isinstance(action, Close) and action.code in HANDSHAKE_CLOSES
        assert action.text is not None and error_code_of(action.text) == action.error
        assert session.state is State.CLOSED


@FUZZ
@given(st.lists(any_frame, min_size=1, max_size=5))
def test_after_registration_any_frame_is_routed_answered_or_refused_and_the_session_stays(
        texts: list[str]) -> None:
    clock = ManualClock()
    session = registered_session(clock)
    for text in texts:
        started = time.perf_counter()
        action = session.receive(text, clock.monotonic())
        assert time.perf_counter() - started < PER_FRAME_SECONDS
        if isinstance(action, Forward):
            assert action.text is text and action.to != GATEWAY.did
            assert json.loads(text)["from"] == ALICE.did  # nothing leaves as a DID not proven
        elif isinstance(action, Reply):
            frame = json.loads(action.text)
            assert frame["type"] in ("PONG", "ERROR")
            if action.error is not None:
                assert error_code_of(action.text) == action.error
        else:
            assert isinstance(action, Close) and action.code == CloseCode.NORMAL  # UNREGISTER
            return
        assert session.state is State.REGISTERED


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(any_frame, max_size=8), st.lists(any_frame, max_size=8))
def test_the_hub_answers_every_frame_and_forwards_only_what_the_sender_proved(
        from_attacker: list[str], from_alice: list[str]) -> None:
    """Alice's frames are all answered or forwarded; the attacker (who holds no key, only frames
    Alice signed, REGISTER included) never registers and never gets a frame to Bob."""
    clock = ManualClock()
    nonces = iter([bytes(32), NONCE, bytes([7]) * 32])  # Bob's, Alice's, the attacker's
    hub = Hub(HubSettings(replace(SETTINGS, rate_limit=1000, rate_burst=1000)), GATEWAY,
              clock=clock, nonce_source=lambda n: next(nonces))
    bob_conn, alice_conn = MemoryConnection(), MemoryConnection()
    attacker_conn = MemoryConnection("192.0.2.66")
    bob, alice, attacker = hub.open(bob_conn), hub.open(alice_conn), hub.open(attacker_conn)
    bob_nonce = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
    hub.receive(bob, signed_frame(BOB, "REGISTER", GATEWAY.did, {"nonce": bob_nonce}))
    hub.receive(alice, signed_frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_TEXT}))
    assert hub.registry.get(ALICE.did) is not None and hub.registry.get(BOB.did) is not None
    for text in from_attacker:
        hub.receive(attacker, text)
        assert attacker_conn.closed_with is not None and attacker.did is None
    for text in from_alice:
        seen = len(bob_conn.sent) + len(alice_conn.sent)
        hub.receive(alice, text)
        if alice_conn.closed_with is not None:  # UNREGISTER
            break
        assert len(bob_conn.sent) + len(alice_conn.sent) == seen + 1  # one answer or one forward
    for frame in bob_conn.sent[2:]:  # after CHALLENGE and REGISTERED
        assert json.loads(frame)["from"] in (ALICE.did, GATEWAY.did)
    assert len(bob_conn.sent) - 2 <= len(from_alice)


# -- the adversarial shapes at the size limit ------------------------------------------------------

LIMIT = 65536


def envelope_around(payload_json: str) -> str:
    head = json.dumps({"id": "x", "type": "EXEC_REQUEST", "from": ALICE.did, "to": BOB.did,
                       "timestamp": "2026-11-26T10:00:00.123Z", "version": "1.0",
                       "signature": "A" * 86 + "=="})[:-1]
    return head + ', "payload": ' + payload_json + "}"


def fill(unit: str, opening: str = "[", closing: str = "]", budget: int = LIMIT - 600) -> str:
    count = budget // (len(unit) + 1)
    return opening + ",".join([unit] * count) + closing


WORST_CASES = {
    "nested arrays": "[" * (LIMIT // 2) + "]" * (LIMIT // 2),
    "nested objects": '{"a":' * 6000 + "1" + "}" * 6000,
    "many keys": "{" + ",".join(f'"k{i}":0' for i in range(LIMIT // 10)) + "}",
    "many non-ASCII keys": "{" + ",".join(f'"é{i}":0' for i in range(LIMIT // 12)) + "}",
    "many floats": fill("1.5e-300"),
    "many empty arrays": fill("[]"),
    "long integer": "1" * 4000,
    "long float": "0." + "1" * (LIMIT - 700),
    "escapes": '"' + "\\u00e9" * ((LIMIT - 700) // 6) + '"',
    "brackets in a string": '"' + "[" * (LIMIT - 700) + '"',
}


@pytest.mark.parametrize("shape", sorted(WORST_CASES))
def test_a_frame_at_the_size_limit_costs_bounded_time_whatever_its_shape(shape: str) -> None:
    """Time is linear in the frame size, and MAX_MESSAGE_SIZE bounds the size."""
    clock = ManualClock()
    session = registered_session(clock)
    payload = WORST_CASES[shape]
    text = envelope_around(payload if payload.startswith("{") else '{"v": ' + payload + "}")
    assert len(text.encode()) <= LIMIT + 1024
    timings = []
    for _ in range(3):  # the best of three: a GC pass or a busy neighbour is not the parser's cost
        started = time.perf_counter()
        action = session.receive(text, clock.monotonic())  # parse, then canonicalize to verify
        timings.append(time.perf_counter() - started)
        assert isinstance(action, Reply) and action.error is not None  # refused or bad signature
    elapsed = min(timings)
    assert elapsed < PER_FRAME_SECONDS, f"{shape}: {elapsed * 1000:.1f} ms"
