"""Peer channels between a real browser and a Python aiortc agent, through the real gateway: headless
Chromium's own RTCPeerConnection (the JavaScript client, clients/js/src/peer.js) and the Python
SDK's (client/peer/) negotiate with the OFFER / ANSWER / ICE_CANDIDATE payloads of docs/protocol.md
section 19, open a DTLS data channel, check each other's identity proof, and carry messages both
ways in order; with ICE made to fail, the channel falls back to the gateway relay (encrypted end to
end). Chromium runs with --disable-features=WebRtcHideLocalIpsWithMdns (tests/js/browser_driver.mjs):
aiortc cannot resolve the `.local` names Chromium would otherwise give its host candidates."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
import time
from typing import Any

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient, Message
from aiconexus_gateway.client.peer.channel import PeerChannel
from aiconexus_gateway.client.peer.webrtc import WebRTCLink
from tests.js.node_tools import REPO
from tests.js.test_browser import in_browser, page_server  # noqa: F401 (a fixture)
from tests.support.process import GatewayProcess

COUNT = 200


def agent_message(n: int) -> str | bytes:
    return f"agent {n}" if n % 2 else bytes([n & 255, n >> 8, 1, 2])


async def python_side(python: GatewayClient, page_did: asyncio.Future[str], *, relay: bool,
                      record: dict[str, Any]) -> None:
    """What the Python agent does while the page runs its scenario."""
    incoming = python.peers()
    if relay:  # no candidate at all: ICE fails at once
        python.configure_peers(relay_only=True)
    browser = await asyncio.wait_for(page_did, 30)
    # the page's channel: COUNT messages each way, at the same time
    theirs: PeerChannel = await asyncio.wait_for(incoming.__anext__(), 30)
    record["accepted"] = (theirs.state, theirs.transport, theirs.peer_did, theirs.label)

    async def send_all() -> None:
        for n in range(COUNT):
            await theirs.send(agent_message(n))

    sending = asyncio.ensure_future(send_all())
    record["from_page"] = [await theirs.receive(timeout=15) for _ in range(COUNT)]
    await sending
    await asyncio.wait_for(theirs.wait_closed(), 15)  # the page closes it
    record["accepted_end"] = theirs.state
    if relay:
        return
    glare = await asyncio.wait_for(record["glare"], 30)
    record["glare"] = (glare.negotiation_id, await glare.receive(timeout=10), glare.transport)
    await asyncio.wait_for(glare.wait_closed(), 15)
    burst: PeerChannel = await asyncio.wait_for(incoming.__anext__(), 30)
    record["burst"] = [len(data) async for data in burst]  # until the page's close
    started = time.perf_counter()
    ours = await python.connect_peer(browser, "agent", timeout=20, fallback=relay,
                                     relay_only=relay or None)
    record["open_seconds"] = time.perf_counter() - started
    record["opened"] = (ours.state, ours.transport, ours.peer_did, ours.label)

    async def send_echoed() -> None:  # while reading the echoes: the relay's window is 64 frames
        for n in range(COUNT):
            await ours.send(agent_message(n))

    sending = asyncio.ensure_future(send_echoed())
    record["echoes"] = [await ours.receive(timeout=15) for _ in range(COUNT)]
    await sending
    await ours.close()


async def run(page_server: str, *, relay: bool) -> tuple[dict[str, Any], dict[str, Any], str]:  # noqa: F811
    settings = {"ALLOWED_ORIGINS": page_server}
    if relay:
        # RATE_LIMIT=0: the gateway charges a frame that took it over 2 ms more than one token
        # (ratelimit.py, COST_UNIT), which the senders' pacers cannot foresee; on this loaded
        # machine a relayed frame was then refused RATE_LIMITED now and then, and the relay (the
        # Python SDK's and this client's alike, protocol.md section 19) treats the gap as fatal.
        # Reported; this test is about the browser and Python speaking the relay to each other.
        settings["RATE_LIMIT"] = "0"
    gateway = GatewayProcess(env=settings)
    python = GatewayClient(gateway.ws_url, DIDKey.generate())
    page_did: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    glare_channel: asyncio.Future[PeerChannel] = asyncio.get_running_loop().create_future()
    record: dict[str, Any] = {"glare": glare_channel}

    async def glare(page: str) -> None:  # at once, as the page does
        try:
            channel = await python.connect_peer(page, "glare", timeout=20)
            await channel.send("glare from the agent")
            glare_channel.set_result(channel)
        except Exception as exc:
            glare_channel.set_exception(exc)

    @python.on_message
    def on_message(message: Message) -> None:
        if message.type == "INTENT" and "did" in message.payload and not page_did.done():
            page_did.set_result(message.payload["did"])
        elif message.type == "INTENT" and message.payload.get("glare"):
            record["glare_task"] = asyncio.ensure_future(glare(message.sender))  # kept alive

    python.on_peer_request(lambda did, label: label != "refused")
    await python.connect()
    try:
        side = asyncio.ensure_future(python_side(python, page_did, relay=relay, record=record))
        page = "/test/browser/e2e.html" if relay else "/test/browser/index.html"
        result = await in_browser(page_server, "peer", page=page, gateway=gateway.ws_url,
                                  peer=python.did, count=COUNT, relay=relay,
                                  absent=DIDKey.generate().did)
        await asyncio.wait_for(side, 10)
    finally:
        await python.close()
        gateway.stop(signal.SIGKILL)
    return result, record, python.did


def page_message(n: int) -> str | bytes:
    """The page's message n, as the agent receives it."""
    return f"page {n}" if n % 2 else bytes([n & 255, n >> 8, 0, 255])


def echoed(n: int) -> str | bytes:
    """What the page sends back for the agent's message n: text prefixed, bytes as they came."""
    message = agent_message(n)
    return f"echo {message}" if isinstance(message, str) else message


@pytest.mark.gen_test(timeout=120)
async def test_a_page_and_a_python_aiortc_agent_open_data_channels_both_ways(
        page_server: str) -> None:  # noqa: F811
    result, record, python_did = await run(page_server, relay=False)
    page_did = result["did"]
    assert result["invalid"] == [] and isinstance(result["iceServers"], list)  # the gateway's
    # the page called: its channel opened direct, authenticated, with the agent
    assert result["caller"] == {"state": "open", "transport": "direct", "peerDid": python_did,
                                "label": "browser"}
    assert record["accepted"] == ("open", "direct", page_did, "browser")
    assert record["from_page"] == [page_message(n) for n in range(COUNT)]  # in order, text, bytes
    assert result["fromAgent"] == [m if isinstance(m, str) else list(m)
                                   for m in map(agent_message, range(COUNT))]
    assert result["callerClosed"] == "closed" and record["accepted_end"] == "closed"
    # refused by the agent's policy, and a DID nobody holds: distinct errors
    assert result["refused"] == {"name": "PeerRefused", "code": "PEER_REFUSED",
                                 "reasonCode": "PEER_REFUSED"}
    assert result["unknown"] == {"name": "PeerUnknownAgent", "code": "UNKNOWN_AGENT",
                                 "reasonCode": None}
    # glare: both asked for "glare" at once and both hold the same channel (one negotiation)
    negotiation_id, got, transport = record["glare"]
    assert result["glare"] == {"negotiationId": negotiation_id, "got": "glare from the agent",
                               "transport": "direct"}
    assert (got, transport) == ("glare from the page", "direct")
    # the page sent 500 messages and closed at once: the agent read all 500 before the end
    assert record["burst"] == [1000] * 500
    # the agent called: the page accepted through peers() and echoed until the agent closed
    assert record["opened"] == ("open", "direct", page_did, "agent")
    assert result["callee"] == {"state": "open", "transport": "direct", "peerDid": python_did,
                                "label": "agent"}
    assert record["echoes"] == [echoed(n) for n in range(COUNT)]
    assert result["echoed"] == COUNT and result["calleeEnd"]["state"] == "closed"
    print(f"\nchannel open: page -> agent {result['openMs']:.0f} ms, "
          f"agent -> page {record['open_seconds'] * 1000:.0f} ms")


@pytest.mark.gen_test(timeout=120)
async def test_when_ice_fails_the_channel_falls_back_to_the_gateway_relay(
        page_server: str) -> None:  # noqa: F811
    """The agent gathers no candidate (relay-only, no TURN), so its ICE fails at once; the page
    allowed the fallback, so both switch to relay frames through the gateway (encrypted end to end:
    the page loads libsodium.js) and the same messages arrive in order, both ways."""
    result, record, python_did = await run(page_server, relay=True)
    assert result["invalid"] == []
    assert result["caller"] == {"state": "open", "transport": "relay", "peerDid": python_did,
                                "label": "browser"}
    assert record["accepted"] == ("open", "relay", result["did"], "browser")
    assert record["from_page"] == [page_message(n) for n in range(COUNT)]
    assert result["fromAgent"] == [m if isinstance(m, str) else list(m)
                                   for m in map(agent_message, range(COUNT))]
    assert result["callerClosed"] == "closed" and record["accepted_end"] == "closed"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.gen_test(timeout=120)
async def test_the_browser_example_talks_to_its_python_peer(page_server: str) -> None:  # noqa: F811
    """examples/browser as its README says: python_peer.py serves the page and answers it; the page
    registers, shows its DID, exchanges signed messages, opens a data channel to the agent and gets
    its echo, and accepts the channel the agent opens to it."""
    port = free_port()
    origin = f"http://localhost:{port}"
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": origin})
    peer = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "examples" / "browser" / "python_peer.py"), "--url",
        gateway.ws_url, "--http-port", str(port), "--open-channel",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO)
    printed: list[str] = []

    async def line_starting(prefix: str) -> str:
        assert peer.stdout is not None
        while True:
            line = (await asyncio.wait_for(peer.stdout.readline(), 20)).decode()
            assert line, "python_peer.py ended:\n" + "".join(printed)
            printed.append(line)
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    try:
        did = await line_starting("Python agent: ")
        url = await line_starting("page: ")
        assert url == f"{origin}/?peer={did}"
        result = await in_browser(origin, "examplePeer", page=url[len(origin):],
                                  gateway=gateway.ws_url, peer=did)
        await line_starting("channel: hello from a browser")
    finally:
        if peer.returncode is None:
            peer.send_signal(signal.SIGINT)
            await asyncio.wait_for(peer.wait(), 15)
        gateway.stop(signal.SIGKILL)
    assert result["prefilled"] == did and result["did"].startswith("did:key:z6Mk")
    echo = '{"echo":{"intent":"hello","text":"hello from a browser"}}'
    assert f"INTENT from {did}: {echo}" in result["log"]
    assert f"chat with {did}, direct" == result["channel"]
    assert "dropped" not in result["log"] and "Error" not in result["log"], result["log"]
    assert any(line.startswith(f"INTENT from {result['did']}") for line in printed)


@pytest.mark.gen_test(timeout=120)
async def test_a_page_refuses_an_agent_whose_signed_sdp_names_another_certificate(
        page_server: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """The agent signs an ANSWER whose fingerprint is not its DTLS certificate's (one hex pair
    changed): the browser's RTCPeerConnection refuses the certificate DTLS presents, and
    connectPeer fails with IDENTITY_MISMATCH instead of opening a channel."""
    local = WebRTCLink._local

    def tampered(self: WebRTCLink) -> tuple[dict[str, str], list[dict[str, Any]]]:
        description, candidates = local(self)
        description["sdp"] = re.sub(r"(a=fingerprint:sha-256 )([0-9A-F]{2})",
                                    lambda m: m.group(1) + ("00" if m.group(2) != "00" else "11"),
                                    description["sdp"])
        return description, candidates

    monkeypatch.setattr(WebRTCLink, "_local", tampered)
    gateway = GatewayProcess(env={"ALLOWED_ORIGINS": page_server})
    python = GatewayClient(gateway.ws_url, DIDKey.generate())
    python.on_peer(lambda channel: None)
    await python.connect()
    try:
        result = await in_browser(page_server, "tampered", gateway=gateway.ws_url, peer=python.did)
    finally:
        await python.close()
        gateway.stop(signal.SIGKILL)
    assert (result.get("name"), result.get("code")) == ("PeerIdentityError", "IDENTITY_MISMATCH"), result
    assert result["seconds"] < 15
