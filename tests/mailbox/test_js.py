"""The JavaScript client's mailbox (clients/js/src/mailbox.js) through the real gateway, with a
Python SDK agent on the other side: ttl, QUEUED, delivery on connect, ACK, receipts both ways."""

from __future__ import annotations

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient
from tests.js.node_tools import NodeAgent
from tests.support.process import GatewayProcess
from tests.support.sdk import next_of_type


@pytest.mark.gen_test(timeout=60)
async def test_node_and_python_agents_use_the_mailbox_both_ways(
        node_gateway: GatewayProcess) -> None:
    python = GatewayClient(node_gateway.ws_url, DIDKey.generate())
    await python.connect()
    seed = "07" * 32
    agent = await NodeAgent.start()
    try:
        info = await agent.ok("connect", url=node_gateway.ws_url, seed=seed)
        node_did = str(info["did"])
        await agent.ok("close")
        # Python -> the Node agent while it is offline; it gets them when it comes back, in order
        ids = [await python.send(node_did, "INTENT", {"n": n}, ttl=60) for n in range(3)]
        for _ in ids:
            await next_of_type(python, "QUEUED")
        await agent.stop()
        agent = await NodeAgent.start()
        await agent.ok("connect", url=node_gateway.ws_url, seed=seed)
        got = [(await agent.ok("receive"))["message"] for _ in ids]
        assert [m["id"] for m in got] == ids and [m["payload"]["n"] for m in got] == [0, 1, 2]
        for message_id in ids:  # receive() returned each: the Node client acknowledged it
            assert await python.receipt(message_id, timeout=10) == "DELIVERED"

        # the Node agent -> Python, online: delivered, acknowledged by the SDK, receipt awaited
        sent = await agent.ok("send", to=python.did, type="EXEC_REQUEST", payload={"x": 1}, ttl=30)
        assert (await next_of_type(python, "EXEC_REQUEST")).id == sent["id"]
        answer = await agent.ok("receipt", id=sent["id"])
        assert answer["status"] == "DELIVERED" and answer["duplicates"] == 0

        view = await agent.ok("mailbox", rules={"blocked": [python.did]})
        assert view["mailbox"]["blocked"] == [python.did]
        refused = await python.send(node_did, "INTENT", {}, ttl=30)
        error = await next_of_type(python, "ERROR")
        assert (error.error_code, error.correlation_id) == ("MAILBOX_REFUSED", refused)
        bad = await agent.call("send", to=python.did, type="INTENT", payload={}, ttl=0)
        assert not bad["ok"] and "ttl" in bad["message"]
    finally:
        await agent.stop()
        await python.close()
