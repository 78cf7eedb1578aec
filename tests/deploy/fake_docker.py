"""The recording stand-in for `docker` (and `docker-compose`) used by the gateway-docker.sh tests.

No Docker engine runs where the tests run. The test writes a scenario (JSON) and puts a `docker`
wrapper that calls main() first on PATH. Every call is appended to a log (argv and the
environment variables that matter), and answered as the scenario says:

  daemon           false: `docker info` fails (engine not reachable)
  compose_plugin   false: `docker compose version` fails (no plugin)
  compose_version  what `compose version` reports (default 2.29.7)
  states           container states, one per `container inspect --format {{.State.Status}}`;
                   each is null (no such container) or {"status": ..., "health": ...|null}
  port             what `docker port` prints
  image_exists     whether `docker image inspect` finds the image
  exec_local       an environment: `docker exec CONTAINER CMD...` runs CMD here, with it
  run_local        true: `docker run [OPTIONS] IMAGE CMD...` runs CMD here, each `-v HOST:PATH`
                   played by replacing PATH with HOST in CMD's arguments (`python`: this Python)
  responses        {"<argv prefix>": {"stdout": ..., "stderr": ..., "rc": ...}} for the rest
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

LOGGED_ENV = ("LOG_LEVEL", "LOG_FORMAT", "GATEWAY_BIND")
# `docker run` options that take a value (the ones gateway-docker.sh uses, and a few more).
RUN_OPTIONS = {"-u", "--user", "-v", "--volume", "--network", "--security-opt", "--cap-drop",
               "--cap-add", "-e", "--env", "--name", "--tmpfs", "--entrypoint", "-w", "--workdir"}
# `compose` options that take a value and come before the subcommand.
COMPOSE_GLOBAL_OPTIONS = {"-f", "--file", "-p", "--project-name", "--profile", "--project-directory"}


def compose_words(args: list[str]) -> list[str]:
    """`compose` argv without its global options: ["up", "-d", "gateway"]."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in COMPOSE_GLOBAL_OPTIONS and not words:
            skip = True
        else:
            words.append(arg)
    return words


def respond(out: str = "", err: str = "", rc: int = 0) -> int:
    sys.stdout.write(out)
    sys.stderr.write(err)
    return rc


def next_state(scenario: dict[str, Any], state_file: str, advance: bool) -> Any:
    states = scenario.get("states", [None])
    index = -1
    if os.path.exists(state_file):
        with open(state_file, encoding="utf-8") as file:
            index = int(file.read())
    if advance or index < 0:
        index += 1
        with open(state_file, "w", encoding="utf-8") as file:
            file.write(str(index))
    return states[min(index, len(states) - 1)]


def local_command(run_args: list[str]) -> list[str]:
    """The command of `docker run RUN_ARGS`, its volume paths replaced by the host's."""
    mounts: dict[str, str] = {}
    index = 0
    while run_args[index].startswith("-"):
        option = run_args[index]
        if option in RUN_OPTIONS:
            if option in ("-v", "--volume"):
                host, container = run_args[index + 1].split(":")[:2]
                mounts[container] = host
            index += 2
        else:
            index += 1
    command = run_args[index + 1:]  # after the image
    if command[:1] == ["python"]:
        command[0] = sys.executable
    for i, arg in enumerate(command):
        for container, host in mounts.items():
            if arg == container or arg.startswith(container + "/"):
                command[i] = host + arg[len(container):]
    return command


def main(argv: list[str]) -> int:
    prog = os.path.basename(argv[0])
    args = argv[1:]
    scenario_path = os.environ["FAKE_DOCKER_SCENARIO"]
    with open(scenario_path, encoding="utf-8") as file:
        scenario: dict[str, Any] = json.load(file)
    with open(os.environ["FAKE_DOCKER_LOG"], "a", encoding="utf-8") as log:
        entry = {"prog": prog, "argv": args, "env": {k: os.environ.get(k) for k in LOGGED_ENV}}
        log.write(json.dumps(entry) + "\n")

    if prog == "docker-compose":
        args = ["compose", *args]
    words = ["compose", *compose_words(args[1:])] if args[:1] == ["compose"] else args
    joined = " ".join(words)

    if words[:2] == ["compose", "version"]:
        if prog == "docker" and not scenario.get("compose_plugin", True):
            return respond(err="docker: 'compose' is not a docker command.\n", rc=1)
        version = scenario.get("compose_version", "2.29.7")
        if "--short" in words:
            return respond(f"{version}\n")
        return respond(f"Docker Compose version v{version}\n")
    if words[:1] == ["info"]:
        if not scenario.get("daemon", True):
            return respond(err="Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
                           " Is the docker daemon running?\n", rc=1)
        return respond("Server Version: 27.3.1\n")
    if words[:2] == ["container", "inspect"]:
        fmt = args[args.index("--format") + 1] if "--format" in args else ""
        state = next_state(scenario, os.path.splitext(scenario_path)[0] + ".state",
                           advance=".State.Status" in fmt)
        if state is None:
            return respond(err=f"Error: No such object: {args[-1]}\n", rc=1)
        if ".State.Health" in fmt:
            return respond(f"{state.get('health') or 'none'}\n")
        return respond(f"{state['status']}\n")
    if words[:1] == ["port"]:
        return respond(scenario.get("port", "127.0.0.1:8000\n"))
    if words[:2] == ["image", "inspect"]:
        return 0 if scenario.get("image_exists", True) else respond(err="No such image\n", rc=1)
    if words[:1] == ["exec"] and "exec_local" in scenario:
        import subprocess  # only here: every other call stays quick to start

        rest = words[1:]
        while rest and rest[0].startswith("-"):  # exec's own options come before the container
            rest = rest[1:]
        command = rest[1:]
        if command[:1] == ["python"]:
            command[0] = sys.executable
        env = {**os.environ, **scenario["exec_local"]}
        return subprocess.run(command, env=env, check=False, timeout=30).returncode

    if words[:1] == ["run"] and scenario.get("run_local"):
        import subprocess

        return subprocess.run(local_command(words[1:]), check=False, timeout=30).returncode

    responses: dict[str, dict[str, Any]] = scenario.get("responses", {})
    for prefix in sorted(responses, key=len, reverse=True):
        if joined == prefix or joined.startswith(prefix + " "):
            answer = responses[prefix]
            return respond(answer.get("stdout", ""), answer.get("stderr", ""), answer.get("rc", 0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
