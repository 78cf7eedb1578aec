"""The JavaScript client's discovery, presence and mailbox redelivery (issues 15 and 14) in Node,
through the real gateway (a subprocess on an ephemeral port), with Python SDK agents.

Some Node agents connect through `Relay`, a WebSocket proxy in front of the gateway that holds
the gateway's key: it can break the connection (a network failure the client comes back from),
swallow the agent's ACKs (acknowledgements lost on the way), and alter DISCOVERED answers and sign
them again as the gateway (a gateway that lies about other agents' cards)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tornado.web
import tornado.websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.websocket import WebSocketClientConnection, websocket_connect

from aiconexus_gateway.client import DIDKey, GatewayClient
from aiconexus_gateway.messages import sign_fields
from tests.js.node_tools import NodeAgent, node, node_modules
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

TRANSLATOR = {"name": "Translator", "description": "fr <-> en", "version": "2.1",
              "capabilities": ["translate", "llm:chat"], "provider": {"organization": "ACME"}}
NODE_CARD = {"name": "Node summarizer", "capabilities": ["summarize"], "iconUrl": "https://x.example/i.png"}
RECONNECT = {"initialDelay": 0.05, "maxDelay": 0.2}


class Relay:
    """Frames both ways between agents and the gateway, their types recorded (`seen`: direction
    "up" to the gateway or "down" to the agent, and type)."""

    def __init__(self, upstream: str, gateway_key: DIDKey) -> None:
        self.upstream = upstream
        self.gateway_key = gateway_key
        self.seen: list[tuple[str, str]] = []
        self.swallow: str | None = None  # a type the agent sends that is not passed on
        self.tamper = False  # alter DISCOVERED answers (and sign them as the gateway)
        self.connections: set[_Connection] = set()
        sockets = bind_sockets(0, "127.0.0.1")
        self.url = f"ws://127.0.0.1:{sockets[0].getsockname()[1]}/ws"
        self.server = HTTPServer(tornado.web.Application([("/ws", _Connection, {"relay": self})]))
        self.server.add_sockets(sockets)

    def count(self, direction: str, type: str) -> int:
        return self.seen.count((direction, type))

    def drop(self) -> None:
        """Break every connection (the gateway sees its agents leave; the agents reconnect)."""
        for connection in list(self.connections):
            connection.close(1001, "relay going away")

    def down(self, frame: str) -> str:
        message = json.loads(frame)
        self.seen.append(("down", message["type"]))
        if not self.tamper or message["type"] != "DISCOVERED" or not message["payload"]["agents"]:
            return frame
        genuine = message["payload"]["agents"][0]
        altered = {**genuine, "card": {**genuine["card"], "name": "Evil Translator"}}
        forged = {**genuine, "did": DIDKey.generate().did}  # another DID, the first one's proof
        message["payload"]["agents"] += [altered, forged]
        fields = {name: value for name, value in message.items() if name != "signature"}
        return sign_fields(self.gateway_key, fields)

    async def close(self) -> None:
        self.drop()
        self.server.stop()


class _Connection(tornado.websocket.WebSocketHandler):
    def initialize(self, relay: Relay) -> None:
        self.relay = relay
        self.gateway: WebSocketClientConnection | None = None
        self.pump: asyncio.Future[None] | None = None

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0] if subprotocols else None

    async def open(self, *args: str, **kwargs: str) -> None:
        protocol = self.selected_subprotocol
        self.gateway = await websocket_connect(self.relay.upstream,
                                               subprotocols=[protocol] if protocol else None)
        self.relay.connections.add(self)
        self.pump = asyncio.ensure_future(self._from_gateway(self.gateway))

    async def _from_gateway(self, gateway: WebSocketClientConnection) -> None:
        while (frame := await gateway.read_message()) is not None:
            if self.ws_connection is None:
                break
            await self.write_message(self.relay.down(str(frame)))
        self.close()

    async def on_message(self, message: str | bytes) -> None:
        self.relay.seen.append(("up", json.loads(message)["type"]))
        if self.gateway is not None and json.loads(message)["type"] != self.relay.swallow:
            await self.gateway.write_message(message)

    def on_close(self) -> None:
        self.relay.connections.discard(self)
        if self.gateway is not None:
            self.gateway.close()


@pytest.fixture
def gateway_key(tmp_path: Path) -> DIDKey:
    key = DIDKey.generate()
    key.save(tmp_path / "gateway.key")
    return key


@pytest.fixture
def gateway(tmp_path: Path, gateway_key: DIDKey) -> Iterator[GatewayProcess]:
    node()
    node_modules()
    process = GatewayProcess("--key-file", str(tmp_path / "gateway.key"), "--presence-coalesce", "0.2")
    yield process
    process.stop(signal.SIGKILL)


async def _node(url: str, gateway: GatewayProcess, **options: Any) -> tuple[NodeAgent, str]:
    agent = await NodeAgent.start()
    info = await agent.ok("connect", url=url, options={"expectedGatewayDid": gateway.did, **options})
    return agent, str(info["did"])


async def _python(gateway: GatewayProcess, key: DIDKey | None = None, **options: Any) -> GatewayClient:
    client = GatewayClient(gateway.ws_url, key or DIDKey.generate(), **options)
    await client.connect()
    return client


async def _until(condition: Callable[[], object], what: str) -> None:
    await wait_until(condition, 20, what)


@pytest.mark.gen_test(timeout=60)
async def test_node_discovers_a_python_agents_card_and_drops_what_a_lying_gateway_forged(
        gateway: GatewayProcess, gateway_key: DIDKey) -> None:
    relay = Relay(gateway.ws_url, gateway_key)
    translator = await _python(gateway, card=TRANSLATOR)
    hidden = await _python(gateway, card=TRANSLATOR, unlisted=True)
    agent, node_did = await _node(gateway.ws_url, gateway, card=NODE_CARD)
    liar: NodeAgent | None = None
    try:
        page = (await agent.ok("discover", query={"capability": "translate"}))["page"]
        assert page["agents"] == [{"did": translator.did, "card": TRANSLATOR, "name": "Translator",
                                   "capabilities": ["translate", "llm:chat"]}]
        assert (page["rejected"], page["next"], page["scope"]) == (0, None, "instance")
        by_name = (await agent.ok("discover", query={"namePrefix": "trans", "limit": 5}))["page"]
        assert [entry["did"] for entry in by_name["agents"]] == [translator.did]
        by_did = (await agent.ok("discover", query={"dids": [hidden.did, node_did]}))["page"]
        assert [entry["did"] for entry in by_did["agents"]] == [node_did]  # the unlisted never
        bad = await agent.call("discover", query={"limit": 1000})
        assert not bad["ok"] and bad["code"] == "MALFORMED_MESSAGE" and "limit" in bad["message"]

        # the Python SDK checks the card the Node client signed in its REGISTER
        found = await translator.discover("summarize")
        assert [(a.did, a.card) for a in found.agents] == [(node_did, NODE_CARD)]
        assert found.rejected == 0

        # a gateway that lies: an altered card and a card claimed for another DID, signed by it
        relay.tamper = True
        liar, _ = await _node(relay.url, gateway)
        lied = (await liar.ok("discover", query={"capability": "translate"}))["page"]
        assert relay.count("down", "DISCOVERED") == 1
        assert [entry["did"] for entry in lied["agents"]] == [translator.did]
        assert lied["agents"][0]["card"] == TRANSLATOR
        assert lied["rejected"] == 2
        assert [problem["reason"] for problem in lied["problems"]] == [
            "the card is not the one its agent signed",
            "the card's proof is not a REGISTER signed by the agent"]
        assert "dropped 2 discovered agents whose card did not verify" in liar.stderr
    finally:
        await agent.stop()
        if liar is not None:
            await liar.stop()
        await relay.close()
        await translator.close()
        await hidden.close()


@pytest.mark.gen_test(timeout=60)
async def test_node_watches_presence_and_watches_again_after_a_reconnection(
        gateway: GatewayProcess, gateway_key: DIDKey) -> None:
    relay = Relay(gateway.ws_url, gateway_key)
    bob_key = DIDKey.generate()
    agent, _ = await _node(relay.url, gateway, reconnect=RECONNECT)
    bob: GatewayClient | None = None
    try:
        assert (await agent.ok("watch", dids=[bob_key.did]))["states"] == {bob_key.did: "offline"}
        bob = await _python(gateway, bob_key)
        await agent.event("presence", did=bob_key.did, change="online", state="online")
        await bob.close()
        await agent.event("presence", did=bob_key.did, change="offline", state="offline")

        # the connection breaks: the client comes back and watches bob again by itself
        answers = relay.count("down", "WATCHING")
        agent.events.clear()
        relay.drop()
        await agent.event("connection", state="reconnected")
        await _until(lambda: relay.count("down", "WATCHING") > answers, "the WATCH sent again")
        assert (await agent.ok("state"))["watching"] == [bob_key.did]
        bob = await _python(gateway, bob_key)
        await agent.event("presence", did=bob_key.did, change="online")

        await agent.ok("unwatch", dids=[bob_key.did])
        assert (await agent.ok("state"))["watching"] == []
        bad = await agent.call("watch", dids=["did:key:nope"])
        assert not bad["ok"] and bad["code"] == "INVALID_DID"
    finally:
        await agent.stop()
        if bob is not None:
            await bob.close()
        await relay.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_mailbox_message_whose_ack_was_lost_comes_again_but_reaches_the_app_once(
        gateway: GatewayProcess, gateway_key: DIDKey) -> None:
    relay = Relay(gateway.ws_url, gateway_key)
    python = await _python(gateway)
    agent, node_did = await _node(relay.url, gateway, reconnect=RECONNECT)
    try:
        relay.swallow = "ACK"  # the agent acknowledges; the gateway never hears it
        ids = [await python.send(node_did, "INTENT", {"n": n}, ttl=60) for n in range(2)]
        got = [(await agent.ok("receive"))["message"]["id"] for _ in ids]
        assert got == ids
        await _until(lambda: relay.count("up", "ACK") == 2, "the two ACKs (swallowed)")

        relay.swallow = None
        agent.events.clear()
        relay.drop()  # the gateway writes both again on the next registration
        await agent.event("connection", state="reconnected")
        third = await python.send(node_did, "INTENT", {"n": 2}, ttl=60)
        message = (await agent.ok("receive"))["message"]
        assert message["id"] == third  # the repeats were acknowledged, not handed on
        for message_id in [*ids, third]:
            assert await python.receipt(message_id, timeout=10) == "DELIVERED"
        assert (await agent.ok("state"))["duplicates"] == 2
    finally:
        await agent.stop()
        await python.close()
        await relay.close()
