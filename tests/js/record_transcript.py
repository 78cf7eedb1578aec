"""Record a handshake transcript from the real gateway for the JavaScript client's unit tests.

Run it by hand (`.venv/bin/python -m tests.js.record_transcript`) when the protocol changes; it
writes clients/js/test/fixtures/handshake-transcript.json. The gateway runs with the seed-01 key of
docs/protocol.md section 6, the agent is the seed-00 key, and the agent's frames carry fixed ids and
timestamps, so the JavaScript ClientSession, given the same ids and clock, must write every one of
them byte for byte.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from tornado.websocket import websocket_connect

from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import build
from tests.support.process import GatewayProcess

OUT = Path(__file__).resolve().parents[2] / "clients/js/test/fixtures/handshake-transcript.json"
AGENT_SEED = bytes(32)
GATEWAY_SEED = bytes([1]) * 32
PEER_SEED = bytes([2]) * 32
REGISTER_ID = "5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c"
PING_ID = "7c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"
OFFER_ID = "9e8d7c6b-5a49-4382-b1c0-ffeeddccbbaa"
NOW = 1795600800.123  # 2026-11-25T10:00:00.123Z


async def record(gateway: GatewayProcess) -> dict[str, Any]:
    agent, peer = DIDKey.from_seed(AGENT_SEED), DIDKey.from_seed(PEER_SEED)
    frames: list[dict[str, str]] = []
    ws = await websocket_connect(gateway.ws_url, subprotocols=["ioap.v1"])

    async def read() -> str:
        text = await ws.read_message()
        assert isinstance(text, str), text
        frames.append({"from": "gateway", "text": text})
        return text

    async def write(text: str) -> None:
        frames.append({"from": "agent", "text": text})
        await ws.write_message(text)

    challenge = json.loads(await read())
    register, _ = build(agent, "REGISTER", gateway.did,
                        {"nonce": challenge["payload"]["nonce"], "metadata": {"name": "alice"}},
                        message_id=REGISTER_ID, now=NOW)
    await write(register)
    await read()  # REGISTERED
    ping, _ = build(agent, "PING", gateway.did, {}, message_id=PING_ID, now=NOW)
    await write(ping)
    await read()  # PONG
    offer, _ = build(agent, "OFFER", peer.did, {"sdp": "v=0"}, message_id=OFFER_ID, now=NOW)
    await write(offer)
    await read()  # ERROR UNKNOWN_AGENT
    ws.close()
    return {
        "about": "frames of one session with the real gateway (tests/js/record_transcript.py)",
        "gateway_did": gateway.did,
        "agent_seed": AGENT_SEED.hex(),
        "peer_did": peer.did,
        "agent_ids": [REGISTER_ID, PING_ID, OFFER_ID],
        "agent_time_ms": round(NOW * 1000),
        "metadata": {"name": "alice"},
        "frames": frames,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "gateway.key"
        DIDKey.from_seed(GATEWAY_SEED).save(key_file)
        gateway = GatewayProcess(env={"GATEWAY_KEY_FILE": str(key_file)})
        try:
            transcript = asyncio.run(record(gateway))
        finally:
            gateway.stop()
    OUT.write_text(json.dumps(transcript, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
