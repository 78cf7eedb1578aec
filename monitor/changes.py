"""Comparing two polls: who joined, left or reconnected, and how fast messages flow.

Pure (no I/O, no clock: each `Snapshot` carries the monotonic time it was taken). `observe`
folds a new snapshot into what the monitor has seen so far (`Observed`: the latest snapshot,
the rates since the previous one and the recent history of the totals), so the screen is a
function of one value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .contract import Agent, Snapshot


@dataclass(frozen=True)
class AgentDiff:
    """Agents that appeared and disappeared between two polls, in the gateway's order."""

    joined: tuple[Agent, ...] = ()
    left: tuple[Agent, ...] = ()
    reconnected: tuple[Agent, ...] = ()


def _new_connection(agent: Agent, previous: Snapshot) -> bool:
    """Did `agent` connect after `previous` was taken (by the gateway's clock)?"""
    return agent.connected_at >= previous.health.timestamp


def diff_snapshots(previous: Snapshot | None, current: Snapshot) -> AgentDiff:
    """Who joined, left or reconnected (same DID, new connection) since the previous poll.

    With a partial view (only the first pages fetched), an agent can come into view without
    joining: the gateway orders by connection time, so when an early agent leaves, the next one
    moves up into the fetched pages. Such an agent connected before the previous poll and is
    not reported. An agent disappearing from the first pages did leave, since newcomers are
    always appended at the end.
    """
    if previous is None:
        return AgentDiff()
    joined = tuple(
        agent
        for did, agent in current.agents.items()
        if did not in previous.agents and (not previous.partial or _new_connection(agent, previous))
    )
    left = tuple(agent for did, agent in previous.agents.items() if did not in current.agents)
    reconnected = tuple(
        agent
        for did, agent in current.agents.items()
        if did in previous.agents and previous.agents[did].connected_at != agent.connected_at
    )
    return AgentDiff(joined=joined, left=left, reconnected=reconnected)


def _deltas(previous: Snapshot, current: Snapshot) -> dict[str, tuple[int, int] | None]:
    """Per agent, (sent, received) since `previous`, or None when that cannot be known."""
    deltas: dict[str, tuple[int, int] | None] = {}
    for did, agent in current.agents.items():
        before = previous.agents.get(did)
        if before is not None and before.connected_at == agent.connected_at:
            sent = agent.messages_sent - before.messages_sent
            received = agent.messages_received - before.messages_received
            # counters only grow within one connection; anything else is a gateway restart
            deltas[did] = (max(sent, 0), max(received, 0))
        elif _new_connection(agent, previous):
            # connected since the last poll: everything it did happened in this interval
            deltas[did] = (agent.messages_sent, agent.messages_received)
        else:
            deltas[did] = None  # came into view from a later page: no earlier count
    return deltas


def agent_rates(previous: Snapshot | None, current: Snapshot) -> dict[str, float | None]:
    """Messages per second (sent + received) of each agent between two polls.

    None means unknown: the first poll, or an agent whose earlier counters were not seen.
    """
    if previous is None:
        return dict.fromkeys(current.agents)
    elapsed = current.taken_at - previous.taken_at
    if elapsed <= 0:
        return dict.fromkeys(current.agents)
    return {
        did: None if delta is None else (delta[0] + delta[1]) / elapsed
        for did, delta in _deltas(previous, current).items()
    }


def total_rate(previous: Snapshot | None, current: Snapshot) -> float | None:
    """Messages per second through the gateway, from the growth of `messages_sent`.

    Each routed message is sent by one agent and received by another; counting the senders'
    side only counts it once. Agents that left between the polls, and agents beyond the
    fetched pages, are not counted (their counters cannot be seen).
    """
    if previous is None:
        return None
    elapsed = current.taken_at - previous.taken_at
    if elapsed <= 0:
        return None
    sent = sum(delta[0] for delta in _deltas(previous, current).values() if delta is not None)
    return sent / elapsed


def history_length(interval: float, *, minutes: float = 5.0) -> int:
    """How many polls make the sparklines' "last few minutes" (bounded either way)."""
    return max(30, min(600, math.ceil(minutes * 60 / interval)))


@dataclass(frozen=True)
class Observed:
    """What the polls so far have shown: the latest snapshot and what comparing gave."""

    snapshot: Snapshot
    rates: Mapping[str, float | None]
    total_rate: float | None
    agent_history: tuple[float, ...]
    rate_history: tuple[float, ...]


def observe(
    previous: Observed | None, snapshot: Snapshot, *, history: int
) -> tuple[Observed, AgentDiff]:
    """Fold one successful poll into what was observed; also say who joined and left.

    The histories keep the last `history` totals (agents connected, messages per second).
    """
    before = previous.snapshot if previous is not None else None
    rate = total_rate(before, snapshot)
    agent_history = previous.agent_history if previous is not None else ()
    rate_history = previous.rate_history if previous is not None else ()
    agent_history = (*agent_history, float(snapshot.total))[-history:]
    if rate is not None:
        rate_history = (*rate_history, rate)[-history:]
    observed = Observed(
        snapshot=snapshot,
        rates=agent_rates(before, snapshot),
        total_rate=rate,
        agent_history=agent_history,
        rate_history=rate_history,
    )
    return observed, diff_snapshots(before, snapshot)
