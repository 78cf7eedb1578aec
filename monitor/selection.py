"""Which agents the table shows, in which order: sorting (`s`) and the filter (`/`: a DID
substring, or `cap:<capability>` for the agents whose card lists it).

Pure. Ties fall back to the DID, so rows do not swap from one poll to the next.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from .contract import Agent


class SortKey(enum.Enum):
    """The orders `s` cycles through, in that order."""

    ACTIVITY = "activity"
    CONNECTED = "connected time"
    DID = "DID"
    MESSAGES = "messages"

    def next(self) -> SortKey:
        members = list(SortKey)
        return members[(members.index(self) + 1) % len(members)]


def sort_agents(agents: Iterable[Agent], key: SortKey) -> list[Agent]:
    """Most recently active first; longest connected first; DID A-Z; busiest first.

    Ties fall back to the DID so the order is stable from one poll to the next.
    """
    by_did = sorted(agents, key=lambda agent: agent.did)
    if key is SortKey.ACTIVITY:
        return sorted(by_did, key=lambda agent: agent.last_activity, reverse=True)
    if key is SortKey.CONNECTED:
        return sorted(by_did, key=lambda agent: agent.connected_at)
    if key is SortKey.MESSAGES:
        return sorted(by_did, key=lambda agent: agent.messages, reverse=True)
    return by_did


CAPABILITY_PREFIX = "cap:"


def filter_agents(agents: Iterable[Agent], text: str) -> list[Agent]:
    """Agents whose DID contains `text`, ignoring case; with `cap:<capability>`, the agents
    that list that capability (ignoring case); an empty filter keeps everyone."""
    needle = text.strip().casefold()
    if not needle:
        return list(agents)
    if needle.startswith(CAPABILITY_PREFIX):
        wanted = needle[len(CAPABILITY_PREFIX):].strip()
        return [agent for agent in agents
                if any(capability.casefold() == wanted for capability in agent.capabilities)]
    return [agent for agent in agents if needle in agent.did.casefold()]
