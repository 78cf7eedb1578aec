"""Error codes and the close codes they produce during the handshake."""

from __future__ import annotations

import pytest

from aiconexus_gateway.errors import (
    CloseCode,
    Ending,
    ErrorCode,
    ProtocolError,
    handshake_close_code,
    handshake_ending,
    peer_close_label,
)

SPEC_CODES = {"MALFORMED_MESSAGE", "UNSUPPORTED_VERSION", "INVALID_DID", "INVALID_SIGNATURE",
              "AUTH_FAILED", "NOT_REGISTERED", "SENDER_MISMATCH", "UNKNOWN_AGENT", "SESSION_REPLACED",
              "MESSAGE_TOO_LARGE", "TIMEOUT", "INTERNAL_ERROR"}


def test_every_code_of_the_spec_exists_and_is_its_own_string() -> None:
    assert {c.value for c in ErrorCode} >= SPEC_CODES
    for code in ErrorCode:
        assert code.value == code.name
        assert code == code.value  # a str enum: compares equal to the wire string


@pytest.mark.parametrize(("code", "close"), [
    (ErrorCode.MALFORMED_MESSAGE, 4400),
    (ErrorCode.NOT_REGISTERED, 4400),
    (ErrorCode.INVALID_DID, 4400),
    (ErrorCode.UNSUPPORTED_VERSION, 4400),
    (ErrorCode.AUTH_FAILED, 4401),
    (ErrorCode.INVALID_SIGNATURE, 4401),
    (ErrorCode.TIMEOUT, 4408),
    (ErrorCode.SESSION_REPLACED, 4409),
    (ErrorCode.MESSAGE_TOO_LARGE, 1009),
    (ErrorCode.INTERNAL_ERROR, 1011),
])
def test_handshake_errors_map_to_the_specified_close_codes(code: ErrorCode, close: int) -> None:
    assert handshake_close_code(code) == close


def test_close_codes_of_the_spec() -> None:
    assert (CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.TOO_LARGE) == (1000, 1001, 1009)
    assert (CloseCode.MALFORMED_HANDSHAKE, CloseCode.AUTH_FAILED, CloseCode.TIMEOUT,
            CloseCode.SESSION_REPLACED) == (4400, 4401, 4408, 4409)


# The one table of endings: what each looks like on the wire and in /metrics.
@pytest.mark.parametrize(("ending", "code", "reason", "error", "label", "limit"), [
    (Ending.UNREGISTERED, 1000, "unregistered", None, "normal", False),
    (Ending.GOING_AWAY, 1001, "gateway shutting down", None, "going_away", False),
    (Ending.PROTOCOL_ERROR, 1002, "protocol error", None, "protocol_error", False),
    (Ending.INVALID_UTF8, 1007, "invalid UTF-8", ErrorCode.MALFORMED_MESSAGE, "invalid_utf8", True),
    (Ending.TOO_LARGE, 1009, "message too big", ErrorCode.MESSAGE_TOO_LARGE, "too_large", True),
    (Ending.SLOW_CONSUMER, 4008, "slow consumer", None, "slow_consumer", True),
    (Ending.AGENT_TIMEOUT, 4408, "agent timeout", ErrorCode.TIMEOUT, "agent_timeout", False),
    (Ending.CHALLENGE_TIMEOUT, 4408, "TIMEOUT", ErrorCode.TIMEOUT, "challenge_timeout", False),
    (Ending.SESSION_REPLACED, 4409, "SESSION_REPLACED", ErrorCode.SESSION_REPLACED,
     "session_replaced", False),
    (Ending.RATE_LIMITED, 4429, "rate limited", None, "rate_limited", True),
])
def test_each_ending_has_one_close_code_reason_error_and_label(
        ending: Ending, code: int, reason: str, error: ErrorCode | None, label: str,
        limit: bool) -> None:
    assert (ending.code, ending.reason(), ending.error, ending.label, ending.limit) == (
        code, reason, error, label, limit)


def test_handshake_endings_close_with_the_error_code_as_reason() -> None:
    assert handshake_ending(ErrorCode.INVALID_SIGNATURE) is Ending.AUTH_FAILED
    assert Ending.AUTH_FAILED.reason(ErrorCode.INVALID_SIGNATURE) == "INVALID_SIGNATURE"
    assert handshake_ending(ErrorCode.NOT_REGISTERED) is Ending.HANDSHAKE_FAILED
    assert Ending.HANDSHAKE_FAILED.reason(ErrorCode.NOT_REGISTERED) == "NOT_REGISTERED"


def test_every_metric_label_names_one_ending_except_the_two_normal_closes() -> None:
    labels = [ending.label for ending in Ending]
    assert sorted(label for label in set(labels) if labels.count(label) > 1) == ["normal"]


@pytest.mark.parametrize(("code", "label"), [(1000, "normal"), (1001, "going_away"),
                                             (4000, "other"), (None, "other")])
def test_a_close_the_agent_started_is_labelled_by_its_code(code: int | None, label: str) -> None:
    assert peer_close_label(code) == label


def test_protocol_error_carries_its_code_message_details_and_correlation() -> None:
    error = ProtocolError(ErrorCode.UNKNOWN_AGENT, "gone", details={"to": "x"}, correlation_id="m")
    assert (error.code, error.message, error.details, error.correlation_id) == (
        ErrorCode.UNKNOWN_AGENT, "gone", {"to": "x"}, "m")
    assert str(error) == "gone"
    assert repr(error) == "ProtocolError(UNKNOWN_AGENT, 'gone')"


def test_protocol_error_details_default_to_a_fresh_empty_dict() -> None:
    first, second = ProtocolError(ErrorCode.TIMEOUT, "a"), ProtocolError(ErrorCode.TIMEOUT, "b")
    assert first.details == {} and first.correlation_id is None
    first.details["x"] = 1
    assert second.details == {}
