"""client/peer/manager.py: orderings of the pump that timing alone rarely shows, driven through a
fake client and a fake WebRTC link (the negotiation itself is the real, pure one)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from aiconexus_gateway.client.peer.manager import Attempt, PeerManager
from aiconexus_gateway.keys import DIDKey
from tests.peer.test_signaling import FIRST, SECOND, description
from tests.support.waiting import wait_until


class FakeLink:
    """The part of WebRTCLink the pump uses; set_remote refuses an answer without a local offer,
    as aiortc does ("Cannot handle answer in signaling state stable")."""

    def __init__(self) -> None:
        self.offered = False
        self.remote: list[dict[str, str]] = []
        self.closed = False

    async def offer(self) -> tuple[dict[str, str], list[dict[str, Any]]]:
        self.offered = True
        return description("offer"), []  # no candidates: relay-only without a TURN server

    async def set_remote(self, remote: dict[str, str]) -> None:
        if remote["type"] == "answer" and not self.offered:
            raise RuntimeError("Cannot handle answer in signaling state stable")
        self.remote.append(remote)

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        pass

    async def close(self) -> None:
        self.closed = True


class FakeClient:
    """Sends nothing anywhere: records the signals; the peer's ANSWER arrives while the caller
    is still sending its end-of-candidates (what a fast callee does)."""

    def __init__(self) -> None:
        self.did, self.gateway_did = FIRST, "did:example:gateway"
        self.key = DIDKey.from_seed(bytes([1]) * 32)
        self.connected = True
        self.ice_servers: list[dict[str, Any]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.manager: PeerManager | None = None

    async def send(self, recipient: str, type: str, payload: dict[str, Any],
                   encrypt: bool = False) -> str:
        self.sent.append((type, payload))
        if type == "ICE_CANDIDATE" and "candidate" in payload and payload["candidate"] is None:
            assert self.manager is not None
            answer = SimpleNamespace(sender=SECOND, type="ANSWER", correlation_id=None, payload={
                "negotiation_id": payload["negotiation_id"], "description": description("answer")})
            assert self.manager.takes(answer)  # type: ignore[arg-type]
        return f"message-{len(self.sent)}"


@pytest.mark.gen_test(timeout=10)
async def test_an_answer_during_the_end_of_candidates_of_a_caller_without_candidates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ANSWER came while _offer was still sending end-of-candidates: the relay switch waits
    until the answer is applied, on the link that made the offer (it made a fresh link and
    failed the channel with aiortc's InvalidStateError about 1 run in 5)."""
    client = FakeClient()
    manager = PeerManager(client)  # type: ignore[arg-type]
    client.manager = manager
    links: list[FakeLink] = []

    def link(attempt: Attempt) -> FakeLink:
        made = FakeLink()
        links.append(made)
        attempt.link = made  # type: ignore[assignment]
        return made

    monkeypatch.setattr(manager, "_link", link)
    connecting = asyncio.ensure_future(manager.connect(
        SECOND, "default", 5, fallback=True, relay_only=True, ice_servers=[]))
    relay_open = ("ICE_CANDIDATE", {"op": "open"})
    await wait_until(lambda: any((kind, payload.get("relay")) == relay_open
                                 for kind, payload in client.sent) or connecting.done(), 5,
                     "the relay asked for, or the attempt ended")
    assert not connecting.done(), connecting.exception()
    assert len(links) == 1 and links[0].remote == [description("answer")]
    attempt = next(iter(manager.attempts.values()))
    assert attempt.relay is not None and attempt.link is None
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
