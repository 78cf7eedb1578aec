"""Running the application's handlers: one way for the SDK and its peer channels. No protocol.

Handlers may be plain functions or coroutines. An exception in one is logged and the client reads
on (a bug in the application must not stop the connection). `Background` keeps a reference to
each future it starts, since asyncio holds only weak ones and could collect a running task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger("aiconexus.client")


async def call_handler(handler: Callable[[Any], Any], argument: Any, kind: str) -> None:
    """Run `handler(argument)` to completion; its exception is logged as `kind`'s."""
    try:
        result = handler(argument)
        if inspect.isawaitable(result):
            await result
    except Exception:
        log.exception("%s handler %r failed", kind, handler)


class Background:
    """Futures started without being awaited, kept alive until they finish."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: set[asyncio.Future[Any]] = set()

    def spawn(self, awaitable: Awaitable[Any]) -> None:
        future = asyncio.ensure_future(awaitable)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def notify(self, handlers: Iterable[Callable[[Any], Any]], event: Any, kind: str) -> None:
        """Call each handler now, in order; a coroutine one finishes in the background."""
        for handler in handlers:
            try:
                result = handler(event)
            except Exception:
                log.exception("%s handler %r failed", kind, handler)
                continue
            if inspect.isawaitable(result):
                self.spawn(result)
