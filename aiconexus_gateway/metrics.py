"""Prometheus metrics of one gateway, in a registry of its own (several gateways per process in tests).

Label children are bound once. The two series every routed message touches (messages routed and
routing latency) are plain integers bumped in place and turned into Prometheus families only when
/metrics is scraped: a prometheus-client increment takes a lock and a histogram observation walks
its buckets in Python, which together cost more than the rest of the gateway's routing code.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .errors import ErrorCode
from .messages import ROUTABLE_TYPES

CONTENT_TYPE = CONTENT_TYPE_LATEST
disable_created_metrics()  # the *_created series double the exposition and nobody graphs them
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 1.0)


class Tally:
    """A counter for the per-message path: one integer add, exported at scrape time."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        self.value += amount


class LatencyHistogram:
    """Bucket counts for the per-message path: one bisect and one add, exported at scrape time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # le: bound >= value
        self.total += seconds


class _HotPathCollector(Collector):
    """Presents the tallies as the Prometheus counter and histogram they stand for."""

    def __init__(self, routed: Mapping[str, Tally], latency: LatencyHistogram) -> None:
        self.routed = routed
        self.latency = latency

    def collect(self) -> Iterator[Metric]:
        routed = CounterMetricFamily("aiconexus_messages_routed",
                                     "Messages forwarded to an agent, by type", labels=["type"])
        for type_, tally in sorted(self.routed.items()):
            routed.add_metric([type_], tally.value)
        yield routed
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip(self.latency.bounds, self.latency.counts, strict=False):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        buckets.append(("+Inf", cumulative + self.latency.counts[-1]))
        yield HistogramMetricFamily(
            "aiconexus_routing_latency_seconds",
            "From a frame's arrival to its hand-off to the recipient's socket",
            buckets=buckets, sum_value=self.latency.total)


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
        self.errors = Counter("aiconexus_errors_total", "ERROR messages sent, by code", ["code"],
                              registry=r)
        self.latency = LatencyHistogram(LATENCY_BUCKETS)
        self.routed_by_type = {t: Tally() for t in ROUTABLE_TYPES}
        r.register(_HotPathCollector(self.routed_by_type, self.latency))
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
