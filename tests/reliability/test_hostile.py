"""Hostile clients against a real gateway process while two honest agents talk: every bad frame
gets its documented answer, the honest agents lose nothing and stay fast, memory comes back."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, Message
from tests.reliability.support import metric, metrics_of
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("HOSTILE_ROUNDS", "40"))  # x 18 kinds x 4 connections
CLOSING_EACH = int(os.environ.get("HOSTILE_CLOSING_EACH", "15"))  # x 10 kinds, a connection each
# The stated bound on an honest round trip (Alice -> Bob -> Alice, two hops through the gateway)
# while four hostile connections, not rate limited here, keep the gateway's CPU busy on a small
# (2-core, shared) machine: 99th percentile and worst case, in seconds. Measured: p50 10-20 ms,
# p99 150-350 ms (see the figures this test prints).
LATENCY_P99_BOUND = 0.5
LATENCY_MAX_BOUND = 2.0
RSS_MARGIN = 8 * 1024 * 1024


async def run_attacker(process: GatewayProcess, victim: str, rounds: int, closing_each: int
                       ) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.reliability.hostile", process.ws_url, victim,
        "--rounds", str(rounds), "--closing-each", str(closing_each), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(child.communicate(), 90)
    assert child.returncode == 0, err.decode()[-2000:]
    return json.loads(out.decode().strip().splitlines()[-1])  # type: ignore[no-any-return,unused-ignore]


class Honest:
    """Alice sends OFFERs, Bob answers each: round-trip times, and anything unexpected."""

    def __init__(self, alice: GatewayClient, bob: GatewayClient) -> None:
        self.alice, self.bob = alice, bob
        self.sent: dict[str, float] = {}
        self.rtts: list[float] = []
        self.unexpected: list[str] = []
        bob.on_message(self._answer)

    async def _answer(self, message: Message) -> None:
        if message.sender != self.alice.did or message.type != "OFFER":
            self.unexpected.append(f"bob got {message.type} from {message.sender}")
            return
        await self.bob.send(self.alice.did, "ANSWER", {"sdp": "ok"}, correlation_id=message.id)

    async def talk(self, stop: asyncio.Event, at_least: int = 0) -> list[float]:
        rtts: list[float] = []
        while not stop.is_set() or len(rtts) < at_least:
            started = time.perf_counter()
            message_id = await self.alice.send(self.bob.did, "OFFER", {"sdp": "v=0"})
            reply = await self.alice.receive(timeout=5)
            if reply.correlation_id != message_id or reply.sender != self.bob.did:
                self.unexpected.append(f"alice got {reply.type} from {reply.sender}")
                continue
            rtts.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)  # paces the honest traffic; not a wait for an event
        self.rtts += rtts
        return rtts


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


@pytest.mark.gen_test(timeout=115)
async def test_hostile_frames_get_documented_answers_and_honest_agents_lose_nothing() -> None:
    process = GatewayProcess(env={"RATE_LIMIT": "100000", "RATE_BURST": "100000",
                                  "LOG_LEVEL": "WARNING"})
    alice = GatewayClient(process.ws_url, DIDKey.generate(), metadata={"name": "alice"})
    bob = GatewayClient(process.ws_url, DIDKey.generate(), metadata={"name": "bob"})
    try:
        await alice.connect()
        await bob.connect()
        honest = Honest(alice, bob)
        warm_up = await run_attacker(process, bob.did, rounds=5, closing_each=3)
        assert warm_up["mismatch_count"] == 0, warm_up["mismatches"]

        quiet = asyncio.Event()
        quiet.set()
        baseline = await honest.talk(quiet, at_least=200)
        rss_before = process.rss()

        under_attack = asyncio.Event()
        talking = asyncio.create_task(honest.talk(under_attack))
        result = await run_attacker(process, bob.did, ROUNDS, CLOSING_EACH)
        under_attack.set()
        attacked = await asyncio.wait_for(talking, 10)

        async def only_honest_left() -> bool:
            exposition = await metrics_of(process.http_url)
            return metric(exposition, "aiconexus_open_connections") == 2
        await wait_until(only_honest_left, 10, "every hostile connection to be gone")
        rss_after = process.rss()
        exposition = await metrics_of(process.http_url)

        figures = {
            "bad_frames": result["frames"] + warm_up["frames"], "attack_seconds": result["seconds"],
            "honest_round_trips": len(honest.rtts),
            "baseline_p50_ms": round(statistics.median(baseline) * 1000, 2),
            "baseline_p99_ms": round(p99(baseline) * 1000, 2),
            "attack_p50_ms": round(statistics.median(attacked) * 1000, 2),
            "attack_p99_ms": round(p99(attacked) * 1000, 2),
            "attack_max_ms": round(max(attacked) * 1000, 2),
            "rss_before_mib": round(rss_before / 2**20, 1), "rss_after_mib": round(rss_after / 2**20, 1),
        }
        print("hostile figures:", json.dumps(figures))
        assert result["mismatch_count"] == 0, result["mismatches"]
        assert result["frames"] >= 3000, result["by_kind"]
        assert result["by_kind"]["session_survives"] == 4
        assert not honest.unexpected, honest.unexpected[:5]
        assert len(attacked) >= 20, "the honest agents barely got a word in"
        assert p99(attacked) <= LATENCY_P99_BOUND and max(attacked) <= LATENCY_MAX_BOUND, figures
        assert rss_after <= rss_before + RSS_MARGIN, figures
        assert metric(exposition, "aiconexus_registrations_total", result="AUTH_FAILED") > 0
    finally:
        await alice.close()
        await bob.close()
        process.stop()
