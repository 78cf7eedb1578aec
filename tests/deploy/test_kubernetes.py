"""deploy/kubernetes, deploy/swarm and deploy/prometheus: they parse and agree with the gateway."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

from aiconexus_gateway.config import load

from .helpers import (
    COMPOSE_SCHEMA,
    DEPLOY,
    GatewayProcess,
    dockerfile,
    final_stage,
    get_json,
    interpolate,
    load_yaml,
    load_yaml_all,
)

KUBE = DEPLOY / "kubernetes"
STACK = DEPLOY / "swarm" / "aiconexus-stack.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    docs = [doc for path in sorted(KUBE.glob("*.yaml")) for doc in load_yaml_all(path)]
    assert docs
    return docs


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def gateway_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    spec = find(manifests, "Deployment", "aiconexus-gateway")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    result: dict[str, Any] = container
    return result


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def probes(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in container.items() if k.endswith("Probe")}


def test_every_manifest_is_a_kubernetes_object(manifests: list[dict[str, Any]]) -> None:
    for doc in manifests:
        assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    kinds = sorted((m["kind"], m["metadata"]["name"]) for m in manifests)
    assert kinds == [
        ("Deployment", "aiconexus-gateway"), ("Deployment", "aiconexus-redis"),
        ("Deployment", "aiconexus-turn"), ("PodDisruptionBudget", "aiconexus-gateway"),
        ("Service", "aiconexus-gateway"), ("Service", "aiconexus-redis"),
    ]


def test_services_select_their_deployments_pods(manifests: list[dict[str, Any]]) -> None:
    for name in ("aiconexus-gateway", "aiconexus-redis"):
        deployment = find(manifests, "Deployment", name)["spec"]
        service = find(manifests, "Service", name)["spec"]
        labels = deployment["template"]["metadata"]["labels"]
        assert deployment["selector"]["matchLabels"].items() <= labels.items()
        assert service["selector"].items() <= labels.items()
        ports = {p["name"] for c in deployment["template"]["spec"]["containers"]
                 for p in c["ports"]}
        for port in service["ports"]:
            assert port["targetPort"] in ports


def test_three_replicas_in_cluster_mode_on_the_redis_service(
        manifests: list[dict[str, Any]]) -> None:
    assert find(manifests, "Deployment", "aiconexus-gateway")["spec"]["replicas"] == 3
    env = env_of(gateway_container(manifests))
    match = re.fullmatch(r"redis://([\w-]+):(\d+)/\d+", env["REDIS_URL"])
    assert match
    redis = find(manifests, "Service", match.group(1))
    assert int(match.group(2)) in [p["port"] for p in redis["spec"]["ports"]]
    assert env["INSTANCE_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "REDIS_PREFIX" in env


def test_gateway_accepts_the_deployments_environment(manifests: list[dict[str, Any]]) -> None:
    env = {k: v if isinstance(v, str) else "pod-name"
           for k, v in env_of(gateway_container(manifests)).items()
           if not (isinstance(v, dict) and "secretKeyRef" in v)}  # optional: the TURN Secret
    config = load([], env)
    assert config.redis_url == env["REDIS_URL"]
    assert config.instance_id == "pod-name"
    assert config.drain_timeout == float(env["DRAIN_TIMEOUT"])


def test_swarm_stack_environment_is_accepted_by_the_gateway() -> None:
    """With Swarm's template rendered as it is for a task (stack_service.slot.task-id)."""
    task_name = "aiconexus_gateway.1.6h2rjz3cv8yq4w0pkk2l1d5e9"
    env = {k: interpolate(str(v), {}).replace("{{.Task.Name}}", task_name) for k, v in
           load_yaml(STACK)["services"]["gateway"]["environment"].items()}
    config = load([], env)
    assert config.redis_url == "redis://redis:6379/0"
    assert config.instance_id == task_name


def test_gateway_listens_where_the_service_and_probes_look(
        manifests: list[dict[str, Any]]) -> None:
    container = gateway_container(manifests)
    env = env_of(container)
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    (port,) = container["ports"]
    assert port["containerPort"] == int(env["GATEWAY_PORT"]) == 8000
    for probe in probes(container).values():
        assert probe["httpGet"]["port"] == port["name"]
    spec = find(manifests, "Deployment", "aiconexus-gateway")["spec"]["template"]["spec"]
    assert spec["enableServiceLinks"] is False


def test_probes_answer_200_from_a_real_gateway(
        manifests: list[dict[str, Any]], running_image_gateway: GatewayProcess) -> None:
    container = gateway_container(manifests)
    found = probes(container)
    assert set(found) == {"livenessProbe", "readinessProbe"}
    for probe in found.values():
        status, body = get_json(running_image_gateway.http_url + probe["httpGet"]["path"])
        assert status == 200
        assert body["status"] == "healthy"


def test_readiness_fails_fast_while_draining_and_liveness_outlasts_the_drain(
        manifests: list[dict[str, Any]]) -> None:
    container = gateway_container(manifests)
    drain = float(env_of(container)["DRAIN_TIMEOUT"])
    ready, live = container["readinessProbe"], container["livenessProbe"]
    assert ready["httpGet"]["path"] == "/health"  # 503 {"status": "draining"} while draining
    assert ready["periodSeconds"] * ready["failureThreshold"] < drain
    assert live["periodSeconds"] * live["failureThreshold"] > drain


def test_grace_period_covers_pre_stop_and_drain(manifests: list[dict[str, Any]]) -> None:
    spec = find(manifests, "Deployment", "aiconexus-gateway")["spec"]["template"]["spec"]
    container = gateway_container(manifests)
    drain = float(env_of(container)["DRAIN_TIMEOUT"])
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] >= float(pre_stop[1]) + drain + 5


def test_containers_are_locked_down_with_resources(manifests: list[dict[str, Any]]) -> None:
    for name in ("aiconexus-gateway", "aiconexus-redis", "aiconexus-turn"):
        pod = find(manifests, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind])


def test_gateway_pod_runs_as_the_images_user(manifests: list[dict[str, Any]]) -> None:
    pod = find(manifests, "Deployment", "aiconexus-gateway")["spec"]["template"]["spec"]
    user = [i.args for i in final_stage(dockerfile()) if i.keyword == "USER"][-1]
    assert str(pod["securityContext"]["runAsUser"]) == user.split(":")[0]
    mounts = {m["mountPath"] for m in gateway_container(manifests)["volumeMounts"]}
    assert mounts == {"/tmp", "/run/secrets/aiconexus"}
    container = gateway_container(manifests)
    assert container["image"] == "aiconexus-gateway:latest"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_pods_are_annotated_for_prometheus(manifests: list[dict[str, Any]]) -> None:
    template = find(manifests, "Deployment", "aiconexus-gateway")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == "8000"


def test_metrics_path_is_served(running_image_gateway: GatewayProcess) -> None:
    import urllib.request

    url = running_image_gateway.http_url + "/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")


def test_prometheus_example_scrapes_metrics_on_port_8000() -> None:
    config = load_yaml(PROMETHEUS)
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]


def test_swarm_stack_is_valid_compose_with_three_cluster_replicas() -> None:
    stack = load_yaml(STACK)
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    errors = list(Draft7Validator(schema).iter_errors(stack))
    assert not errors, [e.message for e in errors]
    gateway = stack["services"]["gateway"]
    assert gateway["deploy"]["replicas"] == 3
    assert gateway["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert "redis" in stack["services"]
    assert gateway["environment"]["INSTANCE_ID"] == "{{.Task.Name}}"
    assert gateway["read_only"] is True and gateway["cap_drop"] == ["ALL"]


def test_swarm_stack_is_accepted_by_the_docker_cli() -> None:
    """`docker stack config` parses the file with the CLI's own loader, without an engine."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI installed; the schema test above still ran")
    result = subprocess.run([docker, "stack", "config", "-c", str(STACK)],
                            capture_output=True, text=True, timeout=30, check=False)
    if "unknown command" in result.stderr or "not a docker command" in result.stderr:
        pytest.skip("this docker CLI has no `stack config`")
    assert result.returncode == 0, result.stderr
    assert "replicas: 3" in result.stdout


# --- the cluster's shared key -------------------------------------------------------------------

KEY_SECRET = "aiconexus-gateway-key"
KEY_NAME = "gateway.key"


def pod_spec(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(manifests, "Deployment", "aiconexus-gateway")["spec"]["template"]["spec"]
    return spec


def key_mount(manifests: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The volume mount GATEWAY_KEY_FILE lies in, and its volume."""
    container = gateway_container(manifests)
    key_file = env_of(container)["GATEWAY_KEY_FILE"]
    (mount,) = [m for m in container["volumeMounts"]
                if key_file.startswith(m["mountPath"].rstrip("/") + "/")]
    (volume,) = [v for v in pod_spec(manifests)["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def test_every_replica_loads_the_key_from_one_secret_read_only(
        manifests: list[dict[str, Any]]) -> None:
    """All pods of the Deployment share its template: one fixed GATEWAY_KEY_FILE, in a
    read-only mount of the Secret that `kubectl create secret generic` makes."""
    container = gateway_container(manifests)
    key_file = env_of(container)["GATEWAY_KEY_FILE"]
    assert isinstance(key_file, str)  # a value, not something per pod (fieldRef)
    mount, volume = key_mount(manifests)
    assert mount["readOnly"] is True
    assert "subPath" not in mount
    secret = volume["secret"]
    assert secret["secretName"] == KEY_SECRET
    assert secret.get("optional", False) is False  # no Secret: no pod, never a DID per pod
    # Only the key called gateway.key, at the file name GATEWAY_KEY_FILE names.
    assert secret["items"] == [{"key": KEY_NAME, "path": KEY_NAME}]
    assert key_file == f"{mount['mountPath'].rstrip('/')}/{KEY_NAME}"
    assert load([], {"GATEWAY_KEY_FILE": key_file}).key_file == key_file


def test_key_is_readable_by_the_gateways_group_only(manifests: list[dict[str, Any]]) -> None:
    """Secret files are root-owned with group fsGroup: 0440 lets the gateway's user (in that
    group) read the key, and nobody else."""
    _, volume = key_mount(manifests)
    assert volume["secret"]["defaultMode"] == 0o440
    security = pod_spec(manifests)["securityContext"]
    assert security["fsGroup"] == security["runAsGroup"] == 1000


def test_manifests_do_not_carry_a_key(manifests: list[dict[str, Any]]) -> None:
    """The Secret is made from the operator's key file (docs/deployment.md), never shipped:
    applying a key from the repository would give every cluster the same, public identity."""
    assert not [m for m in manifests if m["kind"] == "Secret"]
    text = "\n".join(path.read_text() for path in KUBE.glob("*.yaml"))
    assert '"seed"' not in text


def test_manifest_says_how_to_create_the_secret() -> None:
    text = (KUBE / "gateway.yaml").read_text()
    assert (f"kubectl create secret generic {KEY_SECRET} "
            f"--from-file={KEY_NAME}=deploy/keys/gateway.key") in text


def test_swarm_replicas_load_one_key_from_an_external_docker_secret() -> None:
    stack = load_yaml(STACK)
    gateway = stack["services"]["gateway"]
    key_file = gateway["environment"]["GATEWAY_KEY_FILE"]
    assert "{{" not in key_file  # the same for every task
    (entry,) = [s for s in gateway["secrets"]
                if f"/run/secrets/{s['target']}" == key_file]
    # Owned by the image's user, readable by it alone (Swarm applies uid/gid/mode).
    user = [i.args for i in final_stage(dockerfile()) if i.keyword == "USER"][-1]
    assert f"{entry['uid']}:{entry['gid']}" == user
    assert entry["mode"] == 0o400
    secret = stack["secrets"][entry["source"]]
    assert secret == {"external": True, "name": KEY_SECRET}
    text = STACK.read_text()
    assert f"docker secret create {KEY_SECRET} deploy/keys/gateway.key" in text


def test_swarm_stack_with_its_secret_is_accepted_by_the_docker_cli() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI installed; the schema test above still ran")
    result = subprocess.run([docker, "stack", "config", "-c", str(STACK)],
                            capture_output=True, text=True, timeout=30, check=False)
    if "unknown command" in result.stderr or "not a docker command" in result.stderr:
        pytest.skip("this docker CLI has no `stack config`")
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    (entry,) = rendered["services"]["gateway"]["secrets"]
    assert entry["mode"] == 0o400  # the octal 0400 read as octal by the CLI too
    assert rendered["secrets"]["gateway-key"] == {"name": KEY_SECRET, "external": True}


# --- coturn (coturn.yaml): the TURN server of peer channels, sharing a Secret with the gateway ---

TURN_SECRET = "aiconexus-turn"


def coturn_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    spec = find(manifests, "Deployment", "aiconexus-turn")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    result: dict[str, Any] = container
    return result


def coturn_args(manifests: list[dict[str, Any]]) -> dict[str, str]:
    return dict(str(arg).partition("=")[::2] for arg in coturn_container(manifests)["args"])


def test_coturn_checks_the_secret_the_gateway_issues_credentials_from(
        manifests: list[dict[str, Any]]) -> None:
    gateway, coturn = env_of(gateway_container(manifests)), env_of(coturn_container(manifests))
    shared = {"name": TURN_SECRET, "key": "static-auth-secret"}
    assert gateway["TURN_SECRET"]["secretKeyRef"] == {**shared, "optional": True}
    assert coturn["TURN_SECRET"]["secretKeyRef"] == shared  # coturn does not start without it
    assert gateway["TURN_URLS"]["secretKeyRef"] == {"name": TURN_SECRET, "key": "urls",
                                                    "optional": True}
    args = coturn_args(manifests)
    assert "--use-auth-secret" in args
    assert args["--static-auth-secret"] == "$(TURN_SECRET)"  # Kubernetes' substitution from env
    assert args["--external-ip"] == "$(TURN_EXTERNAL_IP)" and "TURN_EXTERNAL_IP" in coturn
    # with the Secret in place, the gateway takes what it holds
    config = load([], {"TURN_SECRET": "s" * 32, "TURN_URLS": "turn:203.0.113.10:3478"})
    assert config.turn_urls == ("turn:203.0.113.10:3478",)


def test_coturn_serves_on_its_nodes_network_at_3478_and_its_relay_ports(
        manifests: list[dict[str, Any]]) -> None:
    pod = find(manifests, "Deployment", "aiconexus-turn")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert find(manifests, "Deployment", "aiconexus-turn")["spec"]["strategy"]["type"] == \
        "Recreate"  # two pods on one node's network would fight over 3478
    ports = {(p["containerPort"], p["protocol"]) for p in coturn_container(manifests)["ports"]}
    assert ports == {(3478, "UDP"), (3478, "TCP")}
    args = coturn_args(manifests)
    assert args["--listening-port"] == "3478"
    assert 1024 < int(args["--min-port"]) < int(args["--max-port"]) <= 65535
    assert not [m for m in manifests if m["kind"] == "Service" and "turn" in m["metadata"]["name"]]


def test_coturn_runs_with_the_compose_profiles_options(manifests: list[dict[str, Any]]) -> None:
    """One coturn configuration: the manifest's options are the compose `turn` profile's."""
    from .helpers import COMPOSE_FILE

    compose = load_yaml(COMPOSE_FILE)["services"]["coturn"]
    assert coturn_container(manifests)["image"] == compose["image"]
    names = {str(option).partition("=")[0] for option in compose["command"]}
    assert set(coturn_args(manifests)) == names
    mounts = {m["mountPath"] for m in coturn_container(manifests)["volumeMounts"]}
    assert mounts == set(compose["tmpfs"])
