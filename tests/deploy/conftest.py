"""Fixtures for the deployment tests: the recording `docker` stand-in and the gateway process."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .fake_docker import compose_words
from .helpers import COMPOSE_FILE, SCRIPT, GatewayProcess, run_image_cmd

HERE = Path(__file__).resolve().parent
# What gateway-docker.sh needs besides docker; nothing else is on the tests' PATH.
SCRIPT_TOOLS = ("bash", "cat", "dirname", "basename", "head", "sleep", "id", "mkdir", "chown")


class FakeDocker:
    """A PATH holding only the stand-in `docker` (optionally `docker-compose`) and the few tools
    gateway-docker.sh uses, so the script's docker calls are recorded and scripted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        self.scenario_path = root / "scenario.json"
        self.log_path = root / "docker.log"
        self.scenario: dict[str, Any] = {}
        # The script run; copy_script() swaps in a copy, whose deploy/keys the tests may fill.
        self.script = SCRIPT
        for tool in SCRIPT_TOOLS:
            found = shutil.which(tool)
            assert found, f"{tool} is needed to run gateway-docker.sh"
            (self.bin / tool).symlink_to(found)
        self.install("docker")

    def copy_script(self) -> Path:
        """Run a copy of gateway-docker.sh and the compose file in root/repo (with an empty
        deploy/keys), so commands that write next to the script leave the repository alone;
        the copy's directory."""
        repo = self.root / "repo"
        (repo / "deploy" / "keys").mkdir(parents=True)
        for source in (SCRIPT, COMPOSE_FILE):
            shutil.copy2(source, repo / source.name)
        self.script = repo / SCRIPT.name
        return repo

    def install(self, name: str) -> None:
        wrapper = self.bin / name
        wrapper.write_text(
            f"#!{sys.executable} -S\n"
            "import sys\n"
            f"sys.path.insert(0, {str(HERE)!r})\n"
            "import fake_docker\n"
            "sys.exit(fake_docker.main(sys.argv))\n"
        )
        wrapper.chmod(0o755)

    def remove(self, name: str) -> None:
        (self.bin / name).unlink()

    def prepare(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """Write the scenario, reset the log and state; the environment to run the script in."""
        self.scenario_path.write_text(json.dumps(self.scenario))
        self.scenario_path.with_suffix(".state").unlink(missing_ok=True)
        self.log_path.write_text("")
        return {
            "PATH": str(self.bin),
            "LANG": "C.UTF-8",
            "FAKE_DOCKER_SCENARIO": str(self.scenario_path),
            "FAKE_DOCKER_LOG": str(self.log_path),
            "GATEWAY_POLL_INTERVAL": "0.01",
            **(env or {}),
        }

    def run(self, *args: str, stdin: str = "", env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """gateway-docker.sh ARGS with the stand-in; a fresh log and state for each run."""
        return subprocess.run(
            [str(self.script), *args], input=stdin, capture_output=True, text=True,
            env=self.prepare(env), cwd=cwd or self.root, timeout=timeout, check=False,
        )

    async def run_async(self, *args: str, timeout: float = 10) -> tuple[int, str, str]:
        """As run(), without blocking the IOLoop (for a gateway served by this process)."""
        process = await asyncio.create_subprocess_exec(
            str(self.script), *args, env=self.prepare(), cwd=self.root,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    def calls(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines]

    def argvs(self) -> list[list[str]]:
        return [[call["prog"], *call["argv"]] for call in self.calls()]

    def compose_commands(self) -> list[list[str]]:
        """Each compose call as its subcommand words (`version` probes left out), after checking
        that it names docker-compose.gateway.yml (next to the script run) by absolute path."""
        commands = []
        for call in self.calls():
            args = call["argv"][1:] if call["prog"] == "docker" else call["argv"]
            if call["prog"] == "docker" and call["argv"][:1] != ["compose"]:
                continue
            words = compose_words(args)
            if words[:1] == ["version"]:
                continue
            assert args[:2] == ["-f", str(self.script.parent / COMPOSE_FILE.name)], args
            commands.append(words)
        return commands


@pytest.fixture
def fake_docker(tmp_path: Path) -> FakeDocker:
    return FakeDocker(tmp_path)


@pytest.fixture
def image_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """The gateway started by the image's CMD and ENV, in an empty WORKDIR; stopped afterwards.
    For tests that stop it."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    with run_image_cmd(workdir) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def running_image_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """As image_gateway, shared by the tests of a module that only read from it."""
    with run_image_cmd(tmp_path_factory.mktemp("app")) as gateway:
        yield gateway

