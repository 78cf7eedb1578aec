"""Text agents choose reaches the operator's log escaped: a close reason with a newline does not
forge a log line, and terminal escape sequences arrive as visible text (issue 11)."""

from __future__ import annotations

import json
import struct

import pytest

from tests.reliability.support import CLOSE, raw_registered
from tests.support.process import GatewayProcess

FORGED = "2026-01-01 00:00:00,000 WARNING aiconexus.gateway: FORGED admin logged in"
REASON = f"bye\n{FORGED}\x1b]0;pwned\x07\x9b31m\u2028"


@pytest.fixture(params=["text", "json"])
def gateway_process(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    process = GatewayProcess("--log-format", request.param, "--log-level", "INFO")
    yield process
    process.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_close_reason_cannot_forge_a_log_line_or_reach_the_terminal_raw(
        gateway_process: GatewayProcess) -> None:
    ws, key, _ = await raw_registered(gateway_process.ws_url)
    await ws.send_frame(CLOSE, struct.pack("!H", 1000) + REASON.encode())
    await ws.until_closed()
    line = gateway_process.wait_for_output("agent disconnected")
    assert key.did in line
    lines = gateway_process.stderr
    assert not any(entry.lstrip().startswith(FORGED[:23]) for entry in lines), lines
    assert not any(char in entry for entry in lines for char in "\x1b\x07\x9b\u2028"), lines
    if "--log-format" in gateway_process.argv and "json" in gateway_process.argv:
        for entry in lines:
            json.loads(entry)
        assert "FORGED" in line and json.loads(line)["message"].count("\n") == 1
    else:
        assert "bye\\n2026-01-01" in line and "\\x1b]0;pwned\\x07" in line
