"""did:key <-> Ed25519 public key: the W3C CCG vectors, round trips and every refused form."""

from __future__ import annotations

import base64

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from aiconexus_gateway.did import (
    ED25519_MULTICODEC,
    EXPECTED_FORM,
    did_from_public_key,
    is_valid_did,
    public_key_from_did,
)
from aiconexus_gateway.errors import ErrorCode, ProtocolError

from .support import DATA, load_json

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
def test_any_32_byte_key_round_trips(public_key: bytes) -> None:
    did = did_from_public_key(public_key)
    assert did.startswith("did:key:z6Mk")
    assert len(did) == 56
    assert public_key_from_did(did) == public_key
    assert is_valid_did(did)


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
