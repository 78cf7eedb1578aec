"""The gateway address the operator types becomes the HTTP base URL, or a clear refusal."""

from __future__ import annotations

import pytest

from monitor.address import BadURL, http_base_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("localhost:9000", "http://localhost:9000"),
        ("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000"),
        ("wss://gw.example.com/ws", "https://gw.example.com"),
        ("wss://gw.example.com/aiconexus/ws", "https://gw.example.com/aiconexus"),
        ("https://gw.example.com/aiconexus/", "https://gw.example.com/aiconexus"),
        ("  http://[::1]:8000  ", "http://[::1]:8000"),
    ],
)
def test_gateway_address_becomes_its_http_base_url(given: str, expected: str) -> None:
    assert http_base_url(given) == expected


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "empty"),
        ("ftp://127.0.0.1:8000", "unsupported URL scheme 'ftp'"),
        ("http://", "no host"),
        ("http://127.0.0.1:notaport", "bad port"),
        ("http://127.0.0.1:8000/?x=1", "query"),
    ],
)
def test_unusable_gateway_address_is_refused_with_a_clear_message(given: str, says: str) -> None:
    with pytest.raises(BadURL, match=says) as caught:
        http_base_url(given)
    assert "http://127.0.0.1:8000" in str(caught.value) or "base URL" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000/health", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/ws", "http://127.0.0.1:8000"),
        ("127.0.0.1:8000/agents", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/metrics/", "http://127.0.0.1:8000"),
        ("https://gw.example.com/aiconexus/health", "https://gw.example.com/aiconexus"),
        ("ws://127.0.0.1:8000/health", "http://127.0.0.1:8000"),
        ("WSS://gw.example.com/", "https://gw.example.com"),
    ],
)
def test_an_endpoint_given_instead_of_the_base_url_is_taken_off(given: str, expected: str) -> None:
    # the operator copies the address they just curl-ed, or the agents' WebSocket address
    assert http_base_url(given) == expected
