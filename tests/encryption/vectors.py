"""The end-to-end encryption test vectors (tests/data/e2e/vectors.json), made from fixed seeds,
nonces, ids and timestamps with the gateway's own code and libsodium.

`python -m tests.encryption.vectors` rewrites the file; test_vectors.py checks that the file is
exactly what this makes, so a change of construction cannot pass unnoticed."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import nacl.bindings as sodium

from aiconexus_gateway.canonical import canonicalize
from aiconexus_gateway.e2e import ALG, E2E, associated_data, b64url, x25519_secret_key
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import sign_fields, utc_timestamp

VECTORS = Path(__file__).resolve().parents[1] / "data" / "e2e" / "vectors.json"
SEEDS = {"alice": bytes(32), "bob": bytes([1]) * 32, "carol": bytes([2]) * 32}
NOW = 1795687200.0  # 2026-11-26T10:00:00.000Z

VALID: list[tuple[str, str, str, str, str, dict[str, Any], str | None, bytes]] = [
    # name, sender, recipient, type, id, payload, correlation_id, nonce
    ("intent", "alice", "bob", "INTENT", "7d0b3c2a-1f4e-4a6b-8c9d-0e1f2a3b4c5d",
     {"intent": "translate", "params": {"text": "Bonjour, le monde", "to": "en"}}, None,
     bytes(range(24))),
    ("response-unicode-numbers", "bob", "alice", "EXEC_RESPONSE", "e5f6a7b8-9c0d-4e1f-a2b3-c4d5e6f7a8b9",
     {"result": {"text": "Hello, world €😀", "n": 1.5, "big": 1e21, "ok": True, "none": None}},
     "7d0b3c2a-1f4e-4a6b-8c9d-0e1f2a3b4c5d", bytes([0xA5]) * 24),
    ("empty-payload", "alice", "bob", "EXEC_REQUEST", "1", {}, None, bytes([0xFF]) * 24),
]


def key(name: str) -> DIDKey:
    return DIDKey.from_seed(SEEDS[name])


def frame(sender: str, recipient: str, type: str, message_id: str, payload: dict[str, Any],
          correlation_id: str | None = None, signer: str | None = None) -> str:
    """The signed frame (member order as the SDK writes it); `signer` signs as the sender."""
    fields: dict[str, Any] = {"id": message_id, "type": type, "from": key(sender).did,
                              "to": key(recipient).did, "timestamp": utc_timestamp(NOW),
                              "version": "1.0", "payload": payload}
    if correlation_id is not None:
        fields["correlation_id"] = correlation_id
    return sign_fields(key(signer or sender), fields)


def agent(name: str) -> dict[str, str]:
    k = key(name)
    return {"seed": SEEDS[name].hex(), "did": k.did, "ed25519_public": k.public_key.hex(),
            "x25519_public": sodium.crypto_sign_ed25519_pk_to_curve25519(k.public_key).hex(),
            "x25519_secret": x25519_secret_key(k).hex()}


def sending_key(sender: str, recipient: str) -> bytes:
    """crypto_kx: the sender as client, its tx."""
    s, r = key(sender), key(recipient)
    _, tx = sodium.crypto_kx_client_session_keys(
        sodium.crypto_sign_ed25519_pk_to_curve25519(s.public_key), x25519_secret_key(s),
        sodium.crypto_sign_ed25519_pk_to_curve25519(r.public_key))
    return tx


def raw_seal(sender: str, recipient: str, type: str, message_id: str, plaintext: bytes,
             nonce: bytes) -> dict[str, Any]:
    """A sealed payload of any plaintext bytes (for the vectors whose plaintext is wrong)."""
    ad = associated_data(key(sender).did, key(recipient).did, type, message_id)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, ad, nonce, sending_key(sender, recipient))
    return {"e2e": {"alg": ALG, "nonce": b64url(nonce), "ciphertext": b64url(ciphertext)}}


def valid_vector(name: str, sender: str, recipient: str, type: str, message_id: str,
                 payload: dict[str, Any], correlation_id: str | None, nonce: bytes) -> dict[str, Any]:
    sealed = E2E(key(sender)).seal(key(recipient).did, type, message_id, payload, nonce=nonce)
    ciphertext = base64.urlsafe_b64decode(sealed["e2e"]["ciphertext"] + "==")
    return {
        "name": name, "sender": sender, "recipient": recipient, "type": type, "id": message_id,
        "correlation_id": correlation_id, "timestamp": utc_timestamp(NOW), "payload": payload,
        "plaintext": canonicalize(payload).decode("utf-8"),
        "associated_data": associated_data(key(sender).did, key(recipient).did, type,
                                           message_id).decode("utf-8"),
        "shared_secret": sodium.crypto_scalarmult(
            x25519_secret_key(key(sender)),
            sodium.crypto_sign_ed25519_pk_to_curve25519(key(recipient).public_key)).hex(),
        "key": sending_key(sender, recipient).hex(), "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(), "sealed_payload": sealed,
        "frame": frame(sender, recipient, type, message_id, sealed, correlation_id),
    }


def invalid_vectors(first: dict[str, Any]) -> list[dict[str, Any]]:
    """Signed frames whose signature verifies but whose ciphertext must not open, each with the
    error code the recipient reports. Built around the first valid vector (alice to bob)."""
    sealed = first["sealed_payload"]
    inner = sealed["e2e"]
    message_id, nonce = first["id"], bytes.fromhex(first["nonce"])
    cases: list[dict[str, Any]] = []

    def case(name: str, why: str, opener: str, text: str, error: str) -> None:
        cases.append({"name": name, "why": why, "recipient": opener, "frame": text, "error": error})

    def tampered(member: str) -> dict[str, Any]:
        data = bytearray(base64.urlsafe_b64decode(inner[member] + "=" * (-len(inner[member]) % 4)))
        data[0] ^= 0x01
        return {"e2e": {**inner, member: b64url(bytes(data))}}

    case("moved-other-type", "alice's ciphertext in an alice-to-bob envelope of another type",
         "bob", frame("alice", "bob", "EXEC_REQUEST", message_id, sealed), "E2E_DECRYPT_FAILED")
    case("moved-other-id", "alice's ciphertext in an alice-to-bob envelope with another id",
         "bob", frame("alice", "bob", "INTENT", "another-id", sealed), "E2E_DECRYPT_FAILED")
    case("moved-other-sender", "carol copies alice's ciphertext into her own envelope to bob",
         "bob", frame("carol", "bob", "INTENT", message_id, sealed), "E2E_DECRYPT_FAILED")
    case("reflected", "bob sends alice's ciphertext back to alice (same pair, other direction)",
         "alice", frame("bob", "alice", "INTENT", message_id, sealed), "E2E_DECRYPT_FAILED")
    case("moved-other-recipient", "alice's ciphertext for bob in an envelope from alice to carol",
         "carol", frame("alice", "carol", "INTENT", message_id, sealed), "E2E_DECRYPT_FAILED")
    case("tampered-ciphertext", "the first ciphertext byte flipped", "bob",
         frame("alice", "bob", "INTENT", message_id, tampered("ciphertext")), "E2E_DECRYPT_FAILED")
    case("tampered-tag", "the last byte (of the Poly1305 tag) flipped", "bob",
         frame("alice", "bob", "INTENT", message_id, {"e2e": {**inner, "ciphertext": b64url(
             bytes.fromhex(first["ciphertext"])[:-1]
             + bytes([bytes.fromhex(first["ciphertext"])[-1] ^ 0x80]))}}), "E2E_DECRYPT_FAILED")
    case("tampered-nonce", "the first nonce byte flipped", "bob",
         frame("alice", "bob", "INTENT", message_id, tampered("nonce")), "E2E_DECRYPT_FAILED")
    case("unknown-alg", "an alg this construction does not name", "bob",
         frame("alice", "bob", "INTENT", message_id, {"e2e": {**inner, "alg": "x25519-xsalsa20"}}),
         "E2E_UNSUPPORTED")
    case("clear-member-beside", "a member in clear beside 'e2e'", "bob",
         frame("alice", "bob", "INTENT", message_id, {**sealed, "intent": "translate"}),
         "E2E_MALFORMED")
    case("missing-nonce", "'e2e' without its nonce", "bob",
         frame("alice", "bob", "INTENT", message_id,
               {"e2e": {"alg": ALG, "ciphertext": inner["ciphertext"]}}), "E2E_MALFORMED")
    case("padded-base64url", "the nonce with '=' padding (one spelling only: none)", "bob",
         frame("alice", "bob", "INTENT", message_id, {"e2e": {**inner, "nonce": inner["nonce"] + "="}}),
         "E2E_MALFORMED")
    case("standard-base64", "the ciphertext in standard base64 ('+', '/') instead of base64url",
         "bob", frame("alice", "bob", "INTENT", message_id, {"e2e": {**inner, "ciphertext": (
             base64.b64encode(bytes.fromhex(first["ciphertext"])).decode().rstrip("=") + "+/")}}),
         "E2E_MALFORMED")
    case("short-nonce", "a 12-byte nonce (XChaCha20 takes 24)", "bob",
         frame("alice", "bob", "INTENT", message_id, {"e2e": {**inner, "nonce": b64url(nonce[:12])}}),
         "E2E_MALFORMED")
    case("plaintext-not-object", "the plaintext decrypts to a JSON array", "bob",
         frame("alice", "bob", "INTENT", message_id,
               raw_seal("alice", "bob", "INTENT", message_id, b"[1,2]", nonce)), "E2E_MALFORMED")
    case("plaintext-duplicate-key", "the plaintext is JSON with a key twice (not strict JSON)",
         "bob", frame("alice", "bob", "INTENT", message_id, raw_seal(
             "alice", "bob", "INTENT", message_id, b'{"a":1,"a":2}', nonce)), "E2E_MALFORMED")
    return cases


def build_vectors() -> dict[str, Any]:
    valid = [valid_vector(*entry) for entry in VALID]
    return {
        "description": "ioap.v1 end-to-end encrypted payloads (docs/protocol.md section 20); "
                       "tests/data/README.md says how to use them",
        "alg": ALG,
        "agents": {name: agent(name) for name in SEEDS},
        "valid": valid,
        "invalid": invalid_vectors(valid[0]),
    }


def render() -> str:
    return json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    VECTORS.write_text(render(), encoding="utf-8")
    print(f"wrote {VECTORS}")
