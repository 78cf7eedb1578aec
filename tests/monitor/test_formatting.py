"""How values are written: DIDs, durations, ages, rates, counters, sparklines."""

from __future__ import annotations

import pytest

from monitor.formatting import (
    describe_agent,
    format_age,
    format_counter,
    format_duration,
    format_rate,
    shorten_did,
    sparkline_data,
    terminal_safe,
)
from monitor.view import COLUMNS

from .builders import DID_A, T0, agent, at


def test_did_is_shortened_in_the_middle_keeping_the_method() -> None:
    assert shorten_did(DID_A) == "did:key:z6MkhaXg…2doK"
    assert len(shorten_did(DID_A)) == 21


def test_short_or_odd_dids_are_left_alone() -> None:
    assert shorten_did("did:key:z6Mkshort") == "did:key:z6Mkshort"
    assert shorten_did("x" * 10) == "x" * 10


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0 s"),
        (0.9, "0 s"),
        (42, "42 s"),
        (187, "3 m 07 s"),
        (7500, "2 h 05 m"),
        (4 * 86400 + 3 * 3600 + 59, "4 d 03 h"),
    ],
)
def test_durations_are_compact(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "0 s ago"),
        (3.7, "3 s ago"),
        (250, "4 m ago"),
        (7300, "2 h ago"),
        (3 * 86400, "3 d ago"),
    ],
)
def test_ages_use_their_largest_unit(seconds: float, text: str) -> None:
    assert format_age(T0, at(seconds)) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (None, "-"),
        (0, "0.0"),
        (12.34, "12.3"),
        (340.2, "340"),
        (1234, "1.2k"),
        (56_789, "57k"),
        (12_345_678, "12.3M"),
    ],
)
def test_rates_fit_their_column(rate: float | None, text: str) -> None:
    assert format_rate(rate) == text
    assert len(text) <= dict((k, w) for k, _, w in COLUMNS)["rate"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (99_999, "99,999"),
        (123_456, "123.5k"),
        (999_999, "1.0M"),
        (12_345_678_901, "12.3G"),
    ],
)
def test_counters_fit_their_column(value: int, text: str) -> None:
    assert format_counter(value) == text
    assert len(text) <= dict((k, w) for k, _, w in COLUMNS)["sent"]




def test_log_names_agents_by_short_did_and_name() -> None:
    assert describe_agent(agent(DID_A, name="alice")) == "did:key:z6MkhaXg…2doK (alice)"
    assert describe_agent(agent(DID_A)) == "did:key:z6MkhaXg…2doK"




def test_sparkline_starts_narrow_at_the_right_then_covers_the_whole_history() -> None:
    assert sparkline_data([], 10, least=4) == [0.0, 0.0, 0.0, 0.0]
    assert sparkline_data([3.0], 10, least=4) == [3.0, 3.0, 3.0, 3.0]
    assert sparkline_data([1.0, 2.0], 10, least=4) == [1.0, 1.0, 1.0, 2.0]
    six = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert sparkline_data(six, 10, least=4) == six
    assert sparkline_data(six, 4, least=4) == [3.0, 4.0, 5.0, 6.0]


def test_sparkline_always_gets_two_points() -> None:
    assert sparkline_data([], 0) == [0.0, 0.0]
    assert sparkline_data([3.0], 1) == [3.0, 3.0]


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("alice", "alice"),
        ("[red]x[/red]", "[red]x[/red]"),  # markup is not read anyway: the widgets use Text
        ("café 日本 🙂", "café 日本 🙂"),
        ("\x1b]52;c;SGVsbG8=\x07", "\\x1b]52;c;SGVsbG8=\\x07"),  # OSC 52: clipboard write
        ("\x1b[2J", "\\x1b[2J"),  # C0 ESC: clear screen
        ("\x9b6n", "\\x9b6n"),  # C1 CSI: device status query
        ("a\x7fb", "a\\x7fb"),  # DEL
        ("\x85", "\\x85"),  # C1 NEL
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\u202eevil", "\\u202eevil"),  # bidi override: reorders what the operator reads
        ("\ud800", "\\ud800"),  # a lone surrogate (JSON allows it) cannot even be encoded
    ],
)
def test_agent_text_is_shown_with_control_characters_escaped(given: str, shown: str) -> None:
    assert terminal_safe(given) == shown
