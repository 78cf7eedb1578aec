"""Peer channels between two SDK agents through a real gateway on loopback (aiortc, real UDP)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from aiconexus_gateway.client import GatewayClient
from aiconexus_gateway.client.peer import (
    PeerClosed,
    PeerICEFailed,
    PeerIdentityError,
    PeerRefused,
    PeerTimeout,
    PeerUnknownAgent,
)
from aiconexus_gateway.client.peer.channel import PeerChannel, PeerEvent
from aiconexus_gateway.client.peer.webrtc import WebRTCLink
from aiconexus_gateway.keys import DIDKey
from aiconexus_gateway.ratelimit import COST_UNIT
from aiconexus_gateway.server.app import Gateway
from tests.conftest import connect_agent
from tests.support.waiting import wait_until


async def pair(gateway: Gateway, label: str = "default", **options: Any
               ) -> tuple[GatewayClient, GatewayClient, PeerChannel, PeerChannel]:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    incoming = bob.peers()
    ours = await alice.connect_peer(bob.did, label, timeout=10, **options)
    theirs = await asyncio.wait_for(anext(incoming), 10)
    return alice, bob, ours, theirs


async def anext(iterator: AsyncIterator[PeerChannel]) -> PeerChannel:
    return await iterator.__anext__()


Data = str | bytes


async def exchange(ours: PeerChannel, theirs: PeerChannel, count: int,
                   message: Callable[[int], Data]) -> tuple[list[Data], list[Data], list[Data]]:
    """Both sides send `count` messages at once: what each received, and what was sent."""
    async def send_all(channel: PeerChannel) -> None:
        for n in range(count):
            await channel.send(message(n))

    async def receive_all(channel: PeerChannel) -> list[Data]:
        return [await channel.receive(timeout=10) for _ in range(count)]

    _, _, to_theirs, to_ours = await asyncio.gather(send_all(ours), send_all(theirs),
                                                    receive_all(theirs), receive_all(ours))
    return to_theirs, to_ours, [message(n) for n in range(count)]


@pytest.mark.gen_test(timeout=60)
async def test_two_agents_exchange_a_thousand_messages_each_way_in_order(gateway: Gateway) -> None:
    alice, bob, ours, theirs = await pair(gateway, "bulk")
    assert (ours.state, ours.transport, ours.peer_did, ours.label) == ("open", "direct", bob.did,
                                                                        "bulk")
    assert (theirs.state, theirs.peer_did, theirs.label) == ("open", alice.did, "bulk")
    count = 1000

    to_bob, to_alice, expected = await exchange(
        ours, theirs, count, lambda n: f"text {n}" if n % 2 else n.to_bytes(4, "big") + b"\x00\xff")
    assert to_bob == expected and to_alice == expected
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_closing_either_side_is_seen_by_the_other(gateway: Gateway) -> None:
    alice, bob, ours, theirs = await pair(gateway)
    events: list[PeerEvent] = []
    ours.on_event(events.append)
    await theirs.send("last words")
    await theirs.close()
    assert theirs.state == "closed"
    assert await ours.receive(timeout=5) == "last words"  # what came before the end is kept
    with pytest.raises(PeerClosed):
        await ours.receive(timeout=10)
    assert ours.state == "closed" and [event.state for event in events] == ["closed"]
    with pytest.raises(PeerClosed):
        await ours.send("too late")
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
async def test_close_right_after_sending_delivers_everything_sent_before(gateway: Gateway) -> None:
    """close() lets the data channel drain and close before the peer connection goes (it lost
    ~1 in 4 of 2,000 1-KB messages when it closed the connection at once)."""
    alice, bob, ours, theirs = await pair(gateway, "drain")
    count = 2000
    for n in range(count):
        await ours.send(f"{n:08d}".ljust(1024, "."))
    await ours.close()
    received = [item async for item in theirs]
    assert len(received) == count
    assert received == [f"{n:08d}".ljust(1024, ".") for n in range(count)]
    assert theirs.state == "closed"
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_peer_that_disconnects_mid_transfer_ends_the_channel(gateway: Gateway) -> None:
    alice, bob, ours, theirs = await pair(gateway)
    for n in range(50):
        await theirs.send(str(n))
    await bob.close()  # the whole client goes: its channels close with it
    received = [item async for item in ours]  # ends at the close, without a timeout
    assert received == [str(n) for n in range(len(received))]
    assert ours.state == "closed"
    await alice.close()


@pytest.mark.gen_test(timeout=30)
async def test_several_channels_to_one_peer_and_to_many_peers(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    peers = [await connect_agent(gateway) for _ in range(3)]
    for peer in peers:
        peer.on_peer(lambda channel: asyncio.ensure_future(echo(channel)))
    channels = await asyncio.gather(*(alice.connect_peer(peer.did, f"c{n}", timeout=15)
                                      for peer in peers for n in range(2)))
    assert len({channel.negotiation_id for channel in channels}) == 6
    for index, channel in enumerate(channels):
        await channel.send(f"ping {index}")
    answers = [await channel.receive(timeout=10) for channel in channels]
    assert answers == [f"ping {index}" for index in range(6)]
    for client in (alice, *peers):
        await client.close()


async def echo(channel: PeerChannel) -> None:
    async for item in channel:
        await channel.send(item)


@pytest.mark.gen_test(timeout=30)
async def test_a_refused_channel_raises_peer_refused(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    asked: list[tuple[str, str]] = []

    @bob.on_peer_request
    async def policy(did: str, label: str) -> bool:
        asked.append((did, label))
        return label != "secret"

    with pytest.raises(PeerRefused) as refused:
        await alice.connect_peer(bob.did, "secret", timeout=10)
    assert refused.value.code == "PEER_REFUSED" and asked == [(alice.did, "secret")]
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_agent_that_does_not_listen_refuses(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    bob._peer_manager()  # uses peer channels (connect_peer), but accepts none
    with pytest.raises(PeerRefused, match="does not accept"):
        await alice.connect_peer(bob.did, timeout=10)
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_unknown_did_raises_peer_unknown_agent_at_once(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    nobody = DIDKey.generate().did
    with pytest.raises(PeerUnknownAgent) as unknown:
        await alice.connect_peer(nobody, timeout=10)
    assert unknown.value.peer_did == nobody and unknown.value.code == "UNKNOWN_AGENT"
    with pytest.raises(ValueError):
        await alice.connect_peer("did:key:nonsense")
    await alice.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_peer_that_never_answers_times_out(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    silent = await connect_agent(gateway)  # no peer API: the OFFER is a plain message to it
    started = asyncio.get_running_loop().time()
    with pytest.raises(PeerTimeout, match="did not answer"):
        await alice.connect_peer(silent.did, timeout=1.0)
    assert asyncio.get_running_loop().time() - started < 3
    offer = await silent.receive(timeout=5)
    assert offer.type == "OFFER" and "negotiation_id" in offer.payload
    await alice.close()
    await silent.close()


@pytest.mark.gen_test(timeout=30)
async def test_ice_failure_raises_peer_ice_failed(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    bob.on_peer(lambda channel: None)
    # relay-only without a TURN server: no candidate at all on alice's side
    with pytest.raises(PeerICEFailed, match="fallback=True"):
        await alice.connect_peer(bob.did, timeout=10, relay_only=True, ice_servers=[])
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_signed_sdp_whose_fingerprint_is_not_the_certificate_is_refused(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The callee's ANSWER is signed, but its fingerprint is not the certificate DTLS presents
    (a stack or a relay that swapped the SDP): the caller refuses the channel."""
    original = WebRTCLink.answer

    async def tampered(self: WebRTCLink) -> tuple[dict[str, str], list[dict[str, Any]]]:
        description, candidates = await original(self)
        lines = [line if not line.startswith("a=fingerprint:sha-256 ") else
                 "a=fingerprint:sha-256 " + ":".join(["AB"] * 32)
                 for line in description["sdp"].split("\r\n")]
        return {**description, "sdp": "\r\n".join(lines)}, candidates

    monkeypatch.setattr(WebRTCLink, "answer", tampered)
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    bob.on_peer(lambda channel: None)
    with pytest.raises(PeerIdentityError):
        await alice.connect_peer(bob.did, timeout=10)
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_glare_gives_each_side_one_channel(gateway: Gateway) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    handed: list[PeerChannel] = []
    for client in (alice, bob):
        client.on_peer(handed.append)
    ours, theirs = await asyncio.gather(alice.connect_peer(bob.did, "same", timeout=10),
                                        bob.connect_peer(alice.did, "same", timeout=10))
    assert ours.negotiation_id == theirs.negotiation_id  # the one that stood
    assert handed == []  # neither side's on_peer saw it: both asked for it
    await ours.send("over the winner")
    assert await theirs.receive(timeout=5) == "over the winner"
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_the_aiortc_internals_the_identity_check_reads_are_there(gateway: Gateway) -> None:
    """client/peer/webrtc.py reads RTCDtlsTransport._ssl (the peer certificate) and the ICE
    connection's _nominated pair: an aiortc release that renames them fails here, not silently."""
    alice, bob, ours, _ = await pair(gateway)
    manager = alice._peers
    assert manager is not None
    link = manager.attempts[ours.negotiation_id].link
    assert link is not None
    digests = link.certificate_digests()
    assert set(digests) == {"sha-256", "sha-384", "sha-512"}
    assert manager.attempts[ours.negotiation_id].negotiation.remote_fingerprints[0].value == \
        digests["sha-256"]
    assert link.relayed() is False
    sctp = link.pc.sctp
    assert sctp is not None and sctp.transport.transport._connection._nominated
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(rate_limit=0)
async def test_the_relay_fallback_carries_the_channel_through_the_gateway(gateway: Gateway) -> None:
    # relay-only ICE without a TURN server cannot connect: the fallback takes over
    alice, bob, ours, theirs = await pair(gateway, "relayed", fallback=True, relay_only=True,
                                          ice_servers=[])
    assert (ours.transport, theirs.transport) == ("relay", "relay")
    assert ours.state == theirs.state == "open"
    count = 1000

    to_bob, to_alice, expected = await exchange(
        ours, theirs, count, lambda n: f"text {n}" if n % 2 else bytes([n % 256]) * 3)
    assert to_bob == expected and to_alice == expected
    await ours.close()
    with pytest.raises(PeerClosed):
        await theirs.receive(timeout=5)
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(rate_limit=40.0, rate_burst=10)
async def test_the_relay_keeps_under_the_rate_limit_and_waits_for_a_slow_reader(
        gateway: Gateway) -> None:
    alice, bob, ours, theirs = await pair(gateway, fallback=True, relay_only=True, ice_servers=[])
    refused: list[object] = []
    alice.on_invalid(refused.append)
    window = 64
    sender = asyncio.ensure_future(asyncio.gather(*[ours.send(str(n)) for n in range(window + 6)]))
    relay = alice._peers.attempts[ours.negotiation_id].relay  # type: ignore[union-attr]
    assert relay is not None
    # the reader has not read: the writer waits
    await wait_until(lambda: relay.credit <= 0, 10, "the relay's credit used up")
    assert not sender.done()
    received = [await theirs.receive(timeout=10) for _ in range(window + 6)]  # reading frees it
    await asyncio.wait_for(sender, 10)
    assert received == [str(n) for n in range(window + 6)]
    assert refused == [] and alice.connected  # never RATE_LIMITED, never cut off
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.gateway_config(rate_limit=100.0, rate_burst=20)
async def test_the_relay_survives_rate_limited_and_loses_nothing(gateway: Gateway) -> None:
    """The gateway charges a slow frame extra tokens (ratelimit.COST_UNIT), which the sender's
    pacer cannot foresee: frames are refused RATE_LIMITED (not routed). The SDK waits the
    retry_after and sends the unacknowledged frames again; the reader drops what it already had
    or what came ahead of the gap, so every message arrives once, in order (the relay broke with
    "relay frame N arrived where M was expected" before)."""
    alice, bob, ours, theirs = await pair(gateway, fallback=True, relay_only=True, ice_servers=[])
    limiter = next(peer.limiter for peer in gateway.hub.connections.peers if peer.did == alice.did)
    assert limiter is not None
    registry = gateway.hub.metrics.registry

    def refusals() -> float:
        return registry.get_sample_value("aiconexus_rate_limited_frames_total") or 0.0

    before = refusals()
    count = 200

    async def send_all() -> None:
        for n in range(count):
            if n in (50, 120):  # as if a frame had cost the gateway 40 ms: a 0.2 s debt
                limiter.charge(20 * COST_UNIT)
            await ours.send(f"m{n}")

    sending = asyncio.ensure_future(send_all())
    received = [await theirs.receive(timeout=10) for _ in range(count)]
    await asyncio.wait_for(sending, 10)
    assert received == [f"m{n}" for n in range(count)]
    assert refusals() > before  # the gateway did refuse frames
    assert ours.state == theirs.state == "open" and alice.connected
    await ours.close()
    with pytest.raises(PeerClosed):
        await theirs.receive(timeout=5)
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_relaying_agent_that_re_signs_the_sdp_is_refused(gateway: Gateway) -> None:
    """Mallory re-signs Alice's OFFER as its own for Bob, and Bob's ANSWER for Alice: every SDP
    and fingerprint is genuine, so DTLS connects Alice and Bob, each thinking the other is
    Mallory. The identity proof (signed by the DID at the other end) refuses it on both sides."""
    alice, bob, mallory = [await connect_agent(gateway) for _ in range(3)]
    handed: list[PeerChannel] = []
    bob.on_peer(handed.append)

    async def relay() -> None:
        async for message in mallory:
            if message.sender in (alice.did, bob.did):
                target = bob.did if message.sender == alice.did else alice.did
                with contextlib.suppress(ConnectionError):  # mallory closing at the end
                    await mallory.send(target, message.type, message.payload)

    relaying = asyncio.ensure_future(relay())
    with pytest.raises(PeerIdentityError, match="not the one negotiated with"):
        await alice.connect_peer(mallory.did, timeout=10)
    assert handed == []
    await alice.close()
    await bob.close()
    await mallory.close()
    await relaying


@pytest.mark.gen_test(timeout=30)
async def test_closing_the_client_ends_a_connect_peer_in_progress(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    silent = await connect_agent(gateway)
    attempt = asyncio.ensure_future(alice.connect_peer(silent.did, timeout=20))
    await silent.receive(timeout=5)  # the OFFER is out: alice is waiting for an answer
    await alice.close()
    with pytest.raises(PeerClosed):
        await asyncio.wait_for(attempt, 5)
    with pytest.raises(PeerClosed):
        await alice.connect_peer(silent.did)
    await silent.close()
