"""examples/p2p_channel.py against a real gateway process: direct, relayed, and no gateway."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "p2p_channel.py"


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    process = GatewayProcess("--host", "127.0.0.1", "--rate-limit", "0",
                             env={"LOG_LEVEL": "WARNING"}, cwd=ROOT)
    try:
        yield process.ws_url
    finally:
        process.stop()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_two_agents_exchange_every_message_over_a_direct_channel(gateway_url: str) -> None:
    result = run("--url", gateway_url, "--count", "200")
    assert result.returncode == 0, result.stderr
    assert "transport: direct" in result.stdout
    assert "200 messages each way, in order" in result.stdout
    assert "OK: a direct channel carried 400 messages" in result.stdout


def test_without_a_route_the_fallback_relays_through_the_gateway(gateway_url: str) -> None:
    result = run("--url", gateway_url, "--count", "50", "--relay-only", "--fallback")
    assert result.returncode == 0, result.stderr
    assert "transport: relay" in result.stdout and "OK: a relay channel" in result.stdout


def test_without_a_route_and_without_fallback_it_fails_with_ice_failed(gateway_url: str) -> None:
    result = run("--url", gateway_url, "--relay-only", "--timeout", "10")
    assert result.returncode == 1
    assert "PeerICEFailed" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_gateway_fails_in_one_line() -> None:
    result = run("--url", f"ws://127.0.0.1:{free_port()}/ws", "--timeout", "5")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the gateway")
    assert "Traceback" not in result.stderr and "OK:" not in result.stdout
