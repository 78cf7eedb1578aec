"""examples/mailbox.py against a real gateway process, and without one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.examples.test_examples import assert_in_order, closed_port_url, run_example, serve_gateway


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    yield from serve_gateway({})


def test_the_mailbox_example_queues_delivers_and_gets_receipts(gateway_url: str) -> None:
    result = run_example("mailbox.py", "--url", gateway_url)
    assert result.returncode == 0, result.stderr
    assert_in_order(result.stdout, [
        "[1] alice connected; bob (did:key:z6Mk",
        "[2] alice sent 3 INTENTs with ttl=300; the gateway answered QUEUED for each",
        "[3] bob connected and received them in order: job 0, job 1, job 2",
        "[4] alice's receipts: DELIVERED, DELIVERED, DELIVERED",
        "OK: 3 messages waited for bob, arrived in order, and alice knows it",
    ])


def test_the_mailbox_example_fails_clearly_without_a_gateway() -> None:
    result = run_example("mailbox.py", "--url", closed_port_url(), "--timeout", "2")
    assert result.returncode == 1
    assert "FAILED: GatewayConnectionError" in result.stderr and "Traceback" not in result.stderr
