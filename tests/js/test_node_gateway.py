"""The JavaScript client in Node through the real gateway (a subprocess on an ephemeral port): with a
Python SDK agent and with another Node agent, verified both ways; failures reported, not delivered;
pacing under the announced limit; a refused upgrade; reconnection after a gateway restart."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient
from aiconexus_gateway.messages import build
from tests.js.node_tools import REPO, NodeAgent, node, node_major, node_modules
from tests.support.process import GatewayProcess


async def python_agent(gateway: GatewayProcess) -> GatewayClient:
    client = GatewayClient(gateway.ws_url, DIDKey.generate())
    await client.connect()
    return client


async def node_agent(gateway: GatewayProcess, **options: object) -> tuple[NodeAgent, dict[str, object]]:
    agent = await NodeAgent.start()
    info = await agent.ok("connect", url=gateway.ws_url, options=options)
    return agent, info


PAYLOAD = {"text": "héllo 😀 \u2028 \"quoted\" \\ /", "n": 1.5, "tiny": 1e-7,
           "nested": {"b": [1, {"a": None}], "é": True, "😀": 0.1 + 0.2}}


@pytest.mark.gen_test(timeout=60)
async def test_node_and_python_agents_exchange_verified_messages(node_gateway: GatewayProcess) -> None:
    python = await python_agent(node_gateway)
    agent, info = await node_agent(node_gateway, metadata={"name": "node"},
                                   expectedGatewayDid=node_gateway.did)
    try:
        assert info["gatewayDid"] == node_gateway.did
        assert str(info["did"]).startswith("did:key:z6Mk")
        assert info["rateLimit"] == {"messagesPerSecond": 100, "burst": 200}
        sent = await agent.ok("send", to=python.did, type="INTENT", payload=PAYLOAD)
        message = await python.receive(timeout=10)  # verified by the SDK against the Node agent's DID
        assert (message.sender, message.id, message.type) == (info["did"], sent["id"], "INTENT")
        assert message.payload == PAYLOAD
        # an integer beyond 2**53 from Python: signed as its double, which is what Node verifies
        reply_id = await python.send(str(info["did"]), "EXEC_RESPONSE",
                                     {"result": PAYLOAD, "big": 2**60 + 1}, correlation_id=message.id)
        received = (await agent.ok("receive"))["message"]
        assert received["id"] == reply_id and received["correlationId"] == sent["id"]
        assert received["sender"] == python.did and received["payload"]["result"] == PAYLOAD
        assert float(received["payload"]["big"]) == 2.0**60
        assert (await agent.ok("ping"))["rtt"] < 5
        assert (await agent.ok("state"))["invalidMessages"] == 0
    finally:
        await agent.stop()
        await python.close()


@pytest.mark.gen_test(timeout=60)
async def test_node_to_node_and_the_gateway_errors(node_gateway: GatewayProcess) -> None:
    alice, alice_info = await node_agent(node_gateway)
    bob, bob_info = await node_agent(node_gateway)
    try:
        sent = await alice.ok("send", to=bob_info["did"], type="OFFER", payload={"sdp": "v=0\r\n"})
        offer = (await bob.ok("receive"))["message"]
        assert offer["sender"] == alice_info["did"] and offer["id"] == sent["id"]
        await bob.ok("send", to=alice_info["did"], type="ANSWER", payload={"sdp": "v=0"},
                     correlationId=offer["id"])
        answer = (await alice.ok("receive"))["message"]
        assert answer["type"] == "ANSWER" and answer["correlationId"] == sent["id"]
        nobody = DIDKey.generate().did
        lost = await alice.ok("send", to=nobody, type="INTENT", payload={})
        error = (await alice.ok("receive"))["message"]
        assert (error["type"], error["errorCode"]) == ("ERROR", "UNKNOWN_AGENT")
        assert error["correlationId"] == lost["id"]
        assert error["sender"] == node_gateway.did
        refused = await alice.call("send", to="did:key:z6MkeTG3bFFSLYVU7VqhgZxqr6YzpaGrQtFMh1uvqGy1vDnP",
                                   type="INTENT", payload={})
        assert not refused["ok"] and refused["code"] == "INVALID_DID"
    finally:
        await alice.stop()
        await bob.stop()


@pytest.mark.gen_test(timeout=60)
async def test_sends_not_awaited_one_by_one_still_leave_in_call_order(
        node_gateway: GatewayProcess) -> None:
    python = await python_agent(node_gateway)
    agent, _ = await node_agent(node_gateway)
    try:
        started = await agent.ok("sendAll", to=python.did, count=150)
        for index, message_id in enumerate(started["ids"]):
            message = await python.receive(timeout=10)
            assert (message.payload, message.id) == ({"n": index}, message_id)
    finally:
        await agent.stop()
        await python.close()


@pytest.fixture
def lenient_gateway() -> Iterator[GatewayProcess]:
    """A gateway that forwards without verifying (VERIFY_SIGNATURES=handshake): recipients must."""
    node()
    node_modules()
    process = GatewayProcess("--verify-signatures", "handshake")
    yield process
    process.stop(signal.SIGKILL)


@pytest.mark.gen_test(timeout=60)
async def test_a_message_that_does_not_verify_is_reported_and_never_delivered(
        lenient_gateway: GatewayProcess) -> None:
    key = DIDKey.generate()
    python = GatewayClient(lenient_gateway.ws_url, key)
    await python.connect()
    agent, info = await node_agent(lenient_gateway)
    try:
        forged, forged_id = build(key, "EXEC_REQUEST", str(info["did"]), {"method": "pay", "amount": 1},
                                  now=time.time())
        await python.send_raw(forged.replace('"amount":1', '"amount":1000'))
        honest_id = await python.send(str(info["did"]), "EXEC_REQUEST", {"method": "pay", "amount": 2})
        invalid = await agent.event("invalid")
        assert invalid["reason"].startswith("INVALID_SIGNATURE") and forged_id in invalid["text"]
        delivered = (await agent.ok("receive"))["message"]
        assert delivered["id"] == honest_id and delivered["payload"]["amount"] == 2
        assert (await agent.ok("state"))["invalidMessages"] == 1
    finally:
        await agent.stop()
        await python.close()


@pytest.fixture
def limited_gateway() -> Iterator[GatewayProcess]:
    node()
    node_modules()
    process = GatewayProcess("--rate-limit", "200", "--rate-burst", "10")
    yield process
    process.stop(signal.SIGKILL)


@pytest.mark.gen_test(timeout=60)
async def test_pacing_keeps_a_burst_under_the_announced_limit(limited_gateway: GatewayProcess) -> None:
    python = await python_agent(limited_gateway)
    agent, info = await node_agent(limited_gateway)
    try:
        assert info["rateLimit"] == {"messagesPerSecond": 200, "burst": 10}
        burst = await agent.ok("sendMany", to=python.did, count=300, wait=30)
        for index, message_id in enumerate(burst["ids"]):
            message = await python.receive(timeout=10)
            assert (message.id, message.payload) == (message_id, {"n": index})
        # at 90 % of 200/s after a burst of 9: at least (300 - 9) / 180 s
        assert burst["seconds"] >= (300 - 9) / 180 * 0.95, burst["seconds"]
        await agent.ok("ping")  # its PONG comes after any ERROR the burst earned
        nothing = await agent.call("receive", timeout=0)
        assert not nothing["ok"] and nothing["error"] == "TimeoutError", nothing  # no RATE_LIMITED
    finally:
        await agent.stop()
        await python.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_refused_upgrade_says_status_and_retry_after() -> None:
    node()
    node_modules()
    gateway = GatewayProcess(env={"MAX_CONNECTIONS_PER_IP": "1"})
    first, _ = await node_agent(gateway)
    second = await NodeAgent.start()
    try:
        refused = await second.call("connect", url=gateway.ws_url)
        assert not refused["ok"] and refused["error"] == "GatewayConnectionError", refused
        if node_major() < 22:  # the ws package shows the HTTP answer; Node 22's WebSocket does not
            assert refused["status"] == 429 and "TOO_MANY_CONNECTIONS" in refused["message"]
            assert refused["retryAfter"] is not None and refused["retryAfter"] > 0
        else:
            assert refused["status"] is None and "did not open" in refused["message"]
    finally:
        await second.stop()
        await first.stop()
        gateway.stop(signal.SIGKILL)


@pytest.mark.gen_test(timeout=90)
async def test_reconnects_after_a_gateway_restart_with_the_same_did(tmp_path: Path) -> None:
    node()
    node_modules()
    key_file = tmp_path / "gateway.key"
    DIDKey.generate().save(key_file)
    env = {"GATEWAY_KEY_FILE": str(key_file)}
    gateway = GatewayProcess(env=env)
    agent, info = await node_agent(gateway, reconnect={"initialDelay": 0.1, "maxDelay": 0.5},
                                   expectedGatewayDid=gateway.did)
    python: GatewayClient | None = None
    try:
        gateway.stop()  # SIGTERM: every agent gets 1001, which is worth coming back from
        lost = await agent.event("connection", state="disconnected")
        assert lost["code"] == 1001
        gateway = GatewayProcess(env=env, port=gateway.port)
        back = await agent.event("connection", state="reconnected", timeout=30)
        assert back["attempt"] >= 1
        state = await agent.ok("state")
        assert state["reconnects"] == 1 and state["state"] == "registered" and state["did"] == info["did"]
        python = await python_agent(gateway)
        message_id = await python.send(str(info["did"]), "INTENT", {"after": "restart"})
        message = (await agent.ok("receive"))["message"]
        assert message["id"] == message_id
    finally:
        await agent.stop()
        if python is not None:
            await python.close()
        gateway.stop(signal.SIGKILL)


def test_a_node_program_ends_when_its_client_is_closed(node_gateway: GatewayProcess) -> None:
    """No timer or socket of the client keeps Node running after close(): not the 60 s receive()
    timeout that a message beat, nor close()'s wait, nor the keepalive and liveness timers."""
    import subprocess
    script = f"""
        import {{ GatewayClient }} from '{(REPO / "clients/js/src/index.js").as_uri()}';
        const a = new GatewayClient('{node_gateway.ws_url}');
        const b = new GatewayClient('{node_gateway.ws_url}');
        await a.connect(); await b.connect();
        const waiting = b.receive({{ timeout: 60 }});
        await a.send(b.did, 'INTENT', {{}});
        await waiting;
        await a.close(); await b.close();
        console.log('closed');
    """
    started = time.monotonic()
    done = subprocess.run([node(), "--input-type=module", "-e", script], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0 and done.stdout.strip() == "closed", done.stderr
    assert time.monotonic() - started < 20


def test_the_node_agent_speaks_json_lines() -> None:
    """The driver itself: an unknown command is an error answer, not a crash."""
    import subprocess
    done = subprocess.run([node(), "tests/js/agent.mjs"], input='{"op": "nope"}\n', text=True,
                          capture_output=True, timeout=30, cwd=Path(__file__).resolve().parents[2])
    answer = json.loads(done.stdout.splitlines()[0])
    assert answer["ok"] is False and "unknown op nope" in answer["message"]
