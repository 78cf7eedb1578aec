"""docker-compose.gateway.yml: valid against the Compose Specification, and the right values."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jsonschema import Draft7Validator

from aiconexus_gateway.config import OPTIONS, Config, load

from .helpers import (
    COMPOSE_FILE,
    COMPOSE_SCHEMA,
    DEPLOY,
    DOCKERFILE,
    DOCS,
    REPO,
    compose_variables,
    dockerfile,
    healthcheck,
    interpolate,
    load_yaml,
)

CLUSTER_SERVICES = {"redis", "gateway-cluster", "nginx"}
# Read by the gateway's cluster mode (the Redis backend).
CLUSTER_SETTINGS = {"REDIS_URL", "REDIS_PREFIX", "INSTANCE_ID"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def seconds(duration: str) -> float:
    """A compose duration such as 1m30s, 20s or 500ms, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert compose["name"] == "aiconexus-gateway"


def test_gateway_service(services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    assert gateway["container_name"] == "aiconexus-gateway"
    assert gateway["image"] == "aiconexus-gateway:latest"
    assert gateway["build"] == {"context": ".", "dockerfile": DOCKERFILE.name}
    assert gateway["ports"] == ["${GATEWAY_BIND:-127.0.0.1}:8000:8000"]
    assert gateway["restart"] == "unless-stopped"
    assert seconds(gateway["healthcheck"]["interval"]) == 30
    assert "profiles" not in gateway


@pytest.mark.parametrize("environ, published", [
    ({}, "127.0.0.1:8000:8000"),
    ({"GATEWAY_BIND": "0.0.0.0"}, "0.0.0.0:8000:8000"),
])
def test_port_is_loopback_unless_gateway_bind_says_otherwise(
        services: dict[str, Any], environ: dict[str, str], published: str) -> None:
    assert interpolate(services["gateway"]["ports"][0], environ) == published


def test_log_volume_and_log_file(compose: dict[str, Any], services: dict[str, Any]) -> None:
    gateway = services["gateway"]
    assert gateway["volumes"] == ["gateway-logs:/app/logs"]
    assert "gateway-logs" in compose["volumes"]
    assert gateway["environment"]["LOG_FILE"].startswith("/app/logs/")


@pytest.mark.parametrize("environ, level", [({}, "INFO"), ({"LOG_LEVEL": "DEBUG"}, "DEBUG")])
def test_log_level_and_unbuffered_output_come_from_the_environment(
        services: dict[str, Any], environ: dict[str, str], level: str) -> None:
    env = services["gateway"]["environment"]
    assert interpolate(env["LOG_LEVEL"], environ) == level
    assert interpolate(env["PYTHONUNBUFFERED"], {}) == "1"
    assert interpolate(env["PYTHONUNBUFFERED"], {"PYTHONUNBUFFERED": "0"}) == "0"


@pytest.mark.parametrize("name", ["gateway", "gateway-cluster"])
def test_gateways_are_hardened(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]


@pytest.mark.parametrize("name", ["gateway", "gateway-cluster"])
def test_stop_grace_period_outlasts_the_drain(services: dict[str, Any], name: str) -> None:
    assert seconds(services[name]["stop_grace_period"]) >= Config().drain_timeout + 5


@pytest.mark.parametrize("name", ["gateway", "gateway-cluster"])
def test_environment_names_are_gateway_settings(services: dict[str, Any], name: str) -> None:
    known = {option.env for option in OPTIONS} | CLUSTER_SETTINGS | {"PYTHONUNBUFFERED"}
    assert set(services[name]["environment"]) <= known


def test_every_setting_without_a_file_is_taken_from_the_shell(services: dict[str, Any]) -> None:
    """What docs/deployment.md promises: `AGENT_TIMEOUT=600 ./gateway-docker.sh restart` works
    for every gateway setting except the fixed address and the ones that name a file."""
    fixed = {"GATEWAY_HOST", "GATEWAY_PORT", "LOG_FILE", "GATEWAY_KEY_FILE", "TLS_CERT",
             "TLS_KEY", "TLS_CLIENT_CA", "MAILBOX_FILE", *CLUSTER_SETTINGS}
    env = services["gateway"]["environment"]
    for option in OPTIONS:
        if option.env in fixed:
            continue
        value = env.get(option.env, "missing")
        assert value is None or f"${{{option.env}" in str(value), (
            f"new gateway setting {option.env}: add it to x-gateway-env in {COMPOSE_FILE.name} "
            "and to the table in docs/deployment.md (or to `fixed` here if it names a file)")


@pytest.mark.parametrize("name", ["gateway", "gateway-cluster"])
def test_gateway_accepts_the_services_environment(services: dict[str, Any], name: str) -> None:
    """The values compose hands over (defaults interpolated, unset pass-throughs left out)
    are ones the gateway's configuration accepts."""
    env = {key: interpolate(str(value), {}) for key, value in
           services[name]["environment"].items() if value is not None}
    config = load([], env)
    assert config.log_file == env.get("LOG_FILE")
    if name == "gateway-cluster":
        assert config.redis_url == env["REDIS_URL"]
        assert config.trust_proxy is True
        assert config.log_format == "json"


def test_resource_limits_are_offered_as_comments() -> None:
    text = COMPOSE_FILE.read_text()
    assert re.search(r"^\s*# mem_limit: \S+", text, re.M)
    assert re.search(r"^\s*# cpus: \S+", text, re.M)


@pytest.mark.parametrize("name", ["gateway", "gateway-cluster"])
def test_healthcheck_is_the_dockerfiles(services: dict[str, Any], name: str) -> None:
    image_check = healthcheck(dockerfile())
    check = services[name]["healthcheck"]
    assert check["test"] == ["CMD", *image_check.command]
    for option in ("interval", "timeout", "retries"):
        assert str(check[option]) == image_check.options[option]
    assert check["start_period"] == image_check.options["start-period"]


def test_cluster_profile_services(services: dict[str, Any]) -> None:
    in_cluster = {name for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert in_cluster == CLUSTER_SERVICES


def test_cluster_gateway_can_be_scaled(services: dict[str, Any]) -> None:
    """`--scale gateway-cluster=3` needs no fixed name and no fixed host port."""
    cluster = services["gateway-cluster"]
    assert "container_name" not in cluster
    assert "ports" not in cluster
    assert cluster["expose"] == ["8000"]
    assert cluster["image"] == services["gateway"]["image"]


def test_cluster_gateways_use_the_redis_service(services: dict[str, Any]) -> None:
    env = services["gateway-cluster"]["environment"]
    match = re.fullmatch(r"redis://([\w-]+):(\d+)/\d+", env["REDIS_URL"])
    assert match
    assert match.group(1) == "redis" and match.group(2) == "6379"
    assert "REDIS_PREFIX" in env
    assert "LOG_FILE" not in env, "replicas must not share one rotating log file"
    assert services["gateway-cluster"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_nginx_balances_the_cluster_with_the_deploy_config(services: dict[str, Any]) -> None:
    nginx = services["nginx"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in nginx["volumes"]}
    assert mounts["./deploy/nginx/gateway.conf"] == "/etc/nginx/conf.d/default.conf"
    assert mounts["./deploy/nginx/certs"] == "/etc/nginx/certs"
    assert (REPO / "deploy/nginx/gateway.conf").is_file()
    assert (REPO / "deploy/nginx/certs").is_dir()
    assert "gateway-cluster" in nginx["depends_on"]
    conf = (DEPLOY / "nginx" / "gateway.conf").read_text()
    assert re.search(r"^\s*server gateway-cluster:8000\b", conf, re.M)
    assert interpolate(nginx["ports"][0], {}) == "127.0.0.1:8443:443"


def test_variables_used_are_documented() -> None:
    docs = DOCS.read_text()
    for name in compose_variables(COMPOSE_FILE.read_text()):
        assert f"`{name}`" in docs, f"{name} is not explained in {DOCS.name}"


# --- the cluster's shared key -------------------------------------------------------------------

def secret_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Each secret of a service by the path it appears at in the container."""
    mounts = {}
    for entry in service.get("secrets", []):
        source, target = (entry, entry) if isinstance(entry, str) else (
            entry["source"], entry.get("target", entry["source"]))
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        mounts[path] = source
    return mounts


def test_every_cluster_replica_loads_one_key_from_a_secret(
        compose: dict[str, Any], services: dict[str, Any]) -> None:
    """All replicas of `--scale gateway-cluster=N` share the service's definition: one fixed
    GATEWAY_KEY_FILE (nothing per replica in it), which is a secret mounted into the service."""
    cluster = services["gateway-cluster"]
    key_file = cluster["environment"]["GATEWAY_KEY_FILE"]
    assert key_file == interpolate(key_file, {"HOSTNAME": "replica-2"})  # no substitution at all
    assert "{{" not in key_file
    mounts = secret_mounts(cluster)
    assert key_file in mounts, f"GATEWAY_KEY_FILE {key_file} is not one of the mounted secrets"
    secret = compose["secrets"][mounts[key_file]]
    assert set(secret) == {"file"}  # a file on the host, bind-mounted read-only by Compose
    assert load([], {"GATEWAY_KEY_FILE": key_file}).key_file == key_file


def test_cluster_key_file_is_in_the_gitignored_keys_directory(compose: dict[str, Any]) -> None:
    source = REPO / compose["secrets"]["gateway-key"]["file"]
    assert source == DEPLOY / "keys" / "gateway.key"
    assert source.parent.is_dir()
    ignore = (source.parent / ".gitignore").read_text().splitlines()
    assert "*" in ignore and "!.gitignore" in ignore
    dockerignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in dockerignore  # the key never reaches the image's build context
    assert not [line for line in dockerignore if line.startswith("!deploy")]


def test_cluster_key_is_used_by_the_cluster_gateways_only(compose: dict[str, Any],
                                                          services: dict[str, Any]) -> None:
    """The single `gateway` starts without deploy/keys/gateway.key (its DID changes on restart);
    nothing but gateway-cluster mounts the cluster's key."""
    users = {name for name, service in services.items() if "gateway-key" in
             secret_mounts(service).values()}
    assert users == {"gateway-cluster"}
    assert "GATEWAY_KEY_FILE" not in services["gateway"]["environment"]
    assert not services["gateway"].get("secrets")
    assert set(compose["secrets"]) == {"gateway-key"}


def test_cluster_key_is_read_only_in_the_container(services: dict[str, Any]) -> None:
    """Compose mounts `file:` secrets read-only; the key must not come in as a writable volume."""
    cluster = services["gateway-cluster"]
    key_file = cluster["environment"]["GATEWAY_KEY_FILE"]
    for volume in cluster.get("volumes", []):
        target = volume.split(":")[1] if isinstance(volume, str) else volume["target"]
        assert not key_file.startswith(target.rstrip("/") + "/") and key_file != target
    assert cluster["read_only"] is True


def test_compose_file_says_how_to_make_the_cluster_key() -> None:
    text = COMPOSE_FILE.read_text()
    assert "./gateway-docker.sh key" in text
    assert "python -m aiconexus_gateway.keygen deploy/keys/gateway.key" in text


# --- the turn profile: coturn for peer channels -------------------------------------------------
# (tests/peer/test_turn_server.py runs coturn with this profile's options against the gateway's
# credentials)

def coturn_options(services: dict[str, Any], environ: dict[str, str]) -> dict[str, str]:
    """The coturn service's `--name=value` options as Compose hands them over."""
    options = {}
    for option in services["coturn"]["command"]:
        name, _, value = interpolate(str(option), environ).partition("=")
        options[name] = value
    return options


def test_turn_profile_is_coturn_alone(services: dict[str, Any]) -> None:
    in_turn = {name for name, s in services.items() if "turn" in s.get("profiles", [])}
    assert in_turn == {"coturn"}
    assert services["coturn"]["image"].startswith("coturn/coturn:")


def test_coturn_checks_the_gateways_turn_secret(services: dict[str, Any]) -> None:
    """coturn's static-auth-secret is the TURN_SECRET the gateway takes from the same shell."""
    assert "TURN_SECRET" in services["gateway"]["environment"]  # passed through (x-gateway-env)
    assert services["gateway"]["environment"]["TURN_SECRET"] is None
    options = coturn_options(services, {"TURN_SECRET": "shared-secret"})
    assert "--use-auth-secret" in options
    assert options["--static-auth-secret"] == "shared-secret"
    assert load([], {"TURN_SECRET": "shared-secret", "TURN_URLS": "turn:127.0.0.1:3478"}
                ).turn_secret == "shared-secret"


@pytest.mark.parametrize("environ, bind, low, high", [
    ({}, "127.0.0.1", 49160, 49200),
    ({"TURN_BIND": "0.0.0.0", "TURN_MIN_PORT": "50000", "TURN_MAX_PORT": "50999"},
     "0.0.0.0", 50000, 50999),
])
def test_coturn_publishes_3478_and_its_relay_range(
        services: dict[str, Any], environ: dict[str, str], bind: str, low: int, high: int) -> None:
    ports = [interpolate(port, environ) for port in services["coturn"]["ports"]]
    assert ports == [f"{bind}:3478:3478/udp", f"{bind}:3478:3478/tcp",
                     f"{bind}:{low}-{high}:{low}-{high}/udp"]
    options = coturn_options(services, environ)
    assert options["--listening-port"] == "3478"
    assert (int(options["--min-port"]), int(options["--max-port"])) == (low, high)


def test_coturn_external_ip_comes_from_the_shell(services: dict[str, Any]) -> None:
    assert coturn_options(services, {})["--external-ip"] == "127.0.0.1"
    public = {"TURN_EXTERNAL_IP": "203.0.113.10/172.18.0.5"}
    assert coturn_options(services, public)["--external-ip"] == "203.0.113.10/172.18.0.5"


def test_coturn_is_hardened(services: dict[str, Any]) -> None:
    coturn = services["coturn"]
    assert coturn["read_only"] is True and "/tmp" in coturn["tmpfs"]
    assert coturn["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in coturn["security_opt"]
    options = coturn_options(services, {})
    assert {"--no-cli", "--no-multicast-peers"} <= set(options)
    assert options["--denied-peer-ip"] == "169.254.0.0-169.254.255.255"  # metadata services
    assert options["--pidfile"].startswith("/tmp/")
    assert any(options["--userdb"].startswith(path + "/") for path in coturn["tmpfs"])
