"""Faults the real gateway cannot be made to produce (garbage, slowness, 10,000 agents), served
by a stand-in with the contract's JSON: the monitor shows them, keeps polling, recovers."""

from __future__ import annotations

import time
from functools import partial

import pytest

from monitor.api import GatewayAPI
from monitor.app import MonitorApp
from monitor.contract import Snapshot

from .fake_gateway import FakeGateway, fake_did
from .helpers import (
    caption,
    log_lines,
    monitoring,
    next_polls,
    shown_dids,
    shows,
    status_text,
    total_text,
    until,
)

UI = pytest.mark.gen_test(timeout=30)


def says(app: MonitorApp, text: str) -> bool:
    return status_text(app).startswith(text)


@UI
async def test_bad_answers_are_shown_with_the_last_data_kept_stale(
    fake: FakeGateway, fake_url: str
) -> None:
    async with monitoring(fake_url) as (app, pilot):
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
        for mode, shown in [
            ("malformed", "✖ error: malformed JSON from /health, retrying every 0.1 s"),
            ("shape", "✖ error: unexpected /health: health.status is not a string"),
            ("http500", "✖ error: HTTP 500 from /health: INTERNAL, retrying"),
            ("html", "✖ error: malformed JSON from /health, retrying"),
        ]:
            fake.mode = mode
            await until(pilot, partial(says, app, shown), mode)
            assert "(stale)" in status_text(app)
            assert "STALE" in caption(app)
            assert shows(app, fake_did(1), fake_did(0))  # still shown
        fake.mode = "ok"
        await until(pilot, partial(says, app, "● healthy"), "recovered")
        assert "STALE" not in caption(app)
        lines = "\n".join(log_lines(app))
        assert "gateway error: malformed JSON from /health" in lines
        assert "gateway error: HTTP 500 from /health: INTERNAL" in lines
        assert "gateway back: healthy" in lines


@UI
async def test_draining_gateway_is_a_state_with_fresh_data(
    fake: FakeGateway, fake_url: str
) -> None:
    async with monitoring(fake_url) as (app, pilot):
        await until(pilot, partial(says, app, "● healthy"), "healthy")
        fake.mode = "draining"
        await until(pilot, partial(says, app, "◐ draining · "), "draining")
        assert "stale" not in status_text(app) and "STALE" not in caption(app)
        assert any(line.endswith("gateway draining") for line in log_lines(app))


@UI
async def test_slow_gateway_is_reported_and_the_monitor_recovers(
    fake: FakeGateway, fake_url: str
) -> None:
    async with monitoring(fake_url, timeout=0.2) as (app, pilot):
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
        fake.mode = "slow"
        shown = "✖ unreachable: no answer within 0.2 s, retrying every 0.1 s"
        await until(pilot, partial(says, app, shown), "timed out")
        # polls are not piled up while one waits: ten ticks, at most a request per timeout
        requests, ticks = len(fake.requests), app.main.ticks
        await until(pilot, lambda: app.main.ticks >= ticks + 10, "ten timer ticks")
        assert len(fake.requests) - requests <= 6
        fake.mode = "ok"
        fake.release.set()
        await until(pilot, partial(says, app, "● healthy"), "recovered")
        assert len(shown_dids(app)) == 2


@UI
async def test_ten_thousand_agents_are_paged_and_the_screen_stays_responsive(
    fake: FakeGateway, fake_url: str
) -> None:
    fake.agent_count = 10_000
    async with monitoring(fake_url, interval=0.2) as (app, pilot):
        await until(pilot, lambda: caption(app).endswith("showing 200 of 10,000"), "200 rows")
        assert total_text(app, "agents") == "Agents 10,000"
        assert len(shown_dids(app)) > 10  # as many as the screen holds
        await next_polls(pilot, app, 2)
        per_poll = [r for r in fake.requests if r.startswith("/agents")]
        assert len(per_poll) <= 2 * (app.main.polls + 1)  # two pages of 100 per poll, no more
        await pilot.press("s")
        await until(pilot, lambda: "sorted by connected time" in caption(app), "re-sorted")
        # re-sorting and redrawing 200 rows takes well under a poll interval (a few ms here)
        started = time.perf_counter()
        app.main.action_sort()
        assert time.perf_counter() - started < 1.0  # a poll interval: generous for a loaded CI machine
        await until(pilot, lambda: "sorted by DID" in caption(app), "sorted by DID")


@UI
async def test_a_bug_in_a_poll_is_shown_and_polling_goes_on(fake_url: str) -> None:
    class Flaky(GatewayAPI):
        calls = 0

        async def snapshot(self) -> Snapshot:
            self.calls += 1
            if self.calls in (2, 3):
                raise RuntimeError("surprise")
            return await super().snapshot()

    api = Flaky(fake_url)
    async with api, monitoring(fake_url, api=api) as (app, pilot):
        await until(pilot, lambda: api.calls > 3 and says(app, "● healthy"), "recovery")
        assert app.is_running
        lines = "\n".join(log_lines(app))
        assert "gateway error: monitor bug: RuntimeError: surprise" in lines
        assert "gateway back: healthy" in lines
