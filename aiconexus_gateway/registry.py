"""Who is connected to this gateway instance, with their activity counters.

Lookups by DID are O(1) (a dict); iteration order is registration order, which is the order
`/agents` pages through. A DID has at most one record: registering again replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from .messages import utc_timestamp


class AgentRecord:
    """A registered agent: where to reach it and what it has done."""

    __slots__ = ("connected_at", "did", "last_activity", "messages_received", "messages_sent",
                 "metadata", "peer", "session_id")

    def __init__(self, did: str, peer: Any, session_id: str, connected_at: float,
                 metadata: dict[str, Any]) -> None:
        self.did = did
        self.peer = peer  # the hub's Peer: its connection and session
        self.session_id = session_id
        self.connected_at = connected_at  # wall-clock seconds
        self.last_activity = connected_at
        self.messages_sent = 0  # frames the agent sent after registering
        self.messages_received = 0  # frames the gateway delivered to it from other agents
        self.metadata = metadata


class Registry:
    """The registered agents of one instance, by DID."""

    __slots__ = ("_records",)

    def __init__(self) -> None:
        self._records: dict[str, AgentRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, did: object) -> bool:
        return did in self._records

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(list(self._records.values()))

    def get(self, did: str) -> AgentRecord | None:
        return self._records.get(did)

    def add(self, record: AgentRecord) -> AgentRecord | None:
        """Register `record`; return the record it replaces (same DID), if any."""
        old = self._records.pop(record.did, None)
        self._records[record.did] = record
        return old

    def remove(self, record: AgentRecord) -> bool:
        """Remove `record` unless a newer session of its DID has replaced it."""
        if self._records.get(record.did) is record:
            del self._records[record.did]
            return True
        return False

    def page(self, limit: int, offset: int) -> list[AgentRecord]:
        return list(islice(self._records.values(), offset, offset + limit))


def agent_view(record: AgentRecord) -> dict[str, Any]:
    """An agent as `/agents` shows it (times in ISO 8601 UTC)."""
    return {
        "did": record.did,
        "connected_at": utc_timestamp(record.connected_at),
        "last_activity": utc_timestamp(record.last_activity),
        "messages_sent": record.messages_sent,
        "messages_received": record.messages_received,
        "metadata": record.metadata,
    }
