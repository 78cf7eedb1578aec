"""Regenerates the README screenshot: `MONITOR_SCREENSHOT=docs/monitor.svg pytest <this file>`.

Skipped otherwise. Two real agents join a real gateway and exchange messages at a varying rate
while the monitor watches, as in the README's walk-through.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from aiconexus_gateway.server.app import Gateway

from .helpers import agents, exchange, monitoring, next_polls, shown_dids, until

TARGET = os.environ.get("MONITOR_SCREENSHOT", "")
WIDTH, HEIGHT = (int(n) for n in os.environ.get("MONITOR_SCREENSHOT_SIZE", "100x30").split("x"))


@pytest.mark.skipif(not TARGET, reason="set MONITOR_SCREENSHOT=path.svg to regenerate it")
@pytest.mark.gateway_config(port=8000)  # the address the README uses; must be free
@pytest.mark.gen_test(timeout=60)
async def test_save_screenshot(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url, interval=0.25, size=(WIDTH, HEIGHT)) as (app, pilot):
        await next_polls(pilot, app, 2)
        async with agents(gateway, "alice", "bob") as (alice, bob):
            await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
            for burst in (2, 5, 9, 14, 10, 6, 12, 18, 8, 4, 7, 11, 15, 9):
                await exchange(alice, bob, burst)
                await exchange(bob, alice, burst // 2)
                await asyncio.sleep(0.25)  # paces the traffic the screenshot shows
            # the screenshot is taken with messages still flowing
            await exchange(alice, bob, 10)
            await next_polls(pilot, app, 1)
            await exchange(alice, bob, 10)
            await next_polls(pilot, app, 1)
            path = Path(TARGET).resolve()
            app.save_screenshot(filename=path.name, path=str(path.parent))
    assert path.is_file()
