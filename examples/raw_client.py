#!/usr/bin/env python3
"""A minimal ioap.v1 client written from docs/protocol.md alone, without aiconexus_gateway.

It proves the document is enough to implement the protocol: only PyNaCl (Ed25519), base58 and a
WebSocket client (Tornado's) are used; did:key, RFC 8785 and the envelope are done here. Two
agents register, alice sends bob an OFFER, bob answers, and each side checks that what it received
is the sender's frame byte for byte and that its signature verifies against the sender's DID.

    python examples/raw_client.py [--url ws://127.0.0.1:8000/ws]

Exit status 0 when every step succeeded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import sys
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import base58
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection, websocket_connect

DEFAULT_URL = "ws://127.0.0.1:8000/ws"
SUBPROTOCOL = "ioap.v1"
ED25519_PREFIX = b"\xed\x01"  # multicodec "Ed25519 public key" (protocol.md section 4)
MAX_SAFE_INTEGER = 2**53 - 1


class ProtocolFailure(Exception):
    """Something the gateway or the peer did does not match docs/protocol.md."""


# -- did:key (section 4) -------------------------------------------------------------------------

def did_from_public_key(public_key: bytes) -> str:
    return "did:key:z" + base58.b58encode(ED25519_PREFIX + public_key).decode("ascii")


def public_key_from_did(did: str) -> bytes:
    if not did.startswith("did:key:z") or len(did) > 64:
        raise ProtocolFailure(f"{did!r} is not a did:key")
    decoded = base58.b58decode(did[len("did:key:z"):])
    if not decoded.startswith(ED25519_PREFIX) or len(decoded) != 34:
        raise ProtocolFailure(f"{did!r} is not an Ed25519 did:key")
    return decoded[2:]


# -- RFC 8785 for the simple values this client exchanges (section 5) ------------------------------

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                  "\r": "\\r"}


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _number(value: int | float) -> str:
    """ECMAScript number form, for integers and plain decimals; other values are refused."""
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is beyond this client's simple RFC 8785")
        return str(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("NaN and infinities have no JSON form")
    if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return str(int(value))  # 30.0 -> 30, -0.0 -> 0
    if 1e-4 <= abs(value) < 1e16:
        return repr(value)  # shortest round-trip digits, no exponent in this range: as ECMAScript
    raise ValueError(f"number {value!r} is beyond this client's simple RFC 8785")


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of `value`."""
    return _canonical(value).encode("utf-8")


def _canonical(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-16-be"))  # UTF-16 code unit order
        return "{" + ",".join(_string(key) + ":" + _canonical(value[key]) for key in keys) + "}"
    raise ValueError(f"{type(value).__name__} is not a JSON value")


# -- strict JSON and the envelope (sections 2, 3, 5) ---------------------------------------------------

def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ProtocolFailure("a received object repeats a key")
    return obj


def parse(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise ProtocolFailure(f"a received frame is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolFailure("a message must be a JSON object")
    return obj


def verify(message: dict[str, Any]) -> None:
    """Check `message`'s signature against the key inside its `from` DID."""
    unsigned = {name: value for name, value in message.items() if name != "signature"}
    try:
        signature = base64.b64decode(message["signature"], validate=True)
        VerifyKey(public_key_from_did(message["from"])).verify(canonicalize(unsigned), signature)
    except (BadSignatureError, binascii.Error, ValueError) as exc:
        raise ProtocolFailure(f"{message.get('type')} {message.get('id')}: bad signature ({exc})"
                              ) from None


def now() -> str:
    moment = datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Agent:
    """One agent: an Ed25519 key, its DID and its WebSocket connection."""

    def __init__(self, name: str, url: str, timeout: float) -> None:
        self.name = name
        self.url = url
        self.timeout = timeout
        self.key = SigningKey.generate()
        self.did = did_from_public_key(bytes(self.key.verify_key))
        self.gateway_did = ""
        self.ws: WebSocketClientConnection | None = None

    def build(self, type: str, to: str | None, payload: dict[str, Any],
              correlation_id: str | None = None) -> tuple[str, str]:
        """A signed frame and its id."""
        message: dict[str, Any] = {"id": str(uuid.uuid4()), "type": type, "from": self.did,
                                   "to": to, "timestamp": now(), "version": "1.0",
                                   "payload": payload}
        if correlation_id is not None:
            message["correlation_id"] = correlation_id
        signature = self.key.sign(canonicalize(message)).signature
        message["signature"] = base64.b64encode(signature).decode("ascii")
        return json.dumps(message, ensure_ascii=False, separators=(",", ":")), message["id"]

    async def send(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.write_message(text)

    async def read(self) -> tuple[str, dict[str, Any]]:
        """The next frame, as text and verified message."""
        assert self.ws is not None
        text = await asyncio.wait_for(self.ws.read_message(), self.timeout)
        if text is None:
            raise ProtocolFailure(f"{self.name}: the gateway closed the connection "
                                  f"({self.ws.close_code} {self.ws.close_reason})")
        if not isinstance(text, str):
            raise ProtocolFailure(f"{self.name}: the gateway sent a binary frame")
        message = parse(text)
        verify(message)
        return text, message

    async def register(self) -> None:
        """Section 7: CHALLENGE -> REGISTER -> REGISTERED."""
        self.ws = await websocket_connect(self.url, subprotocols=[SUBPROTOCOL],
                                          connect_timeout=self.timeout)
        if self.ws.selected_subprotocol != SUBPROTOCOL:
            raise ProtocolFailure(f"the gateway selected {self.ws.selected_subprotocol!r}")
        _, challenge = await self.read()
        if challenge["type"] != "CHALLENGE" or challenge["to"] is not None:
            raise ProtocolFailure(f"expected a CHALLENGE, got {challenge['type']}")
        self.gateway_did = challenge["from"]
        text, register_id = self.build("REGISTER", self.gateway_did,
                                       {"nonce": challenge["payload"]["nonce"],
                                        "metadata": {"name": self.name, "client": "raw"}})
        await self.send(text)
        _, reply = await self.read()
        if reply["type"] == "ERROR":
            raise ProtocolFailure(f"{self.name}: registration refused: {reply['payload']['code']}: "
                                  f"{reply['payload']['message']}")
        if (reply["type"], reply["from"], reply.get("correlation_id"), reply["payload"]["did"]) != (
                "REGISTERED", self.gateway_did, register_id, self.did):
            raise ProtocolFailure(f"{self.name}: unexpected reply to REGISTER: {reply}")

    async def unregister(self) -> int | None:
        """Section 9: UNREGISTER; the gateway closes with 1000."""
        text, _ = self.build("UNREGISTER", self.gateway_did, {})
        await self.send(text)
        assert self.ws is not None
        while await asyncio.wait_for(self.ws.read_message(), self.timeout) is not None:
            pass
        return self.ws.close_code


async def expect_forwarded(receiver: Agent, sent: str, sender: Agent) -> dict[str, Any]:
    """The receiver's next frame must be the sender's frame, byte for byte, and verify."""
    text, message = await receiver.read()
    if text != sent:
        raise ProtocolFailure(f"{receiver.name} received {text!r}, not the frame {sender.name} sent")
    if message["from"] != sender.did:
        raise ProtocolFailure(f"{receiver.name} received a message from {message['from']}")
    return message


async def run(url: str, timeout: float) -> None:
    alice, bob = Agent("alice", url, timeout), Agent("bob", url, timeout)
    try:
        await alice.register()
        print(f"[1] alice registered as {alice.did}; CHALLENGE and REGISTERED verified "
              f"against the gateway's DID {alice.gateway_did}")
        await bob.register()
        print(f"[2] bob registered as {bob.did}")
        if bob.gateway_did != alice.gateway_did:
            raise ProtocolFailure("alice and bob were challenged by different gateway DIDs")

        offer, offer_id = alice.build("OFFER", bob.did, {"sdp": "v=0\r\ns=raw client\r\n"})
        await alice.send(offer)
        await expect_forwarded(bob, offer, alice)
        print(f"[3] alice -> bob OFFER {offer_id}: bob received the identical frame; "
              "signature verified against alice's did:key")

        answer, answer_id = bob.build("ANSWER", alice.did, {"sdp": "v=0\r\ns=raw answer\r\n"},
                                      correlation_id=offer_id)
        await bob.send(answer)
        message = await expect_forwarded(alice, answer, bob)
        if message.get("correlation_id") != offer_id:
            raise ProtocolFailure("the ANSWER lost its correlation_id")
        print(f"[4] bob -> alice ANSWER {answer_id}: alice received the identical frame; "
              "signature verified against bob's did:key")

        codes = (await alice.unregister(), await bob.unregister())
        if codes != (1000, 1000):
            raise ProtocolFailure(f"UNREGISTER closed with {codes}, expected 1000")
        print("[5] both agents sent UNREGISTER; the gateway closed them with 1000")
        print("OK: raw client registered and exchanged verified messages")
    finally:
        for agent in (alice, bob):
            if agent.ws is not None:
                agent.ws.close()


def websocket_url(text: str) -> str:
    """The gateway's WebSocket URL (protocol.md section 1: ws://HOST:PORT/ws) from what was given.

    http:// and https:// name the same host and port (-> ws://, wss://), HOST:PORT gets ws://,
    an empty path /ws; anything else is a ValueError saying what is expected."""
    expected = "expected ws://HOST:PORT/ws (wss:// with TLS)"
    text = text.strip()
    parts = urlsplit(text if "://" in text else f"ws://{text}")
    scheme = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"{text!r}: unsupported scheme '{parts.scheme}'; {expected}")
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise ValueError(f"{text!r}: the port is not a number from 0 to 65535; {expected}") from None
    if not parts.hostname or parts.fragment:
        raise ValueError(f"{text!r} is not a WebSocket URL; {expected}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") or "/ws", parts.query, ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL,
                        help=f"the gateway's WebSocket URL (default {DEFAULT_URL})")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each step (default 10)")
    args = parser.parse_args(argv)
    try:
        args.url = websocket_url(args.url)
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(args.url, args.timeout))
    except HTTPClientError as exc:
        if exc.response is None:  # no HTTP answer: a timeout, a closed stream, TLS on one side
            hint = (" (is the gateway serving plain ws://? then use ws:// instead of wss://)"
                    if args.url.startswith("wss:") else "")
            print(f"error: cannot reach the gateway at {args.url}: {exc.message}{hint}",
                  file=sys.stderr)
            return 1
        body = exc.response.body.decode("utf-8", "replace")
        print(f"error: the gateway refused the WebSocket upgrade: {exc.code} {body}", file=sys.stderr)
        return 1
    except (asyncio.TimeoutError, TimeoutError):
        print(f"error: no answer from the gateway at {args.url} within {args.timeout:g} s",
              file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach the gateway at {args.url}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the agents were closed on the way out
        print("interrupted", file=sys.stderr)
        return 130
    except ProtocolFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
