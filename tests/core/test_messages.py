"""The ioap.v1 envelope: parse/validate every malformed case, build/verify, tamper detection."""

from __future__ import annotations

import base64
import json
import math
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiconexus_gateway import messages
from aiconexus_gateway.canonical import CanonicalizationError, canonicalize
from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.errors import ErrorCode, ProtocolError
from aiconexus_gateway.messages import (
    ALL_TYPES,
    CONTROL_TYPES,
    MAX_ID_LENGTH,
    PROTOCOL_VERSION,
    ROUTABLE_TYPES,
    Envelope,
    MessageFactory,
    build,
    parse,
    readable_id,
    utc_timestamp,
)
from aiconexus_gateway.session import Forward, Register, Reply, Session, SessionSettings, VerifyMode
from aiconexus_gateway.strictjson import StrictJSONError, loads

from .support import (
    ALICE,
    BOB,
    GATEWAY,
    NONCE,
    NONCE_B64URL,
    WALL,
    envelope_fields,
    frame,
    signed_by,
)

REQUIRED = ("id", "type", "from", "to", "timestamp", "version", "payload", "signature")


def _valid() -> dict[str, Any]:
    text, _ = frame(ALICE, "OFFER", BOB.did, {"sdp": "v=0"}, message_id="m-1")
    return dict(json.loads(text))


def _refused(obj: Any) -> ProtocolError:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    return caught.value


# -- parse: valid frames ------------------------------------------------------------------------


def test_parse_of_a_built_frame_exposes_its_fields_without_the_signature() -> None:
    text, message_id = frame(ALICE, "OFFER", BOB.did, {"sdp": "v=0"}, correlation_id="c-9")
    envelope = parse(text)
    assert isinstance(envelope, Envelope)
    assert (envelope.id, envelope.type, envelope.sender, envelope.recipient) == (
        message_id, "OFFER", ALICE.did, BOB.did)
    assert envelope.payload == {"sdp": "v=0"}
    assert envelope.correlation_id == "c-9"
    assert "signature" not in envelope.fields
    assert envelope.signature == json.loads(text)["signature"]
    assert envelope.needs_full_jcs is False


@pytest.mark.parametrize("type_", sorted(ALL_TYPES))
def test_every_known_type_parses(type_: str) -> None:
    text, _ = frame(ALICE, type_, BOB.did)
    assert parse(text).type == type_


def test_type_sets_partition_the_protocol() -> None:
    assert ROUTABLE_TYPES.isdisjoint(CONTROL_TYPES)
    assert {"OFFER", "ANSWER", "ICE_CANDIDATE", "INTENT", "EXEC_REQUEST", "EXEC_RESPONSE", "ERROR",
            "PING", "PONG"} == ROUTABLE_TYPES
    assert {"CHALLENGE", "REGISTER", "REGISTERED", "UNREGISTER"} == CONTROL_TYPES


def test_null_to_parses_and_correlation_id_is_optional() -> None:
    text, _ = frame(ALICE, "CHALLENGE", None)
    envelope = parse(text)
    assert envelope.recipient is None and envelope.correlation_id is None


@pytest.mark.parametrize("version", ["1.0", "1", "1.1", "1.0.3"])
def test_any_version_with_major_1_parses(version: str) -> None:
    assert parse(json.dumps({**_valid(), "version": version})).fields["version"] == version


@pytest.mark.parametrize("timestamp", [
    "2026-11-26T10:00:00Z", "2026-11-26T10:00:00.123Z", "2026-11-26t10:00:00.123456789z",
    "2026-11-26T10:00:00+01:00", "2026-11-26T10:00:00.5-05:30",
])
def test_rfc3339_timestamps_parse(timestamp: str) -> None:
    assert parse(json.dumps({**_valid(), "timestamp": timestamp})).fields["timestamp"] == timestamp


def test_an_id_of_exactly_the_maximum_length_parses() -> None:
    assert parse(json.dumps({**_valid(), "id": "x" * MAX_ID_LENGTH})).id == "x" * MAX_ID_LENGTH


def test_floats_and_non_ascii_keys_mark_the_envelope_for_the_full_jcs_path() -> None:
    text, _ = frame(ALICE, "INTENT", BOB.did, {"score": 0.5, "ключ": 1})
    envelope = parse(text)
    assert envelope.needs_full_jcs is True
    envelope.verify(ALICE.verify_key)


# -- parse: malformed frames ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "not json", "{", '{"id": "a", "id": "b"}', "NaN", '"\\ud800"'])
def test_text_that_is_not_strict_json_is_malformed_without_correlation(text: str) -> None:
    error = _refused(text)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert error.correlation_id is None


@pytest.mark.parametrize("text", ["[]", '"OFFER"', "1", "null", "true", "[{}]"])
def test_json_that_is_not_an_object_is_malformed(text: str) -> None:
    error = _refused(text)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert error.message == "a message must be a JSON object"
    assert error.correlation_id is None


@pytest.mark.parametrize("bad_id", [None, 5, "", "x" * (MAX_ID_LENGTH + 1), ["m-1"], {"id": "m"}])
def test_a_missing_or_unusable_id_is_malformed_without_correlation(bad_id: Any) -> None:
    obj = _valid()
    if bad_id is None:
        del obj["id"]
    else:
        obj["id"] = bad_id
    error = _refused(obj)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert "'id' must be a string of 1-128 characters" in error.message
    assert error.correlation_id is None


@pytest.mark.parametrize("field", [f for f in REQUIRED if f != "id"])
def test_each_missing_field_is_malformed_and_named(field: str) -> None:
    obj = _valid()
    del obj[field]
    error = _refused(obj)
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert error.message == f"missing field '{field}'"
    assert error.correlation_id == "m-1"


MISTYPED = [
    ("type", 5, "'type' must be a string"),
    ("type", None, "'type' must be a string"),
    ("from", None, "'from' must be a string"),
    ("from", ["did"], "'from' must be a string"),
    ("timestamp", 1790000000, "'timestamp' must be a string"),
    ("version", 1.0, "'version' must be a string"),
    ("payload", [], "'payload' must be an object"),
    ("payload", "x", "'payload' must be an object"),
    ("payload", None, "'payload' must be an object"),
    ("signature", 5, "'signature' must be a string"),
    ("signature", None, "'signature' must be a string"),
    ("to", 5, "'to' must be a DID string (null only in CHALLENGE)"),
    ("to", {"did": "x"}, "'to' must be a DID string (null only in CHALLENGE)"),
    ("correlation_id", 5, "'correlation_id' must be a string of 1-128 characters"),
    ("correlation_id", "", "'correlation_id' must be a string of 1-128 characters"),
    ("correlation_id", "c" * 129, "'correlation_id' must be a string of 1-128 characters"),
    ("type", "HELLO", "unknown message type 'HELLO'"),
    ("type", "offer", "unknown message type 'offer'"),
    ("version", "v1", "'version' must look like '1.0'"),
    ("version", "", "'version' must look like '1.0'"),
    ("version", "1.0.0.0", "'version' must look like '1.0'"),
    ("version", "1.x", "'version' must look like '1.0'"),
    ("timestamp", "yesterday", "'timestamp' must be RFC 3339"),
    ("timestamp", "2026-11-26 10:00:00Z", "'timestamp' must be RFC 3339"),
    ("timestamp", "2026-11-26T10:00:00", "'timestamp' must be RFC 3339"),
    ("timestamp", "2026-11-26T10:00:00Z\n", "'timestamp' must be RFC 3339"),
    # [0-9] means the ASCII digits: other scripts' digits are Unicode "decimal digits" (\d)
    ("timestamp", "\u0662\u0660\u0662\u0666-11-26T10:00:00Z", "'timestamp' must be RFC 3339"),
    ("timestamp", "2026-11-26T10:00:00.\uff11\uff12\uff13Z", "'timestamp' must be RFC 3339"),
    ("timestamp", "2026-11-26T10:00:00+0\u0967:00", "'timestamp' must be RFC 3339"),
    ("version", "\u0661.0", "'version' must look like '1.0'"),
    ("version", "1.\u0660", "'version' must look like '1.0'"),
    ("version", "\uff11.0", "'version' must look like '1.0'"),
    ("version", "1.0.\U0001d7ce", "'version' must look like '1.0'"),
]


@pytest.mark.parametrize(("field", "value", "message"), MISTYPED,
                         ids=[f"{f}={v!r}"[:40] for f, v, _ in MISTYPED])
def test_each_mistyped_field_is_malformed_with_correlation(field: str, value: Any, message: str) -> None:
    error = _refused({**_valid(), field: value})
    assert error.code is ErrorCode.MALFORMED_MESSAGE
    assert message in error.message
    assert error.correlation_id == "m-1"


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.0", "2"])
def test_a_version_whose_major_is_not_1_is_unsupported(version: str) -> None:
    error = _refused({**_valid(), "version": version})
    assert error.code is ErrorCode.UNSUPPORTED_VERSION
    assert PROTOCOL_VERSION in error.message and repr(version) in error.message
    assert error.details == {"supported": ["1.0"]}
    assert error.correlation_id == "m-1"


@pytest.mark.parametrize("signature", ["", "abc", "A" * 87, "A" * 89, "A" * 200])
def test_a_signature_of_the_wrong_length_is_an_invalid_signature(signature: str) -> None:
    error = _refused({**_valid(), "signature": signature})
    assert error.code is ErrorCode.INVALID_SIGNATURE
    assert "64-byte Ed25519 signature" in error.message
    assert error.correlation_id == "m-1"


def _with_padding_bits(signature: str, bits: int) -> str:
    """`signature` with the 4 padding bits of its last base64 character set to `bits`."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(signature[85])
    assert last & 0x0F == 0
    return signature[:85] + alphabet[last | bits] + "=="


VALID_SIGNATURE = _valid()["signature"]
NOT_CANONICAL_BASE64 = {
    "not base64": "!" * 86 + "==",
    "base64 of 66 bytes, no padding": "A" * 88,
    "base64url alphabet": base64.urlsafe_b64encode(b"\xff" * 64).decode(),
    "base64url alphabet, one character": "-" + VALID_SIGNATURE[1:],
    "line feeds for padding": VALID_SIGNATURE[:-2] + "\n\n",
    "a space inside": VALID_SIGNATURE[:40] + " " + VALID_SIGNATURE[41:],
    "a line feed inside": VALID_SIGNATURE[:40] + "\n" + VALID_SIGNATURE[41:],
    "one '=' and a letter": VALID_SIGNATURE[:86] + "=A",
    "padding inside": VALID_SIGNATURE[:40] + "==" + VALID_SIGNATURE[42:],
    "non-ASCII": VALID_SIGNATURE[:40] + "\u00e9" + VALID_SIGNATURE[41:],
    "padding bit 1": _with_padding_bits(VALID_SIGNATURE, 1),
    "padding bit 2": _with_padding_bits(VALID_SIGNATURE, 2),
    "padding bits 15": _with_padding_bits(VALID_SIGNATURE, 15),
}


@pytest.mark.parametrize("signature", NOT_CANONICAL_BASE64.values(), ids=NOT_CANONICAL_BASE64.keys())
def test_a_signature_that_is_not_the_canonical_base64_of_64_bytes_is_refused_when_parsed(
        signature: str) -> None:
    """Refused before any routing decision, so also when VERIFY_SIGNATURES=handshake forwards
    frames unverified: a strict decoder at the recipient would refuse them (RFC 4648 3.5)."""
    assert len(signature) == 88
    error = _refused({**_valid(), "signature": signature})
    assert error.code is ErrorCode.INVALID_SIGNATURE
    assert "canonical padded base64" in error.message
    assert error.correlation_id == "m-1"


@pytest.mark.parametrize("bits", range(1, 16))
def test_padding_bits_are_refused_although_the_bytes_would_verify(bits: int) -> None:
    """A lenient decoder reads the same 64 bytes, which verify; one text per signature only."""
    obj = _valid()
    assert base64.b64decode(_with_padding_bits(obj["signature"], bits)) == base64.b64decode(
        obj["signature"])
    parse(json.dumps(obj)).verify(ALICE.verify_key)
    error = _refused({**obj, "signature": _with_padding_bits(obj["signature"], bits)})
    assert error.code is ErrorCode.INVALID_SIGNATURE


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_the_canonical_base64_of_any_64_bytes_is_accepted(raw: bytes) -> None:
    envelope = parse(json.dumps({**_valid(), "signature": base64.b64encode(raw).decode()}))
    assert envelope.signature_bytes == raw


def test_an_envelope_built_with_a_non_canonical_signature_is_refused() -> None:
    fields = envelope_fields(ALICE.did, "OFFER", BOB.did)
    with pytest.raises(ProtocolError) as caught:
        Envelope(fields, _with_padding_bits(VALID_SIGNATURE, 3), False)
    assert caught.value.code is ErrorCode.INVALID_SIGNATURE
    assert caught.value.correlation_id == "msg-1"


# -- readable_id ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ('{"id": "abc"}', "abc"),
    ('{"id": "abc", "type": 5}', "abc"),
    ('{"id": 5}', None),
    ('{"id": ""}', None),
    (json.dumps({"id": "x" * 129}), None),
    ('["abc"]', None),
    ("not json", None),
    ('{"id": "a", "id": "b"}', None),
])
def test_readable_id_reads_the_id_only_when_it_is_a_valid_one(text: str, expected: str | None) -> None:
    assert readable_id(text) == expected


# -- build / verify ------------------------------------------------------------------------------


def test_built_frame_verifies_with_the_sender_key_only() -> None:
    text, _ = frame(ALICE, "OFFER", BOB.did, {"sdp": "v=0"})
    envelope = parse(text)
    envelope.verify(ALICE.verify_key)
    with pytest.raises(ProtocolError) as caught:
        envelope.verify(BOB.verify_key)
    assert caught.value.code is ErrorCode.INVALID_SIGNATURE
    assert "RFC 8785" in caught.value.message
    assert caught.value.correlation_id == envelope.id


def test_build_fills_the_envelope() -> None:
    text, message_id = build(ALICE, "PING", GATEWAY.did, {"n": 1}, now=WALL + 0.25,
                             correlation_id="c-1")
    obj = json.loads(text)
    assert str(uuid.UUID(message_id, version=4)) == message_id
    assert obj == {
        "id": message_id, "type": "PING", "from": ALICE.did, "to": GATEWAY.did,
        "timestamp": "2026-09-21T14:13:20.250Z", "version": "1.0", "payload": {"n": 1},
        "correlation_id": "c-1", "signature": obj["signature"],
    }
    assert len(base64.b64decode(obj["signature"], validate=True)) == 64


def test_build_uses_the_given_id_and_omits_an_absent_correlation_id() -> None:
    text, message_id = build(ALICE, "OFFER", BOB.did, {}, message_id="mine", now=WALL)
    assert message_id == "mine"
    assert "correlation_id" not in json.loads(text)


def test_built_frames_are_compact_and_keep_slashes_and_unicode_unescaped() -> None:
    text, _ = frame(ALICE, "OFFER", BOB.did, {"url": "https://x/y", "name": "ü😂"})
    assert " " not in text.replace("https://x/y", "")
    assert "https://x/y" in text and "ü😂" in text
    parse(text).verify(ALICE.verify_key)


_PAYLOAD_VALUES = st.recursive(
    st.none() | st.booleans() | st.text(max_size=10) | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children,
                                                                      max_size=4),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _PAYLOAD_VALUES, max_size=5),
       st.sampled_from(sorted(ROUTABLE_TYPES)))
def test_any_json_payload_survives_build_parse_and_verify(payload: dict[str, Any], type_: str) -> None:
    text, message_id = frame(ALICE, type_, BOB.did, payload)
    envelope = parse(text)
    envelope.verify(ALICE.verify_key)
    assert envelope.payload == payload and envelope.id == message_id


def test_build_refuses_a_payload_that_has_no_canonical_form() -> None:
    with pytest.raises(ValueError):
        frame(ALICE, "OFFER", BOB.did, {"x": math.nan})


def _tampered(obj: dict[str, Any], field: str) -> dict[str, Any]:
    changed = dict(obj)
    value = obj[field]
    if field in ("from", "to"):
        changed[field] = BOB.did if value != BOB.did else ALICE.did
    elif field == "type":
        changed[field] = "ANSWER"
    elif field == "version":
        changed[field] = "1.1"
    elif field == "timestamp":
        changed[field] = value.replace(".123Z", ".124Z")
    elif field == "payload":
        changed[field] = {**value, "sdp": "v=1"}
    else:
        changed[field] = value + "x"
    return changed


TAMPERABLE = ["id", "type", "from", "to", "timestamp", "version", "payload", "correlation_id",
              "x-trace"]


@pytest.mark.parametrize("field", TAMPERABLE)
def test_tampering_with_any_field_breaks_the_signature(field: str) -> None:
    fields = envelope_fields(ALICE.did, "OFFER", BOB.did, {"sdp": "v=0"}, correlation_id="c-1",
                             **{"x-trace": "t-1"})
    obj = json.loads(signed_by(ALICE, fields))
    parse(json.dumps(obj)).verify(ALICE.verify_key)
    tampered = parse(json.dumps(_tampered(obj, field)))
    with pytest.raises(ProtocolError) as caught:
        tampered.verify(ALICE.verify_key)
    assert caught.value.code is ErrorCode.INVALID_SIGNATURE


def test_extra_top_level_fields_are_covered_by_the_signature() -> None:
    text, _ = frame(ALICE, "OFFER", BOB.did, {}, extra={"trace": {"hop": 1}})
    obj = json.loads(text)
    assert obj["trace"] == {"hop": 1}
    parse(text).verify(ALICE.verify_key)
    for changed in ({**obj, "trace": {"hop": 2}},
                    {k: v for k, v in obj.items() if k != "trace"},
                    {**obj, "added": True}):
        with pytest.raises(ProtocolError):
            parse(json.dumps(changed)).verify(ALICE.verify_key)


def test_reformatting_a_frame_keeps_its_signature_valid() -> None:
    """The signature covers the canonical form, not the bytes: key order and spaces do not matter."""
    obj = json.loads(frame(ALICE, "OFFER", BOB.did, {"b": 1, "a": [1.5, "x"]})[0])
    reordered = json.dumps(dict(reversed(list(obj.items()))), indent=2)
    parse(reordered).verify(ALICE.verify_key)


def test_an_envelope_that_cannot_be_canonicalized_is_malformed_at_verification() -> None:
    fields = envelope_fields(ALICE.did, "OFFER", BOB.did, {"x": math.inf})
    envelope = Envelope(fields, base64.b64encode(bytes(64)).decode(), True)
    with pytest.raises(ProtocolError) as caught:
        envelope.verify(ALICE.verify_key)
    assert caught.value.code is ErrorCode.MALFORMED_MESSAGE
    assert "cannot be canonicalized" in caught.value.message
    assert caught.value.correlation_id == "msg-1"


# -- the gateway's own messages -------------------------------------------------------------------


def test_message_factory_signs_with_the_gateway_key_at_its_clock_time() -> None:
    factory = MessageFactory(GATEWAY, lambda: 0.0)
    envelope = parse(factory.make("PONG", ALICE.did, {"n": 1}, "p-1"))
    envelope.verify(GATEWAY.verify_key)
    assert (envelope.type, envelope.sender, envelope.recipient, envelope.correlation_id) == (
        "PONG", GATEWAY.did, ALICE.did, "p-1")
    assert envelope.fields["timestamp"] == "1970-01-01T00:00:00.000Z"
    assert factory.did == GATEWAY.did


def test_message_factory_error_carries_code_message_details_and_correlation() -> None:
    factory = MessageFactory(GATEWAY, lambda: WALL)
    error = ProtocolError(ErrorCode.UNKNOWN_AGENT, "not here", details={"to": BOB.did},
                          correlation_id="m-7")
    envelope = parse(factory.error(ALICE.did, error))
    envelope.verify(GATEWAY.verify_key)
    assert envelope.type == "ERROR"
    assert envelope.payload == {"code": "UNKNOWN_AGENT", "message": "not here", "details": {"to": BOB.did}}
    assert envelope.correlation_id == "m-7"


def test_message_factory_error_before_registration_goes_to_null() -> None:
    factory = MessageFactory(GATEWAY, lambda: WALL)
    envelope = parse(factory.error(None, ProtocolError(ErrorCode.MALFORMED_MESSAGE, "bad")))
    assert envelope.recipient is None and envelope.correlation_id is None
    assert envelope.payload["details"] == {}


@pytest.mark.parametrize(("seconds", "expected"), [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (WALL, "2026-09-21T14:13:20.000Z"),
    (WALL + 0.1239, "2026-09-21T14:13:20.123Z"),
    (WALL + 0.9999, "2026-09-21T14:13:20.999Z"),
])
def test_utc_timestamp_is_rfc3339_utc_with_milliseconds(seconds: float, expected: str) -> None:
    assert utc_timestamp(seconds) == expected
    assert messages._TIMESTAMP.match(expected)


def test_new_ids_are_unique_uuid4s() -> None:
    ids = {messages.new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(uuid.UUID(i).version == 4 for i in ids)


def test_a_gateway_that_does_not_verify_routed_frames_still_refuses_a_non_canonical_signature(
        ) -> None:
    """VERIFY_SIGNATURES=handshake forwards frames unverified; never one a strict decoder refuses."""
    clock = ManualClock()
    session = Session(MessageFactory(GATEWAY, clock.wall),
                      SessionSettings(30.0, 300.0, 20.0, VerifyMode.HANDSHAKE),
                      nonce=NONCE, session_id="s-1", now=clock.monotonic())
    register = frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL})[0]
    assert isinstance(session.receive(register, clock.monotonic()), Register)
    obj = _valid()
    assert isinstance(session.receive(json.dumps(obj), clock.monotonic()), Forward)
    obj["signature"] = _with_padding_bits(obj["signature"], 5)
    action = session.receive(json.dumps(obj), clock.monotonic())
    assert isinstance(action, Reply) and action.error is ErrorCode.INVALID_SIGNATURE


# -- the exact-frame fast path (messages._parse_exact) ------------------------------------------------


# mostly values the fast path takes, some it must decline (floats, integers beyond 2**53, keys
# beyond ASCII, which RFC 8785 sorts by UTF-16 code units)
_KEYS = st.text(st.characters(max_codepoint=0x7F), max_size=6) | st.text(max_size=6)
_EXACT_VALUES = st.recursive(
    st.none() | st.booleans() | st.text(max_size=10) | st.integers(-1000, 1000)
    | st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, 2**63, -(2**64), 1.0, 0.5, -0.0]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_KEYS, children, max_size=4),
    max_leaves=15,
)


def _strict(text: str) -> tuple[dict[str, Any], Any, bytes] | None:
    """What the strict path makes of `text`: (fields, signature, canonical bytes), or None."""
    try:
        obj, needs_full = loads(text)
    except StrictJSONError:
        return None
    if type(obj) is not dict:
        return None
    signature = obj.pop("signature", None)
    try:
        return obj, signature, canonicalize(obj, needs_full=needs_full)
    except CanonicalizationError:
        return None


def _spellings(fields: dict[str, Any], signature: str, draw: Any) -> str:
    """One text of `fields` plus `signature`: compact or spaced, escaped or not, with a key
    repeated or not, in some key order."""
    members = [*fields.items(), ("signature", signature)]
    members = draw(st.permutations(members))
    style = draw(st.sampled_from(["orjson", "orjson", "stdlib", "ascii", "spaced", "slash"]))
    if draw(st.integers(0, 3)) == 3:  # (hypothesis favours 0)
        repeated = draw(st.sampled_from(members))
        members.insert(draw(st.integers(0, len(members))), (repeated[0], draw(_EXACT_VALUES)))
    parts = []
    for key, value in members:
        if style == "orjson":
            try:
                parts.append(orjson.dumps(key).decode() + ":" + orjson.dumps(value).decode())
            except TypeError:  # beyond 64 bits
                parts.append(json.dumps(key) + ":" + json.dumps(value))
        elif style == "spaced":
            parts.append(json.dumps(key) + " : " + json.dumps(value))
        else:
            text = json.dumps(key, ensure_ascii=style == "ascii") + ":" + \
                json.dumps(value, ensure_ascii=style == "ascii")
            parts.append(text.replace("/", "\\/") if style == "slash" else text)
    return "{" + ",".join(parts) + "}"


@settings(max_examples=600)
@given(st.data())
def test_the_exact_fast_path_agrees_with_the_strict_parser_on_any_spelling(data: Any) -> None:
    """Whatever the spelling (duplicates, spaces, escapes, floats, big integers, any key order,
    signatures of any length), the fast path either declines or gives exactly the strict path's
    fields, signature and RFC 8785 bytes; and it never accepts a text the strict path refuses."""
    fields = envelope_fields(ALICE.did, "OFFER", BOB.did,
                             data.draw(st.dictionaries(_KEYS, _EXACT_VALUES,
                                                       max_size=5)))
    signature = data.draw(st.sampled_from(["A" * 88, "A" * 88, "A" * 82, "A" * 93, "=" * 88]))
    text = _spellings(fields, signature, data.draw)
    exact = messages._parse_exact(text)
    if exact is None:
        return
    strict = _strict(text)
    assert strict is not None, text
    assert exact == strict
    assert type(exact[0]) is dict and json.dumps(exact[0]) == json.dumps(strict[0])


def test_a_built_frame_takes_the_exact_fast_path() -> None:
    """The SDK's and the gateway's frames are what the fast path is for (it fails if they stop
    being, e.g. if the frame encoder changes its escapes)."""
    text, _ = build(ALICE, "OFFER", BOB.did, {"sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n",
                                              "note": "caf\u00e9 \u2028 \"q\" \\ / \x01 \x7f"},
                    now=WALL)
    exact = messages._parse_exact(text)
    assert exact is not None
    envelope = parse(text)
    assert envelope.canonical == exact[2] == canonicalize(envelope.fields, needs_full=None)
    envelope.verify(ALICE.verify_key)


@pytest.mark.parametrize("text", [
    # a duplicate of 6 bytes (with its comma) hidden by a signature 6 characters short: the
    # lengths match, so only the signature's own length check sends it to the strict path
    '{"a":0,"a":0,"signature":"' + "A" * 82 + '"}',
    '{"id":"x","id":"x","signature":"' + "A" * 88 + '"}',
    '{"signature":"' + "A" * 88 + '","signature":"' + "B" * 88 + '"}',
])
def test_duplicate_keys_are_refused_whatever_the_lengths(text: str) -> None:
    assert messages._parse_exact(text) is None
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    assert caught.value.code is ErrorCode.MALFORMED_MESSAGE
    assert "duplicate key" in caught.value.message


@pytest.mark.parametrize("payload", [{"n": 2**60}, {"n": 1.5}, {"\u00e9": 1}, {"n": [1e300]}])
def test_values_rfc8785_spells_differently_take_the_strict_path(payload: dict[str, Any]) -> None:
    text, _ = build(ALICE, "OFFER", BOB.did, payload, now=WALL)
    assert messages._parse_exact(text) is None
    envelope = parse(text)
    assert envelope.canonical is None and envelope.needs_full_jcs
    envelope.verify(ALICE.verify_key)
