"""Gateway metrics: own registry, every series present from the start, pre-bound children."""

from __future__ import annotations

from aiconexus_gateway.errors import Ending, ErrorCode
from aiconexus_gateway.messages import ROUTABLE_TYPES
from aiconexus_gateway.metrics import CONTENT_TYPE, GatewayMetrics


def _value(metrics: GatewayMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_series_exists_at_zero_from_the_start() -> None:
    metrics = GatewayMetrics(lambda: 0)
    for code in ErrorCode:
        assert _value(metrics, "aiconexus_errors_total", code=code.value) == 0
        assert _value(metrics, "aiconexus_registrations_total", result=code.value) == 0
    for type_ in ROUTABLE_TYPES:
        assert _value(metrics, "aiconexus_messages_routed_total", type=type_) == 0
    assert _value(metrics, "aiconexus_registrations_total", result="ok") == 0
    assert _value(metrics, "aiconexus_connections_total", result="accepted") == 0
    assert _value(metrics, "aiconexus_routing_latency_seconds_count") == 0


def test_connected_agents_gauge_reads_the_callback_at_scrape_time() -> None:
    agents = [1, 2]
    metrics = GatewayMetrics(lambda: len(agents))
    assert _value(metrics, "aiconexus_connected_agents") == 2
    agents.append(3)
    assert b"aiconexus_connected_agents 3.0" in metrics.exposition()


def test_error_routed_and_latency_helpers_count() -> None:
    metrics = GatewayMetrics(lambda: 0)
    metrics.error(ErrorCode.UNKNOWN_AGENT)
    metrics.routed_by_type["OFFER"].inc()
    metrics.observe_latency(0.0003)
    assert _value(metrics, "aiconexus_errors_total", code="UNKNOWN_AGENT") == 1
    assert _value(metrics, "aiconexus_messages_routed_total", type="OFFER") == 1
    assert _value(metrics, "aiconexus_routing_latency_seconds_bucket", le="0.0005") == 1
    assert _value(metrics, "aiconexus_routing_latency_seconds_bucket", le="0.00025") == 0


def test_two_gateways_in_one_process_do_not_share_metrics() -> None:
    first, second = GatewayMetrics(lambda: 0), GatewayMetrics(lambda: 0)
    first.error(ErrorCode.TIMEOUT)
    assert _value(second, "aiconexus_errors_total", code="TIMEOUT") == 0


def test_exposition_is_prometheus_text() -> None:
    text = GatewayMetrics(lambda: 0).exposition().decode()
    assert "# TYPE aiconexus_errors_total counter" in text
    assert "# TYPE aiconexus_routing_latency_seconds histogram" in text
    assert CONTENT_TYPE.startswith("text/plain")


def test_the_facade_methods_count_what_they_say() -> None:
    metrics = GatewayMetrics(lambda: 0, lambda: 7)
    metrics.accepted()
    metrics.refused("origin")
    metrics.refused_request()
    metrics.registration("ok")
    metrics.disconnected("session_replaced")
    metrics.rate_limited()
    metrics.undelivered("lost_at_close")
    metrics.routed("OFFER", 0.0003)
    metrics.routed("NOT_A_TYPE")  # an unknown type is not a new series
    assert _value(metrics, "aiconexus_open_connections") == 7
    assert _value(metrics, "aiconexus_connections_total", result="accepted") == 1
    assert _value(metrics, "aiconexus_connections_total", result="refused") == 1
    assert _value(metrics, "aiconexus_connections_refused_total", reason="origin") == 1
    assert _value(metrics, "aiconexus_registrations_total", result="ok") == 1
    assert _value(metrics, "aiconexus_disconnections_total", reason="session_replaced") == 1
    assert _value(metrics, "aiconexus_rate_limited_frames_total") == 1
    assert _value(metrics, "aiconexus_undelivered_messages_total", reason="lost_at_close") == 1
    assert _value(metrics, "aiconexus_messages_routed_total", type="OFFER") == 1
    assert _value(metrics, "aiconexus_routing_latency_seconds_count") == 1


def test_endings_caused_by_a_limit_are_counted_as_limit_disconnects() -> None:
    metrics = GatewayMetrics(lambda: 0)
    for ending in Ending:
        metrics.ended(ending)
    limited = {e.label for e in Ending if e.limit}
    assert limited == {"rate_limited", "slow_consumer", "invalid_utf8", "too_large"}
    for label in limited:
        assert _value(metrics, "aiconexus_limit_disconnects_total", reason=label) == 1
    assert _value(metrics, "aiconexus_limit_disconnects_total", reason="normal") is None


def test_cluster_series_live_in_the_same_registry() -> None:
    metrics = GatewayMetrics(lambda: 0)
    cluster = metrics.cluster(lambda: 3, ("timeout",))
    cluster.sent()
    cluster.acknowledged(0.002)
    cluster.outbound_failed("timeout")
    cluster.redis_up(True)
    assert _value(metrics, "aiconexus_cluster_pending") == 3
    assert _value(metrics, "aiconexus_cluster_outbound_total", result="sent") == 1
    assert _value(metrics, "aiconexus_cluster_outbound_total", result="delivered") == 1
    assert _value(metrics, "aiconexus_cluster_outbound_total", result="timeout") == 1
    assert _value(metrics, "aiconexus_cluster_inbound_total", result="timeout") == 0
    assert _value(metrics, "aiconexus_cluster_redis_up") == 1
