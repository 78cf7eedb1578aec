"""did:key <-> Ed25519 public key: the W3C CCG vectors, round trips and every refused form."""

from __future__ import annotations

import base64

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.signing import SigningKey

from aiconexus_gateway.clock import ManualClock
from aiconexus_gateway.did import (
    ED25519_MULTICODEC,
    EXPECTED_FORM,
    b58encode,
    did_from_public_key,
    is_valid_did,
    public_key_from_did,
)
from aiconexus_gateway.errors import ErrorCode, ProtocolError
from aiconexus_gateway.messages import MessageFactory, parse
from aiconexus_gateway.session import Close, Register, Reply, Session, SessionSettings

from .support import ALICE, DATA, GATEWAY, NONCE, NONCE_B64URL, envelope_fields, frame, load_json, signed_by

VECTORS: dict[str, dict] = load_json(DATA / "did-key" / "ed25519-x25519.json")
VALID = next(iter(VECTORS))
VALID_KEY = base58.b58decode(VECTORS[VALID]["verificationKeyPair"]["publicKeyBase58"])
SEEDED = [(did, v["seed"]) for did, v in VECTORS.items() if "seed" in v]
BASE58 = [(did, v["verificationKeyPair"]["publicKeyBase58"]) for did, v in VECTORS.items()
          if "publicKeyBase58" in v["verificationKeyPair"]]
JWK = [(did, v["verificationKeyPair"]["publicKeyJwk"]) for did, v in VECTORS.items()
       if "publicKeyJwk" in v["verificationKeyPair"]]


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_vector_file_has_every_kind_of_vector() -> None:
    assert len(VECTORS) == 5
    assert len(SEEDED) == 5 and len(BASE58) == 4 and len(JWK) == 1


@pytest.mark.parametrize(("did", "seed"), SEEDED, ids=[d for d, _ in SEEDED])
def test_did_of_a_seeded_key_matches_the_vector(did: str, seed: str) -> None:
    public_key = bytes(SigningKey(bytes.fromhex(seed)).verify_key)
    assert did_from_public_key(public_key) == did
    assert public_key_from_did(did) == public_key


@pytest.mark.parametrize(("did", "key58"), BASE58, ids=[d for d, _ in BASE58])
def test_did_of_a_base58_public_key_matches_the_vector(did: str, key58: str) -> None:
    public_key = base58.b58decode(key58)
    assert did_from_public_key(public_key) == did
    assert public_key_from_did(did) == public_key
    assert is_valid_did(did)


@pytest.mark.parametrize(("did", "jwk"), JWK, ids=[d for d, _ in JWK])
def test_did_of_a_jwk_public_key_matches_the_vector(did: str, jwk: dict) -> None:
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    public_key = _b64url(jwk["x"])
    assert did_from_public_key(public_key) == did
    assert public_key_from_did(did) == public_key


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_the_key_of_any_seed_round_trips(seed: bytes) -> None:
    public_key = bytes(SigningKey(seed).verify_key)
    did = did_from_public_key(public_key)
    assert did.startswith("did:key:z6Mk")
    assert len(did) == 56
    assert public_key_from_did(did) == public_key
    assert is_valid_did(did)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_32_bytes_encode_and_are_accepted_only_as_a_valid_point(public_key: bytes) -> None:
    """Most random 32-byte strings are not Ed25519 public keys: about 7 in 8 of the points that
    exist have a torsion component, and half the y values have no point at all."""
    did = did_from_public_key(public_key)
    assert len(did) == 56
    assert is_valid_did(did) is crypto_core_ed25519_is_valid_point(public_key)



@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 3))
def test_base58btc_encoding_is_the_base58_package_s(data: bytes, zeros: int) -> None:
    """did.py writes base58btc itself (faster); the reference implementation must agree, leading
    zero bytes ('1's) included."""
    data = b"\x00" * zeros + data
    assert b58encode(data) == base58.b58encode(data).decode("ascii")


def _reference_key(did: str) -> bytes | None:
    """What the key of `did` is by the base58 package: decode, check the prefix and the length,
    and that re-encoding gives the same text (base58 has one spelling per value)."""
    text = did[len("did:key:z"):]
    try:
        decoded = base58.b58decode(text)
    except ValueError:
        return None
    if (not decoded.startswith(ED25519_MULTICODEC) or len(decoded) != 34
            or base58.b58encode(decoded).decode("ascii") != text):
        return None
    return decoded[2:] if crypto_core_ed25519_is_valid_point(decoded[2:]) else None


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.lists(
    st.tuples(st.integers(0, 60), st.sampled_from("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk"
                                                  "mnopqrstuvwxyz0OIl \né"), st.integers(0, 2)),
    max_size=3))
def test_any_edit_of_a_did_is_decoded_as_the_base58_package_decodes_it(
        seed: bytes, edits: list[tuple[int, str, int]]) -> None:
    """Replace, insert or delete characters of a valid DID: accepted exactly when the package's
    decode (and its re-encode) accepts it, with the same key."""
    text = list(did_from_public_key(bytes(SigningKey(seed).verify_key))[len("did:key:z"):])
    for position, char, operation in edits:
        position = min(position, len(text))
        if operation == 0 and position < len(text):
            text[position] = char
        elif operation == 1:
            text.insert(position, char)
        elif position < len(text):
            del text[position]
    did = "did:key:z" + "".join(text)
    expected = _reference_key(did)
    try:
        assert public_key_from_did(did) == expected
    except ProtocolError as error:
        assert expected is None, error.message
        assert error.code is ErrorCode.INVALID_DID

# -- 32 bytes that are not an Ed25519 public key (W3C did:key: invalidPublicKey) -----------------

INVALID_POINTS: list[dict[str, str]] = load_json(DATA / "did-key" / "invalid-ed25519.json")["vectors"]


def test_invalid_point_vectors_cover_every_kind() -> None:
    kinds = [vector["kind"] for vector in INVALID_POINTS]
    assert {kind: kinds.count(kind) for kind in set(kinds)} == {
        "small-order": 9, "off-curve": 3, "non-canonical": 5, "mixed-order": 4}
    small = {vector["publicKeyHex"][:62] + f"{int(vector['publicKeyHex'][62:], 16) & 0x7F:02x}"
             for vector in INVALID_POINTS if vector["kind"] == "small-order"}
    # the 8 points of order 1, 2, 4 or 8 have 5 y values: 1 and -1 (x = 0), 0 and the 2 of order 8
    assert len(small) == 5


@pytest.mark.parametrize("vector", INVALID_POINTS, ids=[f"{v['kind']}: {v['why']}" for v in INVALID_POINTS])
def test_did_of_32_bytes_that_are_not_a_valid_ed25519_key_is_invalid_did(vector: dict[str, str]) -> None:
    did = vector["did"]
    assert did_from_public_key(bytes.fromhex(vector["publicKeyHex"])) == did  # the data is what it says
    with pytest.raises(ProtocolError) as caught:
        public_key_from_did(did)
    error = caught.value
    assert error.code is ErrorCode.INVALID_DID
    assert "not a valid Ed25519 public key" in error.message
    assert error.details == {"expected": EXPECTED_FORM}
    assert not is_valid_did(did)


def test_refused_dids_are_not_cached_and_valid_ones_are() -> None:
    """An attacker cycling through invalid DIDs neither fills the cache nor gets one served."""
    fresh = did_from_public_key(bytes(SigningKey(b"\x42" * 32).verify_key))
    public_key_from_did(fresh)
    before = public_key_from_did.cache_info()
    assert public_key_from_did(fresh) == bytes(SigningKey(b"\x42" * 32).verify_key)
    assert public_key_from_did.cache_info().hits == before.hits + 1
    for vector in INVALID_POINTS * 3:
        assert not is_valid_did(vector["did"])
    after = public_key_from_did.cache_info()
    assert after.currsize == before.currsize
    assert after.misses == before.misses + 3 * len(INVALID_POINTS)  # each refusal checked afresh


def _session() -> tuple[Session, ManualClock]:
    clock = ManualClock()
    session = Session(MessageFactory(GATEWAY, clock.wall), SessionSettings(30.0, 300.0, 20.0),
                      nonce=NONCE, session_id="session-1", now=clock.monotonic())
    return session, clock


SMALL_ORDER_DID = INVALID_POINTS[0]["did"]  # the identity point
MIXED_ORDER_DID = next(v["did"] for v in INVALID_POINTS if v["kind"] == "mixed-order")


@pytest.mark.parametrize("did", [SMALL_ORDER_DID, MIXED_ORDER_DID])
def test_the_gateway_refuses_a_register_from_an_invalid_point_as_invalid_did(did: str) -> None:
    session, clock = _session()
    text = signed_by(ALICE, envelope_fields(did, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL},
                                            id="reg-1"))
    action = session.receive(text, clock.monotonic())
    assert isinstance(action, Close) and action.code == 4400
    error = parse(action.text or "").payload
    assert error["code"] == "INVALID_DID"


@pytest.mark.parametrize("did", [SMALL_ORDER_DID, MIXED_ORDER_DID])
def test_the_gateway_refuses_a_message_to_an_invalid_point_as_invalid_did(did: str) -> None:
    session, clock = _session()
    register = frame(ALICE, "REGISTER", GATEWAY.did, {"nonce": NONCE_B64URL})[0]
    assert isinstance(session.receive(register, clock.monotonic()), Register)
    action = session.receive(frame(ALICE, "OFFER", did, message_id="m-1")[0], clock.monotonic())
    assert isinstance(action, Reply)
    error = parse(action.text)
    assert (error.payload["code"], error.correlation_id) == ("INVALID_DID", "m-1")


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_did_from_a_key_of_the_wrong_length_is_a_value_error(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        did_from_public_key(b"\x01" * length)


def _raw_without_multicodec() -> str:
    return "did:key:z6Mk" + base58.b58encode(VALID_KEY).decode()


REFUSED = {
    "did:web": "did:web:example.com",
    "did:key without multibase z": "did:key:" + VALID[len("did:key:z"):],
    "did:key base64url multibase": "did:key:u" + base64.urlsafe_b64encode(
        ED25519_MULTICODEC + VALID_KEY).decode().rstrip("="),
    "upper-case scheme": VALID.upper(),
    "leading space": " " + VALID,
    "empty": "",
    "prefix only": "did:key:z",
    "raw key without multicodec": _raw_without_multicodec(),
    "raw key with z only": "did:key:z" + base58.b58encode(VALID_KEY).decode(),
    "X25519 multicodec 0xec01": "did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW",
    "secp256k1 multicodec 0xe701": "did:key:z" + base58.b58encode(b"\xe7\x01" + b"\x02" * 33).decode(),
    "31-byte key": "did:key:z" + base58.b58encode(ED25519_MULTICODEC + VALID_KEY[:31]).decode(),
    "33-byte key": "did:key:z" + base58.b58encode(ED25519_MULTICODEC + VALID_KEY + b"\x00").decode(),
    "non-base58 zero": VALID[:-1] + "0",
    "non-base58 capital O": VALID[:-1] + "O",
    "non-base58 l": VALID[:-1] + "l",
    "non-ASCII": VALID[:-1] + "é",
    "trailing space (non-canonical)": VALID + " ",
    "trailing newline (non-canonical)": VALID + "\n",
    "leading 1s (zero bytes)": "did:key:z1" + VALID[len("did:key:z"):],
    "too long": VALID + "z" * 100,
    "just over the limit": VALID + "1" * 9,
}


@pytest.mark.parametrize("did", REFUSED.values(), ids=REFUSED.keys())
def test_malformed_did_is_refused_with_invalid_did_naming_the_expected_form(did: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        public_key_from_did(did)
    error = caught.value
    assert error.code is ErrorCode.INVALID_DID
    assert EXPECTED_FORM in error.message
    assert "did:key:z" in error.message and "0xed01" in error.message
    assert error.details == {"expected": EXPECTED_FORM}
    assert not is_valid_did(did)


def test_trailing_whitespace_is_refused_as_non_canonical() -> None:
    with pytest.raises(ProtocolError, match="not the canonical base58btc spelling"):
        public_key_from_did(VALID + " ")


def test_x25519_did_is_refused_for_its_multicodec() -> None:
    with pytest.raises(ProtocolError, match="no Ed25519 multicodec prefix 0xed01"):
        public_key_from_did(REFUSED["X25519 multicodec 0xec01"])


def test_wrong_key_length_is_named_in_the_message() -> None:
    with pytest.raises(ProtocolError, match="the key is 31 bytes, not 32"):
        public_key_from_did(REFUSED["31-byte key"])


def test_non_base58_is_named_in_the_message() -> None:
    with pytest.raises(ProtocolError, match="not base58btc"):
        public_key_from_did(REFUSED["non-base58 zero"])


def test_too_long_did_is_refused_for_its_length_and_shown_truncated() -> None:
    with pytest.raises(ProtocolError) as caught:
        public_key_from_did(VALID + "z" * 1000)
    assert "longer than" in caught.value.message
    assert len(caught.value.message) < 400


@pytest.mark.parametrize("value", [None, 42, 4.2, b"did:key:z6Mk", ("did:key:z",)])
def test_non_string_did_is_refused_naming_its_type(value: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        public_key_from_did(value)  # type: ignore[arg-type,unused-ignore]  # lru_cache takes Any
    assert caught.value.code is ErrorCode.INVALID_DID
    assert type(value).__name__ in caught.value.message
    assert not is_valid_did(value)


@pytest.mark.parametrize("value", [["did:key:z"], {"did": VALID}])
def test_unhashable_value_is_not_a_valid_did(value: object) -> None:
    assert not is_valid_did(value)


def test_refusal_is_a_fresh_error_each_time() -> None:
    """Callers set correlation_id on the error; a cached exception would leak it to others."""
    errors = []
    for _ in range(2):
        with pytest.raises(ProtocolError) as caught:
            public_key_from_did("did:web:example.com")
        errors.append(caught.value)
    assert errors[0] is not errors[1]
