"""Shared helpers for the pure-core tests (no sockets): test data, fixed keys, signed frames."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiconexus_gateway import messages
from aiconexus_gateway.keys import DIDKey

DATA = Path(__file__).resolve().parent.parent / "data"
NONCE = bytes(range(32))
NONCE_B64URL = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"  # base64url(NONCE), unpadded
GATEWAY = DIDKey.from_seed(b"\x01" * 32)
ALICE = DIDKey.from_seed(b"\x0a" * 32)
BOB = DIDKey.from_seed(b"\x0b" * 32)
CAROL = DIDKey.from_seed(b"\x0c" * 32)
WALL = 1_790_000_000.0


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def envelope_fields(sender: str, type: str, to: str | None, payload: dict[str, Any] | None = None,
                    **extra: Any) -> dict[str, Any]:
    """The fields of a message, unsigned, for tests that sign with a key other than the sender's."""
    fields: dict[str, Any] = {
        "id": extra.pop("id", "msg-1"),
        "type": type,
        "from": sender,
        "to": to,
        "timestamp": "2026-11-26T10:00:00.123Z",
        "version": "1.0",
        "payload": {} if payload is None else payload,
    }
    fields.update(extra)
    return fields


def signed_by(key: DIDKey, fields: dict[str, Any]) -> str:
    """`fields` signed by `key`, whatever `from` says."""
    return messages.sign_fields(key, fields)


def frame(key: DIDKey, type: str, to: str | None, payload: dict[str, Any] | None = None,
          **kwargs: Any) -> tuple[str, str]:
    """A correctly signed frame from `key`: (text, id)."""
    return messages.build(key, type, to, {} if payload is None else payload, now=WALL, **kwargs)

