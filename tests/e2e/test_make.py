"""`make run` and `make monitor` honour the gateway's environment (GATEWAY_HOST, GATEWAY_PORT) and
pass flags only for what is given to make (`make run PORT=9000`) (issue 11)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def make_commands(*args: str, env: dict[str, str] | None = None) -> str:
    """The commands `make` would run for `args` (dry run; the venv taken as built)."""
    if shutil.which("make") is None:
        pytest.fail("make is required (the Makefile is how users start the gateway)")
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("HOST", "PORT", "GATEWAY_HOST", "GATEWAY_PORT")}
    result = subprocess.run(["make", "-s", "-n", "-o", ".venv/.run-deps", *args], cwd=ROOT,
                            env={**environment, **(env or {})}, capture_output=True, text=True,
                            timeout=30, check=True)
    return result.stdout.strip()


def test_make_run_leaves_host_and_port_to_the_gateway_environment() -> None:
    command = make_commands("run", env={"GATEWAY_PORT": "9123", "GATEWAY_HOST": "0.0.0.0"})
    assert command.split() == [".venv/bin/aiconexus-gateway"]


def test_make_run_with_port_and_host_passes_them_as_flags() -> None:
    command = make_commands("run", "PORT=9000", "HOST=0.0.0.0")
    assert command.split() == [".venv/bin/aiconexus-gateway", "--host", "0.0.0.0", "--port", "9000"]


@pytest.mark.parametrize(("args", "env", "url"), [
    ((), {}, "http://127.0.0.1:8000"),
    ((), {"GATEWAY_PORT": "9123"}, "http://127.0.0.1:9123"),
    (("PORT=9001", "HOST=0.0.0.0"), {}, "http://127.0.0.1:9001"),
])
def test_make_monitor_watches_the_gateway_make_run_starts(
        args: tuple[str, ...], env: dict[str, str], url: str) -> None:
    assert make_commands("monitor", *args, env=env).split()[-2:] == ["--url", url]
