"""`aiconexus-monitor`: a live terminal view of one AIConexus gateway.

The app owns no network code: it is given a `GatewayAPI` (tests give one pointing at a
gateway they started) and an interval. A timer starts a poll worker; a poll either yields a
`Snapshot`, compared with the previous one by the pure functions of `models`, or a
`GatewayError`, shown in the status bar while the last data stays on screen marked stale.
Polling goes on either way, so the monitor recovers by itself when the gateway is back.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Label, Log
from textual.worker import Worker, WorkerState

from . import __version__
from .api import DEFAULT_MAX_AGENTS, DEFAULT_TIMEOUT, GatewayAPI, GatewayError
from .models import (
    BadURL,
    Snapshot,
    SortKey,
    Status,
    agent_rates,
    describe_agent,
    diff_snapshots,
    filter_agents,
    format_count,
    format_rate,
    history_length,
    http_base_url,
    showing_text,
    sort_agents,
    status_change,
    total_rate,
)
from .widgets import AgentScreen, AgentTable, HelpScreen, StatusBar, Total

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_INTERVAL = 1.0
LOG_LINES = 1000


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
        Binding("r", "refresh", "Refresh"),
        Binding("p", "pause", "Pause"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("question_mark", "help", "Help"),
    ]

    sort_key: reactive[SortKey] = reactive(SortKey.ACTIVITY, init=False)
    filter_text: reactive[str] = reactive("", init=False)
    paused: reactive[bool] = reactive(False, init=False)

    def __init__(
        self,
        api: GatewayAPI,
        *,
        interval: float = DEFAULT_INTERVAL,
        now: Callable[[], datetime] = local_now,
    ) -> None:
        super().__init__()
        self.api = api
        self.interval = interval
        self._now = now
        self.status = Status(url=api.base_url, interval=interval)
        self.snapshot: Snapshot | None = None
        self.rates: Mapping[str, float | None] = {}
        self.total_rate: float | None = None
        self.history = history_length(interval)
        self.agent_history: deque[float] = deque(maxlen=self.history)
        self.rate_history: deque[float] = deque(maxlen=self.history)
        self.polls = 0  # successful or not; lets tests wait for the next poll
        self.agents_title = ""
        # made here, not looked up: polls also land while another screen is on top
        self.status_bar = StatusBar(id="status")
        self.agents_box = Total("Agents", id="total-agents")
        self.rate_box = Total("Messages/s", id="total-rate")
        self.agents_label = Label(id="agents-title", classes="section")
        self.filter_input = Input(
            placeholder="filter by DID substring; enter keeps it, escape clears", id="filter"
        )
        self.table = AgentTable(id="agents")
        self.activity = Log(max_lines=LOG_LINES, id="log")
        self._timer: Timer | None = None
        self._poll_worker: Worker[None] | None = None

    # ---------------------------------------------------------------- layout

    def compose(self) -> ComposeResult:
        yield self.status_bar
        with Horizontal(id="totals"):
            yield self.agents_box
            yield self.rate_box
        yield self.agents_label
        yield self.filter_input
        yield self.table
        yield Label(Text("Activity"), classes="section", id="log-title")
        yield self.activity
        yield Footer()

    def on_mount(self) -> None:
        self.status_bar.show(self.status)
        self._show_agents()
        self.table.focus()
        self._timer = self.set_interval(self.interval, self._tick)
        self.poll()

    # ---------------------------------------------------------------- polling

    def _tick(self) -> None:
        """Timer callback: start a poll unless paused or one is still waiting for an answer.

        A slow gateway must not see its polls cancelled one after the other, so a tick that
        finds the previous poll running skips instead of replacing it.
        """
        if not self.paused and not self.polling:
            self.poll()

    @property
    def polling(self) -> bool:
        """Is a poll waiting for the gateway right now?"""
        return self._poll_worker is not None and not self._poll_worker.is_finished

    def poll(self) -> None:
        """Poll now (replacing a poll in flight)."""
        self._poll_worker = self._poll()

    @work(exclusive=True, group="poll", exit_on_error=False)
    async def _poll(self) -> None:
        try:
            snapshot = await self.api.snapshot()
        except GatewayError as exc:
            if self.is_running:  # not while the app shuts down
                self._poll_failed(exc.state, exc.reason)
        else:
            if self.is_running:
                self._poll_succeeded(snapshot)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in a poll is shown like a gateway fault; the app and the timer go on."""
        if event.worker.group == "poll" and event.state is WorkerState.ERROR and self.is_running:
            error = event.worker.error
            self._poll_failed("error", f"monitor bug: {type(error).__name__}: {error}")

    def _poll_failed(self, state: str, reason: str) -> None:
        self.polls += 1
        self._set_status(replace(self.status, state=state, reason=reason))
        self._show_agents()

    def _poll_succeeded(self, snapshot: Snapshot) -> None:
        self.polls += 1
        previous = self.snapshot
        diff = diff_snapshots(previous, snapshot)
        self.rates = agent_rates(previous, snapshot)
        self.total_rate = total_rate(previous, snapshot)
        self.snapshot = snapshot
        self._set_status(
            replace(
                self.status,
                state=snapshot.health.status,
                reason="",
                health=snapshot.health,
                last_ok=self._now(),
            )
        )
        if previous is None:
            count = snapshot.total
            self.log_event(f"{format_count(count)} agent{'' if count == 1 else 's'} connected")
        for agent in diff.left:
            self.log_event(f"left    {describe_agent(agent)}")
        for agent in diff.joined:
            self.log_event(f"joined  {describe_agent(agent)}")
        for agent in diff.reconnected:
            self.log_event(f"rejoined {describe_agent(agent)}")
        self.agent_history.append(float(snapshot.total))
        if self.total_rate is not None:
            self.rate_history.append(self.total_rate)
        self._show_agents()

    def _set_status(self, status: Status) -> None:
        line = status_change(self.status, status)
        self.status = status
        self.status_bar.show(status)
        if line is not None:
            self.log_event(line)

    def log_event(self, line: str) -> None:
        """Add a timestamped line to the activity log."""
        self.activity.write_line(f"{self._now():%H:%M:%S}  {line}")

    # ---------------------------------------------------------------- showing

    def _show_agents(self) -> None:
        stale = self.status.stale
        self.set_class(stale, "-stale")
        table = self.table
        snapshot = self.snapshot
        parts = [f"Agents · sorted by {self.sort_key.value}"]
        if snapshot is None:
            table.show([], {}, self._now())
            parts.append("waiting for the gateway")
        else:
            agents = sort_agents(snapshot.agents.values(), self.sort_key)
            shown = filter_agents(agents, self.filter_text)
            table.show(shown, self.rates, snapshot.health.timestamp)
            parts.append(
                showing_text(len(shown), len(snapshot.agents), snapshot.total, self.filter_text)
            )
            rate = format_rate(self.total_rate)
            if snapshot.partial:
                rate += f" (first {format_count(len(snapshot.agents))} agents)"
            self.agents_box.show(format_count(snapshot.total), self.agent_history, self.history)
            self.rate_box.show(rate, self.rate_history, self.history)
        if stale and self.status.last_ok is not None:
            parts.append(f"STALE: data from {self.status.last_ok:%H:%M:%S}")
        self.agents_title = " · ".join(parts)
        self.agents_label.update(Text(self.agents_title))
        if isinstance(self.screen, AgentScreen):
            self._show_detail(self.screen)

    def _show_detail(self, screen: AgentScreen) -> None:
        snapshot = self.snapshot
        agent = snapshot.agents.get(screen.did) if snapshot is not None else None
        now = snapshot.health.timestamp if snapshot is not None else None
        screen.show(agent, self.rates.get(screen.did), now, stale=self.status.stale)

    # ---------------------------------------------------------------- reactive state

    def watch_sort_key(self) -> None:
        self._show_agents()

    def watch_filter_text(self) -> None:
        self._show_agents()

    def watch_paused(self, paused: bool) -> None:
        self._set_status(replace(self.status, paused=paused))
        self.log_event("polling paused" if paused else "polling resumed")
        if not paused:
            self.poll()

    # ---------------------------------------------------------------- keys

    def action_refresh(self) -> None:
        self.poll()

    def action_pause(self) -> None:
        self.paused = not self.paused

    def action_sort(self) -> None:
        self.sort_key = self.sort_key.next()

    def action_filter(self) -> None:
        field = self.filter_input
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.filter_input
        field.value = ""
        field.display = False
        self.filter_text = ""
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Table keys only act on (and only show in the footer of) the table's screen;
        `escape` there only while a filter is open."""
        if action in ("filter", "sort", "clear_filter") and len(self.screen_stack) > 1:
            return False
        if action == "clear_filter":
            return self.filter_input.display or bool(self.filter_text)
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()
        if not event.value:
            event.input.display = False
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#agents")
    def _open_detail(self, event: DataTable.RowSelected) -> None:
        did = event.row_key.value
        if did is None:
            return
        screen = AgentScreen(did)
        self.push_screen(screen)
        self._show_detail(screen)


# -------------------------------------------------------------------- command line


@dataclass(frozen=True)
class Options:
    url: str
    interval: float
    timeout: float
    max_agents: int


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 3600 seconds: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000: {text!r}")
    return value


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Options:
    """Flags win over `GATEWAY_URL` / `MONITOR_INTERVAL`, which win over the defaults."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="aiconexus-monitor",
        description="Live terminal monitor of an AIConexus gateway (polls /health and /agents).",
        epilog="keys: q quit, r refresh, p pause, / filter, s sort, enter details, ? help",
    )
    parser.add_argument(
        "--url",
        default=env.get("GATEWAY_URL", DEFAULT_URL),
        help="the gateway's HTTP address; a ws://host:port/ws address is accepted too "
        f"(env GATEWAY_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--interval",
        type=_positive,
        default=env.get("MONITOR_INTERVAL", str(DEFAULT_INTERVAL)),
        help=f"seconds between polls (env MONITOR_INTERVAL, default {DEFAULT_INTERVAL:g})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=str(DEFAULT_TIMEOUT),
        help=f"seconds to wait for an answer before calling the gateway unreachable "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-agents",
        type=_count,
        default=str(DEFAULT_MAX_AGENTS),
        help=f"fetch at most this many agents per poll (default {DEFAULT_MAX_AGENTS})",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    try:
        url = http_base_url(args.url)
    except BadURL as exc:
        parser.error(str(exc))
    return Options(
        url=url, interval=args.interval, timeout=args.timeout, max_agents=args.max_agents
    )


async def _main(options: Options) -> int:
    async with GatewayAPI(
        options.url, timeout=options.timeout, max_agents=options.max_agents
    ) as api:
        app = MonitorApp(api, interval=options.interval)
        await app.run_async()
    return app.return_code or 0


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: `aiconexus-monitor`."""
    options = parse_args(argv)
    sys.exit(asyncio.run(_main(options)))
