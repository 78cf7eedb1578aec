"""DIDKey: Ed25519 keys named by their did:key, and the 0600 key file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from aiconexus_gateway.did import public_key_from_did
from aiconexus_gateway.keys import DIDKey

SEED_ZERO_DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"  # W3C vector, seed 00..00


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generated_keys_are_distinct_and_named_by_their_public_key() -> None:
    a, b = DIDKey.generate(), DIDKey.generate()
    assert a.did != b.did
    assert public_key_from_did(a.did) == a.public_key == bytes(a.verify_key)


def test_from_seed_is_deterministic_and_matches_the_w3c_vector() -> None:
    key = DIDKey.from_seed(bytes(32))
    assert key.did == SEED_ZERO_DID
    assert DIDKey.from_seed(bytes(32)).did == key.did
    assert key.seed == bytes(32)
    assert key.public_key == bytes(SigningKey(bytes(32)).verify_key)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_from_seed_refuses_a_seed_of_the_wrong_length(length: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DIDKey.from_seed(b"\x01" * length)


def test_signature_verifies_with_the_verify_key_and_not_after_tampering() -> None:
    key = DIDKey.from_seed(b"\x07" * 32)
    signature = key.sign(b"hello")
    assert len(signature) == 64
    assert key.verify_key.verify(b"hello", signature) == b"hello"
    with pytest.raises(BadSignatureError):
        key.verify_key.verify(b"hellO", signature)
    with pytest.raises(BadSignatureError):
        DIDKey.generate().verify_key.verify(b"hello", signature)


def test_ed25519_signatures_are_deterministic() -> None:
    key = DIDKey.from_seed(b"\x07" * 32)
    assert key.sign(b"x") == key.sign(b"x")


def test_repr_names_the_did_and_not_the_seed() -> None:
    key = DIDKey.from_seed(b"\x07" * 32)
    assert repr(key) == f"DIDKey({key.did!r})"
    assert key.seed.hex() not in repr(key)


def test_save_writes_an_owner_only_file_that_load_reads_back(tmp_path: Path) -> None:
    key = DIDKey.generate()
    path = tmp_path / "gateway.key"
    key.save(path)
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == {"type": "Ed25519", "did": key.did, "seed": key.seed.hex()}
    loaded = DIDKey.load(path)
    assert loaded.did == key.did and loaded.seed == key.seed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.key"]  # no .tmp left behind


def test_save_over_a_world_readable_file_makes_it_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "key.json"
    path.write_text("old")
    os.chmod(path, 0o644)
    DIDKey.generate().save(str(path))
    assert _mode(path) == 0o600


def test_load_or_create_creates_a_0600_file_then_returns_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    created = DIDKey.load_or_create(path)
    assert _mode(path) == 0o600
    again = DIDKey.load_or_create(path)
    assert again.did == created.did


def test_load_accepts_a_file_without_a_did_field(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(json.dumps({"seed": "00" * 32}))
    assert DIDKey.load(path).did == SEED_ZERO_DID


@pytest.mark.parametrize("content", [
    "",
    "not json",
    "[]",
    '"seed"',
    "{}",
    '{"seed": 5}',
    '{"seed": "zz"}',
    '{"seed": "0011"}',
    '{"seed": null}',
])
def test_load_of_a_bad_file_is_a_value_error_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"^{path}: not a readable DID key file"):
        DIDKey.load(path)


def test_load_of_a_missing_file_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.key"
    with pytest.raises(ValueError, match=f"^{path}: not a readable DID key file"):
        DIDKey.load(path)


def test_load_of_a_directory_is_a_value_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"^{tmp_path}: "):
        DIDKey.load(tmp_path)


def test_load_refuses_a_file_whose_did_does_not_match_its_seed(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(json.dumps({"type": "Ed25519", "did": DIDKey.generate().did, "seed": "00" * 32}))
    with pytest.raises(ValueError, match=f"^{path}: the DID in the file does not match its key"):
        DIDKey.load(path)
    with pytest.raises(ValueError, match="does not match"):
        DIDKey.load_or_create(path)
