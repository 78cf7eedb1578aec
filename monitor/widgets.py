"""The monitor's widgets and screens; they show values computed in `models`, nothing more.

Text from the gateway (DIDs, agent metadata) is always wrapped in `rich.text.Text`, never
passed as a `str`: Textual would read a `str` as markup, and an agent named "[/]" must not
break the screen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Label, Sparkline, Static

from .models import (
    COLUMNS,
    Agent,
    AgentRow,
    Status,
    agent_row,
    format_age,
    format_count,
    format_duration,
    format_rate,
    sparkline_data,
    status_lines,
)


class StatusBar(Static):
    """Two lines on the gateway: state and URL, then identity and freshness."""

    text = ""

    def show(self, status: Status) -> None:
        first, second = status_lines(status)
        self.text = f"{first}\n{second}"
        self.update(Text(self.text))
        for state in ("connecting", "healthy", "draining", "degraded", "unreachable", "error"):
            self.set_class(status.state == state, f"-{state}")
        self.set_class(status.paused, "-paused")


class Total(Vertical):
    """A headline number with its sparkline over the last minutes."""

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id)
        self._title = title
        self.text = title
        self._label = Label(Text(title), classes="total-value")
        self._sparkline = Sparkline(sparkline_data([], 2))

    def compose(self) -> ComposeResult:
        yield self._label
        yield self._sparkline

    def show(self, value: str, history: Sequence[float], length: int) -> None:
        """`history` is drawn as the right end of a chart `length` polls wide."""
        self.text = f"{self._title} {value}"
        self._label.update(Text(self.text))
        self._sparkline.data = sparkline_data(history, length)


class DidText(Text):
    """The shortened DID shown in the table, remembering the full one (for sorting)."""

    def __init__(self, did: str, short: str) -> None:
        super().__init__(short, no_wrap=True, end="")
        self.did = did


class AgentTable(DataTable[Text]):
    """Agents keyed by DID; `show` updates rows in place and keeps the cursor on its agent."""

    BINDINGS = [Binding("enter", "select_cursor", "Details")]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._rows: dict[str, AgentRow] = {}

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(Text(label), width=width, key=key)

    @property
    def dids(self) -> list[str]:
        """The DIDs in the order shown."""
        ordered = sorted(self._rows, key=lambda did: self.get_row_index(did))
        return ordered

    @property
    def cursor_did(self) -> str | None:
        if not self.row_count:
            return None
        row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return row_key.value

    def row_cells(self, did: str) -> tuple[str, ...]:
        """What the row of `did` shows, as plain strings (for tests and the detail view)."""
        return self._rows[did].cells()

    def show(
        self, agents: Sequence[Agent], rates: Mapping[str, float | None], now: datetime
    ) -> None:
        """Make the table show `agents` in this order, touching only cells that changed."""
        keep_on = self.cursor_did
        wanted = {agent.did: agent for agent in agents}
        for did in [did for did in self._rows if did not in wanted]:
            self.remove_row(did)
            del self._rows[did]
        for did, agent in wanted.items():
            row = agent_row(agent, rates.get(did), now)
            old = self._rows.get(did)
            if old is None:
                cells = [Text(cell, no_wrap=True, end="") for cell in row.cells()]
                cells[0] = DidText(did, row.did)
                self.add_row(*cells, key=did)
            elif old != row:
                for (column, _, _), before, after in zip(
                    COLUMNS, old.cells(), row.cells(), strict=True
                ):
                    if before != after:
                        self.update_cell(did, column, Text(after, no_wrap=True, end=""))
            self._rows[did] = row
        order = {did: index for index, did in enumerate(wanted)}
        self.sort("did", key=lambda cell: order[cell.did])
        if keep_on is not None and keep_on in wanted:
            self.move_cursor(row=self.get_row_index(keep_on), scroll=False)


class AgentScreen(Screen[None]):
    """Everything about one agent; follows it live until `escape`."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, did: str) -> None:
        super().__init__()
        self.did = did
        self.text = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Label(Text("Agent"), classes="section")
            yield Static(id="detail")
        yield Footer()

    def show(
        self, agent: Agent | None, rate: float | None, now: datetime | None, *, stale: bool
    ) -> None:
        """Show the agent's latest data, or say it is gone."""
        lines = [f"DID               {self.did}"]
        if agent is None:
            lines.append("")
            lines.append("This agent is no longer connected.")
        else:
            metadata = json.dumps(dict(agent.metadata), indent=2, ensure_ascii=False)
            connected = agent.connected_at.isoformat(timespec="milliseconds")
            active = agent.last_activity.isoformat(timespec="milliseconds")
            if now is not None:
                connected += (
                    f"  (for {format_duration((now - agent.connected_at).total_seconds())})"
                )
                active += f"  ({format_age(agent.last_activity, now)})"
            lines += [
                f"name              {agent.name or '-'}",
                f"connected at      {connected}",
                f"last activity     {active}",
                f"messages sent     {format_count(agent.messages_sent)}",
                f"messages received {format_count(agent.messages_received)}",
                f"rate              {format_rate(rate)} msg/s",
                "",
                "metadata",
                *(f"  {line}" for line in metadata.splitlines()),
            ]
        if stale:
            lines += ["", "(the gateway is not answering: this is the last data seen)"]
        self.text = "\n".join(lines)
        self._render_text()

    def on_mount(self) -> None:
        self._render_text()

    def _render_text(self) -> None:
        # `show` may come before the screen is composed: then on_mount renders it
        for detail in self.query("#detail").results(Static):
            detail.update(Text(self.text))


HELP = """\
q          quit
r          refresh now
p          pause / resume polling
/          filter agents by DID substring
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
