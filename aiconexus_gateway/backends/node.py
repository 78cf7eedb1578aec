"""This instance's tasks in the cluster: one writer, one reader, one sweeper, and the bus's
up/down state. They only move work between the bus and the router; decisions are the router's.

The writer owns the bus connection: it (re)connects with a jittered backoff (backoff.py),
re-publishes this instance's agents, heartbeats (which also trims what the reader consumed of our
inbox), and carries out queued ops in batches of up to MAX_BATCH, one round trip each. The reader
takes our inbox in order and hands each batch to the router. One writer and one reader keep the
order of frames from one sender to one recipient. The sweeper answers frames whose delivery
timeout passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from ..backoff import backoff
from ..clock import Clock
from .bus import Bus, BusError, DuplicateInstanceError, HeartbeatResult, Op, Published, Result, WithdrawOp
from .presence import Presence
from .settings import ClusterSettings
from .wire import ClusterMessage

log = logging.getLogger("aiconexus.gateway.cluster")

MAX_BATCH = 1000
RECONNECT_BASE = 0.1  # seconds before the first reconnection attempt (then doubling)
RECONNECT_CAP = 2.0


class Handler(Protocol):
    """What the tasks report to (backends/router.py ClusterRouter)."""

    def presences(self, everyone: bool) -> tuple[list[Any], list[Presence], list[Presence]]:
        """The local agents to (re)publish: their owners (Peers) and presences, and the
        presences whose withdrawal was dropped. `everyone`: every local agent; else only those
        whose publication (or withdrawal) was dropped while the bus was down."""

    def restored(self, owners: list[Any], generations: list[int]) -> None: ...

    def results(self, batch: list[Op], results: list[Result]) -> None:
        """What the bus made of a batch (one result per op)."""

    def dropped(self, ops: list[Op], *, sent: bool) -> None:
        """`ops` will not be carried out (the bus is down); `sent`: they may have been."""

    def received(self, messages: list[ClusterMessage], now_ms: float) -> None: ...

    def lost_everything(self) -> None:
        """The bus lost its data: frames in flight are gone."""

    def activity(self) -> list[Published]:
        """Counters of local agents that moved since they were last published."""

    def expire(self) -> int:
        """Answer frames whose delivery timeout passed; how many."""

    def up(self, up: bool) -> None:
        """The bus became reachable (True) or not (False)."""

    def syncing(self) -> None:
        """A read of every agent of the cluster starts: announcements read meanwhile are newer
        than parts of it."""

    def synced(self, presences: list[Presence]) -> None:
        """Every agent of the cluster, read after (re)connecting (the directory's replica)."""

    def alive(self, instances: frozenset[str]) -> None:
        """The instances alive at this heartbeat (the others' agents are gone)."""


class ClusterNode:
    """The tasks and the bus state of this instance."""

    def __init__(self, bus: Bus, handler: Handler, settings: ClusterSettings, clock: Clock, *,
                 jitter: Callable[[], float] = random.random) -> None:
        self.bus = bus
        self.handler = handler
        self.settings = settings
        self.clock = clock
        self.up = False
        self.withdrawn = False
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.fatal: BaseException | None = None  # stops the node for good (duplicate id)
        self._jitter = jitter
        self._outbox: deque[Op] = deque()
        self._wake = asyncio.Event()
        self._up_event = asyncio.Event()
        self._attempted = asyncio.Event()  # the first connection attempt ended, however
        self._closing = False
        self._connected_once = False
        self._tasks: list[asyncio.Task[None]] = []
        self._next_heartbeat = 0.0

    @property
    def instance_id(self) -> str:
        return self.settings.instance_id

    def __str__(self) -> str:
        return (f"instance {self.instance_id} via {self.bus.description}, "
                f"{'connected' if self.up else 'not connected yet: ' + str(self.last_error)}")

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, *, connect_wait: float = 2.0) -> None:
        """Start the tasks; wait (bounded) for the first connection. DuplicateInstanceError when
        another live instance holds our INSTANCE_ID (the node is stopped then)."""
        self._tasks = [asyncio.create_task(self._run_writer(), name="cluster-writer"),
                       asyncio.create_task(self._run_reader(), name="cluster-reader"),
                       asyncio.create_task(self._run_sweeper(), name="cluster-sweeper")]
        # An INSTANCE_ID found in use is watched for up to a heartbeat TTL (is it refreshed?).
        settings = self.settings
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), connect_wait + settings.heartbeat_ttl
                                   + settings.heartbeat_interval)
        if not self.up and self.fatal is None:
            log.warning("cluster: Redis not reachable yet (%s); serving local agents and retrying",
                        self.last_error, extra={"instance": self.instance_id})
        if self.fatal is not None:
            await self.close(timeout=0.5)
            raise self.fatal

    async def withdraw(self, timeout: float = 2.0) -> None:
        """Remove this instance's presence first on a drain, so new frames go elsewhere."""
        self.withdrawn = True
        if not self.up:
            return
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.queue(WithdrawOp(done))
        try:
            withdrawn = await asyncio.wait_for(done, timeout)
        except asyncio.TimeoutError:
            withdrawn = False
        if withdrawn:
            log.info("cluster: presence withdrawn", extra={"instance": self.instance_id})
        else:
            log.warning("cluster: could not withdraw presence; it expires with the heartbeat",
                        extra={"instance": self.instance_id})

    async def close(self, timeout: float = 2.0) -> None:
        """Flush what is queued (bounded), stop the tasks, leave the cluster, close the bus."""
        self.withdrawn = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._outbox and self.up and loop.time() < deadline:
            await asyncio.sleep(0.01)
        self._closing = True
        self._wake.set()
        self._up_event.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.up:
            with contextlib.suppress(BusError, asyncio.TimeoutError):
                await asyncio.wait_for(self.bus.leave(), max(0.1, deadline - loop.time()))
        await self.bus.disconnect()

    # -- work -------------------------------------------------------------------------------------

    def queue(self, op: Op) -> None:
        self._outbox.append(op)
        self._wake.set()

    def take_queued(self, limit: int | None = None) -> list[Op]:
        """The oldest queued ops (up to `limit`), taken off the queue: the writer's next batch."""
        outbox = self._outbox
        count = len(outbox) if limit is None else min(limit, len(outbox))
        return [outbox.popleft() for _ in range(count)]

    def bus_time_ms(self) -> float:
        return self.clock.wall() * 1000 + self.bus.clock_offset_ms

    def state(self) -> dict[str, Any]:
        """The bus's state for /health."""
        state: dict[str, Any] = {"state": "connected" if self.up else "disconnected"}
        if not self.up:
            state["error"] = self.last_error or "connecting"
            if self.down_since is not None:
                state["down_seconds"] = round(self.clock.monotonic() - self.down_since, 3)
        return state

    # -- up and down ------------------------------------------------------------------------------

    def set_up(self) -> None:
        if self.down_since is not None:
            log.warning("cluster: Redis is back after %.1f s", self.clock.monotonic()
                        - self.down_since, extra={"instance": self.instance_id})
        self.up = True
        self.last_error = None
        self.down_since = None
        self.handler.up(True)
        self._up_event.set()

    def set_down(self, error: BaseException | str) -> None:
        """The bus failed: ops already queued fail now, new ones fail at once until it is back."""
        text = error if isinstance(error, str) else (str(error) or type(error).__name__)
        if self.up or self.last_error is None:
            log.warning("cluster: Redis unavailable: %s", text, extra={"instance": self.instance_id})
        self.last_error = text
        if self.up:
            self.down_since = self.clock.monotonic()
        self.up = False
        self.handler.up(False)
        self._up_event.clear()
        outbox, self._outbox = self._outbox, deque()
        self.handler.dropped(list(outbox), sent=False)
        self._wake.set()

    # -- tasks ------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        first = not self._connected_once
        lost = await self.bus.connect(first=first)
        self._connected_once = True
        if lost:
            self.handler.lost_everything()
        # After a short outage our presence is still in Redis and our inbox kept every
        # announcement: only what changed meanwhile is published, nothing is read in full.
        intact = not first and not lost and await self.bus.rejoin()
        if not self.withdrawn:  # a drain withdrew our presence: it stays withdrawn
            await self._restore(everything=not intact)
        self._next_heartbeat = self.clock.monotonic() + self.settings.heartbeat_interval

    async def _restore(self, *, everything: bool = True) -> None:
        """Publish our agents again (all of them, or only those whose publication was dropped),
        and after a full restore read the whole cluster for the directory's replica."""
        owners, presences, gone = self.handler.presences(everything)
        while True:
            generations = await self.bus.restore(presences, None if everything else gone)
            self.handler.restored(owners, generations)
            if everything:
                # after our restore put us among the instances: no announcement falls between
                self.handler.syncing()
                self.handler.synced(await self.bus.everyone())
            # Agents that registered meanwhile completed locally (the bus is not up until we
            # return): publish them too. No await between the last look and our return.
            owners, presences, gone = self.handler.presences(False)
            if not owners and not gone:
                return
            everything = False

    async def _run_writer(self) -> None:
        attempt = 0
        while not self._closing:
            if not self.up:
                try:
                    await self._connect()
                except DuplicateInstanceError as exc:
                    self.fatal = exc
                    self.last_error = str(exc)
                    log.error("cluster: %s", exc, extra={"instance": self.instance_id})
                    self._attempted.set()  # start() raises it
                    return
                except BusError as exc:
                    self.set_down(exc)
                    self._attempted.set()
                    await self._pause(backoff(attempt, base=RECONNECT_BASE, cap=RECONNECT_CAP,
                                              jitter=self._jitter))
                    attempt += 1
                    continue
                attempt = 0
                self.set_up()
                self._attempted.set()
                continue
            try:
                if self.clock.monotonic() >= self._next_heartbeat:
                    self._next_heartbeat = self.clock.monotonic() + self.settings.heartbeat_interval
                    await self._heartbeat()
                    continue
                if not self._outbox:
                    self._wake.clear()
                    await self._pause(self._next_heartbeat - self.clock.monotonic())
                    continue
                batch = self.take_queued(MAX_BATCH)
                try:
                    results = await self.bus.publish(batch)
                except BusError:
                    self.handler.dropped(batch, sent=True)
                    raise
                self.handler.results(batch, results)
            except BusError as exc:
                self.set_down(exc)
            except Exception:  # a bug must not stop cluster routing for good
                log.exception("cluster: writer error", extra={"instance": self.instance_id})
                await self._pause(0.1)

    async def _heartbeat(self) -> None:
        result: HeartbeatResult = await self.bus.heartbeat(
            self.handler.activity() if not self.withdrawn else [])
        if result.lost:
            self.handler.lost_everything()
        if (result.lost or result.restore) and not self.withdrawn:
            log.warning("cluster: re-publishing presence (%s)",
                        "Redis lost its data" if result.lost
                        else "our heartbeat had expired and another instance reaped us",
                        extra={"instance": self.instance_id})
            await self._restore()
        if result.live is not None:
            self.handler.alive(result.live)
        for instance in result.dead:
            # Its agents are gone from the cluster view; frames already queued to it are answered
            # at their deadline, not now: a stalled (not dead) instance may still deliver them
            # until then, and must never deliver a frame whose sender already got ERROR.
            log.warning("cluster: instance %s stopped heartbeating; its agents were removed",
                        instance, extra={"instance": self.instance_id})

    async def _pause(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when something is queued or we are closing."""
        if seconds <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run_reader(self) -> None:
        while not self._closing:
            if not self.up:
                await self._up_event.wait()
                continue
            try:
                messages = await self.bus.listen()
            except BusError as exc:
                self.set_down(exc)
                continue
            except Exception:
                log.exception("cluster: reader error", extra={"instance": self.instance_id})
                await asyncio.sleep(0.1)
                continue
            if messages:
                self.handler.received(messages, self.bus_time_ms())

    async def _run_sweeper(self) -> None:
        period = min(0.1, self.settings.delivery_timeout / 10)
        while not self._closing:
            await asyncio.sleep(period)
            self.handler.expire()
