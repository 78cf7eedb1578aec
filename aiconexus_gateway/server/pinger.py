"""The gateway's one keepalive timer: WebSocket pings for every open connection (protocol.md 13).

Tornado's own keepalive (`websocket_ping_interval`) runs a task per connection, two timer
wake-ups per ping; here one timer ticks a wheel (keepalive.KeepAlive, which decides) and does
what it says: ping, or close with 1000 "ping timed out". It runs only while connections are open.
"""

from __future__ import annotations

import logging
from asyncio import TimerHandle, get_running_loop
from typing import Protocol

from ..keepalive import KeepAlive

log = logging.getLogger("aiconexus.gateway.ws")


class Pingable(Protocol):
    """What the pinger asks of a connection (server/websocket.py AgentSocketHandler)."""

    def ping_now(self) -> None:
        """Send a ping frame."""

    def ping_timed_out(self) -> None:
        """The last ping had no pong within the interval: close 1000 "ping timed out"."""


class Pinger:
    """Owns the wheel of open connections; one per application (make_app)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.wheel: KeepAlive[Pingable] = KeepAlive(interval)
        self._timer: TimerHandle | None = None
        self._next = 0.0  # loop time of the next tick

    def add(self, connection: Pingable) -> None:
        """A connection opened (its first ping comes one to two intervals from now)."""
        self.wheel.add(connection)
        if self._timer is None:
            loop = get_running_loop()
            self._next = loop.time() + self.wheel.tick_seconds
            self._timer = loop.call_at(self._next, self._tick)

    def remove(self, connection: Pingable) -> None:
        """A connection closed: it leaves the wheel now (the timer stops with the last one)."""
        self.wheel.remove(connection)

    def answered(self, connection: Pingable) -> None:
        """A pong came from `connection`."""
        self.wheel.answered(connection)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        ping, give_up = self.wheel.tick()
        for connection in ping:
            try:
                connection.ping_now()
            except Exception:  # a bug of ours must not stop every connection's keepalive
                log.exception("internal error sending a ping")
        for connection in give_up:
            try:
                connection.ping_timed_out()
            except Exception:
                log.exception("internal error closing a connection whose ping timed out")
        if len(self.wheel):
            loop = get_running_loop()
            now = loop.time()
            # on schedule (ticks do not drift by the time they take), never behind by more than one
            self._next = max(self._next + self.wheel.tick_seconds, now)
            self._timer = loop.call_at(self._next, self._tick)
