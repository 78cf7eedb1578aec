"""Memory comes back after connection churn (issue 11): a closed connection leaves no reference
cycle, so its objects are freed at once by reference counting, whatever the garbage collector's
thresholds (server/app.py tune_gc makes full collections rare for speed)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.server.websocket import AgentConnection
from tests.reliability.support import raw_registered
from tests.support.waiting import wait_until

CHURN = 40


@pytest.fixture
def no_automatic_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def live_handlers() -> int:
    return sum(1 for obj in gc.get_objects() if isinstance(obj, AgentConnection))


@pytest.mark.gen_test(timeout=60)
@pytest.mark.gateway_config(connection_rate=0)
async def test_closed_connections_are_freed_without_a_garbage_collection(
        gateway: Gateway, no_automatic_collection: None) -> None:
    for _ in range(CHURN):
        ws, _, _ = await raw_registered(gateway.ws_url)
        await ws.close()
    await wait_until(lambda: not gateway.hub.peers, 10, "every churned connection closed")
    await wait_until(lambda: live_handlers() == 0, 5,
                     lambda: f"{live_handlers()} of {CHURN} closed connections still in memory "
                             "(a reference cycle waits for a full collection)")
