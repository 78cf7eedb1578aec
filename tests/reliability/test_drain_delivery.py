"""A drain tells the senders of frames it could not deliver: frames still queued to a slow reader
when the drain's deadline cuts it are answered DELIVERY_FAILED to their sender, before the
sender's own 1001, as every other undelivered frame is (issue 11)."""

from __future__ import annotations

import asyncio
import json

import pytest

from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.websocket import AgentConnection
from tests.reliability.support import raw_registered, signed
from tests.support.waiting import wait_until

PAYLOAD = {"blob": "x" * 30_000}
BACKLOG = 200_000  # bytes the gateway holds for the slow reader when the drain begins


@pytest.mark.gen_test(timeout=40)
@pytest.mark.gateway_config(rate_limit=0, max_outbound_buffer=8 * 1024 * 1024)
async def test_frames_cut_at_the_drain_deadline_are_answered_delivery_failed_to_their_sender(
        gateway: Gateway) -> None:
    slow, slow_key, _ = await raw_registered(gateway.ws_url, rcvbuf=4096)
    slow.stop_reading()
    sender, sender_key, _ = await raw_registered(gateway.ws_url)
    peer = gateway.hub.registry.get(slow_key.did)
    assert peer is not None
    handler = peer.connection
    assert isinstance(handler, AgentConnection)
    ids: list[str] = []

    async def backlog_built() -> bool:  # one more frame until the kernel buffers are full
        if handler.backlog() > BACKLOG:
            return True
        frame = signed(sender_key, "EXEC_REQUEST", slow_key.did, PAYLOAD)
        ids.append(json.loads(frame)["id"])
        await sender.send_text(frame)
        return False

    await wait_until(backlog_built, 20, lambda: f"a backlog of {BACKLOG} bytes for the slow "
                     f"reader (now {handler.backlog()} after {len(ids)} frames)", interval=0.005)
    stopping = asyncio.create_task(gateway.stop(timeout=1.5))
    code, texts = await sender.until_closed(timeout=10)
    await stopping
    slow.abort()
    answers = [json.loads(text) for text in texts]
    failed = [a for a in answers
              if a["type"] == "ERROR" and a["payload"]["code"] == "DELIVERY_FAILED"]
    assert code == 1001
    assert failed, f"no DELIVERY_FAILED among {len(answers)} answers"
    assert {a["correlation_id"] for a in failed} <= set(ids)
    assert all(a["payload"]["details"]["to"] == slow_key.did for a in failed)
    assert len(failed) * len(json.dumps(PAYLOAD)) >= BACKLOG  # every frame the reader never got
