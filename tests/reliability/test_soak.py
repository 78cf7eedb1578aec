"""A bounded soak against a real gateway process: agents connect, exchange messages and leave, in a
loop, for SOAK_SECONDS (default 50; set it higher for a longer run). At the end every message is
accounted for (delivered exactly once, or answered to its sender with ERROR) and the gateway's RSS
is back within a small margin of where it was after the warm-up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from dataclasses import dataclass, field

import pytest

from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient
from tests.reliability.support import fetch, metric, metrics_of
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "50"))
SLOTS = 16  # agents online at any time
SEND_INTERVAL = 0.05  # per agent: about 20 messages a second
LIFETIME = (1.0, 4.0)  # seconds an agent stays before it leaves
WARM_UP = min(10.0, SOAK_SECONDS / 5)
RSS_MARGIN = 10 * 1024 * 1024


@dataclass
class Ledger:
    sent: dict[str, str] = field(default_factory=dict)  # id -> recipient DID
    delivered: dict[str, int] = field(default_factory=dict)  # id -> times received
    errored: dict[str, str] = field(default_factory=dict)  # id -> ERROR code
    online: dict[str, GatewayClient] = field(default_factory=dict)
    departed: list[str] = field(default_factory=list)
    agents: int = 0

    def settled(self, ids: list[str]) -> bool:
        return all(i in self.delivered or i in self.errored for i in ids)


async def consume(client: GatewayClient, ledger: Ledger) -> None:
    async for message in client:
        if message.type == "ERROR" and message.sender == client.gateway_did:
            assert message.correlation_id is not None
            ledger.errored[message.correlation_id] = str(message.error_code)
        else:
            assert message.recipient == client.did
            ledger.delivered[message.id] = ledger.delivered.get(message.id, 0) + 1


async def agent_life(url: str, ledger: Ledger, rng: random.Random, deadline: float) -> None:
    client = GatewayClient(url, DIDKey.generate(), metadata={"soak": True})
    await client.connect()
    ledger.agents += 1
    consumer = asyncio.create_task(consume(client, ledger))
    ledger.online[client.did] = client
    mine: list[str] = []
    leave_at = min(deadline, time.monotonic() + rng.uniform(*LIFETIME))
    try:
        while time.monotonic() < leave_at:
            others = [did for did in ledger.online if did != client.did]
            if ledger.departed and rng.random() < 0.05:
                to = rng.choice(ledger.departed[-50:])  # someone who just left: UNKNOWN_AGENT
            elif others:
                to = rng.choice(others)
            else:
                await asyncio.sleep(SEND_INTERVAL)  # paces the load: nobody to talk to yet
                continue
            message_id = await client.send(to, "ICE_CANDIDATE", {"candidate": "x" * rng.randint(10, 600)})
            ledger.sent[message_id] = to
            mine.append(message_id)
            await asyncio.sleep(rng.uniform(0, 2 * SEND_INTERVAL))  # paces the load
    finally:
        ledger.online.pop(client.did, None)
        with contextlib.suppress(AssertionError):  # what never settles is counted lost below
            await wait_until(lambda: ledger.settled(mine), 5,
                             "our answers (or errors), still on their way")
        ledger.departed.append(client.did)
        await client.close()  # graceful: what is already on its way to us is still read
        await asyncio.wait_for(consumer, 5)


async def slot(url: str, ledger: Ledger, seed: int, deadline: float) -> None:
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        try:
            await agent_life(url, ledger, rng, deadline)
        except ConnectionClosed as exc:  # pragma: no cover - reported by the accounting below
            raise AssertionError(f"an agent lost its connection: {exc}") from None


@pytest.mark.slow
@pytest.mark.timeout(SOAK_SECONDS + 90)
@pytest.mark.gen_test(timeout=SOAK_SECONDS + 60)
async def test_soak_every_message_is_accounted_for_and_memory_comes_back() -> None:
    process = GatewayProcess(env={"LOG_LEVEL": "WARNING"})
    ledger = Ledger()
    try:
        started = time.monotonic()
        deadline = started + SOAK_SECONDS
        slots = asyncio.gather(*(slot(process.ws_url, ledger, seed, deadline) for seed in range(SLOTS)))
        await asyncio.sleep(WARM_UP)  # the load runs this long before the first RSS reading
        rss_warm = process.rss()
        await asyncio.wait_for(slots, SOAK_SECONDS + 30)

        async def all_gone() -> bool:
            exposition = await metrics_of(process.http_url)
            return metric(exposition, "aiconexus_open_connections") == 0
        await wait_until(all_gone, 5, "every agent's connection to be gone")
        rss_end = process.rss()
        exposition = await metrics_of(process.http_url)
        status, _, body = await fetch(f"{process.http_url}/agents")
        assert status == 200 and json.loads(body)["count"] == 0

        lost = [i for i in ledger.sent if i not in ledger.delivered and i not in ledger.errored]
        both = [i for i in ledger.sent if i in ledger.delivered and i in ledger.errored]
        duplicated = [i for i, n in ledger.delivered.items() if n > 1]
        unknown = set(ledger.delivered) - set(ledger.sent)
        codes: dict[str, int] = {}
        for code in ledger.errored.values():
            codes[code] = codes.get(code, 0) + 1
        figures = {"seconds": round(time.monotonic() - started, 1), "agents": ledger.agents,
                   "messages": len(ledger.sent), "delivered": len(ledger.delivered),
                   "errors": codes, "rss_after_warm_up_mib": round(rss_warm / 2**20, 1),
                   "rss_end_mib": round(rss_end / 2**20, 1)}
        print("soak figures:", json.dumps(figures))
        assert not lost, f"{len(lost)} messages neither delivered nor answered: {figures}"
        assert not both and not duplicated and not unknown, figures
        assert set(codes) <= {"UNKNOWN_AGENT", "DELIVERY_FAILED"}, figures
        assert len(ledger.sent) > SOAK_SECONDS * 100, figures
        assert metric(exposition, "aiconexus_rate_limited_frames_total") == 0
        assert rss_end <= rss_warm + RSS_MARGIN, figures
    finally:
        process.stop()
