"""did:key identifiers for Ed25519 keys (W3C CCG did:key method).

`did:key:z` + base58btc(0xed 0x01 + 32-byte public key): the multicodec prefix 0xed01 says
"Ed25519 public key", the multibase prefix `z` says "base58btc". The 32 bytes must also be a
valid Ed25519 public key (the method's `invalidPublicKey` error): libsodium decides, see
`public_key_from_did`.
"""

from __future__ import annotations

from functools import lru_cache

import base58
from nacl.bindings import crypto_core_ed25519_is_valid_point

from .errors import ErrorCode, ProtocolError

DID_KEY_PREFIX = "did:key:z"
ED25519_MULTICODEC = b"\xed\x01"
PUBLIC_KEY_LENGTH = 32
EXPECTED_FORM = "did:key:z + base58btc(0xed01 multicodec prefix + 32-byte Ed25519 public key)"
# A well-formed Ed25519 did:key is 56 characters ("did:key:z6Mk" + 44); allow a little slack only.
_MAX_DID_LENGTH = 64


def did_from_public_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key (encoding only: the point is not checked)."""
    if len(public_key) != PUBLIC_KEY_LENGTH:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_LENGTH} bytes, got {len(public_key)}")
    return DID_KEY_PREFIX + base58.b58encode(ED25519_MULTICODEC + public_key).decode("ascii")


@lru_cache(maxsize=65536)
def public_key_from_did(did: str) -> bytes:
    """The raw Ed25519 public key inside `did`; INVALID_DID when `did` is not of the expected form.

    The key must be what libsodium's crypto_core_ed25519_is_valid_point accepts: the canonical
    encoding (y < p) of a point on the curve, in the prime-order subgroup, not of small order.
    Every key made from a private seed is one; anything else is a name no key can sign for
    alone (small order), the second spelling of a key (y >= p), or one of 8 names for one key
    (a torsion component), and strict did:key resolvers refuse it.

    Cached: the same DIDs come back on every message they send or receive. Only valid DIDs are
    cached (lru_cache keeps no raised exception), so refused ones can neither fill the cache nor
    be served from it; the point check (about 45 us) runs once per valid DID.
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
    if not crypto_core_ed25519_is_valid_point(key):
        raise _invalid(did, "its 32 bytes are not a valid Ed25519 public key (off the curve, "
                            "not canonical, or of small or mixed order)")
    return key


def is_valid_did(did: object) -> bool:
    """True when `did` is a well-formed Ed25519 did:key of a valid public key."""
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
