"""The one bounded wait of the test suite: until a condition holds or an event is set.

A test waits for the event it needs, never for a fixed time; when the event does not come, the
failure says what was awaited and for how long.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Condition = Callable[[], "object | Awaitable[object]"]


async def wait_until(condition: Condition | asyncio.Event, timeout: float,
                     what: str | Callable[[], str], *, interval: float = 0.02,
                     pause: Callable[[float], Awaitable[object]] = asyncio.sleep) -> float:
    """Wait until `condition` holds; the seconds it took.

    `condition` is a callable (plain or async) polled every `interval` seconds, or an
    `asyncio.Event` awaited directly. `pause` lets a caller yield its own way between polls
    (Textual's `pilot.pause`). On timeout, AssertionError names `what` (a text, or a callable
    that describes the state at that moment).
    """
    started = time.monotonic()
    if isinstance(condition, asyncio.Event):
        try:
            await asyncio.wait_for(condition.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for: {_text(what)}") from None
        return time.monotonic() - started
    deadline = started + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {_text(what)}")
        await pause(interval)


def _text(what: str | Callable[[], str]) -> str:
    return what() if callable(what) else what
