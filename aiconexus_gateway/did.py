"""did:key identifiers for Ed25519 keys (W3C CCG did:key method).

`did:key:z` + base58btc(0xed 0x01 + 32-byte public key): the multicodec prefix 0xed01 says
"Ed25519 public key", the multibase prefix `z` says "base58btc". The 32 bytes must also be a
valid Ed25519 public key (the method's `invalidPublicKey` error): libsodium decides, see
`public_key_from_did`.
"""

from __future__ import annotations

from functools import lru_cache

from nacl.bindings import crypto_core_ed25519_is_valid_point

from .errors import ErrorCode, ProtocolError

DID_KEY_PREFIX = "did:key:z"
ED25519_MULTICODEC = b"\xed\x01"
PUBLIC_KEY_LENGTH = 32
EXPECTED_FORM = "did:key:z + base58btc(0xed01 multicodec prefix + 32-byte Ed25519 public key)"
# A well-formed Ed25519 did:key is 56 characters ("did:key:z6Mk" + 44); allow a little slack only.
_MAX_DID_LENGTH = 64
# The multicodec-prefixed key as one integer: 0xed01 followed by 32 bytes.
_PREFIX_VALUE = int.from_bytes(ED25519_MULTICODEC, "big")
_KEY_BITS = 8 * PUBLIC_KEY_LENGTH

# base58btc (the Bitcoin alphabet: no 0, O, I, l). Written out here rather than calling the
# base58 package: a registration decodes one new DID, and the package's decode plus the
# re-encode that proved the spelling canonical cost ~15 us of the ~60 us of a new DID; the
# integer form below is exact and needs no re-encode (see public_key_from_did).
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_NOT_BASE58 = 255
_DIGITS = bytes(_ALPHABET.index(chr(code)) if chr(code) in _ALPHABET else _NOT_BASE58
                for code in range(256))


def b58encode(data: bytes) -> str:
    """The base58btc text of `data` (each leading zero byte is a leading '1')."""
    value = int.from_bytes(data, "big")
    digits = []
    while value:
        value, digit = divmod(value, 58)
        digits.append(_ALPHABET[digit])
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + "".join(reversed(digits))


def _b58value(text: str) -> int | None:
    """The integer `text` spells in base58btc; None when a character is not in the alphabet."""
    try:
        digits = text.encode("ascii").translate(_DIGITS)
    except UnicodeEncodeError:
        return None
    if _NOT_BASE58 in digits:
        return None
    value = 0
    for digit in digits:
        value = value * 58 + digit
    return value


def did_from_public_key(public_key: bytes) -> str:
    """The did:key of a raw 32-byte Ed25519 public key (encoding only: the point is not checked)."""
    if len(public_key) != PUBLIC_KEY_LENGTH:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_LENGTH} bytes, got {len(public_key)}")
    return DID_KEY_PREFIX + b58encode(ED25519_MULTICODEC + public_key)


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
    text = did[len(DID_KEY_PREFIX) :]
    value = _b58value(text)
    if value is None:
        if text != text.strip() and _b58value(text.strip()) is not None:
            raise _invalid(did, "it is not the canonical base58btc spelling of its key")
        raise _invalid(did, "it is not base58btc")
    # Each leading '1' spells a leading zero byte, so a text that starts with one cannot start
    # with 0xed01. Without leading '1's, base58btc has exactly one spelling per integer (the
    # positional one, first digit non-zero), so no re-encoding is needed to prove it canonical.
    length = (value.bit_length() + 7) // 8
    prefix_bits = 8 * len(ED25519_MULTICODEC)
    if text[:1] in ("", "1") or length < len(ED25519_MULTICODEC) or \
            value >> (8 * length - prefix_bits) != _PREFIX_VALUE:
        raise _invalid(did, "the key has no Ed25519 multicodec prefix 0xed01")
    if length - len(ED25519_MULTICODEC) != PUBLIC_KEY_LENGTH:
        raise _invalid(did, f"the key is {length - len(ED25519_MULTICODEC)} bytes, "
                            f"not {PUBLIC_KEY_LENGTH}")
    key = (value & ((1 << _KEY_BITS) - 1)).to_bytes(PUBLIC_KEY_LENGTH, "big")
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
