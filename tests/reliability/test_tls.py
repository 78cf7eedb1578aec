"""TLS straight from the gateway (wss://, https://) and mutual TLS, with certificates made here."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, GatewayConnectionError
from aiconexus_gateway.server.app import Gateway
from tests.conftest import gateway_config, require_tool
from tests.reliability.support import client_context, fetch, issue, make_ca
from tests.support.process import COMMAND, GatewayProcess

Pair = tuple[Path, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    """A CA with a server and a client certificate, and a rogue CA with its own client."""
    require_tool(shutil.which("openssl") is not None,
                 "the openssl command is needed to make test certificates")
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca(directory, "test-ca")
    rogue = make_ca(directory, "rogue-ca")
    return {
        "ca": ca,
        "server": issue(directory, "gateway", ca, server=True),
        "client": issue(directory, "agent", ca, server=False),
        "rogue_client": issue(directory, "intruder", rogue, server=False),
    }


@asynccontextmanager
async def tls_gateway(pki: dict[str, Pair], *, mutual: bool) -> AsyncIterator[Gateway]:
    config = gateway_config(tls_cert=str(pki["server"][0]), tls_key=str(pki["server"][1]),
                            tls_client_ca=str(pki["ca"][0]) if mutual else None)
    gateway = await Gateway.start(config)
    try:
        yield gateway
    finally:
        await gateway.stop(timeout=2.0)


@pytest.mark.gen_test(timeout=20)
async def test_an_sdk_client_talks_over_wss_to_a_gateway_serving_tls(pki: dict[str, Pair]) -> None:
    async with tls_gateway(pki, mutual=False) as gateway:
        assert gateway.ws_url.startswith("wss://") and gateway.http_url.startswith("https://")
        context = client_context(pki["ca"][0])
        alice = GatewayClient(gateway.ws_url, DIDKey.generate(), ssl_options=context)
        bob = GatewayClient(gateway.ws_url, DIDKey.generate(), ssl_options=context)
        await alice.connect()
        await bob.connect()
        message_id = await alice.send(bob.did, "OFFER", {"sdp": "over TLS"})
        received = await bob.receive(timeout=5)
        assert received.id == message_id and received.payload == {"sdp": "over TLS"}
        status, _, body = await fetch(f"{gateway.http_url}/health", ssl_options=context)
        assert status == 200 and json.loads(body)["status"] == "healthy"
        await alice.close()
        await bob.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_client_that_does_not_trust_the_certificate_cannot_connect(
        pki: dict[str, Pair]) -> None:
    async with tls_gateway(pki, mutual=False) as gateway:
        stranger = GatewayClient(gateway.ws_url, DIDKey.generate(),
                                 ssl_options=client_context(pki["rogue_client"][0]))
        with pytest.raises(GatewayConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.connect()


@pytest.mark.gen_test(timeout=20)
async def test_with_a_client_ca_only_clients_with_a_certificate_it_signed_get_in(
        pki: dict[str, Pair]) -> None:
    async with tls_gateway(pki, mutual=True) as gateway:
        trusted = GatewayClient(gateway.ws_url, DIDKey.generate(),
                                ssl_options=client_context(pki["ca"][0], pki["client"]))
        await trusted.connect()
        assert trusted.connected
        await trusted.close()
        for certificate in (None, pki["rogue_client"]):
            refused = GatewayClient(gateway.ws_url, DIDKey.generate(), connect_timeout=5,
                                    ssl_options=client_context(pki["ca"][0], certificate))
            with pytest.raises(GatewayConnectionError):
                await refused.connect()
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            await fetch(f"{gateway.http_url}/health", ssl_options=client_context(pki["ca"][0]))
        assert gateway.hub.connections.admission.total == 0  # nothing got as far as the WebSocket


def test_the_command_announces_wss_and_https_with_tls_flags(pki: dict[str, Pair]) -> None:
    process = GatewayProcess("--tls-cert", str(pki["server"][0]), "--tls-key", str(pki["server"][1]))
    try:
        assert process.ws_url.startswith("wss://127.0.0.1:")
        assert process.http_url.startswith("https://127.0.0.1:")
    finally:
        assert process.stop() == 0


def test_an_unreadable_certificate_stops_startup_with_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    result = subprocess.run([*COMMAND, "--port", "0", "--tls-cert", str(missing), "--tls-key",
                             str(missing)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    assert "cannot load the TLS certificate" in result.stderr and str(missing) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
