"""The screens as pure functions of what the monitor knows: rows, caption, totals, details."""

from __future__ import annotations

import pytest

from monitor.view import COLUMNS, agent_row, showing_text

from .builders import DID_A, agent, at


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
