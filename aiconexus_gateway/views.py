"""What the operator's HTTP endpoints show: /health, /agents, /agents/<did>. No I/O.

`Views` answers from this instance's registry; in cluster mode backends/views.py's ClusterViews
answers cluster-wide, each agent with its `instance`. The handlers await the `*_report` methods
and never ask which one they have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import __version__
from .clock import Clock
from .messages import utc_timestamp
from .registry import Registry, agent_view

# /agents?offset= beyond this is answered as this (an empty page): no offset reaches a slice or
# a Redis index that cannot hold it.
MAX_OFFSET = 2**31 - 1


def bounded_offset(offset: int) -> int:
    return min(max(offset, 0), MAX_OFFSET)


class Views:
    """This instance's health and agents, as the HTTP API shows them."""

    def __init__(self, registry: Registry, clock: Clock, did: str,
                 draining: Callable[[], bool]) -> None:
        self.registry = registry
        self.clock = clock
        self.did = did
        self.started_at = clock.wall()
        self._draining = draining

    def health(self) -> dict[str, Any]:
        now = self.clock.wall()
        return {
            "status": "draining" if self._draining() else "healthy",
            "connected_agents": len(self.registry),
            "timestamp": utc_timestamp(now),
            "version": __version__,
            "gateway_did": self.did,
            "uptime_seconds": round(now - self.started_at, 3),
        }

    def agents_page(self, limit: int, offset: int) -> dict[str, Any]:
        offset = bounded_offset(offset)
        return {"agents": [agent_view(peer) for peer in self.registry.page(limit, offset)],
                "count": len(self.registry), "limit": limit, "offset": offset}

    def agent(self, did: str) -> dict[str, Any] | None:
        peer = self.registry.get(did)
        return agent_view(peer) if peer is not None else None

    def agents_among(self, dids: list[str], limit: int, offset: int) -> dict[str, Any]:
        """A page of the agents `dids` (the operators' filters chose them, in DID order)."""
        offset = bounded_offset(offset)
        views = [self.agent(did) for did in dids[offset:offset + limit]]
        return {"agents": [view for view in views if view is not None], "count": len(dids),
                "limit": limit, "offset": offset}

    # What the handlers await: the same here, cluster-wide in ClusterViews.

    async def health_report(self) -> dict[str, Any]:
        return self.health()

    async def agents_report(self, limit: int, offset: int) -> dict[str, Any]:
        return self.agents_page(limit, offset)

    async def agent_report(self, did: str) -> dict[str, Any] | None:
        return self.agent(did)

    async def agents_among_report(self, dids: list[str], limit: int,
                                  offset: int) -> dict[str, Any]:
        return self.agents_among(dids, limit, offset)
