"""Error codes and the close codes they produce during the handshake."""

from __future__ import annotations

import pytest

from aiconexus_gateway.errors import CloseCode, ErrorCode, ProtocolError, handshake_close_code

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
    assert (CloseCode.MALFORMED_HANDSHAKE, CloseCode.AUTH_FAILED, CloseCode.CHALLENGE_TIMEOUT,
            CloseCode.SESSION_REPLACED) == (4400, 4401, 4408, 4409)


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
