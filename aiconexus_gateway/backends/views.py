"""The cluster-wide views: /health, /agents and /agents/<did> across every instance.

Read from the bus (bounded by VIEW_TIMEOUT); this instance's own agents are shown with their live
counters, the others' with the counters their instance last published. When the bus cannot
answer, the views fall back to this instance's agents and say so (`scope: instance`, health
`degraded`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..registry import Registry, agent_view
from ..views import Views, bounded_offset
from .bus import Bus, BusError
from .node import ClusterNode
from .presence import presence_view

VIEW_TIMEOUT = 2.0  # seconds a view waits for the bus before answering from local state


class ClusterViews(Views):
    """Views of the whole cluster, falling back to this instance's."""

    def __init__(self, registry: Registry, clock: Clock, did: str, draining: Callable[[], bool],
                 node: ClusterNode, bus: Bus, *, redis: dict[str, Any]) -> None:
        super().__init__(registry, clock, did, draining)
        self.node = node
        self.bus = bus
        self.instance_id = node.instance_id
        self.redis = redis  # what /health shows of the bus besides its state (url, prefix)

    def local(self, view: dict[str, Any]) -> dict[str, Any]:
        return {**view, "instance": self.instance_id}

    async def health_report(self) -> dict[str, Any]:
        view = self.health()
        view["instance_id"] = self.instance_id
        view["instance_agents"] = len(self.registry)
        redis = {**self.node.state(), **self.redis}
        if self.node.up:
            try:
                agents, instances = await asyncio.wait_for(self.bus.totals(), VIEW_TIMEOUT)
                view["connected_agents"] = agents
                view["instances"] = instances
            except (BusError, asyncio.TimeoutError) as exc:
                redis.update(state="disconnected", error=str(exc) or type(exc).__name__)
        if redis["state"] != "connected" and view.get("status") == "healthy":
            view["status"] = "degraded"
        view["redis"] = redis
        return view

    async def agents_report(self, limit: int, offset: int) -> dict[str, Any]:
        offset = bounded_offset(offset)
        if self.node.up:
            try:
                count, agents = await asyncio.wait_for(self.bus.page(limit, offset), VIEW_TIMEOUT)
                return {"agents": [self._view(p, a) for p, a in agents], "count": count,
                        "limit": limit, "offset": offset, "scope": "cluster"}
            except (BusError, asyncio.TimeoutError):
                pass
        page = self.agents_page(limit, offset)
        page["agents"] = [self.local(view) for view in page["agents"]]
        page["scope"] = "instance"
        return page

    async def agent_report(self, did: str) -> dict[str, Any] | None:
        if self.node.up:
            try:
                found = await asyncio.wait_for(self.bus.lookup([did]), VIEW_TIMEOUT)
                return self._view(*found[0]) if found else None
            except (BusError, asyncio.TimeoutError):
                pass
        view = self.agent(did)
        return self.local(view) if view is not None else None

    async def agents_among_report(self, dids: list[str], limit: int,
                                  offset: int) -> dict[str, Any]:
        offset = bounded_offset(offset)
        chosen = dids[offset:offset + limit]
        if self.node.up:
            try:
                found = await asyncio.wait_for(self.bus.lookup(chosen), VIEW_TIMEOUT)
                return {"agents": [self._view(p, a) for p, a in found], "count": len(dids),
                        "limit": limit, "offset": offset, "scope": "cluster"}
            except (BusError, asyncio.TimeoutError):
                pass
        page = self.agents_among([did for did in dids if did in self.registry], limit, offset)
        page["agents"] = [self.local(view) for view in page["agents"]]
        page["scope"] = "instance"
        return page

    def _view(self, presence: Any, activity: Any) -> dict[str, Any]:
        peer = self.registry.get(presence.did)
        if peer is not None and presence.instance == self.instance_id:
            return self.local(agent_view(peer))  # live counters for our own agents
        return presence_view(presence, activity)
