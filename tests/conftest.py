"""Shared fixtures: a real gateway on an ephemeral port, SDK agents, raw WebSocket clients."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClientConnection, websocket_connect

from aiconexus_gateway import PROTOCOL
from aiconexus_gateway.client import DIDKey, GatewayClient
from aiconexus_gateway.config import Config
from aiconexus_gateway.server.app import Gateway
from tests.support.process import GatewayProcess

DATA = Path(__file__).parent / "data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gateway_config(**fields): Config fields for the `gateway` fixture")


def require_tool(available: bool, message: str) -> None:
    """Skip when a system tool is missing, except in CI, where `make test` installs it: fail there."""
    if available:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must have it (scripts/ensure-test-tools.sh)")
    pytest.skip(message)


def gateway_config(**overrides: Any) -> Config:
    """A test configuration: ephemeral port, short timeouts unless a test asks otherwise."""
    return Config(port=0, drain_timeout=2.0).replace(**overrides)


@pytest.fixture
def gateway(io_loop: IOLoop, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """A real gateway listening on 127.0.0.1:<ephemeral>; stopped after the test."""
    marker = request.node.get_closest_marker("gateway_config")
    config = gateway_config(**(marker.kwargs if marker else {}))
    gw: Gateway = io_loop.run_sync(lambda: Gateway.start(config))
    yield gw
    io_loop.run_sync(lambda: gw.stop(timeout=2.0))



@pytest.fixture
def node_gateway() -> Iterator[GatewayProcess]:
    """A real gateway process for Node.js agents (node and the npm packages checked first)."""
    from tests.js.node_tools import node, node_modules  # (node_tools imports this module)

    node()
    node_modules()
    process = GatewayProcess()
    yield process
    process.stop(signal.SIGKILL)

async def connect_agent(gw: Gateway, key: DIDKey | None = None, **kwargs: Any) -> GatewayClient:
    """An SDK agent registered with `gw`."""
    client = GatewayClient(gw.ws_url, key or DIDKey.generate(), **kwargs)
    await client.connect()
    return client


async def raw_connect(gw: Gateway, subprotocols: list[str] | None = None
                      ) -> WebSocketClientConnection:
    """A plain WebSocket connection (no SDK), for speaking the protocol by hand."""
    return await websocket_connect(gw.ws_url, subprotocols=subprotocols or [PROTOCOL])


async def read_json(ws: WebSocketClientConnection, timeout: float = 5.0) -> dict[str, Any] | None:
    """The next frame as JSON, or None when the connection closed."""
    import asyncio

    text = await asyncio.wait_for(ws.read_message(), timeout)
    return None if text is None else json.loads(text)
