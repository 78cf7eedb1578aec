"""Speaking ioap.v1 by hand over a raw WebSocket: for tests that need frames the SDK never sends."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tornado.websocket import WebSocketClientConnection

from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.messages import build
from aiconexus_gateway.server.app import Gateway
from tests.conftest import raw_connect, read_json


def signed(key: DIDKey, type: str, to: str | None, payload: dict[str, Any], **kwargs: Any) -> str:
    text, _ = build(key, type, to, payload, now=time.time(), **kwargs)
    return text


def field_of(text: str, name: str) -> Any:
    return json.loads(text)[name]


async def expect_close(ws: WebSocketClientConnection, timeout: float = 5.0) -> tuple[int | None, str | None]:
    """Read until the server closes; its close code and reason."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        assert remaining > 0, "the server did not close the connection"
        if await asyncio.wait_for(ws.read_message(), remaining) is None:
            ws.close()  # release the client side too (Tornado warns about unclosed clients)
            return ws.close_code, ws.close_reason


async def challenged(gw: Gateway) -> tuple[WebSocketClientConnection, dict[str, Any]]:
    ws = await raw_connect(gw)
    challenge = await read_json(ws)
    assert challenge is not None and challenge["type"] == "CHALLENGE"
    return ws, challenge


async def registered(gw: Gateway, key: DIDKey | None = None
                     ) -> tuple[WebSocketClientConnection, DIDKey]:
    """A raw connection that completed the handshake."""
    key = key or DIDKey.generate()
    ws, challenge = await challenged(gw)
    await ws.write_message(signed(key, "REGISTER", gw.did, {"nonce": challenge["payload"]["nonce"]}))
    reply = await read_json(ws)
    assert reply is not None and reply["type"] == "REGISTERED", reply
    return ws, key


async def expect_error(ws: WebSocketClientConnection, code: str, correlation_id: str | None = None
                       ) -> dict[str, Any]:
    reply = await read_json(ws)
    assert reply is not None, f"connection closed instead of ERROR {code}"
    assert reply["type"] == "ERROR", reply
    assert reply["payload"]["code"] == code, reply["payload"]
    if correlation_id is not None:
        assert reply.get("correlation_id") == correlation_id
    return reply
