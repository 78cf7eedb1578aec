"""Faults the real gateway cannot be made to produce (garbage, slowness, 10,000 agents), served
by a stand-in with the contract's JSON: the monitor shows them, keeps polling, recovers."""

from __future__ import annotations

import time
from functools import partial

import pytest

from monitor.api import GatewayAPI
from monitor.app import MonitorApp
from monitor.models import Snapshot

from .fake_gateway import FakeGateway, fake_did
from .helpers import log_lines, monitoring, next_polls, status_text, table, total_text, until

UI = pytest.mark.gen_test(timeout=30)


def shows(app: MonitorApp, text: str) -> bool:
    return status_text(app).startswith(text)


@UI
async def test_bad_answers_are_shown_with_the_last_data_kept_stale(
    fake: FakeGateway, fake_url: str
) -> None:
    async with monitoring(fake_url) as (app, pilot):
        await until(pilot, lambda: len(table(app).dids) == 2, "two rows")
        for mode, shown in [
            ("malformed", "✖ error: malformed JSON from /health, retrying every 0.1 s"),
            ("shape", "✖ error: unexpected /health: health.status is not a string"),
            ("http500", "✖ error: HTTP 500 from /health: INTERNAL, retrying"),
            ("html", "✖ error: malformed JSON from /health, retrying"),
        ]:
            fake.mode = mode
            await until(pilot, partial(shows, app, shown), mode)
            assert "(stale)" in status_text(app)
            assert "STALE" in app.agents_title
            assert table(app).dids == [fake_did(1), fake_did(0)]  # still shown
        fake.mode = "ok"
        await until(pilot, lambda: app.status.state == "healthy", "recovered")
        assert "STALE" not in app.agents_title
        lines = "\n".join(log_lines(app))
        assert "gateway error: malformed JSON from /health" in lines
        assert "gateway error: HTTP 500 from /health: INTERNAL" in lines
        assert "gateway back: healthy" in lines


@UI
async def test_draining_gateway_is_a_state_with_fresh_data(
    fake: FakeGateway, fake_url: str
) -> None:
    async with monitoring(fake_url) as (app, pilot):
        await until(pilot, lambda: app.status.state == "healthy", "healthy")
        fake.mode = "draining"
        await until(pilot, lambda: app.status.state == "draining", "draining")
        assert status_text(app).startswith("◐ draining · ")
        assert not app.status.stale and "STALE" not in app.agents_title
        assert any(line.endswith("gateway draining") for line in log_lines(app))


@UI
async def test_slow_gateway_is_reported_and_the_monitor_recovers(
    fake: FakeGateway, fake_url: str
) -> None:
    async with monitoring(fake_url, timeout=0.2) as (app, pilot):
        await until(pilot, lambda: len(table(app).dids) == 2, "two rows")
        fake.mode = "slow"
        await until(pilot, lambda: app.status.state == "unreachable", "timed out")
        assert status_text(app).startswith(
            "✖ unreachable: no answer within 0.2 s, retrying every 0.1 s"
        )
        # polls are not piled up while one waits: at most one request in flight per tick
        await pilot.pause(0.5)
        assert len(fake.requests) < 30
        fake.mode = "ok"
        fake.release.set()
        await until(pilot, lambda: app.status.state == "healthy", "recovered")
        assert len(table(app).dids) == 2


@UI
async def test_ten_thousand_agents_are_paged_and_the_screen_stays_responsive(
    fake: FakeGateway, fake_url: str
) -> None:
    fake.agent_count = 10_000
    async with monitoring(fake_url, interval=0.2) as (app, pilot):
        await until(pilot, lambda: len(table(app).dids) == 200, "200 rows")
        assert "showing 200 of 10,000" in app.agents_title
        assert total_text(app, "agents") == "Agents 10,000"
        await next_polls(pilot, app, 2)
        per_poll = [r for r in fake.requests if r.startswith("/agents")]
        assert len(per_poll) <= 2 * (app.polls + 1)  # two pages of 100 per poll, no more
        await pilot.press("s")
        assert app.agents_title.startswith("Agents · sorted by connected time")
        # re-sorting and redrawing 200 rows takes well under a poll interval (a few ms here)
        started = time.perf_counter()
        app.action_sort()
        assert time.perf_counter() - started < 1.0  # a poll interval: generous for a loaded CI machine
        assert app.agents_title.startswith("Agents · sorted by DID")


@UI
async def test_a_bug_in_a_poll_is_shown_and_polling_goes_on(fake_url: str) -> None:
    class Flaky(GatewayAPI):
        calls = 0

        async def snapshot(self) -> Snapshot:
            self.calls += 1
            if self.calls in (2, 3):
                raise RuntimeError("surprise")
            return await super().snapshot()

    async with Flaky(fake_url) as api, monitoring(fake_url, api=api) as (app, pilot):
        await until(pilot, lambda: api.calls > 3 and app.status.state == "healthy", "recovery")
        assert app.is_running
        lines = "\n".join(log_lines(app))
        assert "gateway error: monitor bug: RuntimeError: surprise" in lines
        assert "gateway back: healthy" in lines
