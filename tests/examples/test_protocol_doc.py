"""docs/protocol.md's worked example is what the code computes, byte for byte.

Implementers check their DID encoding, RFC 8785 output and signatures against the document, so
every value in it is recomputed here with the library and must appear in it verbatim.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from aiconexus_gateway.canonical import canonicalize
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import MessageFactory, parse, sign_fields
from aiconexus_gateway.session import Register, Session, SessionSettings
from aiconexus_gateway.strictjson import loads

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"

AGENT_SEED = bytes(32)
GATEWAY_SEED = bytes([1]) * 32
NONCE_BYTES = bytes(range(32))
AGENT_DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def nonce() -> str:
    return base64.urlsafe_b64encode(NONCE_BYTES).rstrip(b"=").decode("ascii")


def challenge_fields() -> dict[str, Any]:
    return {"id": "0c9a1f3e-7b2d-4c8e-a5f6-1d2e3f4a5b6c", "type": "CHALLENGE",
            "from": DIDKey.from_seed(GATEWAY_SEED).did, "to": None,
            "timestamp": "2026-11-26T10:00:00.000Z", "version": "1.0",
            "payload": {"nonce": nonce(), "expires_in": 30}}


def register_fields() -> dict[str, Any]:
    return {"id": "5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c", "type": "REGISTER",
            "from": DIDKey.from_seed(AGENT_SEED).did, "to": DIDKey.from_seed(GATEWAY_SEED).did,
            "timestamp": "2026-11-26T10:00:00.123Z", "version": "1.0",
            "payload": {"nonce": nonce(), "metadata": {"name": "alice"}}}


def load_raw_client() -> ModuleType:
    spec = importlib.util.spec_from_file_location("raw_client", ROOT / "examples" / "raw_client.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_did_example_shows_every_encoding_step(doc: str) -> None:
    key = DIDKey.from_seed(AGENT_SEED)
    assert key.did == AGENT_DID
    for value in (AGENT_SEED.hex(), key.public_key.hex(), (b"\xed\x01" + key.public_key).hex(),
                  key.did, key.did[len("did:key:z"):]):
        assert value in doc


def test_gateway_identity_and_nonce_of_the_example_are_in_the_doc(doc: str) -> None:
    gateway = DIDKey.from_seed(GATEWAY_SEED)
    assert gateway.did in doc
    assert gateway.public_key.hex() in doc
    assert NONCE_BYTES.hex() in doc
    assert f"`{nonce()}`" in doc


def test_challenge_example_canonical_form_signature_and_frame_are_verbatim(doc: str) -> None:
    gateway = DIDKey.from_seed(GATEWAY_SEED)
    fields = challenge_fields()
    canonical = canonicalize(fields)
    signature = gateway.sign(canonical)
    assert b'"expires_in":30,' in canonical  # the number rule the section warns about
    assert f"\n{canonical.decode('utf-8')}\n" in doc
    assert f"({len(canonical)} bytes;" in doc
    assert signature.hex() in doc
    assert base64.b64encode(signature).decode("ascii") in doc
    assert f"\n{sign_fields(gateway, fields)}\n" in doc


def test_register_example_canonical_form_signature_and_frame_are_verbatim(doc: str) -> None:
    agent = DIDKey.from_seed(AGENT_SEED)
    fields = register_fields()
    canonical = canonicalize(fields)
    signature = agent.sign(canonical)
    encoded = base64.b64encode(signature).decode("ascii")
    assert len(encoded) == 88 and encoded.endswith("==")
    assert f"\n{canonical.decode('utf-8')}\n" in doc
    assert f"exactly these {len(canonical)} bytes" in doc
    assert hashlib.sha256(canonical).hexdigest() in doc
    assert signature.hex() in doc
    assert encoded in doc
    assert f"\n{sign_fields(agent, fields)}\n" in doc


def test_documented_register_frame_is_accepted_by_the_gateway_session(doc: str) -> None:
    frame = next(line for line in doc.splitlines()
                 if line.startswith('{"id":"5b3a2c1e') and '"signature"' in line)
    gateway = DIDKey.from_seed(GATEWAY_SEED)
    settings = SessionSettings(challenge_timeout=30, agent_timeout=300, ping_interval=20)
    session = Session(MessageFactory(gateway, lambda: 0.0), settings, nonce=NONCE_BYTES,
                      session_id="session", now=0.0)
    action = session.receive(frame, now=1.0)
    assert isinstance(action, Register)
    assert action.did == AGENT_DID
    assert action.metadata == {"name": "alice"}


def test_documented_challenge_frame_verifies_against_the_gateway_did(doc: str) -> None:
    frame = next(line for line in doc.splitlines()
                 if line.startswith('{"id":"0c9a1f3e') and '"signature"' in line)
    parse(frame).verify(DIDKey.from_seed(GATEWAY_SEED).verify_key)


def test_number_table_matches_the_canonicalizer(doc: str) -> None:
    table = doc.split("| JSON in the frame | canonical |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\s*\| (.+?) \| `(.+?)` \|$", table, flags=re.MULTILINE)
    assert len(rows) >= 6
    for sources, expected in rows:
        for source in re.findall(r"`([^`]+)`", sources):
            value, needs_full = loads(source)
            assert canonicalize(value, needs_full=needs_full).decode() == expected, source


def test_raw_client_reproduces_the_documented_canonical_bytes() -> None:
    raw = load_raw_client()
    assert raw.canonicalize(register_fields()) == canonicalize(register_fields())
    assert raw.canonicalize(challenge_fields()) == canonicalize(challenge_fields())
    assert raw.did_from_public_key(DIDKey.from_seed(AGENT_SEED).public_key) == AGENT_DID
    tricky = {"é": "a\u0001\"\\/\u007f\n", "b": [1.5, -0.0, True, None, 0.001], "a": {"z": 1}}
    assert raw.canonicalize(tricky) == canonicalize(tricky)
