"""Prometheus metrics of one gateway, in a registry of its own (several gateways per process in tests).

Every series of the gateway is defined here (connections, limits, routing, cluster), and the rest
of the code counts through methods named for the event (`refused("origin")`, `ended(ending)`), so
neither the core's other modules nor the I/O layer touch a Prometheus object.

Label children are bound once. The two series every routed message touches (messages routed and
routing latency) are plain integers bumped in place and turned into Prometheus families only when
/metrics is scraped: a prometheus-client increment takes a lock and a histogram observation walks
its buckets in Python, which together cost more than the rest of the gateway's routing code.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .errors import Ending, ErrorCode
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


REFUSAL_REASONS = ("max_connections", "max_connections_per_ip", "connection_rate", "origin",
                   "draining", "address_work")
UNDELIVERED_REASONS = ("unknown_agent", "not_written", "lost_at_close")


class GatewayMetrics:
    """The gateway's counters, gauges and histograms, counted through methods."""

    def __init__(self, connected_agents: Callable[[], float],
                 open_connections: Callable[[], float] = lambda: 0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        gauge = Gauge("aiconexus_connected_agents", "Registered agents connected to this instance",
                      registry=r)
        gauge.set_function(connected_agents)
        gauge = Gauge("aiconexus_open_connections",
                      "Open WebSocket connections, registered or not (what MAX_CONNECTIONS counts)",
                      registry=r)
        gauge.set_function(open_connections)
        connections = Counter("aiconexus_connections_total", "WebSocket connections by result",
                              ["result"], registry=r)
        self._accepted = connections.labels("accepted")
        self._refused_connection = connections.labels("refused")
        self._registrations = Counter("aiconexus_registrations_total",
                                      "REGISTER attempts by result (ok or the error code)",
                                      ["result"], registry=r)
        self._disconnections = Counter("aiconexus_disconnections_total",
                                       "Closed agent connections by reason", ["reason"], registry=r)
        errors = Counter("aiconexus_errors_total", "ERROR messages sent, by code", ["code"],
                         registry=r)
        refused = Counter("aiconexus_connections_refused_total",
                          "New connections refused at the handshake, by reason", ["reason"],
                          registry=r)
        self._rate_limited = Counter("aiconexus_rate_limited_frames_total",
                                     "Frames refused by the per-connection rate limit (RATE_LIMIT)",
                                     registry=r)
        limit_closes = Counter(
            "aiconexus_limit_disconnects_total",
            "Connections closed by a limit: rate_limited (4429), slow_consumer (4008), "
            "invalid_utf8 (1007), too_large (1009)", ["reason"], registry=r)
        undelivered = Counter(
            "aiconexus_undelivered_messages_total",
            "Routable messages not written to their recipient (each sender still connected gets "
            "an ERROR), by reason", ["reason"], registry=r)
        self.latency = LatencyHistogram(LATENCY_BUCKETS)
        self.routed_by_type = {t: Tally() for t in ROUTABLE_TYPES}
        r.register(_HotPathCollector(self.routed_by_type, self.latency))
        self._errors_by_code = {c: errors.labels(c.value) for c in ErrorCode}
        self._refused_by = {reason: refused.labels(reason) for reason in REFUSAL_REASONS}
        self._undelivered_by = {reason: undelivered.labels(reason) for reason in UNDELIVERED_REASONS}
        self._limit_closes = {e: limit_closes.labels(e.label) for e in Ending if e.limit}
        self.observe_latency = self.latency.observe
        # every series exists from the start, at zero; bound once (labels() costs ~2 us a call)
        self._registrations_by = {result: self._registrations.labels(result)
                                  for result in ("ok", *(code.value for code in ErrorCode))}
        self._disconnections_by: dict[str, Any] = {}  # bounded: Ending and peer close labels

    def exposition(self) -> bytes:
        """The /metrics body (CONTENT_TYPE)."""
        return bytes(generate_latest(self.registry))

    # -- connections ----------------------------------------------------------------------------

    def accepted(self) -> None:
        self._accepted.inc()

    def refused(self, reason: str) -> None:
        """A new connection refused at the handshake (`reason` is one of REFUSAL_REASONS)."""
        self._refused_by[reason].inc()

    def refused_request(self) -> None:
        """A /ws request answered with an HTTP error instead of an upgrade."""
        self._refused_connection.inc()

    def registration(self, result: str) -> None:
        """A REGISTER attempt: "ok" or the ERROR code that refused it."""
        child = self._registrations_by.get(result)
        if child is None:
            child = self._registrations_by[result] = self._registrations.labels(result)
        child.inc()

    def ended(self, ending: Ending) -> None:
        """The gateway ended a connection; endings caused by a limit are counted as such."""
        counter = self._limit_closes.get(ending)
        if counter is not None:
            counter.inc()

    def disconnected(self, label: str) -> None:
        """A registered agent's connection is gone (the ending's label, or the peer's close)."""
        child = self._disconnections_by.get(label)
        if child is None:
            child = self._disconnections_by[label] = self._disconnections.labels(label)
        child.inc()

    # -- frames ---------------------------------------------------------------------------------

    def error(self, code: ErrorCode) -> None:
        self._errors_by_code[code].inc()

    def rate_limited(self) -> None:
        self._rate_limited.inc()

    def undelivered(self, reason: str) -> None:
        """A routable frame not written to its recipient (one of UNDELIVERED_REASONS)."""
        self._undelivered_by[reason].inc()

    def routed(self, type: str, seconds: float | None = None) -> None:
        """A frame of `type` written to its recipient, `seconds` after it arrived (if known)."""
        tally = self.routed_by_type.get(type)
        if tally is not None:
            tally.value += 1
        if seconds is not None:
            self.latency.observe(seconds)

    def cluster(self, pending: Callable[[], float], reasons: tuple[str, ...] = ()) -> ClusterMetrics:
        """The cluster series, in this gateway's registry (cluster mode only)."""
        return ClusterMetrics(self.registry, pending, reasons)

    def directory(self, listed: Callable[[], float],
                  watched: Callable[[], float]) -> DirectoryMetrics:
        """The discovery and presence series (directory.py), in this gateway's registry."""
        return DirectoryMetrics(self.registry, listed, watched)

    def mailbox(self, held: Callable[[], tuple[int, int, int]],
                reasons: tuple[str, ...] = ()) -> MailboxMetrics:
        """The mailbox series (mailbox.py), in this gateway's registry."""
        return MailboxMetrics(self.registry, held, reasons)


class DirectoryMetrics:
    """Discovery and presence (directory.py): requests by type, PRESENCE events sent, and how
    many agents are listed and DIDs watched on this instance."""

    def __init__(self, registry: CollectorRegistry, listed: Callable[[], float],
                 watched: Callable[[], float]) -> None:
        requests = Counter("aiconexus_directory_requests_total",
                           "DISCOVER, WATCH and UNWATCH requests answered (refusals included)",
                           ["type"], registry=registry)
        self._requests = {kind: requests.labels(kind) for kind in ("DISCOVER", "WATCH", "UNWATCH")}
        self._events = Counter("aiconexus_presence_events_total",
                               "PRESENCE messages sent to watchers", registry=registry)
        gauge = Gauge("aiconexus_discovery_listed_agents",
                      "Agents DISCOVER can return (in cluster mode: of every instance)",
                      registry=registry)
        gauge.set_function(listed)
        gauge = Gauge("aiconexus_presence_watched_dids",
                      "DIDs watched by agents of this instance", registry=registry)
        gauge.set_function(watched)

    def request(self, kind: str) -> None:
        self._requests[kind].inc()

    def event(self) -> None:
        self._events.inc()


class ClusterMetrics:
    """Cluster mode's series: frames to and from other instances, Redis state, delivery time."""

    DELIVERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0)

    def __init__(self, registry: CollectorRegistry, pending: Callable[[], float],
                 reasons: tuple[str, ...] = ()) -> None:
        r = registry
        outbound = Counter("aiconexus_cluster_outbound_total",
                           "Frames routed to other instances, by outcome", ["result"], registry=r)
        inbound = Counter("aiconexus_cluster_inbound_total",
                          "Frames received from other instances, by outcome", ["result"], registry=r)
        self._redis_up = Gauge("aiconexus_cluster_redis_up", "1 while Redis is reachable",
                               registry=r)
        gauge = Gauge("aiconexus_cluster_pending", "Frames waiting for a delivery answer",
                      registry=r)
        gauge.set_function(pending)
        self._reconnects = Counter("aiconexus_cluster_reconnects_total",
                                   "Successful (re)connections to Redis", registry=r)
        self._delivery = Histogram("aiconexus_cluster_delivery_seconds",
                                   "From a frame's hand-off to the cluster to its Delivered answer",
                                   buckets=self.DELIVERY_BUCKETS, registry=r)
        self._outbound = outbound
        self._inbound = inbound
        self._sent = outbound.labels("sent")
        self._acked = outbound.labels("delivered")
        self._inbound_delivered = inbound.labels("delivered")
        for reason in reasons:  # every failure series exists from the start, at zero
            outbound.labels(reason)
            inbound.labels(reason)

    def sent(self) -> None:
        self._sent.inc()

    def acknowledged(self, seconds: float) -> None:
        self._acked.inc()
        self._delivery.observe(seconds)

    def outbound_failed(self, reason: str) -> None:
        self._outbound.labels(reason).inc()

    def inbound_delivered(self) -> None:
        self._inbound_delivered.inc()

    def inbound_failed(self, reason: str) -> None:
        self._inbound.labels(reason).inc()

    def redis_up(self, up: bool) -> None:
        self._redis_up.set(1 if up else 0)

    def reconnected(self) -> None:
        self._reconnects.inc()


class MailboxMetrics:
    """The mailbox's series: letters by what became of them, refusals by bound, what is held."""

    def __init__(self, registry: CollectorRegistry, held: Callable[[], tuple[int, int, int]],
                 reasons: tuple[str, ...] = ()) -> None:
        r = registry
        self.held = held  # (letters, bytes, receipts) now; cluster mode points it at Redis' totals
        letters = Counter("aiconexus_mailbox_messages_total",
                          "Messages with a ttl, by event: stored, queued (stored while the "
                          "recipient was offline), written (to the recipient, redeliveries "
                          "included), delivered (acknowledged), expired", ["event"], registry=r)
        self._refused = Counter("aiconexus_mailbox_refused_total",
                                "Messages with a ttl not stored (MAILBOX_FULL, MAILBOX_REFUSED), "
                                "by reason", ["reason"], registry=r)
        for reason in reasons:
            self._refused.labels(reason)
        for name, index, text in (
                ("aiconexus_mailbox_held_messages", 0, "Messages waiting in mailboxes"),
                ("aiconexus_mailbox_held_bytes", 1, "Bytes of the messages waiting in mailboxes"),
                ("aiconexus_mailbox_held_receipts", 2, "Receipts waiting for their senders")):
            gauge = Gauge(name, text, registry=r)
            gauge.set_function(lambda index=index: self.held()[index])  # type: ignore[misc]
        self.stored = letters.labels("stored").inc
        self.queued = letters.labels("queued").inc
        self.written = letters.labels("written").inc
        self.delivered = letters.labels("delivered").inc
        self.expired = letters.labels("expired").inc

    def refused(self, reason: str) -> None:
        self._refused.labels(reason).inc()
