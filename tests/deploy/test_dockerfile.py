"""Dockerfile.gateway and .dockerignore, read and linted (no Docker engine needed)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from .helpers import (
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    dockerfile,
    exec_form,
    final_stage,
    healthcheck,
    image_env,
    venv_tool,
)


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [str(venv_tool("hadolint")), "--no-color", "--format", "json",
         "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False, cwd=REPO,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_is_multi_stage_with_a_python_slim_base_as_build_arg() -> None:
    instructions = dockerfile()
    assert instructions[0].keyword == "ARG"
    assert instructions[0].args == "PYTHON_IMAGE=python:3.12-slim"
    froms = [ins.args for ins in instructions if ins.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]


def test_build_stage_makes_wheels_and_final_stage_installs_only_those() -> None:
    instructions = dockerfile()
    final = final_stage(instructions)
    build = instructions[: instructions.index(final[0])]
    wheel = [i.args for i in build if i.keyword == "RUN" and "pip wheel" in i.args]
    assert len(wheel) == 1 and "--wheel-dir /wheels" in wheel[0]
    # Cluster mode (REDIS_URL) needs the redis extra in the same image.
    assert '".[redis]"' in wheel[0]
    copies = [i.args for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /wheels /tmp/wheels"]
    runs = " && ".join(i.args for i in final if i.keyword == "RUN")
    install = re.search(r"pip install ([^&]+)", runs)
    assert install
    assert {"--no-cache-dir", "--no-index"} <= set(install.group(1).split())
    assert "rm -rf /tmp/wheels" in runs
    # Nothing to compile in the final image, and no package manager caches left behind.
    for word in ("apt-get", "gcc", "build-essential", "apk "):
        assert word not in runs


def test_copies_into_the_build_only_what_the_wheel_is_built_from() -> None:
    build_copies = [shlex.split(i.args) for i in dockerfile() if i.keyword == "COPY"
                    and not i.args.startswith("--from")]
    sources = [src for args in build_copies for src in args[:-1]]
    assert sources == ["setup.py", "pyproject.toml", "README.md", "aiconexus_gateway", "monitor"]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not dockerignore_excludes(source), f"{source} is excluded by .dockerignore"


def test_runs_as_uid_1000_in_app_with_port_8000() -> None:
    final = final_stage(dockerfile())
    last = {i.keyword: i.args for i in final}
    assert last["USER"].split(":")[0] == "1000"
    assert last["WORKDIR"] == "/app"
    assert last["EXPOSE"] == "8000"
    runs = " ".join(i.args for i in final if i.keyword == "RUN")
    assert "--uid 1000" in runs
    assert "chown -R 1000:1000 /app" in runs


def test_environment_of_the_image() -> None:
    env = image_env(dockerfile())
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LOG_LEVEL"] == "INFO"
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["GATEWAY_PORT"] == "8000"
    # --read-only: Python must not try to write bytecode next to the installed code.
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_cmd_is_the_console_script_in_exec_form() -> None:
    """Exec form: the gateway is PID 1's child-less main process, so SIGTERM reaches it."""
    final = final_stage(dockerfile())
    cmds = [i for i in final if i.keyword == "CMD"]
    assert exec_form(cmds[-1].args) == ["aiconexus-gateway"]
    assert not [i for i in final if i.keyword == "ENTRYPOINT"]
    assert "aiconexus-gateway=aiconexus_gateway.__main__:main" in (REPO / "setup.py").read_text()
    stop = [i.args for i in final if i.keyword == "STOPSIGNAL"]
    assert stop in ([], ["SIGTERM"])


def test_healthcheck_every_30s_with_python_only() -> None:
    check = healthcheck(dockerfile())
    assert check.options["interval"] == "30s"
    assert int(check.options["retries"]) >= 1
    assert check.command[:2] == ["python", "-c"]
    code = check.command[2]
    assert "urllib.request" in code and "/health" in code
    for tool in ("curl", "wget"):
        assert tool not in code


def test_log_directory_is_the_only_volume() -> None:
    volumes = [json.loads(i.args) for i in final_stage(dockerfile()) if i.keyword == "VOLUME"]
    assert volumes == [["/app/logs"]]


# --- .dockerignore ------------------------------------------------------------------------------

def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex on slash paths."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out += pattern[i:end + 1]
            i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_excludes(path: str) -> bool:
    """Whether Docker leaves `path` out of the build context: the last matching pattern wins, and
    a pattern that matches a parent directory matches everything inside it."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = _pattern_regex(pattern)
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("path", [
    ".git/HEAD", ".venv/bin/python", ".pytest_cache/v/cache/nodeids", ".mypy_cache/3.11/x.json",
    ".ruff_cache/CACHEDIR.TAG", ".hypothesis/examples/x", "tests/conftest.py",
    "aiconexus_gateway/__pycache__/hub.cpython-311.pyc", "monitor/__pycache__/app.cpython-311.pyc",
    "aiconexus_gateway.egg-info/PKG-INFO", "deploy/nginx/certs/tls.key", "docs/deployment.md",
    "logs/gateway.log", "build/lib/x.py", "dist/x.whl",
])
def test_dockerignore_keeps_out(path: str) -> None:
    assert dockerignore_excludes(path)


@pytest.mark.parametrize("path", [
    "setup.py", "pyproject.toml", "README.md", "aiconexus_gateway/__init__.py",
    "aiconexus_gateway/server/app.py", "aiconexus_gateway/py.typed", "monitor/models.py",
])
def test_dockerignore_lets_in_the_wheel_inputs(path: str) -> None:
    assert not dockerignore_excludes(path)


def test_build_context_holds_only_the_wheel_inputs() -> None:
    allowed = ("setup.py", "pyproject.toml", "README.md", "aiconexus_gateway/", "monitor/")
    context = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in (".git", ".venv")]
        for name in files:
            relative = Path(root, name).relative_to(REPO).as_posix()
            if not dockerignore_excludes(relative):
                context.append(relative)
    assert "aiconexus_gateway/__init__.py" in context
    assert [p for p in context if not p.startswith(allowed)] == []
