"""Helpers for driving the monitor headless: start it, wait for it, read what is on its screen.

The readers render the screen as a terminal of the app's size would show it and cut out one
widget's region, so tests assert on what an operator sees, not on the widgets' state.
"""

from __future__ import annotations

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
from monitor.formatting import shorten_did
from monitor.view import COLUMNS
from tests.support.waiting import wait_until

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
    """Let the app run until `condition()` holds; fail naming `what` after `timeout` (the shared
    wait_until, pausing the Textual way between checks)."""
    await wait_until(condition, timeout, what, pause=pilot.pause)


async def next_polls(pilot: Pilot[None], app: MonitorApp, count: int = 2) -> None:
    """Wait until `count` more polls finished (so the screen shows fresh data)."""
    target = app.main.polls + count
    await until(pilot, lambda: app.main.polls >= target, f"{count} more polls")
    await pilot.pause()  # let the screen catch up with the last poll


@asynccontextmanager
async def agents(
    gateway: Gateway, *names: str, **metadata: Any
) -> AsyncIterator[list[GatewayClient]]:
    """SDK agents named `names` (with extra `metadata`), connected in order, closed afterwards."""
    clients: list[GatewayClient] = []
    try:
        for name in names:
            client = GatewayClient(
                gateway.ws_url, DIDKey.generate(), metadata={"name": name, **metadata}
            )
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


# -------------------------------------------------------------------- reading the screen


def terminal_output(app: MonitorApp, *, colors: bool = False) -> str:
    """What the app writes to a terminal of its size to draw the current screen.

    Without colors, the only escape sequences left are the ones the content carries.
    """
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        force_terminal=True,
        color_system="truecolor" if colors else None,
        legacy_windows=False,
    )
    console.print(app.screen._compositor.render_update(full=True))
    if colors:
        output = console.file
        assert isinstance(output, io.StringIO)
        return output.getvalue()
    return console.export_text()


def screen_text(app: MonitorApp) -> str:
    """The whole screen as plain text, one line per terminal row."""
    return terminal_output(app)


def widget_text(app: MonitorApp, selector: str) -> str:
    """The part of the screen one widget (of the screen on top) covers, lines right-stripped."""
    region = app.screen.query_one(selector).region
    lines = screen_text(app).splitlines()[region.y : region.bottom]
    return "\n".join(line[region.x : region.right].rstrip() for line in lines)


def status_text(app: MonitorApp) -> str:
    """The status bar's two lines."""
    return "\n".join(line.strip() for line in widget_text(app, "#status").strip().splitlines())


def total_text(app: MonitorApp, which: str) -> str:
    """`Agents 2` or `Messages/s 0.0`: the headline above the sparkline."""
    return widget_text(app, f"#total-{which}").splitlines()[0].strip()


def caption(app: MonitorApp) -> str:
    """The line above the table: order, filter, how many are shown, staleness."""
    return widget_text(app, "#agents-title").strip()


def log_lines(app: MonitorApp) -> list[str]:
    """The activity log's visible lines."""
    return [line.strip() for line in widget_text(app, "#log").splitlines() if line.strip()]


def table_rows(app: MonitorApp) -> list[tuple[str, ...]]:
    """The agents table's rows below its header, as the cells' text."""
    rows = []
    for line in widget_text(app, "#agents").splitlines()[1:]:
        cells, x = [], 0
        for _, _, width in COLUMNS:
            cells.append(line[x + 1 : x + 1 + width].strip())
            x += width + 2
        if any(cells):
            rows.append(tuple(cells))
    return rows


def shown_dids(app: MonitorApp) -> list[str]:
    """The (shortened) DIDs in the table, top to bottom."""
    return [row[0] for row in table_rows(app)]


def row_of(app: MonitorApp, did: str) -> tuple[str, ...] | None:
    """The cells of the row of `did`, or None when it is not shown."""
    short = shorten_did(did)
    return next((row for row in table_rows(app) if row[0] == short), None)


def shows(app: MonitorApp, *dids: str) -> bool:
    """Does the table show exactly these agents, in this order?"""
    return shown_dids(app) == [shorten_did(did) for did in dids]
