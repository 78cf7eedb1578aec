"""gateway-docker.sh driven for real, with the recording `docker` stand-in first on PATH."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.server.app import Gateway

from .conftest import FakeDocker
from .helpers import COMPOSE_FILE, SCRIPT, GatewayProcess, load_yaml, venv_tool

COMMANDS = ("build", "start", "stop", "restart", "status", "logs", "shell", "cleanup", "health",
            "key", "help")
RUNNING = {"status": "running", "health": "healthy"}
STARTING = {"status": "running", "health": "starting"}


def test_script_passes_shellcheck() -> None:
    result = subprocess.run([str(venv_tool("shellcheck")), "--format=gcc", str(SCRIPT)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_executable_and_strict() -> None:
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


@pytest.mark.parametrize("flag", ["help", "-h", "--help"])
def test_help_lists_every_command_without_needing_docker(fake_docker: FakeDocker,
                                                         flag: str) -> None:
    fake_docker.remove("docker")
    result = fake_docker.run(flag)
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^  ([a-z]+)", result.stdout, re.M)
    assert set(COMMANDS) <= set(listed)


@pytest.mark.parametrize("args", [["frobnicate"], [], ["--start"]])
def test_unknown_or_missing_command_prints_help_and_exits_2(fake_docker: FakeDocker,
                                                            args: list[str]) -> None:
    result = fake_docker.run(*args)
    assert result.returncode == 2
    assert "Usage:" in result.stderr
    if args:
        assert f"unknown command '{args[0]}'" in result.stderr
    assert fake_docker.calls() == []


def test_missing_docker_fails_clearly(fake_docker: FakeDocker) -> None:
    fake_docker.remove("docker")
    result = fake_docker.run("start")
    assert result.returncode == 1
    assert "docker is not installed" in result.stderr


def test_missing_compose_fails_clearly(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"compose_plugin": False}
    result = fake_docker.run("status")
    assert result.returncode == 1
    assert "Docker Compose is not installed" in result.stderr
    assert fake_docker.compose_commands() == []


def test_unreachable_daemon_fails_clearly(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"daemon": False}
    result = fake_docker.run("start")
    assert result.returncode == 1
    assert "Docker daemon is not reachable" in result.stderr
    assert fake_docker.compose_commands() == []


def test_falls_back_to_docker_compose_binary(fake_docker: FakeDocker) -> None:
    fake_docker.install("docker-compose")
    fake_docker.scenario = {"compose_plugin": False}
    result = fake_docker.run("build")
    assert result.returncode == 0, result.stderr
    builds = [a for a in fake_docker.argvs() if "build" in a]
    assert builds[0][0] == "docker-compose"
    assert fake_docker.compose_commands() == [["build", "gateway"]]


def test_refuses_docker_compose_v1(fake_docker: FakeDocker) -> None:
    fake_docker.install("docker-compose")
    fake_docker.scenario = {"compose_plugin": False, "compose_version": "1.29.2"}
    result = fake_docker.run("start")
    assert result.returncode == 1
    assert "install Compose v2" in result.stderr
    assert fake_docker.compose_commands() == []


def test_build_passes_options_to_compose_build(fake_docker: FakeDocker) -> None:
    result = fake_docker.run("build", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [["build", "--no-cache", "gateway"]]


def test_works_from_any_directory(fake_docker: FakeDocker, tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    result = fake_docker.run("build", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    # compose_commands() checks the compose file is named by its absolute path.
    assert fake_docker.compose_commands() == [["build", "gateway"]]


def test_start_waits_for_healthy_then_prints_urls(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"states": [None, STARTING, STARTING, STARTING, RUNNING]}
    result = fake_docker.run("start")
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [["up", "-d", "gateway"]]
    assert len(re.findall(r"waiting for aiconexus-gateway to be healthy \(starting",
                          result.stdout)) == 3
    assert "aiconexus-gateway is healthy." in result.stdout
    assert "ws://127.0.0.1:8000/ws" in result.stdout
    assert "http://127.0.0.1:8000" in result.stdout


def test_start_when_already_running_says_so_and_does_nothing(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"states": [RUNNING]}
    result = fake_docker.run("start")
    assert result.returncode == 0
    assert "already running" in result.stdout
    assert fake_docker.compose_commands() == []


def test_start_timeout_shows_logs_and_fails(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {
        "states": [None, STARTING],
        "responses": {"compose logs": {"stdout": "gateway: cannot listen on 0.0.0.0:8000\n"}},
    }
    result = fake_docker.run("start", env={"GATEWAY_START_TIMEOUT": "1",
                                           "GATEWAY_POLL_INTERVAL": "0.1"})
    assert result.returncode == 1
    assert "not healthy after 1s" in result.stderr
    assert "cannot listen on 0.0.0.0:8000" in result.stderr
    assert fake_docker.compose_commands()[-1][:2] == ["logs", "--no-color"]


@pytest.mark.parametrize("state, message", [
    ({"status": "running", "health": "unhealthy"}, "is unhealthy"),
    ({"status": "exited", "health": "unhealthy"}, "stopped while starting (state: exited)"),
    ({"status": "restarting", "health": "starting"}, "stopped while starting"),
])
def test_start_fails_fast_when_the_container_is_not_coming_up(
        fake_docker: FakeDocker, state: dict[str, str], message: str) -> None:
    fake_docker.scenario = {"states": [None, state]}
    result = fake_docker.run("start", env={"GATEWAY_START_TIMEOUT": "60"})
    assert result.returncode == 1
    assert message in result.stderr
    assert ["logs", "--no-color", "--tail", "40", "gateway"] in fake_docker.compose_commands()


def test_environment_reaches_compose(fake_docker: FakeDocker) -> None:
    """LOG_LEVEL=DEBUG ./gateway-docker.sh start: compose sees it (and the compose file passes
    ${LOG_LEVEL} to the container, see test_compose.py)."""
    fake_docker.scenario = {"states": [None, RUNNING]}
    result = fake_docker.run("start", env={"LOG_LEVEL": "DEBUG", "GATEWAY_BIND": "0.0.0.0"})
    assert result.returncode == 0, result.stderr
    up = [c for c in fake_docker.calls() if "up" in c["argv"]]
    assert up[0]["env"]["LOG_LEVEL"] == "DEBUG"
    assert up[0]["env"]["GATEWAY_BIND"] == "0.0.0.0"


def test_start_on_all_interfaces_says_so(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"states": [None, RUNNING], "port": "0.0.0.0:8000\n[::]:8000\n"}
    result = fake_docker.run("start")
    assert result.returncode == 0, result.stderr
    assert "reachable from other machines" in result.stdout
    assert "ws://127.0.0.1:8000/ws" in result.stdout


def test_stop_stops_the_service(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"states": [RUNNING]}
    result = fake_docker.run("stop")
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [["stop", "gateway"]]


def test_stop_without_container_is_a_no_op(fake_docker: FakeDocker) -> None:
    result = fake_docker.run("stop")
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout
    assert fake_docker.compose_commands() == []


def test_restart_stops_then_starts_and_waits(fake_docker: FakeDocker) -> None:
    stopped = {"status": "exited", "health": "unhealthy"}
    fake_docker.scenario = {"states": [RUNNING, stopped, STARTING, RUNNING]}
    result = fake_docker.run("restart")
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [["stop", "gateway"], ["up", "-d", "gateway"]]
    assert "healthy" in result.stdout


def test_status_shows_state_and_health(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"states": [RUNNING]}
    result = fake_docker.run("status")
    assert result.returncode == 0
    assert "aiconexus-gateway: running (health: healthy)" in result.stdout
    assert fake_docker.compose_commands() == [["ps", "gateway"]]


@pytest.mark.parametrize("state, shown", [
    (None, "not created"),
    ({"status": "exited", "health": "unhealthy"}, "exited (health: unhealthy)"),
])
def test_status_of_a_gateway_not_running_is_non_zero(
        fake_docker: FakeDocker, state: dict[str, str] | None, shown: str) -> None:
    fake_docker.scenario = {"states": [state]}
    result = fake_docker.run("status")
    assert result.returncode != 0
    assert shown in result.stdout


@pytest.mark.parametrize("args, expected", [
    ([], ["logs", "--tail", "100", "gateway"]),
    (["-f"], ["logs", "--tail", "100", "-f", "gateway"]),
])
def test_logs(fake_docker: FakeDocker, args: list[str], expected: list[str]) -> None:
    result = fake_docker.run("logs", *args)
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [expected]


def test_shell_opens_sh_in_the_running_container(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"states": [RUNNING]}
    result = fake_docker.run("shell")
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [["exec", "gateway", "sh"]]


@pytest.mark.parametrize("command", ["shell", "health"])
def test_shell_and_health_need_a_running_container(fake_docker: FakeDocker,
                                                   command: str) -> None:
    result = fake_docker.run(command)
    assert result.returncode == 1
    assert "is not running" in result.stderr
    assert not [a for a in fake_docker.argvs() if "exec" in a]


def test_health_prints_the_real_health_json_pretty(
        fake_docker: FakeDocker, running_image_gateway: GatewayProcess) -> None:
    """`docker exec` is played by running the same command here, against a real gateway."""
    fake_docker.scenario = {"states": [RUNNING],
                            "exec_local": {"GATEWAY_PORT": str(running_image_gateway.port)}}
    result = fake_docker.run("health")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{\n  ")
    assert json.loads(result.stdout)["status"] == "healthy"
    execs = [a for a in fake_docker.argvs() if "exec" in a]
    assert execs[0][:4] == ["docker", "exec", "aiconexus-gateway", "python"]


def test_health_fails_when_the_gateway_does_not_answer(fake_docker: FakeDocker,
                                                       image_gateway: GatewayProcess) -> None:
    assert image_gateway.stop() == 0
    fake_docker.scenario = {"states": [RUNNING],
                            "exec_local": {"GATEWAY_PORT": str(image_gateway.port)}}
    result = fake_docker.run("health")
    assert result.returncode == 1
    assert "no answer from http://127.0.0.1:" in result.stderr


def test_cleanup_asks_and_does_nothing_without_yes(fake_docker: FakeDocker) -> None:
    result = fake_docker.run("cleanup", stdin="n\n")
    assert result.returncode == 1
    assert "[y/N]" in result.stdout
    assert "Cancelled" in result.stdout
    assert fake_docker.compose_commands() == []


def test_cleanup_without_an_answer_does_nothing(fake_docker: FakeDocker) -> None:
    result = fake_docker.run("cleanup", stdin="")
    assert result.returncode == 1
    assert fake_docker.compose_commands() == []


@pytest.mark.parametrize("args, stdin", [([], "y\n"), (["-y"], ""), (["--yes"], "")])
def test_cleanup_removes_containers_volume_and_image(fake_docker: FakeDocker, args: list[str],
                                                     stdin: str) -> None:
    result = fake_docker.run("cleanup", *args, stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert ("[y/N]" in result.stdout) == (not args)
    assert fake_docker.compose_commands() == [["down", "--volumes", "--remove-orphans"]]
    down = next(c["argv"] for c in fake_docker.calls() if "down" in c["argv"])
    assert down[3:5] == ["--profile", "cluster"]
    assert ["docker", "image", "rm", "aiconexus-gateway:latest"] in fake_docker.argvs()


def test_cleanup_skips_an_image_that_is_not_there(fake_docker: FakeDocker) -> None:
    fake_docker.scenario = {"image_exists": False}
    result = fake_docker.run("cleanup", "-y")
    assert result.returncode == 0, result.stderr
    assert not [a for a in fake_docker.argvs() if a[1:3] == ["image", "rm"]]


def test_cleanup_rejects_other_options(fake_docker: FakeDocker) -> None:
    result = fake_docker.run("cleanup", "--force")
    assert result.returncode == 2
    assert fake_docker.compose_commands() == []


@pytest.mark.gen_test(timeout=15)
async def test_health_shows_a_draining_gateway_and_fails(fake_docker: FakeDocker,
                                                         gateway: Gateway) -> None:
    gateway.hub.draining = True
    fake_docker.scenario = {"states": [RUNNING], "exec_local": {"GATEWAY_PORT": str(gateway.port)}}
    rc, out, _ = await fake_docker.run_async("health")
    assert rc == 1
    assert json.loads(out)["status"] == "draining"


# --- key: the cluster's shared gateway key ------------------------------------------------------

def compose_key_file(repo: Path) -> Path:
    """Where the compose file's cluster secret reads the key, under `repo`."""
    source = load_yaml(COMPOSE_FILE)["secrets"]["gateway-key"]["file"]
    return repo / source


def key_runs(fake_docker: FakeDocker) -> list[list[str]]:
    return [argv for argv in fake_docker.argvs() if argv[1:2] == ["run"]]


def test_key_creates_the_file_the_cluster_secret_reads_and_prints_its_did(
        fake_docker: FakeDocker) -> None:
    repo = fake_docker.copy_script()
    fake_docker.scenario = {"run_local": True}
    result = fake_docker.run("key")
    assert result.returncode == 0, result.stderr
    key_file = compose_key_file(repo)
    did = DIDKey.load(key_file).did
    assert f"Gateway DID: {did}" in result.stdout
    assert f"Created {key_file}" in result.stdout
    assert (key_file.stat().st_mode & 0o777) == 0o600
    if os.geteuid() == 0:  # handed to the image's user, who runs the cluster gateways
        assert (key_file.stat().st_uid, key_file.stat().st_gid) == (1000, 1000)


def test_key_is_made_by_the_image_offline_as_the_calling_user(fake_docker: FakeDocker) -> None:
    repo = fake_docker.copy_script()
    fake_docker.scenario = {"run_local": True}
    assert fake_docker.run("key").returncode == 0
    (run,) = key_runs(fake_docker)
    image = run.index("aiconexus-gateway:latest")
    options, command = run[2:image], run[image + 1:]
    assert command == ["python", "-m", "aiconexus_gateway.keygen", "/keys/gateway.key"]
    assert "--rm" in options and "--read-only" in options
    assert options[options.index("--network") + 1] == "none"
    assert options[options.index("-v") + 1] == f"{repo / 'deploy' / 'keys'}:/keys"
    assert options[options.index("--user") + 1] == f"{os.getuid()}:{os.getgid()}"
    assert fake_docker.compose_commands() == []  # the image is there: nothing to build


def test_key_builds_the_image_first_when_missing(fake_docker: FakeDocker) -> None:
    fake_docker.copy_script()
    fake_docker.scenario = {"run_local": True, "image_exists": False}
    result = fake_docker.run("key")
    assert result.returncode == 0, result.stderr
    assert fake_docker.compose_commands() == [["build", "gateway"]]
    assert len(key_runs(fake_docker)) == 1


def test_key_creates_a_missing_keys_directory(fake_docker: FakeDocker) -> None:
    repo = fake_docker.copy_script()
    (repo / "deploy" / "keys").rmdir()
    fake_docker.scenario = {"run_local": True}
    assert fake_docker.run("key").returncode == 0
    assert compose_key_file(repo).is_file()


def test_key_keeps_an_existing_key_and_shows_its_did(fake_docker: FakeDocker) -> None:
    repo = fake_docker.copy_script()
    key = DIDKey.generate()
    key.save(compose_key_file(repo))
    before = compose_key_file(repo).read_bytes()
    fake_docker.scenario = {"run_local": True}
    result = fake_docker.run("key")
    assert result.returncode == 0, result.stderr
    assert "exists: kept" in result.stdout
    assert f"Gateway DID: {key.did}" in result.stdout
    assert compose_key_file(repo).read_bytes() == before
    assert key_runs(fake_docker) == []


def test_key_reports_a_failure_of_the_keygen(fake_docker: FakeDocker) -> None:
    fake_docker.copy_script()
    fake_docker.scenario = {"responses": {"run": {"stderr": "error: cannot write /keys/gateway.key:"
                                                            " Permission denied\n", "rc": 1}}}
    result = fake_docker.run("key")
    assert result.returncode == 1
    assert "Permission denied" in result.stderr
    assert "could not create" in result.stderr


def test_cleanup_keeps_the_cluster_key(fake_docker: FakeDocker) -> None:
    repo = fake_docker.copy_script()
    DIDKey.generate().save(compose_key_file(repo))
    assert fake_docker.run("cleanup", "-y").returncode == 0
    assert compose_key_file(repo).is_file()


def test_key_from_an_image_without_the_keygen_says_to_rebuild(fake_docker: FakeDocker) -> None:
    fake_docker.copy_script()
    fake_docker.scenario = {"responses": {"run": {
        "stderr": "/usr/local/bin/python: No module named aiconexus_gateway.keygen\n", "rc": 1}}}
    result = fake_docker.run("key")
    assert result.returncode == 1
    assert "rebuild it ('gateway-docker.sh build')" in result.stderr


@pytest.mark.parametrize("option", ["--force", "-y"])
def test_key_takes_no_options(fake_docker: FakeDocker, option: str) -> None:
    repo = fake_docker.copy_script()
    result = fake_docker.run("key", option)
    assert result.returncode == 2
    assert "key takes no options" in result.stderr
    assert fake_docker.calls() == []
    assert list((repo / "deploy" / "keys").iterdir()) == []
