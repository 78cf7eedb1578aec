"""Helpers for driving the monitor headless: start it, wait for it, read its screen."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from rich.console import Console
from textual.pilot import Pilot

from aiconexus_gateway.client import DIDKey, GatewayClient
from aiconexus_gateway.server.app import Gateway
from monitor.api import GatewayAPI
from monitor.app import MonitorApp
from monitor.widgets import AgentTable

FAST = 0.1  # seconds between polls in tests


@asynccontextmanager
async def monitoring(
    url: str,
    *,
    interval: float = FAST,
    size: tuple[int, int] = (120, 40),
    api: GatewayAPI | None = None,
    **api_options: Any,
) -> AsyncIterator[tuple[MonitorApp, Pilot[None]]]:
    """A monitor app running headless against `url`, its API closed afterwards."""
    async with AsyncExitStack() as stack:
        if api is None:
            api = await stack.enter_async_context(GatewayAPI(url, **api_options))
        app = MonitorApp(api, interval=interval)
        pilot = await stack.enter_async_context(app.run_test(size=size))
        yield app, pilot


async def until(
    pilot: Pilot[None], condition: Callable[[], object], what: str, timeout: float = 5.0
) -> None:
    """Let the app run until `condition()` holds; fail naming `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await pilot.pause(0.02)


async def next_polls(pilot: Pilot[None], app: MonitorApp, count: int = 2) -> None:
    """Wait until `count` more polls finished (so the screen shows fresh data)."""
    target = app.polls + count
    await until(pilot, lambda: app.polls >= target, f"{count} more polls")


@asynccontextmanager
async def agents(gateway: Gateway, *names: str) -> AsyncIterator[list[GatewayClient]]:
    """SDK agents named `names`, connected in that order, closed afterwards."""
    clients: list[GatewayClient] = []
    try:
        for name in names:
            client = GatewayClient(gateway.ws_url, DIDKey.generate(), metadata={"name": name})
            await client.connect()
            clients.append(client)
        yield clients
    finally:
        for client in clients:
            await client.close()


async def exchange(sender: GatewayClient, receiver: GatewayClient, count: int) -> None:
    """`count` messages from `sender` to `receiver`, each one received."""
    for index in range(count):
        await sender.send(receiver.did, "OFFER", {"sdp": f"v=0 #{index}"})
        await receiver.receive(timeout=5)


def table(app: MonitorApp) -> AgentTable:
    return app.table


def status_text(app: MonitorApp) -> str:
    return app.status_bar.text


def total_text(app: MonitorApp, which: str) -> str:
    return (app.agents_box if which == "agents" else app.rate_box).text


def log_lines(app: MonitorApp) -> list[str]:
    return list(app.activity.lines)


def screen_text(app: MonitorApp) -> str:
    """The whole screen as plain text, as a terminal of `app.size` would show it."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system=None,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text()
