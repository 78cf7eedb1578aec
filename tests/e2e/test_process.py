"""The `aiconexus-gateway` command as users run it: startup lines, config errors, signals, logs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiconexus_gateway import __version__
from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

COMMAND = [sys.executable, "-m", "aiconexus_gateway"]


@pytest.fixture
def gateway_process() -> Iterator[GatewayProcess]:
    process = GatewayProcess()
    yield process
    process.stop(signal.SIGKILL)


def test_startup_prints_where_it_listens_then_its_did(gateway_process: GatewayProcess) -> None:
    gateway_process.wait_for_output("^gateway DID: ")
    assert gateway_process.stdout[:2] == [
        f"AIConexus Gateway {__version__} listening on {gateway_process.ws_url} and "
        f"{gateway_process.http_url}",
        f"gateway DID: {gateway_process.did}"]
    assert gateway_process.did.startswith("did:key:z6Mk")


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, **(env or {})})


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_closes_every_agent_with_1001_and_exits_0(signum: int) -> None:
    process = GatewayProcess()
    try:
        agents = [GatewayClient(process.ws_url, DIDKey.generate()) for _ in range(3)]
        for agent in agents:
            await agent.connect()
        process.proc.send_signal(signum)
        for agent in agents:
            with pytest.raises(ConnectionClosed):
                while True:
                    await agent.receive(timeout=10)
            assert agent.close_code == 1001
        loop = asyncio.get_running_loop()
        assert await loop.run_in_executor(None, process.proc.wait, 10) == 0
    finally:
        process.stop(signal.SIGKILL)


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--port", "70000"], {}, "--port='70000': must be a port number"),
        ([], {"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT='eighty': must be a number"),
        (["--agent-timeout", "-5"], {}, "--agent-timeout='-5': must be a positive number"),
        ([], {"CHALLENGE_TIMEOUT": "0"}, "CHALLENGE_TIMEOUT='0': must be a positive number"),
        ([], {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR"),
        (["--log-format", "xml"], {}, "--log-format='xml': must be one of text, json"),
        (["--max-message-size", "10"], {}, "must be at least 1024 bytes"),
    ],
)
def test_invalid_configuration_stops_startup_with_one_clear_line(
        args: list[str], env: dict[str, str], needle: str) -> None:
    result = run_command(*args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert result.stdout == ""


def test_flag_wins_over_environment_variable(tmp_path: Path) -> None:
    process = GatewayProcess("--log-level", "WARNING", env={"LOG_LEVEL": "LOUD"})
    assert process.stop() == 0


def test_port_in_use_is_a_clear_error(gateway_process: GatewayProcess) -> None:
    port = gateway_process.http_url.rsplit(":", 1)[1]
    result = run_command("--port", port)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_key_file_is_created_0600_and_keeps_the_gateway_did_across_restarts(tmp_path: Path) -> None:
    key_file = tmp_path / "gateway.key"
    first = GatewayProcess("--key-file", str(key_file))
    assert first.stop() == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = GatewayProcess(env={"GATEWAY_KEY_FILE": str(key_file)})
    assert second.stop() == 0
    assert first.did == second.did == DIDKey.load(key_file).did


def test_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    key_file = tmp_path / "broken.key"
    key_file.write_text("not a key")
    result = run_command("--port", "0", "--key-file", str(key_file))
    assert result.returncode == 2 and "not a readable DID key file" in result.stderr


@pytest.mark.gen_test(timeout=30)
async def test_json_logs_to_a_file_record_registration_and_disconnection(tmp_path: Path) -> None:
    log_file = tmp_path / "gateway.log"
    process = GatewayProcess(env={"LOG_FORMAT": "json", "LOG_FILE": str(log_file)})
    try:
        client = GatewayClient(process.ws_url, DIDKey.generate())
        await client.connect()
        await client.close()
        await wait_until(lambda: "agent disconnected" in log_file.read_text(), 10,
                         "the disconnection in the log file")
    finally:
        assert process.stop() == 0
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    registered = [e for e in entries if e["message"].startswith("agent registered")]
    left = [e for e in entries if e["message"].startswith("agent disconnected")]
    assert registered and registered[0]["did"] == client.did and registered[0]["level"] == "INFO"
    assert left and left[0]["did"] == client.did
    assert any(e["message"] == "gateway stopped" for e in entries)


def test_version_and_help() -> None:
    assert run_command("--version").stdout.startswith("aiconexus-gateway ")
    help_text = run_command("--help").stdout
    for variable in ("GATEWAY_HOST", "GATEWAY_PORT", "LOG_LEVEL", "AGENT_TIMEOUT", "PING_INTERVAL",
                     "CHALLENGE_TIMEOUT", "MAX_MESSAGE_SIZE", "GATEWAY_KEY_FILE", "LOG_FORMAT",
                     "LOG_FILE"):
        assert variable in help_text
