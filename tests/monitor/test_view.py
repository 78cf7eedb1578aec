"""The screens as pure functions of what the monitor knows: rows, caption, totals, details."""

from __future__ import annotations

from datetime import datetime

import pytest

from monitor.changes import observe
from monitor.selection import SortKey
from monitor.status import Status
from monitor.view import COLUMNS, agent_details, agent_row, main_view, showing_text

from .builders import DID_A, DID_B, agent, at, health, snapshot

URL = "http://127.0.0.1:8000"
LOCAL = datetime(2026, 11, 26, 11, 0, 5)


def test_agent_row_shows_what_the_table_needs() -> None:
    row = agent_row(
        agent(DID_A, connected=0, active=57, sent=1234, received=5, name="alice"), 2.5, at(60)
    )
    assert row.cells() == (
        "did:key:z6MkhaXg…2doK",
        "alice",
        "1 m 00 s",
        "3 s ago",
        "1,234",
        "5",
        "2.5",
    )


def test_columns_fit_an_80_column_terminal() -> None:
    padding = 2 * len(COLUMNS)
    scrollbar = 2
    assert sum(width for _, _, width in COLUMNS) + padding + scrollbar <= 80


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((2, 2, 2, ""), "2 connected"),
        ((200, 200, 10_000, ""), "showing 200 of 10,000"),
        ((1, 2, 2, "abc"), "filter 'abc': 1 of 2 match"),
        ((3, 200, 10_000, "x"), "filter 'x': 3 of 200 match (first 200 of 10,000 fetched)"),
    ],
)
def test_table_caption(args: tuple[int, int, int, str], text: str) -> None:
    assert showing_text(*args) == text


def test_before_any_answer_the_screen_waits_for_the_gateway() -> None:
    view = main_view(Status(URL, 1.0), None, SortKey.ACTIVITY, "", history=30)
    assert view.caption == "Agents · sorted by activity · waiting for the gateway"
    assert view.rows == ()
    assert (view.agents.text, view.rate.text) == ("Agents", "Messages/s")
    assert not view.stale


def test_the_main_screen_shows_the_sorted_filtered_rows_and_totals() -> None:
    first, _ = observe(None, snapshot(10, agent(DID_A, sent=1), agent(DID_B, active=9)), history=30)
    observed, _ = observe(
        first, snapshot(12, agent(DID_A, sent=5, active=11), agent(DID_B, active=9)), history=30
    )
    healthy = Status(URL, 1.0, state="healthy", health=health(12), last_ok=LOCAL)
    view = main_view(healthy, observed, SortKey.ACTIVITY, "", history=30)
    assert [row.key for row in view.rows] == [DID_A, DID_B]  # A was active last
    assert view.caption == "Agents · sorted by activity · 2 connected"
    assert (view.agents.text, view.rate.text) == ("Agents 2", "Messages/s 2.0")
    assert view.agents.points[-2:] == (2.0, 2.0) and view.rate.points[-1] == 2.0

    filtered = main_view(healthy, observed, SortKey.DID, "z6MKJCH", history=30)
    assert [row.key for row in filtered.rows] == [DID_B]
    assert filtered.caption == "Agents · sorted by DID · filter 'z6MKJCH': 1 of 2 match"


def test_a_failed_poll_keeps_the_rows_and_marks_them_stale() -> None:
    observed, _ = observe(None, snapshot(10, agent(DID_A), total=5), history=30)
    down = Status(
        URL, 1.0, state="unreachable", reason="connection refused", health=health(10),
        last_ok=LOCAL,
    )
    view = main_view(down, observed, SortKey.ACTIVITY, "", history=30)
    assert view.stale and [row.key for row in view.rows] == [DID_A]
    assert view.caption == (
        "Agents · sorted by activity · showing 1 of 5 · STALE: data from 11:00:05"
    )
    assert view.rate.text == "Messages/s - (first 1 agents)"


def test_details_show_everything_about_the_agent_or_that_it_left() -> None:
    observed, _ = observe(
        None, snapshot(60, agent(DID_A, active=57, sent=3, received=4, name="alice")), history=30
    )
    details = agent_details(DID_A, observed, stale=False).splitlines()
    assert details[:7] == [
        f"DID               {DID_A}",
        "name              alice",
        "connected at      2026-11-26T10:00:00.000+00:00  (for 1 m 00 s)",
        "last activity     2026-11-26T10:00:57.000+00:00  (3 s ago)",
        "messages sent     3",
        "messages received 4",
        "rate              - msg/s",
    ]
    assert details[-3:] == ["  {", '    "name": "alice"', "  }"]
    gone = agent_details(DID_B, observed, stale=True)
    assert gone.splitlines()[1:] == [
        "",
        "This agent is no longer connected.",
        "",
        "(the gateway is not answering: this is the last data seen)",
    ]
