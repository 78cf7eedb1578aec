"""Sorting (`s`) and filtering (`/`) the agents."""

from __future__ import annotations

import pytest

from monitor.selection import SortKey, filter_agents, sort_agents

from .builders import DID_A, DID_B, DID_C, agent

AGENTS = [
    agent(DID_B, connected=5, active=50, sent=1, received=1),
    agent(DID_A, connected=9, active=60, sent=10, received=0),
    agent(DID_C, connected=1, active=40, sent=30, received=30),
]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (SortKey.ACTIVITY, [DID_A, DID_B, DID_C]),
        (SortKey.CONNECTED, [DID_C, DID_B, DID_A]),
        (SortKey.DID, [DID_A, DID_B, DID_C]),
        (SortKey.MESSAGES, [DID_C, DID_A, DID_B]),
    ],
)
def test_each_sort_order(key: SortKey, expected: list[str]) -> None:
    assert [a.did for a in sort_agents(AGENTS, key)] == expected


def test_ties_are_broken_by_did_so_the_order_is_stable() -> None:
    tied = [agent(DID_C), agent(DID_A), agent(DID_B)]
    for key in SortKey:
        assert [a.did for a in sort_agents(tied, key)] == [DID_A, DID_B, DID_C]


def test_sort_cycles_through_every_order_and_back() -> None:
    key = SortKey.ACTIVITY
    seen = []
    for _ in SortKey:
        seen.append(key)
        key = key.next()
    assert seen == list(SortKey)
    assert key is SortKey.ACTIVITY


def test_filter_keeps_agents_whose_did_contains_the_text_ignoring_case() -> None:
    assert [a.did for a in filter_agents(AGENTS, "z6mkjch")] == [DID_B]
    assert [a.did for a in filter_agents(AGENTS, "did:key:")] == [a.did for a in AGENTS]
    assert filter_agents(AGENTS, "nobody") == []


def test_empty_filter_keeps_everyone() -> None:
    assert filter_agents(AGENTS, "  ") == AGENTS
