"""Startup as operators meet it: a failure names what failed (key file, TLS files, port, log
file) in one line, with a non-zero exit and no traceback; the banner says what is bound, and is
JSON log records under LOG_FORMAT=json (issue 11)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import GatewayProcess, free_port

COMMAND = [sys.executable, "-m", "aiconexus_gateway"]


def start(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, "--port", "0", *args], capture_output=True, text=True,
                          timeout=20, env={**os.environ, **(env or {})})


def one_line_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("aiconexus-gateway: "), lines
    return lines[0]


def test_a_key_file_in_a_missing_directory_is_named_not_the_port(tmp_path: Path) -> None:
    line = one_line_failure(start("--key-file", str(tmp_path / "nowhere" / "gateway.key")))
    assert "key file" in line and "nowhere" in line and "does not exist" in line
    assert "listen" not in line


def test_a_key_file_that_holds_no_key_is_named(tmp_path: Path) -> None:
    key = tmp_path / "gateway.key"
    key.write_text("not a key\n")
    key.chmod(0o600)
    line = one_line_failure(start("--key-file", str(key)))
    assert "key file" in line and str(key) in line and "listen" not in line


def test_missing_tls_files_are_named(tmp_path: Path) -> None:
    line = one_line_failure(start("--tls-cert", str(tmp_path / "cert.pem"),
                                  "--tls-key", str(tmp_path / "key.pem")))
    assert "TLS certificate" in line and "cert.pem" in line and "listen" not in line


def test_a_port_in_use_says_so_and_how_to_choose_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*COMMAND, "--port", str(port)], capture_output=True, text=True,
                                timeout=20)
    line = one_line_failure(result)
    assert f"127.0.0.1:{port}" in line and "already in use" in line
    assert "another gateway" in line and "--port" in line and "PORT" in line


def test_a_log_file_in_a_missing_directory_is_named(tmp_path: Path) -> None:
    line = one_line_failure(start("--log-file", str(tmp_path / "nowhere" / "gateway.log")))
    assert "log file" in line and "does not exist" in line


@pytest.fixture
def json_gateway() -> Iterator[GatewayProcess]:
    process = GatewayProcess(env={"LOG_FORMAT": "json"})
    yield process
    process.stop(signal.SIGKILL)


def test_under_log_format_json_the_banner_is_json_records_too(json_gateway: GatewayProcess) -> None:
    json_gateway.wait_for_output("gateway DID")
    records = [json.loads(line) for line in json_gateway.lines]  # every line, stdout and stderr
    banner = next(r for r in records if "ws_url" in r)
    assert banner["ws_url"] == json_gateway.ws_url and "listening" in banner["message"]
    assert any(r.get("did") == json_gateway.did for r in records)


def test_a_wildcard_bind_says_every_interface_and_gives_a_reachable_url() -> None:
    process = GatewayProcess("--host", "0.0.0.0")
    try:
        line = process.wait_for_output("listening")
        port = process.port
        assert f"listening on 0.0.0.0:{port} (every interface)" in line
        assert f"ws://127.0.0.1:{port}/ws" in line
        assert process.ws_url == f"ws://127.0.0.1:{port}/ws"
        process.wait_for_output("ADMIN_TOKEN is not set")
    finally:
        process.stop(signal.SIGKILL)


def test_startup_logs_the_descriptor_capacity() -> None:
    process = GatewayProcess("--log-level", "INFO", port=free_port())
    try:
        line = process.wait_for_output("descriptors: ")
        assert "WebSocket connections" in line and "HTTP connections" in line
    finally:
        process.stop(signal.SIGKILL)
