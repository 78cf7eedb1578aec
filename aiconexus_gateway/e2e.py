"""End-to-end encrypted payloads: agents encrypt to each other; the gateway routes what it cannot read.

Theory of operation (docs/protocol.md section 20 is the specification; this is its code). An
encrypted message is an ordinary signed envelope whose `payload` is exactly one member, `e2e`:

    {"e2e": {"alg": "x25519-kx-xchacha20poly1305", "nonce": b64url(24 bytes),
             "ciphertext": b64url(XChaCha20-Poly1305(key, nonce, plaintext, ad))}}

- key: libsodium's crypto_kx over the X25519 forms of the two did:key Ed25519 keys
  (crypto_sign_ed25519_{pk,sk}_to_curve25519), the sender as kx client, the recipient as server:
  the sender's `tx` is the recipient's `rx`, one key per direction and per pair of DIDs, so only
  these two agents hold it and a message from A to B never opens as one from B to A.
- plaintext: the RFC 8785 canonical UTF-8 bytes of the payload the application sent.
- ad: the RFC 8785 canonical bytes of {"alg", "from", "id", "to", "type"} of the envelope, so the
  ciphertext opens only inside the envelope it was made for.

Every primitive is libsodium's (PyNaCl bindings); this module only names the inputs. Pure: no
I/O, randomness only for the nonce (passed in by tests). Callers keep one `E2E` per agent key; it
caches the per-peer session keys (one X25519 each).
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from typing import Any

import nacl.bindings as sodium
from nacl.exceptions import CryptoError
from nacl.utils import random as random_bytes

from .canonical import CanonicalizationError, canonicalize
from .did import public_key_from_did
from .errors import ProtocolError
from .keys import DIDKey
from .strictjson import StrictJSONError, loads

MEMBER = "e2e"  # the payload member that carries the ciphertext
ALG = "x25519-kx-xchacha20poly1305"
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
CACHE_SIZE = 256  # peers whose session keys are kept


class E2EError(ValueError):
    """A payload could not be encrypted, or an encrypted payload does not open (not delivered)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def is_encrypted(payload: dict[str, Any]) -> bool:
    """Whether a received payload claims to be encrypted (it has an `e2e` member)."""
    return MEMBER in payload


def associated_data(sender: str, recipient: str, type: str, message_id: str) -> bytes:
    """The envelope members the ciphertext is bound to, as RFC 8785 bytes."""
    return canonicalize({"alg": ALG, "from": sender, "id": message_id, "to": recipient,
                         "type": type})


def x25519_public_key(did: str) -> bytes:
    """The X25519 public key of an Ed25519 did:key (libsodium's birational map)."""
    try:
        return sodium.crypto_sign_ed25519_pk_to_curve25519(public_key_from_did(did))
    except ProtocolError as exc:
        raise E2EError("E2E_BAD_PEER", f"{did!r} is not a usable did:key: {exc.message}") from None
    except (CryptoError, ValueError):
        raise E2EError("E2E_BAD_PEER", f"{did!r} has no X25519 form") from None


def x25519_secret_key(key: DIDKey) -> bytes:
    """The X25519 secret key of an Ed25519 key (libsodium: SHA-512 of the seed, clamped)."""
    return sodium.crypto_sign_ed25519_sk_to_curve25519(key.seed + key.public_key)


def b64url(data: bytes) -> str:
    """RFC 4648 section 5 base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: Any, what: str) -> bytes:
    """Strict base64url without padding: one spelling per byte string, else E2EError."""
    if not isinstance(text, str) or not text.isascii():
        raise E2EError("E2E_MALFORMED", f"'{what}' must be a base64url string")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise E2EError("E2E_MALFORMED", f"'{what}' is not base64url") from None
    if b64url(data) != text:  # padding, other alphabets, whitespace, non-zero trailing bits
        raise E2EError("E2E_MALFORMED", f"'{what}' is not canonical base64url without padding")
    return data


class E2E:
    """One agent's end of the encryption: seals payloads to peers and opens theirs."""

    def __init__(self, key: DIDKey, *, cache_size: int = CACHE_SIZE) -> None:
        self.did = key.did
        self._public = sodium.crypto_sign_ed25519_pk_to_curve25519(key.public_key)
        self._secret = x25519_secret_key(key)
        self._cache_size = cache_size
        self._keys: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()  # peer -> (rx, tx)

    def _session_keys(self, peer: str) -> tuple[bytes, bytes]:
        """(key for messages from `peer` to us, key for messages from us to `peer`)."""
        keys = self._keys.get(peer)
        if keys is not None:
            self._keys.move_to_end(peer)
            return keys
        peer_public = x25519_public_key(peer)
        try:
            # we as kx client: tx = our sending key; the peer as client gives its sending key,
            # which is our receiving key (libsodium names it the server's rx)
            _, tx = sodium.crypto_kx_client_session_keys(self._public, self._secret, peer_public)
            rx, _ = sodium.crypto_kx_server_session_keys(self._public, self._secret, peer_public)
        except (CryptoError, ValueError):  # a small-order point: no shared secret
            raise E2EError("E2E_BAD_PEER", f"no shared key with {peer!r}") from None
        keys = (rx, tx)
        self._keys[peer] = keys
        if len(self._keys) > self._cache_size:
            self._keys.popitem(last=False)
        return keys

    def seal(self, recipient: str, type: str, message_id: str, payload: dict[str, Any], *,
             nonce: bytes | None = None) -> dict[str, Any]:
        """The payload to send instead of `payload` in the envelope (from us, to `recipient`,
        `type`, `message_id`)."""
        try:
            plaintext = canonicalize(payload)
        except CanonicalizationError as exc:
            raise E2EError("E2E_MALFORMED", f"the payload has no JSON form: {exc}") from None
        nonce = random_bytes(NONCE_BYTES) if nonce is None else nonce
        if len(nonce) != NONCE_BYTES:
            raise ValueError(f"the nonce is {NONCE_BYTES} bytes")
        _, tx = self._session_keys(recipient)
        ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
            plaintext, associated_data(self.did, recipient, type, message_id), nonce, tx)
        return {MEMBER: {"alg": ALG, "nonce": b64url(nonce), "ciphertext": b64url(ciphertext)}}

    def open(self, sender: str, recipient: str, type: str, message_id: str,
             payload: dict[str, Any]) -> dict[str, Any]:
        """The payload `sender` encrypted for us in this envelope; E2EError when it does not open."""
        if recipient != self.did:
            raise E2EError("E2E_NOT_FOR_US", f"encrypted for {recipient!r}, not for this agent")
        if len(payload) != 1:
            raise E2EError("E2E_MALFORMED", "an encrypted payload has the one member 'e2e'; "
                           f"this one also has {sorted(k for k in payload if k != MEMBER)}")
        sealed = payload[MEMBER]
        if not isinstance(sealed, dict) or set(sealed) != {"alg", "nonce", "ciphertext"}:
            raise E2EError("E2E_MALFORMED", "'e2e' must be an object with exactly 'alg', 'nonce' "
                           "and 'ciphertext'")
        if sealed["alg"] != ALG:
            raise E2EError("E2E_UNSUPPORTED", f"unknown 'alg' {sealed['alg']!r}; this agent "
                           f"opens {ALG!r}")
        nonce = from_b64url(sealed["nonce"], "nonce")
        if len(nonce) != NONCE_BYTES:
            raise E2EError("E2E_MALFORMED", f"'nonce' must be {NONCE_BYTES} bytes")
        ciphertext = from_b64url(sealed["ciphertext"], "ciphertext")
        if len(ciphertext) < TAG_BYTES:
            raise E2EError("E2E_MALFORMED", "'ciphertext' is shorter than its 16-byte tag")
        rx, _ = self._session_keys(sender)
        try:
            plaintext = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                ciphertext, associated_data(sender, recipient, type, message_id), nonce, rx)
        except CryptoError:
            raise E2EError("E2E_DECRYPT_FAILED", "the ciphertext does not open: tampered, made "
                           "for another envelope (from, to, type, id) or by another key") from None
        try:
            value, _ = loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, StrictJSONError) as exc:
            raise E2EError("E2E_MALFORMED", f"the plaintext is not strict JSON: {exc}") from None
        if not isinstance(value, dict):
            raise E2EError("E2E_MALFORMED", "the plaintext is not a JSON object")
        return value
