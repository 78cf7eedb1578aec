"""The monitor's widgets: each draws one part of a `view` value, held in a reactive attribute.

Setting the reactive is the only way to change what a widget shows; nothing else is kept.
Text from the gateway (DIDs, agent metadata) goes through `plain` or `block`: control
characters escaped (`formatting.terminal_safe`: nothing an agent sends may act on the
operator's terminal), and wrapped in `rich.text.Text`, never passed as a `str`, since Textual
would read a `str` as markup, and an agent named "[/]" must not break the screen.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import DataTable, Label, Sparkline

from .formatting import sparkline_data, terminal_safe
from .status import STATES, Status, status_lines
from .view import COLUMNS, AgentRow, Total


def plain(text: str) -> Text:
    """A single-line cell or label that shows `text` as it is, control characters escaped."""
    return Text(terminal_safe(text), no_wrap=True, end="")


def block(text: str) -> Text:
    """Lines of text shown as they are; control characters within a line escaped."""
    return Text("\n".join(terminal_safe(line) for line in text.split("\n")))


class StatusBar(Widget):
    """Two lines on the gateway: state and URL, then identity and freshness."""

    status: reactive[Status | None] = reactive(None)

    def render(self) -> RenderResult:
        if self.status is None:
            return Text()
        return block("\n".join(status_lines(self.status)))

    def watch_status(self, status: Status | None) -> None:
        for state in STATES:
            self.set_class(status is not None and status.state == state, f"-{state}")
        self.set_class(status is not None and status.paused, "-paused")


class TotalBox(Vertical):
    """A headline number with its sparkline over the last minutes."""

    total: reactive[Total | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield Label(classes="total-value")
        yield Sparkline(sparkline_data([], 2))

    def watch_total(self, total: Total | None) -> None:
        if total is None or not self.is_mounted:
            return
        self.query_one(Label).update(plain(total.text))
        self.query_one(Sparkline).data = list(total.points)

    def on_mount(self) -> None:
        self.watch_total(self.total)


class DidText(Text):
    """The shortened DID shown in the table, remembering the full one (to order rows by)."""

    def __init__(self, did: str, short: str) -> None:
        super().__init__(terminal_safe(short), no_wrap=True, end="")
        self.did = did


class AgentTable(DataTable[Text]):
    """Agents keyed by DID; a new `agent_rows` value updates only the cells that changed and keeps
    the cursor on its agent."""

    BINDINGS = [Binding("enter", "select_cursor", "Details")]

    agent_rows: reactive[tuple[AgentRow, ...]] = reactive((), always_update=True, init=False)

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, AgentRow] = {}
        for key, label, width in COLUMNS:
            self.add_column(Text(label), width=width, key=key)

    @property
    def cursor_did(self) -> str | None:
        """The DID of the agent under the cursor."""
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def watch_agent_rows(self, rows: tuple[AgentRow, ...]) -> None:
        keep_on = self.cursor_did
        wanted = {row.key: row for row in rows}
        for did in [did for did in self._shown if did not in wanted]:
            self.remove_row(did)
            del self._shown[did]
        for did, row in wanted.items():
            old = self._shown.get(did)
            if old is None:
                cells = [plain(cell) for cell in row.cells()]
                cells[0] = DidText(did, row.did)
                self.add_row(*cells, key=did)
            elif old != row:
                for (column, _, _), before, after in zip(
                    COLUMNS, old.cells(), row.cells(), strict=True
                ):
                    if before != after:
                        self.update_cell(did, column, plain(after))
            self._shown[did] = row
        order = {did: index for index, did in enumerate(wanted)}
        self.sort("did", key=lambda cell: order[cell.did])
        if keep_on is not None and keep_on in wanted:
            self.move_cursor(row=self.get_row_index(keep_on), scroll=False)
