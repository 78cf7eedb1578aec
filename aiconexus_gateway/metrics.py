"""Prometheus metrics of one gateway, in a registry of its own (several gateways per process in tests).

Label children are bound once, so the per-message cost is a counter increment.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .errors import ErrorCode
from .messages import ROUTABLE_TYPES

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # the *_created series double the exposition and nobody graphs them
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)


class GatewayMetrics:
    """The gateway's counters, gauges and histograms."""

    def __init__(self, connected_agents: Callable[[], float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connected_agents = Gauge("aiconexus_connected_agents",
                                      "Registered agents connected to this instance", registry=r)
        self.connected_agents.set_function(connected_agents)
        self.connections = Counter("aiconexus_connections_total",
                                   "WebSocket connections by result", ["result"], registry=r)
        self.registrations = Counter("aiconexus_registrations_total",
                                     "REGISTER attempts by result (ok or the error code)",
                                     ["result"], registry=r)
        self.disconnections = Counter("aiconexus_disconnections_total",
                                      "Closed agent connections by reason", ["reason"], registry=r)
        self.routed = Counter("aiconexus_messages_routed_total",
                              "Messages forwarded to an agent, by type", ["type"], registry=r)
        self.errors = Counter("aiconexus_errors_total", "ERROR messages sent, by code", ["code"],
                              registry=r)
        self.latency = Histogram("aiconexus_routing_latency_seconds",
                                 "From a frame's arrival to its hand-off to the recipient's socket",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.routed_by_type = {t: self.routed.labels(t) for t in ROUTABLE_TYPES}
        self.errors_by_code = {c: self.errors.labels(c.value) for c in ErrorCode}
        self.observe_latency = self.latency.observe
        for code in ErrorCode:  # every series exists from the start, at zero
            self.registrations.labels(code.value)
        self.registrations.labels("ok")
        self.connections.labels("accepted")

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))

    def error(self, code: ErrorCode) -> None:
        self.errors_by_code[code].inc()
