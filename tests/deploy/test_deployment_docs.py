"""docs/deployment.md: every command in it is one that works with the deployment files.

Commands are taken from the fenced shell blocks and from inline code that runs
gateway-docker.sh. Each is checked against the files it names (compose services and profiles, manifests,
paths, the script's commands); the documented gateway-docker.sh commands are also run with the
recording `docker` stand-in, and the openssl and keygen commands are run for real.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aiconexus_gateway.config import OPTIONS
from aiconexus_gateway.keys import DIDKey

from .conftest import FakeDocker
from .helpers import (
    COMPOSE_FILE,
    DEPLOY,
    DOCS,
    REPO,
    compose_variables,
    load_yaml,
    load_yaml_all,
)

SHELL_BLOCK = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
PROGRAMS = ("./gateway-docker.sh", "docker", "kubectl", "curl", "openssl", "kind", "minikube",
            "sudo", "ss", "python")
SCRIPT_COMMANDS = {"build", "start", "stop", "restart", "status", "logs", "shell", "health",
                   "cleanup", "key", "help", "-h", "--help"}
SCRIPT_OPTIONS = {"build": {"--no-cache", "--pull"}, "logs": {"-f", "--follow"},
                  "cleanup": {"-y", "--yes"}}
COMPOSE_SUBCOMMANDS = {"build", "up", "ps", "logs", "stop", "down", "restart", "exec", "config"}
DOCKER_SUBCOMMANDS = {"build", "run", "stop", "rm", "tag", "push", "inspect", "swarm", "stack",
                      "service", "stats", "logs", "ps", "exec", "secret"}
# The cluster's shared key, where every deployment's documented commands take it from.
KEY_FILE = "deploy/keys/gateway.key"
SCRIPT_ENV = {"GATEWAY_START_TIMEOUT", "GATEWAY_POLL_INTERVAL"}
STACK_ENV = {"GATEWAY_IMAGE"}


def commands() -> list[list[str]]:
    """Every documented command as argv (leading VAR=value assignments included)."""
    text = DOCS.read_text()
    lines = [line for block in SHELL_BLOCK.findall(text) for line in block.splitlines()]
    prose = SHELL_BLOCK.sub("", text)
    lines += [span for span in INLINE.findall(prose)
              if re.match(r"(?:[A-Z_]+=\S+ )*\./gateway-docker\.sh ", span)
              and not re.search(r"[\[<…]", span)]
    result = []
    for line in lines:
        argv = shlex.split(line, comments=True)
        if argv:
            result.append(argv)
    return result


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    env = {}
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
        name, _, value = argv[0].partition("=")
        env[name] = value
        argv = argv[1:]
    return env, argv


def option_value(argv: list[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg in names:
            return argv[i + 1]
        for name in names:
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def repo_path(path: str) -> Path:
    return REPO / path.replace("$PWD/", "")


def compose_secrets() -> dict[str, Any]:
    secrets: dict[str, Any] = load_yaml(COMPOSE_FILE)["secrets"]
    return secrets


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = load_yaml(COMPOSE_FILE)["services"]
    return services


def kube_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
            for doc in load_yaml_all(path)]


def check_script(argv: list[str]) -> None:
    assert argv[0] == "./gateway-docker.sh"
    assert len(argv) >= 2 and argv[1] in SCRIPT_COMMANDS, argv
    extra = set(argv[2:])
    assert extra <= SCRIPT_OPTIONS.get(argv[1], set()), argv


def check_compose(argv: list[str]) -> None:
    services = compose_services()
    assert option_value(argv, "-f") == COMPOSE_FILE.name, argv
    profile = option_value(argv, "--profile")
    if profile:
        assert any(profile in s.get("profiles", []) for s in services.values()), profile
    words = [a for a in argv[2:]]
    for option in ("-f", "--profile", "--scale", "--tail"):
        while option in words:
            i = words.index(option)
            del words[i:i + 2]
    subcommand = words[0]
    assert subcommand in COMPOSE_SUBCOMMANDS, argv
    scale = option_value(argv, "--scale")
    if scale:
        name = scale.split("=")[0]
        assert name in services and "container_name" not in services[name], scale
    for word in words[1:]:
        if not word.startswith("-"):
            assert word in services, f"{word} is not a service of {COMPOSE_FILE.name}"
            if services[word].get("profiles"):
                assert profile in services[word]["profiles"], f"{word} needs --profile"


def check_docker(argv: list[str]) -> None:
    if argv[1] == "compose":
        check_compose(argv)
        return
    assert argv[1] in DOCKER_SUBCOMMANDS, argv
    image = compose_services()["gateway"]["image"]
    if argv[1] == "build":
        assert (REPO / (option_value(argv, "-f") or "Dockerfile")).is_file()
        assert option_value(argv, "-t") == image
        assert argv[-1] == "."
    if argv[1] == "run":
        assert argv[-1] in (image, "prom/prometheus")
        for mount in [argv[i + 1] for i, a in enumerate(argv) if a == "-v"]:
            source = mount.split(":")[0]
            if "/" in source:
                assert repo_path(source).exists(), source
    if argv[1] in ("inspect", "stop", "rm"):
        assert argv[-1] == compose_services()["gateway"]["container_name"]
    if argv[1] == "stack" and argv[2] == "deploy":
        stack = option_value(argv, "-c")
        assert stack and repo_path(stack).is_file()
    if argv[1] == "secret" and argv[2] == "create":
        stack = load_yaml(DEPLOY / "swarm" / "aiconexus-stack.yml")
        external = {s["name"] for s in stack["secrets"].values() if s.get("external")}
        assert argv[3:] == [argv[3], KEY_FILE] and argv[3] in external, argv
    if argv[1] == "service" and argv[2] in ("scale", "logs"):
        stack = load_yaml(DEPLOY / "swarm" / "aiconexus-stack.yml")
        target = argv[-1].split("=")[0]
        stack_name, _, service = target.partition("_")
        assert stack_name == "aiconexus" and service in stack["services"], target


def check_kubectl(argv: list[str]) -> None:
    objects = kube_objects()
    names = {(o["kind"].lower(), o["metadata"]["name"]) for o in objects}
    path = option_value(argv, "-f")
    if argv[1] == "apply":
        assert path and repo_path(path).exists()
    for arg in argv[2:]:
        match = re.fullmatch(r"(deployment|service)/([\w-]+)", arg)
        if match:
            assert (match.group(1), match.group(2)) in names, arg
    selector = option_value(argv, "-l")
    if selector:
        key, _, value = selector.partition("=")
        assert any(o["metadata"].get("labels", {}).get(key) == value for o in objects), selector
    if argv[1:3] == ["create", "secret"] and "--from-literal" in " ".join(argv):
        # the TURN Secret (coturn.yaml): each key it gets is one a Deployment's env reads
        assert argv[3] == "generic", argv
        name = argv[4]
        keys = [arg.split("=", 2)[1] for arg in argv if arg.startswith("--from-literal=")]
        refs = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                for o in objects if o["kind"] == "Deployment"
                for c in o["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})}
        assert keys and all((name, key) in refs for key in keys), (argv, refs)
    elif argv[1:3] == ["create", "secret"]:
        assert argv[3] == "generic", argv
        name, source = argv[4], option_value(argv, "--from-file")
        assert source, argv
        key, _, path = source.partition("=")
        assert path == KEY_FILE, argv
        pods = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"]
        mounted = [v["secret"] for pod in pods for v in pod.get("volumes", []) if "secret" in v]
        assert any(s["secretName"] == name and key in [i["key"] for i in s["items"]]
                   for s in mounted), f"no Deployment mounts the key {key} of Secret {name}"
    if argv[1] == "set":
        container = argv[-1].split("=")[0]
        deployment = next(o for o in objects if o["kind"] == "Deployment"
                          and f"deployment/{o['metadata']['name']}" == argv[3])
        assert container in {c["name"] for c in
                             deployment["spec"]["template"]["spec"]["containers"]}


def check_python(argv: list[str]) -> None:
    """`python -m aiconexus_gateway.keygen [--show|--force] deploy/keys/gateway.key` only: the
    key file that the compose secret reads and the Secrets are made from."""
    assert argv[1:3] == ["-m", "aiconexus_gateway.keygen"], argv
    assert argv[-1] == KEY_FILE, argv
    assert set(argv[3:-1]) <= {"--show", "--force"}, argv
    assert (REPO / compose_secrets()["gateway-key"]["file"]) == REPO / KEY_FILE


def check_other(argv: list[str]) -> None:
    for arg in argv[1:]:
        if re.fullmatch(r"(deploy|docs)/[\w./-]+", arg):
            assert repo_path(arg).exists() or repo_path(arg).parent.is_dir(), arg


CHECKS: dict[str, Callable[[list[str]], None]] = {
    "./gateway-docker.sh": check_script, "docker": check_docker, "kubectl": check_kubectl,
    "python": check_python,
}


def known_variables() -> set[str]:
    return ({o.env for o in OPTIONS} | compose_variables(COMPOSE_FILE.read_text()) | SCRIPT_ENV
            | STACK_ENV | {"REDIS_URL", "REDIS_PREFIX", "INSTANCE_ID", "PYTHONUNBUFFERED"})


def test_docs_have_the_commands_users_follow() -> None:
    found = [" ".join(split_env(argv)[1]) for argv in commands()]
    for command in ("./gateway-docker.sh build", "./gateway-docker.sh start",
                    "./gateway-docker.sh status", "./gateway-docker.sh health",
                    "./gateway-docker.sh logs -f", "./gateway-docker.sh stop",
                    "./gateway-docker.sh cleanup -y", "kubectl apply -f deploy/kubernetes/",
                    "docker compose -f docker-compose.gateway.yml --profile cluster up -d "
                    "--scale gateway-cluster=3", "./gateway-docker.sh key",
                    f"python -m aiconexus_gateway.keygen {KEY_FILE}",
                    f"python -m aiconexus_gateway.keygen --show {KEY_FILE}",
                    "kubectl create secret generic aiconexus-gateway-key "
                    f"--from-file=gateway.key={KEY_FILE}",
                    f"docker secret create aiconexus-gateway-key {KEY_FILE}"):
        assert command in found, command


def test_docs_cover_every_topic() -> None:
    headings = {h.lower() for h in re.findall(r"^## (.+)$", DOCS.read_text(), re.M)}
    for topic in ("quick start", "management commands", "manual docker compose commands",
                  "environment variables", "localhost or network access",
                  "reverse proxy (tls and websocket)", "performance tuning",
                  "one gateway did per cluster: the shared key",
                  "scaling: the cluster profile", "kubernetes", "docker swarm",
                  "container security", "monitoring", "troubleshooting", "faq"):
        assert topic in headings, topic


@pytest.mark.parametrize("argv", commands(), ids=lambda argv: " ".join(argv)[:60])
def test_documented_command_matches_the_files(argv: list[str]) -> None:
    env, argv = split_env(argv)
    assert set(env) <= known_variables(), env
    assert argv[0] in PROGRAMS, argv
    CHECKS.get(argv[0], check_other)(argv)


def test_documented_variables_exist() -> None:
    rows = re.findall(r"^\| (`[A-Z_]+`(?:, `[A-Z_]+`)*) \|", DOCS.read_text(), re.M)
    documented = {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row)}
    assert documented <= known_variables(), documented - known_variables()
    core = {"GATEWAY_HOST", "GATEWAY_PORT", "LOG_LEVEL", "LOG_FORMAT", "LOG_FILE", "AGENT_TIMEOUT",
            "PING_INTERVAL", "CHALLENGE_TIMEOUT", "MAX_MESSAGE_SIZE", "GATEWAY_KEY_FILE",
            "VERIFY_SIGNATURES", "DRAIN_TIMEOUT", "REDIS_URL", "REDIS_PREFIX", "INSTANCE_ID",
            "GATEWAY_BIND"}
    assert core <= documented


def test_documented_script_commands_run(fake_docker: FakeDocker) -> None:
    """Each ./gateway-docker.sh line of the docs, with a healthy container: exit 0 (run from a
    copy of the script, so `key` makes its key there and not in the repository)."""
    script_lines = [split_env(argv) for argv in commands()]
    runs = {(tuple(sorted(env.items())), tuple(argv)) for env, argv in script_lines
            if argv[0] == "./gateway-docker.sh"}
    assert len(runs) >= 8
    repo = fake_docker.copy_script()
    for env_items, argv in sorted(runs):
        env = dict(env_items)
        fake_docker.scenario = {
            "states": [{"status": "running", "health": "healthy"}],
            "responses": {"exec": {"stdout": '{\n  "status": "healthy"\n}\n'}},
            "run_local": True,
        }
        result = fake_docker.run(*argv[1:], env=env, stdin="y\n")
        assert result.returncode == 0, (argv, result.stderr)
    assert DIDKey.load(repo / KEY_FILE).did.startswith("did:key:")  # `key` made it there


def test_documented_certificate_command_makes_what_nginx_loads(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    (line,) = [argv for argv in commands() if argv[0] == "openssl"]
    (tmp_path / "deploy" / "nginx" / "certs").mkdir(parents=True)
    subprocess.run(line, cwd=tmp_path, check=True, capture_output=True, timeout=60)
    conf = (DEPLOY / "nginx" / "gateway.conf").read_text()
    for name in ("tls.crt", "tls.key"):
        assert (tmp_path / "deploy" / "nginx" / "certs" / name).stat().st_size > 0
        assert f"/etc/nginx/certs/{name};" in conf


def test_documented_key_commands_make_the_key_every_deployment_reads(tmp_path: Path) -> None:
    """The keygen lines, in the order of the docs, in a fresh checkout: the first creates the
    key, every later creation refuses to replace it, --show prints its DID."""
    (tmp_path / "deploy" / "keys").mkdir(parents=True)
    keygen_lines = [argv for argv in commands() if argv[0] == "python"]
    assert keygen_lines[0][3:] == [KEY_FILE]
    did = None
    for argv in keygen_lines:
        result = subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30, check=False)
        key = DIDKey.load(tmp_path / KEY_FILE)
        if "--show" in argv or did is None:
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip() == key.did
        else:
            assert result.returncode == 1 and "already exists" in result.stderr
        assert did in (None, key.did)
        did = key.did
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_docs_run_keygen_before_creating_the_secrets() -> None:
    """In the Kubernetes and Swarm sections, the key exists before the Secret is made from it,
    and the Secret before the gateways are deployed."""
    lines = [" ".join(argv) for argv in commands()]

    def first(prefix: str, after: int = -1) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(prefix) and i > after)

    for secret, deploy in (("kubectl create secret", "kubectl apply -f deploy/kubernetes/"),
                           ("docker secret create", "docker stack deploy")):
        made = first(secret)
        assert first("python -m aiconexus_gateway.keygen") < made < first(deploy, made - 1)
        assert lines[made - 1] == f"python -m aiconexus_gateway.keygen {KEY_FILE}"
