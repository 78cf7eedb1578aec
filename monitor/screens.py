"""The monitor's screens: the main screen (polling, table, log), an agent's details, the help.

Theory of operation: the main screen holds the state in reactive attributes (`status`,
`observed`, `sort_key`, `filter_text`, `paused`). A timer starts a poll worker; a poll sets
`status` and, when it succeeded, `observed`. Any change of state derives `view` once, with
the pure `view.main_view`, and `watch_view` hands each widget its part. The activity log is
the one thing written by events: joins and leaves (from `changes.observe`), changes of the
gateway's state (`watch_status`), pausing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Log, Static
from textual.worker import Worker, WorkerState

from .api import GatewayAPI, PollFailed
from .changes import Observed, history_length, observe
from .contract import Snapshot
from .formatting import describe_agent, format_count, terminal_safe
from .selection import SortKey
from .status import Status, status_change
from .view import MainView, agent_details, main_view
from .widgets import AgentTable, StatusBar, TotalBox, block, plain

LOG_LINES = 1000


class MainScreen(Screen[None]):
    """Polls the gateway and shows its agents; see docs/monitor.md."""

    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("p", "pause", "Pause"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "clear_filter", "Clear filter"),
    ]

    status: reactive[Status] = reactive(Status(url="", interval=1.0), init=False)
    observed: reactive[Observed | None] = reactive(None, init=False)
    sort_key: reactive[SortKey] = reactive(SortKey.ACTIVITY, init=False)
    filter_text: reactive[str] = reactive("", init=False)
    paused: reactive[bool] = reactive(False, init=False)
    view: reactive[MainView | None] = reactive(None, init=False)

    def __init__(self, api: GatewayAPI, *, interval: float, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.api = api
        self.interval = interval
        self._now = now
        self.history = history_length(interval)
        # finished polls (successful or not) and timer ticks: let tests wait for the next one
        self.polls = 0
        self.ticks = 0
        self._poll_worker: Worker[None] | None = None
        self.set_reactive(MainScreen.status, Status(url=api.base_url, interval=interval))

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        with Horizontal(id="totals"):
            yield TotalBox(id="total-agents")
            yield TotalBox(id="total-rate")
        yield Label(id="agents-title", classes="section")
        yield Input(
            placeholder="DID substring, or cap:<capability>; enter keeps it, escape clears", id="filter"
        )
        yield AgentTable(id="agents")
        yield Label(Text("Activity"), classes="section", id="log-title")
        yield Log(max_lines=LOG_LINES, id="log")
        yield Footer()

    def on_mount(self) -> None:
        self._derive_view()
        self.query_one(AgentTable).focus()
        self.set_interval(self.interval, self._tick)
        self.poll()

    # ---------------------------------------------------------------- polling

    def _tick(self) -> None:
        """Timer callback: start a poll unless paused or one is still waiting for an answer.

        A slow gateway must not see its polls cancelled one after the other, so a tick that
        finds the previous poll running skips instead of replacing it.
        """
        self.ticks += 1
        if not self.paused and not self.status.stopped and not self.polling:
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
        except PollFailed as exc:
            if self.app.is_running:  # not while the app shuts down
                self._poll_failed(exc.state, exc.reason)
        else:
            if self.app.is_running:
                self._poll_succeeded(snapshot)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A bug in a poll is shown like a gateway fault; the app and the timer go on."""
        worker = event.worker
        if worker.group == "poll" and event.state is WorkerState.ERROR and self.app.is_running:
            error = worker.error
            self._poll_failed("error", f"monitor bug: {type(error).__name__}: {error}")

    def _poll_failed(self, state: str, reason: str) -> None:
        self.polls += 1
        self.status = replace(self.status, state=state, reason=reason)

    def _poll_succeeded(self, snapshot: Snapshot) -> None:
        self.polls += 1
        observed, diff = observe(self.observed, snapshot, history=self.history)
        self.status = replace(
            self.status,
            state=snapshot.health.status,
            reason="",
            health=snapshot.health,
            last_ok=self._now(),
        )
        if self.observed is None:
            count = snapshot.total
            self.log_event(f"{format_count(count)} agent{'' if count == 1 else 's'} connected")
        for agent in diff.left:
            self.log_event(f"left    {describe_agent(agent)}")
        for agent in diff.joined:
            self.log_event(f"joined  {describe_agent(agent)}")
        for agent in diff.reconnected:
            self.log_event(f"rejoined {describe_agent(agent)}")
        self.observed = observed

    def log_event(self, line: str) -> None:
        """Add a timestamped line to the activity log."""
        self.query_one(Log).write_line(f"{self._now():%H:%M:%S}  {terminal_safe(line)}")

    # ---------------------------------------------------------------- state -> screen

    def _derive_view(self) -> None:
        self.view = main_view(
            self.status, self.observed, self.sort_key, self.filter_text, history=self.history
        )

    def watch_status(self, old: Status, new: Status) -> None:
        line = status_change(old, new)
        if line is not None:
            self.log_event(line)
        self._derive_view()

    def watch_observed(self) -> None:
        self._derive_view()

    def watch_sort_key(self) -> None:
        self._derive_view()

    def watch_filter_text(self) -> None:
        self._derive_view()

    def watch_paused(self, paused: bool) -> None:
        self.status = replace(self.status, paused=paused)
        self.log_event("polling paused" if paused else "polling resumed")
        if not paused:
            self.poll()

    def watch_view(self, view: MainView | None) -> None:
        if view is None:
            return
        self.set_class(view.stale, "-stale")
        self.query_one(StatusBar).status = view.status
        self.query_one("#total-agents", TotalBox).total = view.agents
        self.query_one("#total-rate", TotalBox).total = view.rate
        self.query_one("#agents-title", Label).update(plain(view.caption))
        self.query_one(AgentTable).agent_rows = view.rows

    # ---------------------------------------------------------------- keys

    def action_refresh(self) -> None:
        self.poll()

    def action_pause(self) -> None:
        self.paused = not self.paused

    def action_sort(self) -> None:
        self.sort_key = self.sort_key.next()

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = ""
        field.display = False
        self.filter_text = ""
        self.query_one(AgentTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """`escape` clears the filter only while one is open (and only then in the footer)."""
        if action == "clear_filter":
            return self.query_one("#filter", Input).display or bool(self.filter_text)
        return True

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.query_one(AgentTable).focus()
        if not event.value:
            event.input.display = False
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#agents")
    def _open_detail(self, event: DataTable.RowSelected) -> None:
        did = event.row_key.value
        if did is not None:
            self.app.push_screen(AgentScreen(did, self))


class AgentScreen(Screen[None]):
    """Everything about one agent; follows it live (it watches the main screen) until `escape`."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, did: str, main: MainScreen) -> None:
        super().__init__()
        self.did = did
        self.main = main

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Label(Text("Agent"), classes="section")
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.main, "view", self._show)

    def _show(self, view: MainView | None) -> None:
        stale = view is not None and view.stale
        text = agent_details(self.did, self.main.observed, stale=stale)
        self.query_one("#detail", Static).update(block(text))


HELP = """\
q          quit
r          refresh now
p          pause / resume polling
/          filter agents by DID substring, or cap:<capability>
           (enter keeps the filter, escape clears it)
s          cycle the sort: activity, connected, DID, messages
enter      details of the selected agent (escape back)
?          this help
up/down    move in the table; pgup/pgdn page

Rates are messages per second between two polls; the totals
count each routed message once (by its sender). With many
agents only the first pages are fetched ("showing 200 of N").
"""


class HelpScreen(ModalScreen[None]):
    """The keys, and how to read the numbers."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("question_mark", "app.pop_screen", "Back", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Label(Text("aiconexus-monitor: keys"), classes="section")
            yield Static(Text(HELP), id="help")
        yield Footer()
