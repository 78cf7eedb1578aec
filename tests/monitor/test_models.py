"""Pure tests of the monitor's models: parsing, diffing, rates, sorting, filtering, formatting."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from monitor.models import (
    COLUMNS,
    Agent,
    AgentPage,
    BadURL,
    Health,
    MalformedResponse,
    Snapshot,
    SortKey,
    Status,
    agent_rates,
    agent_row,
    describe_agent,
    diff_snapshots,
    filter_agents,
    format_age,
    format_counter,
    format_duration,
    format_rate,
    history_length,
    http_base_url,
    merge_pages,
    parse_agent,
    parse_agent_page,
    parse_health,
    parse_timestamp,
    shorten_did,
    showing_text,
    sort_agents,
    sparkline_data,
    status_change,
    status_lines,
    total_rate,
)

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)
DID_A = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
DID_B = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG"
DID_C = "did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def agent(
    did: str,
    *,
    connected: float = 0.0,
    active: float | None = None,
    sent: int = 0,
    received: int = 0,
    name: str | None = None,
) -> Agent:
    return Agent(
        did=did,
        connected_at=at(connected),
        last_activity=at(connected if active is None else active),
        messages_sent=sent,
        messages_received=received,
        metadata={} if name is None else {"name": name},
    )


def health(seconds: float = 0.0, **changes: Any) -> Health:
    base = Health(
        status="healthy",
        connected_agents=0,
        timestamp=at(seconds),
        version="0.1.0",
        gateway_did=DID_C,
        uptime_seconds=seconds + 100,
    )
    return replace(base, **changes)


def snapshot(seconds: float, *agents: Agent, total: int | None = None) -> Snapshot:
    return Snapshot(
        health=health(seconds),
        agents={a.did: a for a in agents},
        total=len(agents) if total is None else total,
        taken_at=seconds,
    )


def agent_json(did: str = DID_A, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "did": did,
        "connected_at": "2026-11-26T10:00:00.123Z",
        "last_activity": "2026-11-26T10:00:05.456Z",
        "messages_sent": 3,
        "messages_received": 4,
        "metadata": {"name": "alice"},
    }
    body.update(changes)
    return body


HEALTH_JSON = {
    "status": "healthy",
    "connected_agents": 2,
    "timestamp": "2026-11-26T10:00:00.123Z",
    "version": "0.1.0",
    "gateway_did": DID_C,
    "uptime_seconds": 12.3,
}


# -------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("localhost:9000", "http://localhost:9000"),
        ("ws://127.0.0.1:8000/ws", "http://127.0.0.1:8000"),
        ("wss://gw.example.com/ws", "https://gw.example.com"),
        ("wss://gw.example.com/aiconexus/ws", "https://gw.example.com/aiconexus"),
        ("https://gw.example.com/aiconexus/", "https://gw.example.com/aiconexus"),
        ("  http://[::1]:8000  ", "http://[::1]:8000"),
    ],
)
def test_gateway_address_becomes_its_http_base_url(given: str, expected: str) -> None:
    assert http_base_url(given) == expected


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("", "empty"),
        ("ftp://127.0.0.1:8000", "unsupported URL scheme 'ftp'"),
        ("http://", "no host"),
        ("http://127.0.0.1:notaport", "bad port"),
        ("http://127.0.0.1:8000/?x=1", "query"),
    ],
)
def test_unusable_gateway_address_is_refused_with_a_clear_message(given: str, says: str) -> None:
    with pytest.raises(BadURL, match=says) as caught:
        http_base_url(given)
    assert "http://127.0.0.1:8000" in str(caught.value) or "base URL" in str(caught.value)


# -------------------------------------------------------------------- parsing


def test_contract_example_health_parses() -> None:
    parsed = parse_health(HEALTH_JSON)
    assert parsed == Health(
        status="healthy",
        connected_agents=2,
        timestamp=datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=timezone.utc),
        version="0.1.0",
        gateway_did=DID_C,
        uptime_seconds=12.3,
    )


def test_health_ignores_unknown_fields_so_the_gateway_can_add_some() -> None:
    assert parse_health({**HEALTH_JSON, "region": "eu"}).status == "healthy"


@pytest.mark.parametrize(
    "broken",
    [
        [],
        "healthy",
        {**HEALTH_JSON, "status": None},
        {**HEALTH_JSON, "connected_agents": "2"},
        {**HEALTH_JSON, "connected_agents": True},
        {**HEALTH_JSON, "connected_agents": -1},
        {**HEALTH_JSON, "timestamp": "yesterday"},
        {**HEALTH_JSON, "uptime_seconds": "long"},
    ],
)
def test_malformed_health_is_refused(broken: object) -> None:
    with pytest.raises(MalformedResponse):
        parse_health(broken)


def test_contract_example_agent_parses() -> None:
    parsed = parse_agent(agent_json())
    assert parsed.did == DID_A
    assert parsed.connected_at == datetime(2026, 11, 26, 10, 0, 0, 123000, tzinfo=timezone.utc)
    assert parsed.last_activity == datetime(2026, 11, 26, 10, 0, 5, 456000, tzinfo=timezone.utc)
    assert (parsed.messages_sent, parsed.messages_received, parsed.messages) == (3, 4, 7)
    assert parsed.name == "alice"


def test_agent_without_metadata_has_no_name() -> None:
    assert parse_agent(agent_json(metadata=None)).name == ""
    assert parse_agent(agent_json(metadata={"name": 7})).name == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"did": None},
        {"connected_at": 1764150000},
        {"last_activity": "not a time"},
        {"messages_sent": 1.5},
        {"messages_received": None},
        {"metadata": ["name"]},
    ],
)
def test_malformed_agent_is_refused_naming_the_field(changes: dict[str, Any]) -> None:
    field = next(iter(changes))
    with pytest.raises(MalformedResponse, match=field):
        parse_agent(agent_json(**changes))


def test_agent_page_parses() -> None:
    page = parse_agent_page(
        {"agents": [agent_json(DID_A), agent_json(DID_B)], "count": 5, "limit": 2, "offset": 0}
    )
    assert [a.did for a in page.agents] == [DID_A, DID_B]
    assert (page.count, page.limit, page.offset) == (5, 2, 0)


@pytest.mark.parametrize(
    "broken",
    [
        {"agents": {}, "count": 0, "limit": 100, "offset": 0},
        {"agents": [], "limit": 100, "offset": 0},
        {"agents": [{"did": DID_A}], "count": 1, "limit": 100, "offset": 0},
        None,
    ],
)
def test_malformed_agent_page_is_refused(broken: object) -> None:
    with pytest.raises(MalformedResponse):
        parse_agent_page(broken)


def test_timestamps_without_zone_are_taken_as_utc() -> None:
    assert parse_timestamp("2026-11-26T10:00:00") == T0
    assert parse_timestamp("2026-11-26T11:00:00+01:00") == T0


def test_pages_merge_in_order_and_an_agent_shifted_onto_two_pages_counts_once() -> None:
    a, b, c = agent(DID_A), agent(DID_B), agent(DID_C)
    first = AgentPage(agents=(a, b), count=3, limit=2, offset=0)
    second = AgentPage(agents=(b, c), count=4, limit=2, offset=2)
    agents, total = merge_pages([first, second])
    assert list(agents) == [DID_A, DID_B, DID_C]
    assert total == 4


def test_merged_total_is_never_less_than_what_was_fetched() -> None:
    agents, total = merge_pages([AgentPage(agents=(agent(DID_A),), count=0, limit=1, offset=0)])
    assert total == len(agents) == 1


# -------------------------------------------------------------------- joins and leaves


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


# -------------------------------------------------------------------- rates


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


# -------------------------------------------------------------------- sort and filter

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


# -------------------------------------------------------------------- formatting


def test_did_is_shortened_in_the_middle_keeping_the_method() -> None:
    assert shorten_did(DID_A) == "did:key:z6MkhaXg…2doK"
    assert len(shorten_did(DID_A)) == 21


def test_short_or_odd_dids_are_left_alone() -> None:
    assert shorten_did("did:key:z6Mkshort") == "did:key:z6Mkshort"
    assert shorten_did("x" * 10) == "x" * 10


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0 s"),
        (0.9, "0 s"),
        (42, "42 s"),
        (187, "3 m 07 s"),
        (7500, "2 h 05 m"),
        (4 * 86400 + 3 * 3600 + 59, "4 d 03 h"),
    ],
)
def test_durations_are_compact(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-2, "0 s ago"),
        (3.7, "3 s ago"),
        (250, "4 m ago"),
        (7300, "2 h ago"),
        (3 * 86400, "3 d ago"),
    ],
)
def test_ages_use_their_largest_unit(seconds: float, text: str) -> None:
    assert format_age(T0, at(seconds)) == text


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (None, "-"),
        (0, "0.0"),
        (12.34, "12.3"),
        (340.2, "340"),
        (1234, "1.2k"),
        (56_789, "57k"),
        (12_345_678, "12.3M"),
    ],
)
def test_rates_fit_their_column(rate: float | None, text: str) -> None:
    assert format_rate(rate) == text
    assert len(text) <= dict((k, w) for k, _, w in COLUMNS)["rate"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (99_999, "99,999"),
        (123_456, "123.5k"),
        (999_999, "1.0M"),
        (12_345_678_901, "12.3G"),
    ],
)
def test_counters_fit_their_column(value: int, text: str) -> None:
    assert format_counter(value) == text
    assert len(text) <= dict((k, w) for k, _, w in COLUMNS)["sent"]


def test_agent_row_shows_what_the_table_needs() -> None:
    row = agent_row(
        agent(DID_A, connected=0, active=57, sent=1234, received=5, name="alice"), 2.5, at(60)
    )
    assert row.cells() == (
        "did:key:z6MkhaXg…2doK",
        "alice",
        "1 m 00 s",
        "3 s ago",
        "1,234",
        "5",
        "2.5",
    )


def test_columns_fit_an_80_column_terminal() -> None:
    padding = 2 * len(COLUMNS)
    scrollbar = 2
    assert sum(width for _, _, width in COLUMNS) + padding + scrollbar <= 80


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((2, 2, 2, ""), "2 connected"),
        ((200, 200, 10_000, ""), "showing 200 of 10,000"),
        ((1, 2, 2, "abc"), "filter 'abc': 1 of 2 match"),
        ((3, 200, 10_000, "x"), "filter 'x': 3 of 200 match (first 200 of 10,000 fetched)"),
    ],
)
def test_table_caption(args: tuple[int, int, int, str], text: str) -> None:
    assert showing_text(*args) == text


def test_log_names_agents_by_short_did_and_name() -> None:
    assert describe_agent(agent(DID_A, name="alice")) == "did:key:z6MkhaXg…2doK (alice)"
    assert describe_agent(agent(DID_A)) == "did:key:z6MkhaXg…2doK"


def test_history_covers_about_five_minutes_within_bounds() -> None:
    assert history_length(1.0) == 300
    assert history_length(0.1) == 600
    assert history_length(60) == 30


def test_sparkline_starts_narrow_at_the_right_then_covers_the_whole_history() -> None:
    assert sparkline_data([], 10, least=4) == [0.0, 0.0, 0.0, 0.0]
    assert sparkline_data([3.0], 10, least=4) == [3.0, 3.0, 3.0, 3.0]
    assert sparkline_data([1.0, 2.0], 10, least=4) == [1.0, 1.0, 1.0, 2.0]
    six = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert sparkline_data(six, 10, least=4) == six
    assert sparkline_data(six, 4, least=4) == [3.0, 4.0, 5.0, 6.0]


def test_sparkline_always_gets_two_points() -> None:
    assert sparkline_data([], 0) == [0.0, 0.0]
    assert sparkline_data([3.0], 1) == [3.0, 3.0]


# -------------------------------------------------------------------- status

URL = "http://127.0.0.1:8000"
LOCAL = datetime(2026, 11, 26, 11, 0, 5)


def test_status_healthy_shows_identity_and_last_poll() -> None:
    status = Status(URL, 1.0, state="healthy", health=health(0), last_ok=LOCAL)
    first, second = status_lines(status)
    assert first == f"● healthy · {URL}"
    assert second == "gateway 0.1.0 · did:key:z6MknGc3…Sdxf · up 1 m 40 s · last poll 11:00:05"


def test_status_unreachable_says_why_and_that_it_retries_and_that_data_is_stale() -> None:
    status = Status(
        URL, 1.0, state="unreachable", reason="connection refused", health=health(0), last_ok=LOCAL
    )
    first, second = status_lines(status)
    assert first == f"✖ unreachable: connection refused, retrying every 1 s · {URL}"
    assert second.endswith("data from 11:00:05 (stale)")
    assert status.stale


def test_status_before_any_data() -> None:
    status = Status(URL, 0.5, state="unreachable", reason="connection refused")
    first, second = status_lines(status)
    assert "retrying every 0.5 s" in first
    assert second == "no data yet"
    assert not status.stale


def test_status_paused_says_how_to_resume() -> None:
    status = Status(URL, 1.0, state="healthy", health=health(0), last_ok=LOCAL, paused=True)
    assert "paused (p resumes)" in status_lines(status)[0]


def test_log_lines_for_gateway_state_changes() -> None:
    connecting = Status(URL, 1.0)
    healthy = replace(connecting, state="healthy", health=health(0), last_ok=LOCAL)
    down = replace(healthy, state="unreachable", reason="connection refused")
    slow = replace(down, reason="no answer within 5 s")
    back = replace(healthy, health=health(30))
    restarted = replace(healthy, health=health(0, uptime_seconds=1.0))
    draining = replace(back, state="draining")

    assert status_change(connecting, healthy) == "gateway reached: healthy, version 0.1.0"
    assert status_change(healthy, down) == "gateway unreachable: connection refused"
    assert status_change(down, down) is None
    assert status_change(down, slow) == "gateway unreachable: no answer within 5 s"
    assert status_change(slow, back) == "gateway back: healthy, version 0.1.0"
    assert status_change(back, restarted) == "gateway restarted: healthy, up 1 s"
    assert status_change(down, restarted) == "gateway back: healthy, version 0.1.0, restarted"
    assert status_change(back, draining) == "gateway draining"
    assert status_change(healthy, back) is None
    assert status_change(connecting, replace(connecting, state="unreachable")) == (
        "gateway unreachable"
    )
