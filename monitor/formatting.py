"""How values are written on the screen: DIDs, durations, ages, rates, counters, sparklines.

Pure. Every function returns plain text; the widgets pass it through `terminal_safe` and
wrap it in `rich.text.Text`, never in markup, so nothing an agent chose is interpreted, by
Textual or by the terminal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from .contract import Agent

ELLIPSIS = "…"
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal could act on written out as an escape.

    Agents choose their metadata, and the gateway passes it on: an ESC or C1 control would
    let one change the operator's window title, write the clipboard (OSC 52), clear the
    screen or make the terminal answer a query into the monitor's input. Every character
    Python does not call printable is shown as `\\x1b`, `\\x9b`, `\\u202e`...: C0 and C1
    controls, DEL, format characters such as bidi overrides (which reorder what is read),
    line and paragraph separators, and lone surrogates (which cannot even be encoded).
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def shorten_did(did: str, *, head: int = 8, tail: int = 4) -> str:
    """`did:key:z6Mkf5rG…Xq9B`: the method stays, the middle of the identifier goes.

    Shortened after `terminal_safe`, so an escaped control character counts as what is shown.
    """
    shown = terminal_safe(did)
    prefix, sep, ident = shown.rpartition(":")
    if len(ident) <= head + tail + 1:
        return shown
    return f"{prefix}{sep}{ident[:head]}{ELLIPSIS}{ident[-tail:]}"


def format_duration(seconds: float) -> str:
    """A compact, human duration: `42 s`, `3 m 07 s`, `2 h 05 m`, `4 d 03 h`."""
    total = max(0, math.floor(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours:02d} h"
    if hours:
        return f"{hours} h {minutes:02d} m"
    if minutes:
        return f"{minutes} m {secs:02d} s"
    return f"{secs} s"


def format_age(then: datetime, now: datetime) -> str:
    """`3 s ago`, `4 m ago`, `2 h ago`, `3 d ago`: the largest unit is precise enough for an age.

    A time slightly in the future (the two clocks disagree) counts as now.
    """
    seconds = max(0, math.floor((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def format_rate(rate: float | None) -> str:
    """Messages per second in at most 5 characters (`12.5`, `340`, `1.2k`), `-` if unknown."""
    if rate is None:
        return "-"
    for limit, divisor, suffix, digits in (
        (99.95, 1, "", 1),
        (999.5, 1, "", 0),
        (9_950, 1_000, "k", 1),
        (999_500, 1_000, "k", 0),
    ):
        if rate < limit:
            return f"{rate / divisor:.{digits}f}{suffix}"
    return f"{rate / 1_000_000:.1f}M"


def format_count(value: int) -> str:
    """Thousands separators: `10,000`."""
    return f"{value:,}"


def format_counter(value: int) -> str:
    """A counter in at most 6 characters for a table cell: `99,999`, `123.4k`, `12.3M`."""
    if value < 100_000:
        return f"{value:,}"
    if value < 999_950:
        return f"{value / 1000:.1f}k"
    if value < 999_950_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1_000_000_000:.1f}G"


def format_seconds(value: float) -> str:
    """An interval as typed: `1 s`, `0.5 s`."""
    return f"{value:g} s"


def describe_agent(agent: Agent) -> str:
    """`did:key:z6Mk…abcd (alice)` for the activity log."""
    short = shorten_did(agent.did)
    return f"{short} ({agent.name})" if agent.name else short


def sparkline_data(values: Sequence[float], length: int, *, least: int = 60) -> list[float]:
    """The sparkline's points: the last `length` values, drawn as at least `least` points.

    Just after start the few values sit at the right end of a chart that starts flat at the
    first value (rather than each stretching over half the width); the chart then widens
    until it covers the whole history.
    """
    points = list(values)[-length:] if length > 0 else list(values)
    width = max(2, min(length, max(least, len(points))))
    fill = points[0] if points else 0.0
    return [fill] * (width - len(points)) + points
