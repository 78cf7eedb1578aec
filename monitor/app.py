"""`aiconexus-monitor`: the Textual app, a live terminal view of one AIConexus gateway.

The app owns no network code and no state of its own: it is given a `GatewayAPI` (tests give
one pointing at a gateway they started) and an interval, and its default screen, the
`MainScreen`, polls and shows. The command line is in `cli` (importable without Textual).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from .api import GatewayAPI
from .cli import DEFAULT_INTERVAL, Options
from .screens import HelpScreen, MainScreen


def local_now() -> datetime:
    """Wall-clock time for the log and the status bar, in the operator's time zone."""
    return datetime.now().astimezone()


class MonitorApp(App[None]):
    """Polls one gateway and shows its agents; see docs/monitor.md."""

    CSS_PATH = "monitor.tcss"
    TITLE = "AIConexus monitor"
    ENABLE_COMMAND_PALETTE = False  # the footer lists every key; nothing else to offer
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        api: GatewayAPI,
        *,
        interval: float = DEFAULT_INTERVAL,
        now: Callable[[], datetime] = local_now,
    ) -> None:
        super().__init__()
        self.main = MainScreen(api, interval=interval, now=now)

    def get_default_screen(self) -> Screen[None]:
        return self.main

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


async def run_monitor(options: Options) -> int:
    """Run the app full screen until the operator quits; the exit status."""
    async with GatewayAPI(
        options.url, timeout=options.timeout, max_agents=options.max_agents, token=options.token
    ) as api:
        app = MonitorApp(api, interval=options.interval)
        await app.run_async()
    return app.return_code or 0


def run() -> None:
    """The console script installed before it moved to `monitor.cli:run`."""
    from .cli import run as cli_run

    cli_run()
