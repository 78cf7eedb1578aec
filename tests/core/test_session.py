"""The per-connection state machine, driven by frames and a manual clock; no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.errors import CloseCode, Ending, ErrorCode, ProtocolError
from aiconexus_gateway.messages import CONTROL_TYPES, ROUTABLE_TYPES, Envelope, MessageFactory, parse
from aiconexus_gateway.session import (
    MAX_METADATA_BYTES,
    MAX_REGISTER_BYTES,
    Close,
    Forward,
    Register,
    Reply,
    Session,
    SessionSettings,
    State,
    VerifyMode,
)

from .support import ALICE, BOB, GATEWAY, NONCE, NONCE_B64URL, envelope_fields, frame, signed_by

SETTINGS = SessionSettings(challenge_timeout=30.0, agent_timeout=300.0, ping_interval=20.0)


def _session(clock: ManualClock, *, nonce: bytes = NONCE, verify: VerifyMode = VerifyMode.ALL
             ) -> Session:
    factory = MessageFactory(GATEWAY, clock.wall)
    settings = SessionSettings(30.0, 300.0, 20.0, verify)
    return Session(factory, settings, nonce=nonce, session_id="session-1", now=clock.monotonic())


def _register_text(*, nonce: str = NONCE_B64URL, to: str | None = GATEWAY.did,
                   metadata: Any = None, key: Any = ALICE, **payload: Any) -> str:
    body: dict[str, Any] = {"nonce": nonce, **payload}
    if metadata is not None:
        body["metadata"] = metadata
    return frame(key, "REGISTER", to, body, message_id="reg-1")[0]


def _gateway_message(text: str | None) -> Envelope:
    assert text is not None
    envelope = parse(text)
    envelope.verify(GATEWAY.verify_key)
    assert envelope.sender == GATEWAY.did
    return envelope


def _error(text: str | None) -> dict[str, Any]:
    envelope = _gateway_message(text)
    assert envelope.type == "ERROR"
    return {**envelope.payload, "correlation_id": envelope.correlation_id, "to": envelope.recipient}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def registered(clock: ManualClock) -> Session:
    session = _session(clock)
    action = session.receive(_register_text(), clock.monotonic())
    assert isinstance(action, Register)
    session.registered()  # the router made it routable
    return session


# -- handshake ------------------------------------------------------------------------------------


def test_challenge_carries_the_nonce_and_timeout_signed_by_the_gateway(clock: ManualClock) -> None:
    session = _session(clock)
    assert session.state is State.CHALLENGED and session.did is None
    challenge = _gateway_message(session.challenge())
    assert challenge.type == "CHALLENGE"
    assert challenge.recipient is None
    assert challenge.payload == {"nonce": NONCE_B64URL, "expires_in": 30.0}
    assert challenge.fields["timestamp"] == "2026-09-21T14:30:00.000Z"


def test_valid_register_registers_the_agent_and_announces_no_rate_limit_without_one(
        clock: ManualClock) -> None:
    session = _session(clock)
    action = session.receive(_register_text(metadata={"name": "alice"}), clock.monotonic())
    assert isinstance(action, Register)
    assert action.did == ALICE.did
    assert action.metadata == {"name": "alice"}
    reply = _gateway_message(action.reply)
    assert reply.type == "REGISTERED"
    assert reply.recipient == ALICE.did
    assert reply.correlation_id == "reg-1"
    assert reply.payload == {"did": ALICE.did, "session_id": "session-1", "agent_timeout": 300.0,
                             "ping_interval": 20.0}
    assert session.state is State.REGISTERING and session.did == ALICE.did
    session.registered()
    assert session.state is State.REGISTERED and session.did == ALICE.did


def test_registered_announces_the_rate_limit_when_there_is_one(clock: ManualClock) -> None:
    settings = SessionSettings(30.0, 300.0, 20.0, rate_limit=100.0, rate_burst=200)
    session = Session(MessageFactory(GATEWAY, clock.wall), settings, nonce=NONCE, session_id="s",
                      now=clock.monotonic())
    action = session.receive(_register_text(), clock.monotonic())
    assert isinstance(action, Register)
    assert _gateway_message(action.reply).payload["rate_limit"] == {"messages_per_second": 100.0,
                                                                    "burst": 200}


@pytest.mark.parametrize("metadata", [None, {}])
def test_register_without_metadata_gives_empty_metadata(clock: ManualClock, metadata: Any) -> None:
    session = _session(clock)
    body: dict[str, Any] = {"nonce": NONCE_B64URL}
    if metadata is not None:
        body["metadata"] = metadata
    action = session.receive(frame(ALICE, "REGISTER", GATEWAY.did, body)[0], clock.monotonic())
    assert isinstance(action, Register) and action.metadata == {}


def test_register_with_explicit_null_metadata_gives_empty_metadata(clock: ManualClock) -> None:
    text = frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL, "metadata": None})[0]
    action = _session(clock).receive(text, clock.monotonic())
    assert isinstance(action, Register) and action.metadata == {}


def test_register_just_before_the_challenge_expires_succeeds(clock: ManualClock) -> None:
    session = _session(clock)
    clock.advance(30.0)
    assert isinstance(session.receive(_register_text(), clock.monotonic()), Register)


def test_metadata_of_exactly_the_maximum_size_is_accepted(clock: ManualClock) -> None:
    metadata = {"x": "a" * (MAX_METADATA_BYTES - len('{"x":""}'))}
    action = _session(clock).receive(_register_text(metadata=metadata), clock.monotonic())
    assert isinstance(action, Register) and action.metadata == metadata


def _handshake_failure(session: Session, text: str, now: float) -> tuple[Close, dict[str, Any]]:
    action = session.receive(text, now)
    assert isinstance(action, Close), action
    assert session.state is State.CLOSED
    error = _error(action.text)
    assert action.error is not None and error["code"] == action.error.value
    expected = "message too big" if action.code == 1009 else action.error.value
    assert action.reason == expected  # the close reason is the error code, but for 1009
    return action, error


HANDSHAKE_FAILURES: dict[str, tuple[dict[str, Any], ErrorCode, int]] = {
    "wrong nonce": ({"nonce": "A" * 43}, ErrorCode.AUTH_FAILED, 4401),
    "missing nonce": ({"nonce": None}, ErrorCode.AUTH_FAILED, 4401),
    "to another DID": ({"to": BOB.did}, ErrorCode.AUTH_FAILED, 4401),
    "to null": ({"to": None}, ErrorCode.AUTH_FAILED, 4401),
    "signed by another key": ({"key": BOB, "from": ALICE.did}, ErrorCode.INVALID_SIGNATURE, 4401),
    "invalid from DID": ({"from": "did:web:example.com"}, ErrorCode.INVALID_DID, 4400),
    "metadata too big": ({"metadata": {"x": "a" * MAX_METADATA_BYTES}}, ErrorCode.MALFORMED_MESSAGE,
                         4400),
    "metadata not an object": ({"metadata": "alice"}, ErrorCode.MALFORMED_MESSAGE, 4400),
    "metadata a list": ({"metadata": ["alice"]}, ErrorCode.MALFORMED_MESSAGE, 4400),
    "not REGISTER": ({"type": "OFFER"}, ErrorCode.NOT_REGISTERED, 4400),
    "PING before REGISTER": ({"type": "PING"}, ErrorCode.NOT_REGISTERED, 4400),
    "unsupported version": ({"version": "2.0"}, ErrorCode.UNSUPPORTED_VERSION, 4400),
}


def _handshake_frame(change: dict[str, Any]) -> str:
    change = dict(change)
    key = change.pop("key", ALICE)
    payload: dict[str, Any] = {"nonce": change.pop("nonce", NONCE_B64URL)}
    if payload["nonce"] is None:
        del payload["nonce"]
    if "metadata" in change:
        payload["metadata"] = change.pop("metadata")
    fields = envelope_fields(change.pop("from", key.did), change.pop("type", "REGISTER"),
                             change.pop("to", GATEWAY.did), payload, id="reg-1", **change)
    return signed_by(key, fields)


@pytest.mark.parametrize(("change", "code", "close_code"), HANDSHAKE_FAILURES.values(),
                         ids=HANDSHAKE_FAILURES.keys())
def test_handshake_failure_sends_error_and_closes(clock: ManualClock, change: dict[str, Any],
                                                  code: ErrorCode, close_code: int) -> None:
    session = _session(clock)
    action, error = _handshake_failure(session, _handshake_frame(change), clock.monotonic())
    assert (error["code"], action.code) == (code.value, close_code)
    assert error["correlation_id"] == "reg-1"
    assert error["to"] is None


def test_register_to_another_gateway_names_this_gateway(clock: ManualClock) -> None:
    _, error = _handshake_failure(_session(clock), _register_text(to=BOB.did), clock.monotonic())
    assert error["details"] == {"gateway_did": GATEWAY.did}


def test_expired_nonce_is_auth_failed(clock: ManualClock) -> None:
    session = _session(clock)
    text = _register_text()
    clock.advance(30.001)
    action, error = _handshake_failure(session, text, clock.monotonic())
    assert (error["code"], action.code) == ("AUTH_FAILED", 4401)
    assert "expired" in error["message"]


@pytest.mark.parametrize(("text", "correlation_id"), [
    ("not json", None),
    ("[]", None),
    ('{"id": 5}', None),
    ('{"id": "x1", "type": "REGISTER"}', "x1"),
    ('{"id": "x2", "id": "x3"}', None),
])
def test_malformed_handshake_frame_closes_4400(clock: ManualClock, text: str,
                                               correlation_id: str | None) -> None:
    action, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert (error["code"], action.code) == ("MALFORMED_MESSAGE", 4400)
    assert error["correlation_id"] == correlation_id


def test_replayed_register_is_refused_on_another_connection(clock: ManualClock) -> None:
    text = _register_text()
    assert isinstance(_session(clock).receive(text, clock.monotonic()), Register)
    second = _session(clock, nonce=bytes(32))
    action, error = _handshake_failure(second, text, clock.monotonic())
    assert (error["code"], action.code) == ("AUTH_FAILED", 4401)


def test_register_again_on_a_registered_session_is_refused_and_keeps_it(registered: Session,
                                                                         clock: ManualClock) -> None:
    action = registered.receive(_register_text(), clock.monotonic())
    assert isinstance(action, Reply) and action.error is ErrorCode.MALFORMED_MESSAGE
    assert registered.state is State.REGISTERED


def test_challenge_expiry_closes_4408_with_timeout(clock: ManualClock) -> None:
    session = _session(clock)
    action = session.challenge_expired()
    assert isinstance(action, Close)
    assert (action.code, action.reason, action.error) == (4408, "TIMEOUT", ErrorCode.TIMEOUT)
    error = _error(action.text)
    assert error["code"] == "TIMEOUT" and "30 s" in error["message"]
    assert session.state is State.CLOSED
    assert session.challenge_expired() is None


def test_challenge_expiry_after_registration_does_nothing(registered: Session) -> None:
    assert registered.challenge_expired() is None
    assert registered.state is State.REGISTERED


def test_binary_frame_during_the_handshake_closes_4400(clock: ManualClock) -> None:
    action = _session(clock).receive_binary()
    assert isinstance(action, Close) and action.code == 4400
    assert _error(action.text)["code"] == "MALFORMED_MESSAGE"


def test_error_found_by_the_io_layer_during_the_handshake_closes(clock: ManualClock) -> None:
    action = _session(clock).reject(ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, "too big"))
    assert isinstance(action, Close) and action.code == CloseCode.TOO_LARGE


def test_frames_after_close_just_close(clock: ManualClock) -> None:
    session = _session(clock)
    assert session.end(Ending.SESSION_CLOSED)
    action = session.receive(_register_text(), clock.monotonic())
    assert action == Close(Ending.SESSION_CLOSED)
    assert (action.code, action.reason) == (1000, "session closed")


def test_metadata_that_cannot_be_canonicalized_is_malformed(clock: ManualClock) -> None:
    text = frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL, "metadata": {"x": 1}})[0]
    text = text.replace('"x":1', '"x":1' + "0" * 400)  # an integer no double can hold
    _, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert error["code"] == "MALFORMED_MESSAGE" and "double" in error["message"]


# -- registered -----------------------------------------------------------------------------------


@pytest.mark.parametrize("type_", sorted(ROUTABLE_TYPES))
def test_routable_type_to_an_agent_is_forwarded_byte_for_byte(registered: Session, clock: ManualClock,
                                                              type_: str) -> None:
    text, message_id = frame(ALICE, type_, BOB.did, {"sdp": "v=0", "n": 1.5})
    spaced = text.replace(",", ", ")  # not our serialization: must still go out unchanged
    action = registered.receive(spaced, clock.monotonic())
    assert action == Forward(BOB.did, spaced, type_, message_id, ALICE.did)


def _routed_error(session: Session, text: str, now: float) -> dict[str, Any]:
    action = session.receive(text, now)
    assert isinstance(action, Reply), action
    assert session.state is State.REGISTERED  # one bad message never costs the session
    error = _error(action.text)
    assert action.error is not None and action.error.value == error["code"]
    assert error["to"] == ALICE.did
    return error


def test_from_another_did_is_sender_mismatch(registered: Session, clock: ManualClock) -> None:
    error = _routed_error(registered, frame(BOB, "OFFER", ALICE.did, message_id="m-2")[0],
                          clock.monotonic())
    assert error["code"] == "SENDER_MISMATCH"
    assert error["details"] == {"registered_did": ALICE.did}
    assert error["correlation_id"] == "m-2"


def test_sender_mismatch_is_reported_even_with_a_bad_signature(registered: Session,
                                                               clock: ManualClock) -> None:
    text = signed_by(ALICE, envelope_fields(BOB.did, "OFFER", BOB.did))
    assert _routed_error(registered, text, clock.monotonic())["code"] == "SENDER_MISMATCH"


def test_bad_signature_is_invalid_signature(registered: Session, clock: ManualClock) -> None:
    text = signed_by(BOB, envelope_fields(ALICE.did, "OFFER", BOB.did, id="m-3"))
    error = _routed_error(registered, text, clock.monotonic())
    assert (error["code"], error["correlation_id"]) == ("INVALID_SIGNATURE", "m-3")


@pytest.mark.parametrize("to", ["did:web:example.com", "did:key:z6MkNotBase58!", BOB.did + "x"])
def test_invalid_recipient_did_is_invalid_did(registered: Session, clock: ManualClock, to: str) -> None:
    error = _routed_error(registered, frame(ALICE, "OFFER", to, message_id="m-4")[0], clock.monotonic())
    assert (error["code"], error["correlation_id"]) == ("INVALID_DID", "m-4")
    assert "did:key:z" in error["message"]


def test_null_recipient_after_registration_is_malformed(registered: Session, clock: ManualClock) -> None:
    error = _routed_error(registered, frame(ALICE, "OFFER", None, message_id="m-5")[0], clock.monotonic())
    assert (error["code"], error["correlation_id"]) == ("MALFORMED_MESSAGE", "m-5")


@pytest.mark.parametrize("type_", sorted(CONTROL_TYPES))
def test_control_type_to_an_agent_is_malformed(registered: Session, clock: ManualClock, type_: str) -> None:
    error = _routed_error(registered, frame(ALICE, type_, BOB.did, message_id="m-6")[0], clock.monotonic())
    assert (error["code"], error["correlation_id"]) == ("MALFORMED_MESSAGE", "m-6")
    assert "control type" in error["message"]


@pytest.mark.parametrize("type_", ["OFFER", "REGISTER", "ERROR", "PONG"])
def test_types_other_than_ping_and_unregister_to_the_gateway_are_malformed(
        registered: Session, clock: ManualClock, type_: str) -> None:
    error = _routed_error(registered, frame(ALICE, type_, GATEWAY.did)[0], clock.monotonic())
    assert error["code"] == "MALFORMED_MESSAGE"
    assert "PING and UNREGISTER" in error["message"]


def test_ping_to_the_gateway_gets_pong_with_the_same_payload(registered: Session, clock: ManualClock) -> None:
    payload = {"seq": 7, "nested": {"x": [1, 2.5, "ü"]}}
    text, message_id = frame(ALICE, "PING", GATEWAY.did, payload)
    action = registered.receive(text, clock.monotonic())
    assert isinstance(action, Reply) and action.error is None
    pong = _gateway_message(action.text)
    assert (pong.type, pong.recipient, pong.correlation_id) == ("PONG", ALICE.did, message_id)
    assert pong.payload == payload


def test_ping_to_the_gateway_with_a_bad_signature_is_refused(registered: Session,
                                                             clock: ManualClock) -> None:
    text = signed_by(BOB, envelope_fields(ALICE.did, "PING", GATEWAY.did))
    assert _routed_error(registered, text, clock.monotonic())["code"] == "INVALID_SIGNATURE"


def test_unregister_closes_normally(registered: Session, clock: ManualClock) -> None:
    action = registered.receive(frame(ALICE, "UNREGISTER", GATEWAY.did)[0], clock.monotonic())
    assert action == Close(Ending.UNREGISTERED)
    assert (action.code, action.reason) == (1000, "unregistered")
    assert registered.state is State.CLOSED and registered.ending is Ending.UNREGISTERED


@pytest.mark.parametrize(("text", "code", "correlation_id"), [
    ("not json", "MALFORMED_MESSAGE", None),
    ('{"id": "z1"}', "MALFORMED_MESSAGE", "z1"),
    ('{"id": "z2", "payload": {"a": 1, "a": 2}}', "MALFORMED_MESSAGE", None),
    (json.dumps({**json.loads(frame(ALICE, "OFFER", BOB.did)[0]), "version": "2.0", "id": "z3"}),
     "UNSUPPORTED_VERSION", "z3"),
])
def test_bad_frames_after_registration_get_an_error_and_the_session_stays_open(
        registered: Session, clock: ManualClock, text: str, code: str, correlation_id: str | None) -> None:
    error = _routed_error(registered, text, clock.monotonic())
    assert (error["code"], error["correlation_id"]) == (code, correlation_id)
    text, message_id = frame(ALICE, "OFFER", BOB.did)
    assert registered.receive(text, clock.monotonic()) == Forward(BOB.did, text, "OFFER", message_id,
                                                                  ALICE.did)


def test_binary_frame_after_registration_is_answered_and_keeps_the_session(registered: Session) -> None:
    action = registered.receive_binary()
    assert isinstance(action, Reply) and action.error is ErrorCode.MALFORMED_MESSAGE
    assert "binary" in _error(action.text)["message"]
    assert registered.state is State.REGISTERED


def test_error_found_by_the_io_layer_after_registration_is_answered(registered: Session) -> None:
    action = registered.reject(ProtocolError(ErrorCode.RATE_LIMITED, "slow down"))
    assert isinstance(action, Reply) and action.error is ErrorCode.RATE_LIMITED
    assert registered.state is State.REGISTERED


# -- VERIFY_SIGNATURES=handshake --------------------------------------------------------------------


@pytest.fixture
def handshake_only(clock: ManualClock) -> Session:
    session = _session(clock, verify=VerifyMode.HANDSHAKE)
    assert isinstance(session.receive(_register_text(), clock.monotonic()), Register)
    session.registered()
    return session


def test_handshake_mode_still_verifies_register(clock: ManualClock) -> None:
    session = _session(clock, verify=VerifyMode.HANDSHAKE)
    text = signed_by(BOB, envelope_fields(ALICE.did, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL}))
    action, error = _handshake_failure(session, text, clock.monotonic())
    assert (error["code"], action.code) == ("INVALID_SIGNATURE", 4401)


def test_handshake_mode_forwards_routed_frames_without_checking_signatures(
        handshake_only: Session, clock: ManualClock) -> None:
    text = signed_by(BOB, envelope_fields(ALICE.did, "OFFER", BOB.did, id="h-1"))
    assert handshake_only.receive(text, clock.monotonic()) == Forward(BOB.did, text, "OFFER", "h-1",
                                                                            ALICE.did)


def test_handshake_mode_still_enforces_from(handshake_only: Session, clock: ManualClock) -> None:
    action = handshake_only.receive(frame(BOB, "OFFER", BOB.did)[0], clock.monotonic())
    assert isinstance(action, Reply) and action.error is ErrorCode.SENDER_MISMATCH


def test_handshake_mode_still_verifies_messages_to_the_gateway(handshake_only: Session,
                                                               clock: ManualClock) -> None:
    text = signed_by(BOB, envelope_fields(ALICE.did, "UNREGISTER", GATEWAY.did))
    action = handshake_only.receive(text, clock.monotonic())
    assert isinstance(action, Reply) and action.error is ErrorCode.INVALID_SIGNATURE
    assert handshake_only.state is State.REGISTERED


def test_verify_mode_values_match_the_config_option() -> None:
    assert [m.value for m in VerifyMode] == ["all", "handshake"]
    assert SETTINGS.verify is VerifyMode.ALL


# -- any input ----------------------------------------------------------------------------------------

_VALID_FRAMES = [
    _register_text(),
    frame(ALICE, "OFFER", BOB.did)[0],
    frame(ALICE, "PING", GATEWAY.did, {"n": 1})[0],
    frame(ALICE, "UNREGISTER", GATEWAY.did)[0],
]


def _mutate(text: str) -> st.SearchStrategy[str]:
    return st.tuples(st.integers(0, len(text)), st.integers(0, 8), st.text(max_size=4)).map(
        lambda t: text[:t[0]] + t[2] + text[t[0] + t[1]:])


_TEXTS = st.text(max_size=100) | st.sampled_from(_VALID_FRAMES).flatmap(_mutate)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_TEXTS, min_size=1, max_size=3))
def test_any_text_yields_an_action_before_registration(clock: ManualClock, texts: list[str]) -> None:
    session = _session(clock)
    for text in texts:
        assert isinstance(session.receive(text, clock.monotonic()), (Reply, Forward, Register, Close))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(_TEXTS, min_size=1, max_size=3))
def test_any_text_yields_an_action_after_registration(clock: ManualClock, texts: list[str]) -> None:
    session = _session(clock)
    assert isinstance(session.receive(_register_text(), clock.monotonic()), Register)
    for text in texts:
        assert isinstance(session.receive(text, clock.monotonic()), (Reply, Forward, Register, Close))


# -- registering, ending, and the cost of a handshake (issue 11) -----------------------------------


def test_a_registering_session_handles_frames_but_only_the_router_makes_it_registered(
        clock: ManualClock) -> None:
    session = _session(clock)
    assert isinstance(session.receive(_register_text(), clock.monotonic()), Register)
    assert session.state is State.REGISTERING and session.authenticated
    assert session.challenge_expired() is None  # proven in time: the timer cannot close it
    text, message_id = frame(ALICE, "OFFER", BOB.did)
    assert session.receive(text, clock.monotonic()) == Forward(BOB.did, text, "OFFER", message_id,
                                                               ALICE.did)
    session.registered()
    assert session.state is State.REGISTERED
    session.registered()  # only from REGISTERING
    assert session.state is State.REGISTERED


def test_registered_does_not_reopen_a_session_that_ended_while_registering(
        clock: ManualClock) -> None:
    session = _session(clock)
    session.receive(_register_text(), clock.monotonic())
    assert session.end(Ending.SESSION_CLOSED)
    session.registered()
    assert session.state is State.CLOSED


def test_end_is_the_one_way_into_closed_and_records_the_first_ending(clock: ManualClock) -> None:
    session = _session(clock)
    assert session.ending is None
    assert session.end(Ending.SLOW_CONSUMER) is True
    assert session.end(Ending.RATE_LIMITED) is False
    assert (session.state, session.ending) == (State.CLOSED, Ending.SLOW_CONSUMER)


def test_a_failed_handshake_records_its_ending(clock: ManualClock) -> None:
    session = _session(clock)
    action = session.receive_binary()
    assert isinstance(action, Close) and session.ending is action.ending is Ending.HANDSHAKE_FAILED


def test_register_with_a_wrong_nonce_is_refused_before_its_signature_is_checked(
        clock: ManualClock) -> None:
    """The cheap checks come first: a forged signature does not buy a verification."""
    text = signed_by(BOB, envelope_fields(ALICE.did, "REGISTER", GATEWAY.did, {"nonce": "wrong"}))
    action, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert (error["code"], action.code) == ("AUTH_FAILED", 4401)
    assert "nonce" in error["message"]


def test_register_to_another_gateway_is_refused_before_its_signature_is_checked(
        clock: ManualClock) -> None:
    text = signed_by(BOB, envelope_fields(ALICE.did, "REGISTER", BOB.did, {"nonce": NONCE_B64URL}))
    _action, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert error["code"] == "AUTH_FAILED" and "gateway" in error["message"]


def test_register_with_an_expired_nonce_is_refused_before_its_signature_is_checked(
        clock: ManualClock) -> None:
    session = _session(clock)
    text = signed_by(BOB, envelope_fields(ALICE.did, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL}))
    clock.advance(31)
    _, error = _handshake_failure(session, text, clock.monotonic())
    assert error["code"] == "AUTH_FAILED" and "expired" in error["message"]


def test_register_with_far_too_much_metadata_is_refused_before_its_signature_is_checked(
        clock: ManualClock) -> None:
    metadata = {"n": [1] * (MAX_METADATA_BYTES + 100)}  # ~8 KB of JSON, under the frame bound
    text = signed_by(BOB, envelope_fields(ALICE.did, "REGISTER", GATEWAY.did,
                                          {"nonce": NONCE_B64URL, "metadata": metadata}))
    assert len(text) < MAX_REGISTER_BYTES
    _, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert error["code"] == "MALFORMED_MESSAGE" and "metadata" in error["message"]


@pytest.mark.parametrize("text", [
    "x" * (MAX_REGISTER_BYTES + 1),  # not even JSON: refused before it is parsed
    "\u00e9" * (MAX_REGISTER_BYTES // 2 + 1),  # few characters, too many UTF-8 bytes
])
def test_a_frame_before_registration_over_the_register_bound_is_too_large(
        clock: ManualClock, text: str) -> None:
    action, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert (error["code"], action.code, action.reason) == ("MESSAGE_TOO_LARGE", 1009,
                                                           "message too big")
    assert error["details"] == {"max_bytes": MAX_REGISTER_BYTES}


def test_a_register_of_many_numbers_is_refused_as_too_large(clock: ManualClock) -> None:
    metadata = {"n": [1.5] * 5000}
    text = frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL, "metadata": metadata})[0]
    _, error = _handshake_failure(_session(clock), text, clock.monotonic())
    assert error["code"] == "MESSAGE_TOO_LARGE"


def test_the_largest_metadata_still_fits_the_register_bound_even_escaped(clock: ManualClock) -> None:
    metadata = {"x": "\u00e9" * ((MAX_METADATA_BYTES - 8) // 2)}  # 2 UTF-8 bytes, 6 escaped
    text = json.dumps(json.loads(frame(ALICE, "REGISTER", GATEWAY.did,
                                       {"nonce": NONCE_B64URL, "metadata": metadata})[0]))
    assert len(text.encode()) <= MAX_REGISTER_BYTES
    assert isinstance(_session(clock).receive(text, clock.monotonic()), Register)
