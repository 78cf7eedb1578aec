"""Cluster mode: several instances share their agents through Redis (REDIS_URL).

Without REDIS_URL nothing here is imported: the hub's Router and Views are the whole gateway.
With it, `start_cluster` gives the hub a ClusterRouter and ClusterViews. The modules:

    wire.py      the typed messages between instances and their codec
    presence.py  an agent as the cluster sees it (Presence, Activity)
    settings.py  ClusterSettings and the Redis key names
    state.py     pure cluster state: pending deliveries, generations, takeovers
    bus.py       the Bus protocol and the ops the writer hands it
    node.py      this instance's writer, reader and sweeper tasks
    router.py    ClusterRouter: local delivery, else publish (the Router strategy)
    views.py     ClusterViews: /health and /agents across the cluster
    redis_backend.py  RedisBus: the Bus with Redis commands and Lua scripts
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Config
    from ..hub import Hub
    from .router import ClusterRouter


async def start_cluster(hub: Hub, config: Config, *, connect_wait: float = 2.0) -> ClusterRouter:
    """Join the cluster named by config.redis_url: the hub routes and reports cluster-wide from
    here on. Imports redis only now. DuplicateInstanceError (a ValueError) when another live
    instance holds INSTANCE_ID."""
    from .redis_backend import RedisBus, settings_from_config
    from .router import ClusterRouter
    from .views import ClusterViews

    settings = settings_from_config(config)
    bus = RedisBus(settings, hub.clock)
    router = ClusterRouter(hub.registry, hub.actions, hub.metrics, hub.clock, settings, bus)
    views = ClusterViews(hub.registry, hub.clock, hub.did, lambda: hub.draining, router.node, bus,
                         redis={"url": bus.url, "prefix": settings.prefix})
    await router.node.start(connect_wait=connect_wait)
    local = hub.router.mailroom
    if local is not None:  # the mailbox moves to Redis (mailroom.py), with the same metrics
        from .mailroom import ClusterMailroom

        mailroom = ClusterMailroom(hub.settings.mailbox, settings, hub.registry, hub.actions,
                                   local.metrics, hub.clock, router.node.bus_time_ms,
                                   lambda: router.node.up)
        await mailroom.start()
        router.mailroom = mailroom
    hub.use(router, views)
    return router
