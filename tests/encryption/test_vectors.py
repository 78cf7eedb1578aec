"""End-to-end encryption without sockets: the published vectors (tests/data/e2e/vectors.json),
the did:key -> X25519 conversion against the W3C did:key vectors, the envelope binding, and
ClientSession sealing what it sends and opening (or reporting) what it receives."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import pytest
from nacl.signing import VerifyKey

from aiconexus_gateway.client.session import (
    ClientSession,
    ClientSettings,
    Deliver,
    Registered,
    Report,
    Send,
)
from aiconexus_gateway.did import did_from_public_key, public_key_from_did
from aiconexus_gateway.e2e import ALG, E2E, E2EError, associated_data, x25519_secret_key
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import build, parse
from tests.encryption.vectors import VECTORS, key, render

DATA = Path(__file__).resolve().parents[1] / "data"
LOADED: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
WALL = 1_800_000_000.0


def test_the_vector_file_is_exactly_what_the_code_makes() -> None:
    assert VECTORS.read_text(encoding="utf-8") == render(), \
        "tests/data/e2e/vectors.json is stale: python -m tests.encryption.vectors"


def _base58(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + BASE58.index(char)
    return number.to_bytes(32, "big")


def test_the_x25519_keys_are_the_w3c_did_key_key_agreement_keys() -> None:
    vectors = json.loads((DATA / "did-key" / "ed25519-x25519.json").read_text(encoding="utf-8"))
    checked = 0
    for did, vector in vectors.items():
        agreement = vector.get("keyAgreementKeyPair")
        if agreement is None:
            continue
        public = sodium.crypto_sign_ed25519_pk_to_curve25519(public_key_from_did(did))
        if "publicKeyBase58" in agreement:
            expected = _base58(agreement["publicKeyBase58"])
        else:  # the last W3C vector gives a JWK
            expected = base64.urlsafe_b64decode(agreement["publicKeyJwk"]["x"] + "=")
        assert public == expected, did
        if "seed" in vector and "privateKeyBase58" in agreement:
            secret = x25519_secret_key(DIDKey.from_seed(bytes.fromhex(vector["seed"])))
            assert secret == _base58(agreement["privateKeyBase58"]), did
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("vector", LOADED["valid"], ids=lambda v: v["name"])
def test_a_valid_vector_seals_to_its_bytes_and_opens_from_its_frame(vector: dict[str, Any]) -> None:
    sender, recipient = key(vector["sender"]), key(vector["recipient"])
    sealed = E2E(sender).seal(recipient.did, vector["type"], vector["id"], vector["payload"],
                              nonce=bytes.fromhex(vector["nonce"]))
    assert sealed == vector["sealed_payload"]
    assert associated_data(sender.did, recipient.did, vector["type"], vector["id"]) \
        == vector["associated_data"].encode()
    envelope = parse(vector["frame"])
    envelope.verify(sender.verify_key)
    opened = E2E(recipient).open(envelope.sender, str(envelope.recipient), envelope.type,
                                 envelope.id, envelope.payload)
    assert opened == vector["payload"]
    # the key the recipient derives is the one the vector names (crypto_kx, sender as client)
    rx, _ = E2E(recipient)._session_keys(sender.did)
    assert rx.hex() == vector["key"]


@pytest.mark.parametrize("vector", LOADED["invalid"], ids=lambda v: v["name"])
def test_an_invalid_vector_verifies_but_does_not_open(vector: dict[str, Any]) -> None:
    envelope = parse(vector["frame"])
    envelope.verify(_verify_key_of(envelope.sender))  # a valid signature: only the e2e fails
    with pytest.raises(E2EError) as refused:
        E2E(key(vector["recipient"])).open(envelope.sender, str(envelope.recipient),
                                           envelope.type, envelope.id, envelope.payload)
    assert refused.value.code == vector["error"], vector["why"]


def _verify_key_of(did: str) -> VerifyKey:
    return VerifyKey(public_key_from_did(did))


def test_every_kind_of_refusal_has_a_vector() -> None:
    names = {v["name"] for v in LOADED["invalid"]}
    assert {"moved-other-type", "moved-other-id", "moved-other-sender", "reflected",
            "moved-other-recipient", "tampered-ciphertext", "tampered-nonce"} <= names
    assert {v["error"] for v in LOADED["invalid"]} == {"E2E_DECRYPT_FAILED", "E2E_MALFORMED",
                                                       "E2E_UNSUPPORTED"}


def test_two_seals_of_one_payload_differ_and_both_open() -> None:
    alice, bob = key("alice"), key("bob")
    first = E2E(alice).seal(bob.did, "INTENT", "m", {"a": 1})
    second = E2E(alice).seal(bob.did, "INTENT", "m", {"a": 1})
    assert first != second  # a random 24-byte nonce each time
    assert E2E(bob).open(alice.did, bob.did, "INTENT", "m", first) == {"a": 1}
    assert E2E(bob).open(alice.did, bob.did, "INTENT", "m", second) == {"a": 1}


def test_a_payload_for_someone_else_and_a_bad_peer_are_refused_with_their_codes() -> None:
    alice, bob = key("alice"), key("bob")
    sealed = E2E(alice).seal(bob.did, "INTENT", "m", {"a": 1})
    with pytest.raises(E2EError) as refused:
        E2E(alice).open(alice.did, bob.did, "INTENT", "m", sealed)
    assert refused.value.code == "E2E_NOT_FOR_US"
    small_order = did_from_public_key(bytes(32))  # a small-order point: no X25519 key
    with pytest.raises(E2EError) as bad:
        E2E(alice).seal(small_order, "INTENT", "m", {})
    assert bad.value.code == "E2E_BAD_PEER"
    assert isinstance(bad.value, ValueError)  # send() documents ValueError for a bad `to`


def test_the_alg_is_named_in_the_payload_and_bound_in_the_associated_data() -> None:
    sealed = E2E(key("alice")).seal(key("bob").did, "INTENT", "m", {})
    assert sealed["e2e"]["alg"] == ALG
    assert json.loads(associated_data("a", "b", "INTENT", "m"))["alg"] == ALG


# -- ClientSession ---------------------------------------------------------------------------

GATEWAY = DIDKey.from_seed(bytes([9]) * 32)


def registered(agent: DIDKey) -> ClientSession:
    session = ClientSession(agent, ClientSettings(), wall_clock=lambda: WALL)
    session.connecting()
    challenge, _ = build(GATEWAY, "CHALLENGE", None, {"nonce": "AAAA", "expires_in": 30}, now=WALL)
    sent = session.receive(challenge, 0.0)
    assert isinstance(sent, Send)
    done, _ = build(GATEWAY, "REGISTERED", agent.did, {"session_id": "s", "agent_timeout": 300},
                    correlation_id=json.loads(sent.text)["id"], now=WALL)
    assert isinstance(session.receive(done, 0.0), Registered)
    return session


def test_a_session_sends_encrypted_and_the_peer_session_delivers_the_plaintext() -> None:
    alice, bob = registered(key("alice")), registered(key("bob"))
    message_id, text = alice.send(key("bob").did, "EXEC_REQUEST", {"method": "sum", "params": [1, 2]},
                                  None, 0.0, encrypt=True)
    assert text is not None
    wire = parse(text)
    assert wire.id == message_id and set(wire.payload) == {"e2e"} and "sum" not in text
    decision = bob.receive(text, 0.0)
    assert isinstance(decision, Deliver)
    assert decision.message.encrypted
    assert decision.message.payload == {"method": "sum", "params": [1, 2]}
    assert decision.message.fields["payload"] == wire.payload  # the signed envelope, as sent
    plain, _ = build(key("alice"), "INTENT", key("bob").did, {"e2e_like": 1}, now=WALL)
    delivered = bob.receive(plain, 0.0)
    assert isinstance(delivered, Deliver) and not delivered.message.encrypted


def test_a_session_reports_a_ciphertext_that_does_not_open_and_does_not_deliver_it() -> None:
    bob = registered(key("bob"))
    for vector in LOADED["invalid"]:
        if vector["recipient"] != "bob":
            continue
        before = bob.invalid_messages
        decision = bob.receive(vector["frame"], 0.0)
        assert isinstance(decision, Report), vector["name"]
        assert decision.error.reason.startswith(vector["error"] + ":"), decision.error.reason
        assert decision.error.text == vector["frame"]
        assert bob.invalid_messages == before + 1


def test_messages_to_the_gateway_cannot_be_encrypted() -> None:
    alice = registered(key("alice"))
    with pytest.raises(ValueError, match="only messages to another agent"):
        alice.send(GATEWAY.did, "PING", {}, None, 0.0, encrypt=True)


def test_the_worked_example_of_protocol_md_is_the_first_vector_verbatim() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = doc[doc.index("## 20. End-to-end encrypted payloads"):]
    vector, agents = LOADED["valid"][0], LOADED["agents"]
    for value in (agents["alice"]["did"], agents["bob"]["did"], agents["alice"]["x25519_public"],
                  agents["alice"]["x25519_secret"], agents["bob"]["x25519_public"],
                  vector["shared_secret"], vector["key"], vector["nonce"], vector["plaintext"],
                  vector["associated_data"], vector["ciphertext"], vector["frame"], vector["id"]):
        assert f"`{value}`" in section or f"\n{value}\n" in section, value
    assert f"({len(vector['plaintext'].encode())} bytes)" in section
    assert f"({len(vector['associated_data'].encode())} bytes)" in section
    assert f"({len(bytes.fromhex(vector['ciphertext']))} bytes, hex)" in section
