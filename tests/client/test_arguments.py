"""What GatewayClient is given: understood at once, or refused at once with what is expected."""

from __future__ import annotations

from typing import Any

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, GatewayConnectionError
from aiconexus_gateway.client.url import check_did, gateway_url_for
from aiconexus_gateway.did import did_from_public_key
from aiconexus_gateway.server.app import Gateway

SMALL_ORDER_DID = did_from_public_key(bytes([1]) + bytes(31))  # the identity point: not a key


@pytest.mark.parametrize(("given", "url"), [
    ("ws://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws"),
    ("wss://gateway.example.com/ws", "wss://gateway.example.com/ws"),
    ("http://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws"),
    ("https://gateway.example.com:8443/ws", "wss://gateway.example.com:8443/ws"),
    ("HTTP://127.0.0.1:8000/ws", "ws://127.0.0.1:8000/ws"),
    ("127.0.0.1:8000", "ws://127.0.0.1:8000/ws"),
    ("localhost:8000/ws", "ws://localhost:8000/ws"),
    ("ws://127.0.0.1:8000", "ws://127.0.0.1:8000/ws"),
    ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/ws"),
    ("  ws://[::1]:8000/ws  ", "ws://[::1]:8000/ws"),
    ("wss://proxy.example.com/gateway/ws?tenant=a", "wss://proxy.example.com/gateway/ws?tenant=a"),
])
def test_gateway_urls_that_can_be_understood_are(given: str, url: str) -> None:
    assert gateway_url_for(given) == url


@pytest.mark.parametrize(("given", "says"), [
    ("", "empty"),
    ("ftp://127.0.0.1:8000/ws", "unsupported scheme 'ftp'"),
    ("ws://:8000/ws", "no host"),
    ("http://", "no host"),
    ("ws://127.0.0.1:99999/ws", "port"),
    ("ws://127.0.0.1:port/ws", "port"),
    ("ws://127.0.0.1:8000/ws#top", "fragment"),
    ("http://127.0.0.1:8000/health", "HTTP endpoint /health"),
    ("127.0.0.1:8000/agents", "HTTP endpoint /agents"),
])
def test_gateway_urls_that_cannot_be_understood_are_refused_saying_what_is_expected(
        given: str, says: str) -> None:
    with pytest.raises(ValueError, match="expected ws://HOST:PORT/ws") as refused:
        GatewayClient(given, DIDKey.generate())
    assert says in str(refused.value)


def test_a_gateway_url_that_is_not_a_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="gateway_url must be a string such as ws://"):
        GatewayClient(DIDKey.generate())  # type: ignore[arg-type]


def test_a_did_string_where_the_key_belongs_is_refused_at_once_with_the_fix() -> None:
    """Regression: the original guide's `GatewayClient(gateway_url=..., did_key=did_key)`
    with a DID string failed later, in connect(), with AttributeError."""
    did = DIDKey.generate().did
    with pytest.raises(TypeError) as refused:
        GatewayClient(gateway_url="ws://127.0.0.1:8000/ws", did_key=did)  # type: ignore[arg-type]
    text = str(refused.value)
    assert "not a DID string" in text and "DIDKey.generate()" in text and "DIDKey.load(path)" in text


@pytest.mark.parametrize("key", [b"\x00" * 32, 42, {"seed": "00"}])
def test_other_things_where_the_key_belongs_are_refused(key: Any) -> None:
    with pytest.raises(TypeError, match="did_key must be a DIDKey"):
        GatewayClient("ws://127.0.0.1:8000/ws", key)


def test_the_keyword_names_of_the_guide_work() -> None:
    key = DIDKey.generate()
    client = GatewayClient(gateway_url="http://127.0.0.1:8000/ws", did_key=key)
    assert (client.gateway_url, client.did) == ("ws://127.0.0.1:8000/ws", key.did)


@pytest.mark.parametrize("did", ["did:web:example.com", "did:key:zNotAKey", SMALL_ORDER_DID, 7])
def test_a_pinned_gateway_did_that_is_not_a_valid_did_key_is_refused(did: Any) -> None:
    with pytest.raises(ValueError, match="expected_gateway_did is not a valid did:key"):
        GatewayClient("ws://127.0.0.1:8000/ws", DIDKey.generate(), expected_gateway_did=did)


def test_a_did_whose_bytes_are_not_an_ed25519_point_is_refused_where_the_sdk_reads_one() -> None:
    with pytest.raises(ValueError, match="not a valid Ed25519 public key"):
        check_did(SMALL_ORDER_DID, "the recipient")


@pytest.mark.parametrize("option", [{"reconnect": "yes"}, {"metadata": ["name"]},
                                    {"queue_size": 0}])
def test_nonsense_options_are_refused_at_once(option: dict[str, Any]) -> None:
    with pytest.raises((TypeError, ValueError)):
        GatewayClient("ws://127.0.0.1:8000/ws", DIDKey.generate(), **option)


# -- against a real gateway -----------------------------------------------------------------------


def _host_port(gateway: Gateway) -> str:
    return gateway.ws_url.split("://", 1)[1].rsplit("/", 1)[0]


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("form", ["http://{}/ws", "{}", "ws://{}"])
async def test_understood_urls_reach_a_real_gateway(gateway: Gateway, form: str) -> None:
    """Regression: http://... and HOST:PORT raised KeyError inside Tornado."""
    client = GatewayClient(form.format(_host_port(gateway)), DIDKey.generate())
    await client.connect()
    assert client.connected
    await client.close()


@pytest.mark.gen_test(timeout=20)
async def test_wss_against_a_plain_gateway_is_a_clear_connection_error(gateway: Gateway) -> None:
    """Regression: reported as 'refused the WebSocket handshake: 599' with an empty body."""
    client = GatewayClient(f"wss://{_host_port(gateway)}/ws", DIDKey.generate(), connect_timeout=1)
    with pytest.raises(GatewayConnectionError) as failed:
        await client.connect()
    text = str(failed.value)
    assert "cannot connect to wss://" in text and "use ws:// instead of wss://" in text
    assert failed.value.status is None


@pytest.mark.gen_test(timeout=20)
async def test_sending_to_an_invalid_did_is_refused_before_anything_is_sent(
        gateway: Gateway) -> None:
    client = GatewayClient(gateway.ws_url, DIDKey.generate())
    await client.connect()
    for bad in ["did:web:example.com", SMALL_ORDER_DID]:
        with pytest.raises(ValueError, match="the recipient"):
            await client.send(bad, "OFFER", {})
    assert await client.ping() > 0  # nothing went out that earned an ERROR; still registered
    await client.close()
