"""A hostile client, run as its own process by test_hostile.py: thousands of malformed frames of
every kind, each checked against the answer the gateway documents for it (SECURITY.md).

    python -m tests.reliability.hostile WS_URL VICTIM_DID --rounds N --connections C

Prints one JSON line: frames sent per kind, and every frame whose answer was not the documented one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiconexus_gateway.keys import DIDKey
from tests.reliability.support import BINARY, TEXT, RawWebSocket, raw_registered, signed

# kind -> (ERROR code, close code); None: no ERROR / the connection stays open.
# Frames on a registered connection: answered with an ERROR, the session stays open.
KEEP_OPEN: dict[str, str] = {
    "not_json": "MALFORMED_MESSAGE",
    "non_object_json": "MALFORMED_MESSAGE",
    "deep_nesting": "MALFORMED_MESSAGE",
    "huge_number": "MALFORMED_MESSAGE",
    "huge_integer": "MALFORMED_MESSAGE",
    "wrong_field_type": "MALFORMED_MESSAGE",
    "missing_field": "MALFORMED_MESSAGE",
    "duplicate_key": "MALFORMED_MESSAGE",
    "lone_surrogate": "MALFORMED_MESSAGE",
    "unknown_type": "MALFORMED_MESSAGE",
    "control_type_to_agent": "MALFORMED_MESSAGE",
    "unsupported_version": "UNSUPPORTED_VERSION",
    "invalid_did": "INVALID_DID",
    "bad_base64_signature": "INVALID_SIGNATURE",
    "wrong_signature": "INVALID_SIGNATURE",
    "spoofed_from": "SENDER_MISMATCH",
    "replayed_register_same_connection": "MALFORMED_MESSAGE",
    "binary_frame": "MALFORMED_MESSAGE",
}
# Frames that end the connection: the ERROR (if any) and then the close code.
CLOSING: dict[str, tuple[str | None, int]] = {
    "message_before_register": ("NOT_REGISTERED", 4400),
    "garbage_before_register": ("MALFORMED_MESSAGE", 4400),
    "binary_before_register": ("MALFORMED_MESSAGE", 4400),
    "replayed_register_other_connection": ("AUTH_FAILED", 4401),
    "register_wrong_signature": ("INVALID_SIGNATURE", 4401),
    "register_for_another_gateway": ("AUTH_FAILED", 4401),
    "oversized_frame": ("MESSAGE_TOO_LARGE", 1009),
    "far_oversized_frame": (None, 1009),
    "invalid_utf8": ("MALFORMED_MESSAGE", 1007),
    "invalid_utf8_after_register": ("MALFORMED_MESSAGE", 1007),
}
MAX_MESSAGE_SIZE = 65536
WINDOW = 16  # frames in flight per connection


def _envelope(key: DIDKey, to: str, **changes: Any) -> str:
    fields = json.loads(signed(key, "OFFER", to, {"sdp": "v=0"}))
    fields.update(changes)
    return json.dumps(fields)


def keep_open_frame(kind: str, key: DIDKey, victim: str, gateway: str, register: str
                    ) -> tuple[int, bytes]:
    """One frame of `kind` from the registered `key` (opcode, bytes)."""
    builders: dict[str, Callable[[], str]] = {
        "not_json": lambda: '{"id": "x", "type": ',
        "non_object_json": lambda: '["OFFER", 1, 2]',
        "deep_nesting": lambda: '{"a":' * 40 + "1" + "}" * 40,
        "huge_number": lambda: _envelope(key, victim).replace('"v=0"', "1e400"),
        "huge_integer": lambda: _envelope(key, victim).replace('"v=0"', "9" * 5000),
        "wrong_field_type": lambda: _envelope(key, victim, type=5),
        "missing_field": lambda: json.dumps(
            {k: v for k, v in json.loads(signed(key, "OFFER", victim, {})).items()
             if k != "timestamp"}),
        "duplicate_key": lambda: _envelope(key, victim)[:-1] + ', "to": "' + victim + '"}',
        "lone_surrogate": lambda: _envelope(key, victim).replace('"v=0"', '"\\ud800"'),
        "unknown_type": lambda: _envelope(key, victim, type="HACK"),
        "control_type_to_agent": lambda: signed(key, "REGISTERED", victim, {}),
        "unsupported_version": lambda: _envelope(key, victim, version="2.0"),
        "invalid_did": lambda: signed(key, "OFFER", "did:key:zNotAKey", {}),
        "bad_base64_signature": lambda: _envelope(key, victim, signature="!" * 88),
        "wrong_signature": lambda: _resigned(key, victim),
        "spoofed_from": lambda: signed(key, "OFFER", victim, {}).replace(key.did, victim, 1),
        "replayed_register_same_connection": lambda: register,
    }
    if kind == "binary_frame":
        return BINARY, b"\x00\xffbinary"
    return TEXT, builders[kind]().encode("utf-8")


def _resigned(key: DIDKey, victim: str) -> str:
    """A message from `key` whose signature was made by another key."""
    other = json.loads(signed(DIDKey.generate(), "OFFER", victim, {}))
    mine = json.loads(signed(key, "OFFER", victim, {}))
    mine["signature"] = other["signature"]
    return json.dumps(mine)


class Tally:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.mismatches: list[dict[str, Any]] = []

    def check(self, kind: str, got: Any, expected: Any) -> None:
        self.sent[kind] += 1
        if got != expected:
            self.mismatches.append({"kind": kind, "got": got, "expected": expected})


async def registered_attacker(url: str, victim: str, rounds: int, tally: Tally) -> None:
    ws, key, register = await raw_registered(url)
    gateway = json.loads(register)["to"]
    kinds = sorted(KEEP_OPEN)
    try:
        for _ in range(rounds):
            for start in range(0, len(kinds), WINDOW):
                batch = kinds[start:start + WINDOW]
                for kind in batch:
                    opcode, data = keep_open_frame(kind, key, victim, gateway, register)
                    await ws.send_frame(opcode, data)
                for kind in batch:
                    reply = await ws.recv_json(timeout=10)
                    got = reply["payload"]["code"] if reply and reply["type"] == "ERROR" else reply
                    tally.check(kind, got, KEEP_OPEN[kind])
        await ws.send_text(signed(key, "PING", gateway, {}))  # still registered after all that
        pong = await ws.recv_json(timeout=10)
        tally.check("session_survives", pong and pong["type"], "PONG")
    finally:
        await ws.close()


async def closing_attacker(url: str, kind: str, tally: Tally) -> None:
    expected_error, expected_close = CLOSING[kind]
    key = DIDKey.generate()
    if kind == "invalid_utf8_after_register":
        ws, _, _ = await raw_registered(url)
        await ws.send_frame(TEXT, b'{"id": "\xff"}')
    else:
        ws = await RawWebSocket.connect(url)
        challenge = await ws.recv_json()
        assert challenge is not None
        gateway, nonce = challenge["from"], challenge["payload"]["nonce"]
        if kind == "message_before_register":
            await ws.send_text(signed(key, "OFFER", DIDKey.generate().did, {}))
        elif kind == "garbage_before_register":
            await ws.send_text("GET / HTTP/1.1")
        elif kind == "binary_before_register":
            await ws.send_frame(BINARY, b"\x01\x02")
        elif kind == "replayed_register_other_connection":
            other = await RawWebSocket.connect(url)  # a REGISTER captured from another connection
            other_challenge = await other.recv_json()
            assert other_challenge is not None
            await other.close()
            await ws.send_text(signed(key, "REGISTER", gateway,
                                      {"nonce": other_challenge["payload"]["nonce"]}))
        elif kind == "register_wrong_signature":
            await ws.send_text(_resigned_register(key, gateway, nonce))
        elif kind == "register_for_another_gateway":
            await ws.send_text(signed(key, "REGISTER", DIDKey.generate().did, {"nonce": nonce}))
        elif kind == "oversized_frame":
            await ws.send_text("x" * (MAX_MESSAGE_SIZE + 100))
        elif kind == "far_oversized_frame":  # announce 1 GiB; send only the start
            header = bytes([0x81, 0x80 | 127]) + (1 << 30).to_bytes(8, "big") + b"\x00" * 4
            ws.writer.write(header + b"x" * 100)
            await ws.writer.drain()
        elif kind == "invalid_utf8":
            await ws.send_frame(TEXT, b"\xed\xa0\x80")  # an encoded surrogate is not UTF-8
    try:
        code, texts = await ws.until_closed(timeout=10)
    except (TimeoutError, ConnectionError) as exc:
        tally.check(kind, repr(exc), (expected_error, expected_close))
        ws.abort()
        return
    errors = [json.loads(t)["payload"]["code"] for t in texts if json.loads(t)["type"] == "ERROR"]
    got_error = errors[-1] if errors else None
    tally.check(kind, (got_error, code), (expected_error, expected_close))


def _resigned_register(key: DIDKey, gateway: str, nonce: str) -> str:
    other = json.loads(signed(DIDKey.generate(), "REGISTER", gateway, {"nonce": nonce}))
    mine = json.loads(signed(key, "REGISTER", gateway, {"nonce": nonce}))
    mine["signature"] = other["signature"]
    return json.dumps(mine)


async def attack(url: str, victim: str, rounds: int, connections: int, closing_each: int
                 ) -> dict[str, Any]:
    tally = Tally()
    started = time.monotonic()
    registered = [registered_attacker(url, victim, rounds, tally) for _ in range(connections)]

    async def closers() -> None:
        for _ in range(closing_each):
            await asyncio.gather(*(closing_attacker(url, kind, tally) for kind in sorted(CLOSING)))

    await asyncio.gather(*registered, closers())
    frames = sum(n for kind, n in tally.sent.items() if kind != "session_survives")
    return {"frames": frames, "by_kind": dict(tally.sent), "mismatches": tally.mismatches[:20],
            "mismatch_count": len(tally.mismatches), "seconds": round(time.monotonic() - started, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("victim")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--closing-each", type=int, default=20)
    args = parser.parse_args(argv)
    result = asyncio.run(attack(args.url, args.victim, args.rounds, args.connections,
                                args.closing_each))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
