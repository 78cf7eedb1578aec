"""The example scripts work against a real gateway process, and fail clearly without one.

The gateway runs as a subprocess (tests.support.process.GatewayProcess) because each example is
itself a subprocess that needs the gateway served while the test waits for it.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.process import GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = ("two_clients.py", "message_exchange.py", "raw_client.py")
STARTUP_TIMEOUT = 15.0
RUN_TIMEOUT = 30.0
ADMIN_TOKEN = "example-admin-token-0123456789"


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    """The ws:// URL of a real `aiconexus-gateway` process on an ephemeral port."""
    yield from serve_gateway({})


@pytest.fixture(scope="module")
def protected_gateway_url() -> Iterator[str]:
    """Like `gateway_url`, with ADMIN_TOKEN protecting /agents."""
    yield from serve_gateway({"ADMIN_TOKEN": ADMIN_TOKEN})


def serve_gateway(extra_env: dict[str, str]) -> Iterator[str]:
    """Run the gateway process with `extra_env`; yield its ws:// URL; SIGTERM it afterwards."""
    inherited = {name: value for name, value in os.environ.items() if name != "ADMIN_TOKEN"}
    process = GatewayProcess("--host", "127.0.0.1", env={**inherited, "LOG_LEVEL": "WARNING",
                                                         **extra_env},
                             inherit_env=False, cwd=ROOT, startup_timeout=STARTUP_TIMEOUT)
    try:
        yield process.ws_url
    finally:
        process.stop()


def run_example(script: str, *args: str, block_package: bool = False,
                admin_token: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(EXAMPLES / script), *args]
    if block_package:  # prove the script needs nothing from aiconexus_gateway
        command = [sys.executable, "-c",
                   "import runpy, sys; sys.modules['aiconexus_gateway'] = None; "
                   "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')",
                   str(EXAMPLES / script), *args]
    env = {name: value for name, value in os.environ.items() if name != "ADMIN_TOKEN"}
    if admin_token is not None:
        env["ADMIN_TOKEN"] = admin_token
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)


def closed_port_url() -> str:
    return f"ws://127.0.0.1:{free_port()}/ws"


def assert_in_order(text: str, steps: list[str]) -> None:
    position = 0
    for step in steps:
        found = text.find(step, position)
        assert found >= 0, f"{step!r} missing (or out of order) in:\n{text}"
        position = found + len(step)


def test_two_clients_are_listed_in_agents_then_leave(gateway_url: str) -> None:
    result = run_example("two_clients.py", "--url", gateway_url)
    assert result.returncode == 0, result.stderr
    assert_in_order(result.stdout, [
        "[1] alice connected as did:key:z6Mk",
        "[2] bob connected as did:key:z6Mk",
        "[3] GET /agents lists alice and bob",
        "alice's metadata: {'name': 'alice'}",
        "[4] alice and bob closed their connections",
        "[5] GET /agents no longer lists them",
        "OK: two agents connected, were listed, and left",
    ])


def test_two_clients_reads_agents_with_the_admin_token(protected_gateway_url: str) -> None:
    without = run_example("two_clients.py", "--url", protected_gateway_url, admin_token=None)
    assert without.returncode == 1
    assert "401" in without.stderr
    result = run_example("two_clients.py", "--url", protected_gateway_url, admin_token=ADMIN_TOKEN)
    assert result.returncode == 0, result.stderr
    assert "[5] GET /agents no longer lists them" in result.stdout


def test_message_exchange_delivers_and_verifies_offer_answer_ice(gateway_url: str) -> None:
    result = run_example("message_exchange.py", "--url", gateway_url)
    assert result.returncode == 0, result.stderr
    assert_in_order(result.stdout, [
        "[1] alice registered as did:key:z6Mk",
        "[2] bob registered as did:key:z6Mk",
        "[3] alice -> bob  OFFER",
        "bob received the OFFER; signature verified against alice's did:key",
        "[4] bob -> alice  ANSWER",
        "alice received the ANSWER; signature verified against bob's did:key",
        "[5] alice -> bob  ICE_CANDIDATE",
        "bob received the ICE_CANDIDATE; signature verified against alice's did:key",
        "[6] both agents disconnected",
        "OK: 3 of 3 messages arrived and verified",
    ])


def test_message_exchange_lingers_trickling_candidates_for_the_monitor(gateway_url: str) -> None:
    result = run_example("message_exchange.py", "--url", gateway_url, "--linger", "1.2")
    assert result.returncode == 0, result.stderr
    assert "lingering 1.2 s" in result.stdout
    summary = result.stdout.strip().splitlines()[-1]
    delivered = int(summary.split()[1])
    assert delivered >= 5 and summary == f"OK: {delivered} of {delivered} messages arrived and verified"


def test_raw_client_works_from_the_document_without_the_package(gateway_url: str) -> None:
    result = run_example("raw_client.py", "--url", gateway_url, block_package=True)
    assert result.returncode == 0, result.stderr
    assert_in_order(result.stdout, [
        "[1] alice registered as did:key:z6Mk",
        "CHALLENGE and REGISTERED verified",
        "[2] bob registered as did:key:z6Mk",
        "[3] alice -> bob OFFER",
        "bob received the identical frame; signature verified against alice's did:key",
        "[4] bob -> alice ANSWER",
        "[5] both agents sent UNREGISTER; the gateway closed them with 1000",
        "OK: raw client registered and exchanged verified messages",
    ])


def test_raw_client_imports_only_pynacl_base58_tornado_and_the_stdlib() -> None:
    tree = ast.parse((EXAMPLES / "raw_client.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    third_party = imported - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party == {"nacl", "base58", "tornado"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_fails_clearly_when_the_gateway_is_not_reachable(script: str) -> None:
    url = closed_port_url()
    result = run_example(script, "--url", url, "--timeout", "5")
    assert result.returncode != 0
    assert "cannot reach the gateway" in result.stderr
    assert url in result.stderr
    assert "Traceback" not in result.stderr
    assert "OK:" not in result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_help_documents_the_url_option(script: str) -> None:
    result = run_example(script, "--help")
    assert result.returncode == 0
    assert "--url" in result.stdout
    assert "ws://127.0.0.1:8000/ws" in result.stdout


# -- a new user's URLs: understood, or one clear line ----------------------------------------------

URL_FORMS = {"two_clients.py": "http://{}/ws", "message_exchange.py": "{}",
             "raw_client.py": "http://{}"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_understands_http_and_host_port_urls(script: str, gateway_url: str) -> None:
    """Regression: http://HOST:PORT/ws and HOST:PORT ended in a KeyError traceback."""
    host_port = gateway_url.split("://", 1)[1].rsplit("/", 1)[0]
    result = run_example(script, "--url", URL_FORMS[script].format(host_port),
                         block_package=script == "raw_client.py")
    assert result.returncode == 0, result.stderr
    assert "OK:" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8000/ws", "ws://127.0.0.1:99999/ws"])
def test_example_refuses_a_url_it_cannot_use_in_one_line(script: str, url: str) -> None:
    result = run_example(script, "--url", url)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: --url:") and len(result.stderr.splitlines()) == 1
    assert "expected ws://HOST:PORT/ws" in result.stderr


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_says_wss_against_a_plain_gateway_in_one_line(script: str,
                                                              gateway_url: str) -> None:
    url = gateway_url.replace("ws://", "wss://", 1)
    result = run_example(script, "--url", url, "--timeout", "1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert "use ws:// instead of wss://" in result.stderr


def test_ctrl_c_while_lingering_ends_with_one_line_not_a_traceback(gateway_url: str) -> None:
    command = [sys.executable, str(EXAMPLES / "message_exchange.py"), "--url", gateway_url,
               "--linger", "60"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if "lingering" in line:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=RUN_TIMEOUT)
    assert process.returncode == 130, err
    assert err.strip() == "interrupted" and "OK:" not in out
