"""did:key identifiers for Ed25519 keys (W3C CCG did:key method).

`did:key:z` + base58btc(0xed 0x01 + 32-byte public key): the multicodec prefix 0xed01 says
"Ed25519 public key", the multibase prefix `z` says "base58btc".
"""

from __future__ import annotations

from functools import lru_cache

import base58

from .errors import ErrorCode, ProtocolError

DID_KEY_PREFIX = "did:key:z"
ED25519_MULTICODEC = b"\xed\x01"
PUBLIC_KEY_LENGTH = 32
EXPECTED_FORM = "did:key:z + base58btc(0xed01 multicodec prefix + 32-byte Ed25519 public key)"
# A well-formed Ed25519 did:key is 56 characters ("did:key:z6Mk" + 44); allow a little slack only.
_MAX_DID_LENGTH = 64


def did_from_public_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_LENGTH:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_LENGTH} bytes, got {len(public_key)}")
    return DID_KEY_PREFIX + base58.b58encode(ED25519_MULTICODEC + public_key).decode("ascii")


@lru_cache(maxsize=65536)
def public_key_from_did(did: str) -> bytes:
    """The raw Ed25519 public key inside `did`; INVALID_DID when `did` is not of the expected form.

    Cached: the same DIDs come back on every message they send or receive.
    """
    if not isinstance(did, str) or not did.startswith(DID_KEY_PREFIX):
        raise _invalid(did, "it does not start with 'did:key:z'")
    if len(did) > _MAX_DID_LENGTH:
        raise _invalid(did, f"it is longer than {_MAX_DID_LENGTH} characters")
    try:
        decoded = base58.b58decode(did[len(DID_KEY_PREFIX) :])
    except ValueError:
        raise _invalid(did, "it is not base58btc") from None
    if not decoded.startswith(ED25519_MULTICODEC):
        raise _invalid(did, "the key has no Ed25519 multicodec prefix 0xed01")
    key = decoded[len(ED25519_MULTICODEC) :]
    if len(key) != PUBLIC_KEY_LENGTH:
        raise _invalid(did, f"the key is {len(key)} bytes, not {PUBLIC_KEY_LENGTH}")
    if did_from_public_key(key) != did:  # base58 has one spelling per value; refuse leading-zero tricks
        raise _invalid(did, "it is not the canonical base58btc spelling of its key")
    return key


def is_valid_did(did: object) -> bool:
    """True when `did` is a well-formed Ed25519 did:key."""
    try:
        public_key_from_did(did)  # type: ignore[arg-type,unused-ignore]
    except (ProtocolError, TypeError):
        return False
    return True


def _invalid(did: object, why: str) -> ProtocolError:
    shown = did[:80] if isinstance(did, str) else type(did).__name__
    return ProtocolError(
        ErrorCode.INVALID_DID,
        f"invalid DID {shown!r}: {why}; expected {EXPECTED_FORM}",
        details={"expected": EXPECTED_FORM},
    )
