"""Gateway metrics: own registry, every series present from the start, pre-bound children."""

from __future__ import annotations

from aiconexus_gateway.errors import ErrorCode
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
