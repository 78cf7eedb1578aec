"""Ed25519 key pairs named by their did:key: the gateway's identity and each agent's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nacl.signing import SigningKey, VerifyKey

from .did import did_from_public_key

KEY_FILE_TYPE = "Ed25519"


class DIDKey:
    """An Ed25519 signing key and the did:key that names its public half."""

    __slots__ = ("_signing_key", "did", "verify_key")

    def __init__(self, signing_key: SigningKey) -> None:
        self._signing_key = signing_key
        self.verify_key: VerifyKey = signing_key.verify_key
        self.did: str = did_from_public_key(bytes(self.verify_key))

    @classmethod
    def generate(cls) -> DIDKey:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> DIDKey:
        """The key whose 32-byte private seed is `seed` (deterministic, for tests and key files)."""
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(SigningKey(seed))

    @property
    def public_key(self) -> bytes:
        return bytes(self.verify_key)

    @property
    def seed(self) -> bytes:
        return bytes(self._signing_key)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `data`."""
        return bytes(self._signing_key.sign(data).signature)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key to `path`, readable by its owner only (mode 0600)."""
        path = Path(path)
        document = {"type": KEY_FILE_TYPE, "did": self.did, "seed": self.seed.hex()}
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DIDKey:
        """Read a key written by `save`; ValueError naming the file when it is not one."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            key = cls.from_seed(bytes.fromhex(document["seed"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable DID key file ({exc})") from None
        if document.get("did") not in (None, key.did):
            raise ValueError(f"{path}: the DID in the file does not match its key")
        return key

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> DIDKey:
        """The key in `path`, created (mode 0600) when the file does not exist."""
        if Path(path).exists():
            return cls.load(path)
        key = cls.generate()
        key.save(path)
        return key

    def __repr__(self) -> str:
        return f"DIDKey({self.did!r})"
