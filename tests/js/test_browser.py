"""The JavaScript client in a real browser: headless Chromium (Debian's /usr/bin/chromium, driven by
playwright-core) opens a page served on localhost, registers with the real gateway
(ALLOWED_ORIGINS = the page's origin) and exchanges verified messages with a Python SDK agent; a
gateway that does not allow the page's origin shows the page its documented close code and reason.
A missing Chromium fails under CI (scripts/ensure-test-tools.sh installs it) and skips elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from aiconexus_gateway.client import DIDKey, GatewayClient, Message
from tests.conftest import require_tool
from tests.js.node_tools import CLIENT, HERE, REPO, node, node_modules
from tests.support.process import GatewayProcess

CHROMIUM = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
PAGE = "/test/browser/index.html"
EXAMPLE = "/examples/browser.html"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def page_server() -> Iterator[str]:
    """clients/js served over HTTP on 127.0.0.1:<ephemeral>; its origin."""
    require_tool(Path(CHROMIUM).exists() or shutil.which("chromium") is not None,
                 f"Chromium is needed for the browser tests ({CHROMIUM}; Debian package chromium)")
    node()
    node_modules()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(CLIENT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


async def in_browser(origin: str, scenario: str, page: str = PAGE, **arguments: Any) -> dict[str, Any]:
    """Run `scenario` of tests/js/browser_driver.mjs in `page` of `origin`; its result."""
    process = await asyncio.create_subprocess_exec(
        node(), str(HERE / "browser_driver.mjs"), origin + page, scenario, json.dumps(arguments),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO,
        env={**os.environ, "CHROMIUM_PATH": CHROMIUM if Path(CHROMIUM).exists() else "chromium"})
    stdout, stderr = await asyncio.wait_for(process.communicate(), 80)
    assert process.returncode == 0, f"the browser driver failed:\n{stdout.decode()}\n{stderr.decode()}"
    output = json.loads(stdout.decode().strip().splitlines()[-1])
    result: dict[str, Any] = output["result"]
    assert "failed" not in result, f"{result['failed']}\npage console:\n" + "\n".join(output["console"])
    return result


@pytest.mark.gen_test(timeout=120)
async def test_a_page_registers_and_exchanges_verified_messages_with_a_python_agent(
        page_server: str) -> None:
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": page_server})
    python = GatewayClient(gateway.ws_url, DIDKey.generate())
    seen: list[Message] = []
    listed: list[dict[str, Any]] = []
    answered = asyncio.Event()

    @python.on_message
    async def on_message(message: Message) -> None:
        seen.append(message)
        if message.type == "INTENT":  # from the page: reply, then ask it something
            response = await AsyncHTTPClient().fetch(f"{gateway.http_url}/agents/{message.sender}")
            listed.append(json.loads(response.body))
            await python.send(message.sender, "INTENT", {"accepted": True, "echo": message.payload},
                              correlation_id=message.id)
            await python.send(message.sender, "EXEC_REQUEST",
                              {"method": "echo", "params": {"x": [1, 2.5, "ü"], "y": None}})
        elif message.type == "EXEC_RESPONSE":
            await python.send(message.sender, "INTENT", {"thanks": True}, correlation_id=message.id)
            answered.set()

    await python.connect()
    try:
        result = await in_browser(page_server, "exchange", gateway=gateway.ws_url, peer=python.did)
        await asyncio.wait_for(answered.wait(), 10)
    finally:
        await python.close()
        gateway.stop(signal.SIGKILL)
    browser_did = result["did"]
    assert "HeadlessChrome" in result["userAgent"] or "Chrome" in result["userAgent"]
    assert result["origin"] == page_server and result["gatewayDid"] == gateway.did
    assert result["invalid"] == [] and result["restoredDid"] == browser_did
    # what the Python agent got from the page: verified by the SDK against the page's DID
    intent, response = seen
    assert (intent.sender, intent.id, intent.type) == (browser_did, result["sentId"], "INTENT")
    assert intent.payload == {"intent": "hello", "text": "from the browser é😀", "n": 0.5}
    assert response.type == "EXEC_RESPONSE" and response.correlation_id == result["request"]["id"]
    assert response.payload == {"result": {"x": [1, 2.5, "ü"], "y": None}}
    # what the page got from the Python agent: verified in the browser against its DID
    assert result["reply"] == {"id": result["reply"]["id"], "type": "INTENT", "sender": python.did,
                               "payload": {"accepted": True, "echo": intent.payload},
                               "correlationId": result["sentId"]}
    assert result["request"]["payload"] == {"method": "echo", "params": {"x": [1, 2.5, "ü"], "y": None}}
    assert result["done"]["payload"] == {"thanks": True}
    # the gateway listed the page as a registered agent, with its metadata
    assert listed[0]["did"] == browser_did and listed[0]["metadata"] == {"name": "browser"}
    assert result["rtt"] < 5 and result["state"] == "closed" and result["closeCode"] == 1000


@pytest.mark.gen_test(timeout=120)
async def test_a_page_from_an_origin_the_gateway_does_not_allow_sees_4403_and_why(
        page_server: str) -> None:
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": "https://app.example"})
    try:
        result = await in_browser(page_server, "refused", gateway=gateway.ws_url)
        gateway.wait_for_output("origin " + page_server)  # the gateway logs the refused origin
    finally:
        gateway.stop(signal.SIGKILL)
    raw = result["raw"]
    assert (raw["code"], raw["reason"]) == (4403, "origin not allowed (see ALLOWED_ORIGINS)")
    error = json.loads(raw["frames"][0])
    assert error["type"] == "ERROR" and error["payload"]["details"]["origin"] == page_server
    assert result["connected"] is False and result["error"] == "GatewayError"
    assert (result["closeCode"], result["closeReason"]) == (4403, "origin not allowed (see ALLOWED_ORIGINS)")
    assert result["details"]["origin"] == page_server and "ALLOWED_ORIGINS" in result["message"]


@pytest.mark.gen_test(timeout=120)
async def test_the_example_page_of_the_readme_talks_to_the_readmes_python_agent(page_server: str) -> None:
    """clients/js/README.md's "Try it": the example page registers, shows its DID, sends an INTENT
    to a Python agent that answers as the README's does, and shows the verified answer."""
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": page_server})
    python = GatewayClient(gateway.ws_url)

    @python.on_message
    async def answer(message: Message) -> None:
        if message.type == "INTENT" and message.sender != python.gateway_did:
            await python.send(message.sender, "INTENT", {"echo": message.payload},
                              correlation_id=message.id)

    await python.connect()
    try:
        result = await in_browser(page_server, "example", page=EXAMPLE, gateway=gateway.ws_url,
                                  peer=python.did)
    finally:
        await python.close()
        gateway.stop(signal.SIGKILL)
    assert result["did"].startswith("did:key:z6Mk") and result["stored"] is True
    assert f"registered with gateway {gateway.did}" in result["log"]
    assert (f'INTENT from {python.did}: {{"echo":{{"intent":"hello","from":"a browser"}}}}'
            in result["log"]), result["log"]
    assert "dropped" not in result["log"]
