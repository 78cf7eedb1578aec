"""Who is registered on this gateway instance: DID -> Peer, in registration order.

Lookups by DID are O(1) (a dict); iteration order is registration order, which is the order
`/agents` pages through. A DID has at most one peer: registering again replaces it. The router
adds a peer when its session becomes REGISTERED and removes it when the session is replaced or its
connection is gone; a session the gateway has just ended stays listed until then (frames sent to
it meanwhile get DELIVERY_FAILED, as its connection no longer takes them).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from .cards import Profile
from .messages import utc_timestamp
from .peer import Peer


class Registry:
    """The registered agents of one instance, by DID."""

    __slots__ = ("_peers",)

    def __init__(self) -> None:
        self._peers: dict[str, Peer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, did: object) -> bool:
        return did in self._peers

    def __iter__(self) -> Iterator[Peer]:
        return iter(list(self._peers.values()))

    def get(self, did: str) -> Peer | None:
        return self._peers.get(did)

    def add(self, did: str, peer: Peer) -> Peer | None:
        """Register `peer` as `did`; return the peer it replaces (same DID), if any."""
        old = self._peers.pop(did, None)
        self._peers[did] = peer
        return old

    def remove(self, did: str, peer: Peer) -> bool:
        """Remove `peer` unless a newer session of `did` has replaced it."""
        if self._peers.get(did) is peer:
            del self._peers[did]
            return True
        return False

    def page(self, limit: int, offset: int) -> list[Peer]:
        """Up to `limit` peers from `offset` on (an offset past the end: none)."""
        if offset >= len(self._peers) or limit <= 0:
            return []
        return list(islice(self._peers.values(), offset, offset + limit))


def agent_view(peer: Peer) -> dict[str, Any]:
    """A registered agent of this instance as `/agents` shows it (times in ISO 8601 UTC)."""
    record = peer.record
    assert record is not None and peer.did is not None
    return {
        "did": peer.did,
        "connected_at": utc_timestamp(record.connected_at),
        "last_activity": utc_timestamp(record.last_activity),
        "messages_sent": record.messages_sent,
        "messages_received": record.messages_received,
        "metadata": record.metadata,
        **card_view(peer.session.profile),
    }


def card_view(profile: Profile | None) -> dict[str, Any]:
    """An agent's card as /agents shows it: `card` when it has one, `unlisted` when it is."""
    view: dict[str, Any] = {}
    if profile is not None and profile.card is not None:
        view["card"] = profile.card.document
    if profile is not None and profile.unlisted:
        view["unlisted"] = True
    return view
