"""TLS on one side only, or a certificate the client does not trust: one sentence that says so."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tornado.ioloop import IOLoop

from aiconexus_gateway.client import DIDKey, GatewayClient, GatewayConnectionError
from aiconexus_gateway.server.app import Gateway
from tests.conftest import gateway_config, require_tool
from tests.reliability.support import issue, make_ca


@pytest.fixture
def tls_gateway(io_loop: IOLoop, tmp_path: Path) -> Iterator[Gateway]:
    """A real gateway serving wss:// with a certificate from a private CA."""
    require_tool(shutil.which("openssl") is not None,
                 "the openssl command is needed to make test certificates")
    cert, key = issue(tmp_path, "gateway", make_ca(tmp_path, "private-ca"), server=True)
    config = gateway_config(tls_cert=str(cert), tls_key=str(key))
    gateway: Gateway = io_loop.run_sync(lambda: Gateway.start(config))
    yield gateway
    io_loop.run_sync(lambda: gateway.stop(timeout=2.0))


@pytest.mark.gen_test(timeout=20)
async def test_ws_against_a_tls_gateway_says_to_use_wss(tls_gateway: Gateway) -> None:
    plain = tls_gateway.ws_url.replace("wss://", "ws://", 1)
    with pytest.raises(GatewayConnectionError, match="use wss:// instead of ws://"):
        await GatewayClient(plain, DIDKey.generate(), connect_timeout=2).connect()


@pytest.mark.gen_test(timeout=20)
async def test_an_untrusted_certificate_names_the_fix(tls_gateway: Gateway) -> None:
    with pytest.raises(GatewayConnectionError) as refused:
        await GatewayClient(tls_gateway.ws_url, DIDKey.generate(), connect_timeout=2).connect()
    text = str(refused.value)
    assert "CERTIFICATE_VERIFY_FAILED" in text and "ssl_options" in text
    assert "plain WebSocket" not in text  # the gateway does speak TLS
