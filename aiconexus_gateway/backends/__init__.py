"""Where frames go when their recipient is not connected to this instance.

Without REDIS_URL there is no backend: the hub's in-memory registry is the whole gateway and
nothing here is imported. With it, `start_cluster` plugs a Redis-backed `ClusterNode` into the hub
(cluster.py is the pure core, base.py the bus-independent node, redis_backend.py the Redis I/O).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..hub import Hub
    from .base import ClusterNode


async def start_cluster(hub: Hub, config: Config, *, connect_wait: float = 2.0) -> ClusterNode:
    """Connect `hub` to the cluster named by config.redis_url; imports redis only now."""
    from .redis_backend import RedisCluster, settings_from_config

    node = RedisCluster(hub, settings_from_config(config))
    await node.start(connect_wait=connect_wait)
    hub.cluster = node
    return node
