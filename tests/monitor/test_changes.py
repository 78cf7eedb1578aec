"""Comparing polls: joins, leaves, reconnections, rates, and the history of totals."""

from __future__ import annotations

from monitor.changes import agent_rates, diff_snapshots, history_length, observe, total_rate

from .builders import DID_A, DID_B, DID_C, agent, snapshot


def test_first_poll_reports_nobody_joining() -> None:
    assert diff_snapshots(None, snapshot(0, agent(DID_A))).joined == ()


def test_agents_joining_and_leaving_between_polls_are_found() -> None:
    before = snapshot(10, agent(DID_A), agent(DID_B))
    after = snapshot(11, agent(DID_B), agent(DID_C, connected=10.5))
    diff = diff_snapshots(before, after)
    assert [a.did for a in diff.joined] == [DID_C]
    assert [a.did for a in diff.left] == [DID_A]
    assert diff.reconnected == ()


def test_same_did_with_a_new_connection_is_a_reconnection() -> None:
    before = snapshot(10, agent(DID_A, connected=1, sent=50))
    after = snapshot(11, agent(DID_A, connected=10.5, sent=2))
    diff = diff_snapshots(before, after)
    assert [a.did for a in diff.reconnected] == [DID_A]
    assert diff.joined == diff.left == ()


def test_agent_moving_up_into_a_partial_view_did_not_join() -> None:
    # 3 agents, only 2 fetched: when A leaves, C (connected long ago) moves into view
    before = snapshot(10, agent(DID_A), agent(DID_B), total=3)
    after = snapshot(11, agent(DID_B), agent(DID_C, connected=2), total=2)
    diff = diff_snapshots(before, after)
    assert diff.joined == ()
    assert [a.did for a in diff.left] == [DID_A]


def test_agent_connecting_since_the_last_poll_joined_even_in_a_partial_view() -> None:
    before = snapshot(10, agent(DID_A), total=5)
    after = snapshot(11, agent(DID_A), agent(DID_B, connected=10.2), total=6)
    assert [a.did for a in diff_snapshots(before, after).joined] == [DID_B]




def test_rates_come_from_the_counters_growth_over_the_elapsed_time() -> None:
    before = snapshot(10, agent(DID_A, sent=10, received=2), agent(DID_B, sent=2, received=10))
    after = snapshot(12, agent(DID_A, sent=30, received=4), agent(DID_B, sent=4, received=30))
    assert agent_rates(before, after) == {DID_A: 11.0, DID_B: 11.0}
    # each message counted once: by its sender
    assert total_rate(before, after) == 11.0


def test_rates_are_unknown_on_the_first_poll() -> None:
    first = snapshot(0, agent(DID_A, sent=5))
    assert agent_rates(None, first) == {DID_A: None}
    assert total_rate(None, first) is None


def test_rates_are_unknown_when_no_time_passed() -> None:
    same = snapshot(5, agent(DID_A, sent=5))
    assert agent_rates(same, same) == {DID_A: None}
    assert total_rate(same, same) is None


def test_new_agent_counts_all_its_messages_in_the_interval() -> None:
    before = snapshot(10)
    after = snapshot(12, agent(DID_A, connected=11, sent=4, received=2))
    assert agent_rates(before, after) == {DID_A: 3.0}
    assert total_rate(before, after) == 2.0


def test_reconnected_agent_rate_starts_from_its_new_counters_never_negative() -> None:
    before = snapshot(10, agent(DID_A, connected=1, sent=100))
    after = snapshot(12, agent(DID_A, connected=11, sent=6))
    assert agent_rates(before, after) == {DID_A: 3.0}


def test_counter_going_backwards_on_one_connection_counts_as_zero() -> None:
    before = snapshot(10, agent(DID_A, sent=100))
    after = snapshot(12, agent(DID_A, sent=40))
    assert agent_rates(before, after) == {DID_A: 0.0}
    assert total_rate(before, after) == 0.0


def test_agent_moved_into_a_partial_view_has_an_unknown_rate() -> None:
    before = snapshot(10, agent(DID_A), total=2)
    after = snapshot(12, agent(DID_A), agent(DID_B, connected=1, sent=500), total=2)
    assert agent_rates(before, after) == {DID_A: 0.0, DID_B: None}
    assert total_rate(before, after) == 0.0




def test_history_covers_about_five_minutes_within_bounds() -> None:
    assert history_length(1.0) == 300
    assert history_length(0.1) == 600
    assert history_length(60) == 30




def test_observing_polls_keeps_the_last_totals_and_rates() -> None:
    first, diff = observe(None, snapshot(10, agent(DID_A, sent=1)), history=2)
    assert (first.agent_history, first.rate_history, first.total_rate) == ((1.0,), (), None)
    assert diff.joined == ()
    second, diff = observe(first, snapshot(12, agent(DID_A, sent=5), agent(DID_B, connected=11)), history=2)
    assert second.agent_history == (1.0, 2.0)
    assert second.rate_history == (2.0,) and second.rates == {DID_A: 2.0, DID_B: 0.0}
    assert [a.did for a in diff.joined] == [DID_B]
    third, _ = observe(second, snapshot(13), history=2)
    assert third.agent_history == (2.0, 0.0)  # the oldest fell off
    assert third.rate_history == (2.0, 0.0)
