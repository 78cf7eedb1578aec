"""The image's CMD and HEALTHCHECK, taken from Dockerfile.gateway and run here as written.

Without an engine the image cannot be built, but the pieces that decide whether a container
works can be run: the CMD with the image's ENV, and the HEALTHCHECK command against the result.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from aiconexus_gateway.server.app import Gateway

from .helpers import (
    COMPOSE_FILE,
    GatewayProcess,
    dockerfile,
    get_json,
    healthcheck,
    image_process_env,
    load_yaml,
    run_image_cmd,
    self_signed_certificate,
)

CHECK_TIMEOUT = 15


def run_healthcheck(command: list[str], port: int,
                    **env: str) -> subprocess.CompletedProcess[str]:
    """The command exactly as the Dockerfile writes it (`python` found on PATH, as in the image),
    with the environment the container has."""
    return subprocess.run(command, env=image_process_env(port, **env), capture_output=True,
                          text=True, timeout=CHECK_TIMEOUT, check=False)


def test_cmd_with_the_image_env_serves_health_on_all_interfaces(
        image_gateway: GatewayProcess) -> None:
    status, body = get_json(f"{image_gateway.http_url}/health")
    assert status == 200
    assert body["status"] == "healthy"
    assert body["gateway_did"].startswith("did:key:z6Mk")
    assert image_gateway.stop() == 0  # SIGTERM, as `docker stop` sends it: a clean exit
    assert any("listening on" in line and f":{image_gateway.port}/ws" in line
               for line in image_gateway.stdout)


def test_gateway_writes_nothing_outside_the_log_directory(tmp_path: Path) -> None:
    """--read-only: the working directory stays empty; only LOG_FILE (the volume) is written."""
    workdir = tmp_path / "app"
    logs = workdir / "logs"
    logs.mkdir(parents=True)
    log_file = load_yaml(COMPOSE_FILE)["services"]["gateway"]["environment"]["LOG_FILE"]
    assert log_file.startswith("/app/logs/")
    local_log = workdir / log_file.removeprefix("/app/")
    with run_image_cmd(workdir, LOG_FILE=str(local_log)) as gateway:
        assert get_json(f"{gateway.http_url}/health")[0] == 200
    written = sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*"))
    assert written == ["logs", f"logs/{local_log.name}"]
    assert "started on" in local_log.read_text()


def test_healthcheck_passes_against_a_running_gateway(
        running_image_gateway: GatewayProcess) -> None:
    command = healthcheck(dockerfile()).command
    result = run_healthcheck(command, running_image_gateway.port)
    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_against_a_stopped_gateway(image_gateway: GatewayProcess) -> None:
    command = healthcheck(dockerfile()).command
    assert image_gateway.stop() == 0
    result = run_healthcheck(command, image_gateway.port)
    assert result.returncode != 0
    # Docker reserves exit code 2; 1 is "unhealthy".
    assert result.returncode == 1


@pytest.mark.gen_test(timeout=CHECK_TIMEOUT)
async def test_healthcheck_fails_while_the_gateway_drains(gateway: Gateway) -> None:
    """/health answers 503 {"status": "draining"} during a drain: the container is unhealthy."""
    gateway.hub.draining = True
    command = healthcheck(dockerfile()).command
    process = await asyncio.create_subprocess_exec(
        *command, env=image_process_env(gateway.port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), CHECK_TIMEOUT)
    assert process.returncode == 1
    assert b"503" in err


def test_healthcheck_follows_the_gateway_to_tls(tmp_path: Path) -> None:
    """With TLS_CERT set the gateway serves https only; the health check must speak it too."""
    cert, key = self_signed_certificate(tmp_path)
    tls_env = {"TLS_CERT": str(cert), "TLS_KEY": str(key)}
    command = healthcheck(dockerfile()).command
    workdir = tmp_path / "app"
    workdir.mkdir()
    with run_image_cmd(workdir, **tls_env) as gateway:
        assert gateway.http_url.startswith("https://")
        result = run_healthcheck(command, gateway.port, **tls_env)
        assert result.returncode == 0, result.stderr
        plain = run_healthcheck(command, gateway.port)
        assert plain.returncode == 1
