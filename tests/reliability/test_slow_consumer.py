"""MAX_OUTBOUND_BUFFER: a recipient that stops reading is closed (4008 "slow consumer") with the
gateway's backlog for it bounded, and every message is accounted for: read by the recipient, or
answered to its sender with ERROR DELIVERY_FAILED; never both, never neither."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest

from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.websocket import AgentConnection
from aiconexus_gateway.session import Forward
from tests.conftest import connect_agent
from tests.reliability.support import metric, metrics_of, raw_registered
from tests.support.waiting import wait_until

LIMIT = 64 * 1024
PAYLOAD = {"blob": "x" * 4000}
MAX_MESSAGES = 5000


@pytest.mark.gen_test(timeout=40)
@pytest.mark.gateway_config(max_outbound_buffer=LIMIT, rate_limit=0)
@pytest.mark.parametrize("resumes", ["before_the_close_completes", "after_the_connection_is_gone"])
async def test_a_recipient_that_stops_reading_is_closed_and_every_message_is_accounted_for(
        gateway: Gateway, resumes: str) -> None:
    slow, slow_key, _ = await raw_registered(gateway.ws_url, rcvbuf=4096)
    slow.stop_reading()
    sender = await connect_agent(gateway, pace=False)
    record = gateway.hub.registry.get(slow_key.did)
    assert record is not None
    handler = record.connection
    assert isinstance(handler, AgentConnection)
    peak = 0
    errors: dict[str, str] = {}
    queue_frame = handler.send

    def measured_send(text: str, routed: Forward | None = None) -> bool:  # backlog after each frame
        nonlocal peak
        accepted = queue_frame(text, routed)
        peak = max(peak, handler.backlog())
        return accepted

    handler.send = measured_send  # type: ignore[method-assign]

    async def collect_errors() -> None:
        async for message in sender:
            assert message.type == "ERROR", message
            assert message.error_code == "DELIVERY_FAILED" and message.correlation_id is not None
            assert message.payload["details"]["to"] == slow_key.did
            errors[message.correlation_id] = message.error_code

    collector = asyncio.create_task(collect_errors())
    sent: list[str] = []
    def closing() -> bool:  # the gateway has begun closing the slow consumer
        return handler.ws_connection is None or handler.ws_connection.is_closing()

    extra_after_detection = 10
    while len(sent) < MAX_MESSAGES and extra_after_detection:
        sent.append(await sender.send(slow_key.did, "EXEC_REQUEST", PAYLOAD))
        if closing():
            extra_after_detection -= 1
    scraped = gateway.hub.metrics.exposition()
    assert metric(scraped, "aiconexus_limit_disconnects_total", reason="slow_consumer") == 1, \
        f"no slow consumer after {len(sent)} messages"
    assert LIMIT / 2 < peak <= LIMIT + 5000, f"{peak} bytes queued; the limit is {LIMIT}"

    if resumes == "after_the_connection_is_gone":
        # Tornado waits 5 s for the close handshake, then drops the socket
        await wait_until(lambda: gateway.hub.agent(slow_key.did) is None, 10,
                         "the slow consumer's connection gone")
    slow.resume_reading()
    code, texts = await slow.until_closed(timeout=20)
    delivered = {json.loads(text)["id"] for text in texts}
    if resumes == "before_the_close_completes":
        assert code == 4008 and slow.close_reason == "slow consumer"

    with contextlib.suppress(AssertionError):  # what is missing is reported below
        await wait_until(lambda: len(delivered) + len(errors) >= len(sent), 5,
                         "the last ERRORs, sent when the connection ends")
    print("slow consumer figures:", {"sent": len(sent), "delivered": len(delivered),
                                     "errors": len(errors), "peak_backlog": peak, "limit": LIMIT})
    assert delivered.isdisjoint(errors), "a message both delivered and reported undelivered"
    assert delivered | set(errors) == set(sent), (
        f"{len(sent)} sent, {len(delivered)} delivered, {len(errors)} errors")
    assert errors, "the slow consumer was never refused anything"
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_limit_disconnects_total", reason="slow_consumer") == 1
    undelivered = (metric(exposition, "aiconexus_undelivered_messages_total", reason="not_written")
                   + metric(exposition, "aiconexus_undelivered_messages_total", reason="lost_at_close"))
    assert undelivered == len(errors)
    await sender.close()
    collector.cancel()


@pytest.mark.gen_test(timeout=40)
@pytest.mark.gateway_config(max_outbound_buffer=16 * 1024 * 1024, rate_limit=0)
async def test_frames_still_queued_when_a_recipient_drops_are_reported_to_their_senders(
        gateway: Gateway) -> None:
    """What never left the gateway is answered DELIVERY_FAILED; only what the kernel had already
    taken for a peer that then vanished goes unreported (SECURITY.md, "Delivery")."""
    reader, reader_key, _ = await raw_registered(gateway.ws_url, rcvbuf=4096)
    reader.stop_reading()
    sender = await connect_agent(gateway, pace=False)
    record = gateway.hub.registry.get(reader_key.did)
    assert record is not None and isinstance(record.connection, AgentConnection)
    handler = record.connection
    sent: list[str] = []
    while handler.backlog() < 200_000 and len(sent) < MAX_MESSAGES:
        sent.append(await sender.send(reader_key.did, "EXEC_REQUEST", PAYLOAD))
    queued = handler.backlog()
    reader.abort()  # gone, with data unread: a reset
    await wait_until(lambda: gateway.hub.agent(reader_key.did) is None, 10, "the reader gone")
    # every answer about the frames sent before comes back before the sender's own probe
    probe = await sender.send(sender.did, "OFFER", {"probe": True})
    errors: dict[str, str] = {}
    while (message := await sender.receive(timeout=5)).id != probe:
        assert message.type == "ERROR" and message.correlation_id in sent
        errors[str(message.correlation_id)] = str(message.error_code)
    lost = [i for i, code in errors.items() if code == "DELIVERY_FAILED"]
    # the queued frames (those after them, still on their way in, found nobody: UNKNOWN_AGENT)
    assert len(lost) * len(json.dumps(PAYLOAD)) >= queued * 0.9, (len(lost), queued)
    assert set(errors.values()) <= {"DELIVERY_FAILED", "UNKNOWN_AGENT"}
    assert sent[-1] in errors
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_undelivered_messages_total",
                  reason="lost_at_close") == len(lost)
    await sender.close()
