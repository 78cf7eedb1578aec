"""The cluster fixtures (a real redis-server, gateway processes) for test_cluster.py."""

from tests.cluster.conftest import redis_server, start_gateways

__all__ = ["redis_server", "start_gateways"]
