"""RATE_LIMIT / RATE_BURST against the real server: RATE_LIMITED answers, 4429, /metrics, SDK pacing."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.reliability.support import metric, metrics_of, raw_registered, signed


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(rate_limit=5, rate_burst=5)
async def test_over_the_limit_a_message_is_answered_rate_limited_with_a_retry_hint_and_not_routed(
        gateway: Gateway) -> None:
    bob = await connect_agent(gateway, pace=False)
    sender, key, _ = await raw_registered(gateway.ws_url)  # REGISTER took one of the 5 tokens
    frames = [signed(key, "OFFER", bob.did, {"seq": i}) for i in range(8)]
    for frame in frames:
        await sender.send_text(frame)
    errors = [await sender.recv_json() for _ in range(4)]
    assert [e["payload"]["code"] for e in errors if e] == ["RATE_LIMITED"] * 4
    # refused before parsing (SECURITY.md): the answer cannot name the frame's id
    assert all(e.get("correlation_id") is None for e in errors if e)
    retry_after = errors[0]["payload"]["details"]["retry_after"]  # type: ignore[index]
    assert 0 < retry_after <= 0.2
    delivered = [(await bob.receive(timeout=5)).payload["seq"] for _ in range(4)]
    assert delivered == [0, 1, 2, 3]
    await asyncio.sleep(retry_after)  # on purpose: the hint says when a token is back
    await sender.send_text(signed(key, "OFFER", bob.did, {"seq": "after the hint"}))
    # one sender, order kept: a refused frame that had been routed would have come before this
    assert (await bob.receive(timeout=5)).payload["seq"] == "after the hint"
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_rate_limited_frames_total") == 4
    assert metric(exposition, "aiconexus_errors_total", code="RATE_LIMITED") == 4
    await sender.close()
    await bob.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(rate_limit=5, rate_burst=5)
async def test_a_client_that_keeps_sending_over_the_limit_is_closed_with_4429(gateway: Gateway) -> None:
    sender, key, _ = await raw_registered(gateway.ws_url)
    for _ in range(30):
        await sender.send_text(signed(key, "PING", gateway.did, {}))
    code, texts = await sender.until_closed(timeout=5)
    assert code == 4429 and sender.close_reason == "rate limited"
    codes = [json.loads(t)["payload"].get("code") for t in texts]
    assert codes.count(None) == 4  # the PONGs of the 4 PINGs within the burst
    assert codes.count("RATE_LIMITED") == 6  # more than RATE_BURST refused: abuse
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_limit_disconnects_total", reason="rate_limited") == 1
    assert metric(exposition, "aiconexus_rate_limited_frames_total") == 6
    assert gateway.hub.agent(key.did) is None


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(rate_limit=20, rate_burst=10)
async def test_the_sdk_paces_itself_under_the_announced_limit_and_is_never_refused(
        gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    started = time.monotonic()
    ids = [await alice.send(bob.did, "ICE_CANDIDATE", {"seq": i}) for i in range(40)]
    elapsed = time.monotonic() - started
    received = [(await bob.receive(timeout=5)).id for _ in range(40)]
    assert received == ids
    assert elapsed >= (40 - 9) / 20  # paced at 90% of 20/s after a burst of 9
    probe = await alice.send(alice.did, "OFFER", {"probe": True})
    # an answer to an earlier frame (RATE_LIMITED) would have come before Alice's own message
    assert (await alice.receive(timeout=5)).id == probe
    exposition = await metrics_of(gateway.http_url)
    assert metric(exposition, "aiconexus_rate_limited_frames_total") == 0
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(rate_limit=0)
async def test_rate_limit_zero_means_no_limit_and_none_announced(gateway: Gateway) -> None:
    sender, key, _ = await raw_registered(gateway.ws_url)
    for _ in range(500):
        await sender.send_text(signed(key, "PING", gateway.did, {}))
    replies = [await sender.recv_json() for _ in range(500)]
    assert all(r is not None and r["type"] == "PONG" for r in replies)
    await sender.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(rate_limit=100, rate_burst=200)
async def test_frames_that_are_expensive_to_verify_use_up_the_limit_sooner(gateway: Gateway) -> None:
    """A 64 KiB frame of floats costs ~50 ms to canonicalize: it is charged for that time, so one
    connection cannot keep the gateway busy with a few such frames per second."""
    sender, key, _ = await raw_registered(gateway.ws_url)
    floats = [1.5e-300 + i for i in range(6000)]
    frame = signed(key, "EXEC_REQUEST", DIDKey.generate().did, {"v": floats})
    assert len(frame) < 65536
    started = time.monotonic()
    for _ in range(100):
        await sender.send_text(frame)
    replies = [await sender.recv_json(timeout=20) for _ in range(100)]
    codes = [r["payload"]["code"] for r in replies if r]
    busy = time.monotonic() - started
    assert codes.count("RATE_LIMITED") > 50, codes  # far fewer than RATE_BURST got through
    assert busy < 5, f"the gateway spent {busy:.1f} s on 100 such frames"
    await sender.close()
