"""The monitor driven headless against a real gateway with real SDK agents."""

from __future__ import annotations

import socket

import pytest

from aiconexus_gateway.config import Config
from aiconexus_gateway.server.app import Gateway
from monitor.models import SortKey, shorten_did, sort_agents
from monitor.widgets import AgentScreen, HelpScreen

from .helpers import (
    agents,
    exchange,
    log_lines,
    monitoring,
    next_polls,
    screen_text,
    status_text,
    table,
    total_text,
    until,
)

UI = pytest.mark.gen_test(timeout=30)
# for tests that press many keys: each press waits for the app to go idle, and fast polling
# keeps it busy
SLOW = 0.4


@UI
async def test_connected_agents_appear_as_rows_keyed_by_did(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url) as (app, pilot),
    ):
        await until(pilot, lambda: set(table(app).dids) == {alice.did, bob.did}, "two rows")
        assert table(app).row_cells(alice.did)[:2] == (shorten_did(alice.did), "alice")
        assert table(app).row_cells(bob.did)[:2] == (shorten_did(bob.did), "bob")
        status = status_text(app)
        assert status.startswith(f"● healthy · {gateway.http_url}")
        assert shorten_did(gateway.did) in status and "gateway 0.1.0" in status
        assert total_text(app, "agents") == "Agents 2"
        assert "2 connected" in app.agents_title
        assert any("gateway reached: healthy" in line for line in log_lines(app))


@UI
async def test_agents_joining_and_leaving_are_shown_and_logged(gateway: Gateway) -> None:
    async with agents(gateway, "alice") as (alice,), monitoring(gateway.http_url) as (app, pilot):
        await until(pilot, lambda: table(app).dids == [alice.did], "alice's row")
        async with agents(gateway, "bob") as (bob,):
            await until(pilot, lambda: bob.did in table(app).dids, "bob's row")
            await bob.close()
            await until(pilot, lambda: table(app).dids == [alice.did], "bob's row removed")
        lines = log_lines(app)
        assert any(line.endswith(f"joined  {shorten_did(bob.did)} (bob)") for line in lines)
        assert any(line.endswith(f"left    {shorten_did(bob.did)} (bob)") for line in lines)
        assert total_text(app, "agents") == "Agents 1"


@UI
async def test_counters_and_rates_move_when_agents_exchange_messages(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=0.2) as (app, pilot),
    ):
        await until(pilot, lambda: len(table(app).dids) == 2, "two rows")
        await next_polls(pilot, app)
        assert table(app).row_cells(alice.did)[4:] == ("0", "0", "0.0")
        assert total_text(app, "rate") == "Messages/s 0.0"

        await exchange(alice, bob, 12)
        await until(pilot, lambda: table(app).row_cells(alice.did)[4] == "12", "alice sent 12")
        assert table(app).row_cells(bob.did)[5] == "12"
        # the poll that saw the counters grow shows a rate; total counts each message once
        assert float(table(app).row_cells(alice.did)[6]) > 0
        assert app.total_rate is not None and app.total_rate > 0
        assert max(app.rate_history) > 0


@UI
async def test_r_refreshes_at_once(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url, interval=60) as (app, pilot):
        await until(pilot, lambda: app.polls == 1, "the first poll")
        async with agents(gateway, "late") as (late,):
            await pilot.press("r")
            await until(pilot, lambda: table(app).dids == [late.did], "row after r")


@UI
async def test_p_pauses_and_resumes_polling(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url) as (app, pilot):
        await next_polls(pilot, app, 1)
        await pilot.press("p")
        assert "paused (p resumes)" in status_text(app)
        await until(pilot, lambda: not app.polling, "a poll in flight to land")
        polls = app.polls
        async with agents(gateway, "unseen") as (unseen,):
            await pilot.pause(0.5)
            assert app.polls == polls
            assert table(app).dids == []
            await pilot.press("p")
            assert "paused" not in status_text(app)
            await until(pilot, lambda: table(app).dids == [unseen.did], "row after resume")
        lines = log_lines(app)
        assert any(line.endswith("polling paused") for line in lines)
        assert any(line.endswith("polling resumed") for line in lines)


@UI
async def test_slash_filters_by_did_substring_and_escape_clears(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await until(pilot, lambda: len(table(app).dids) == 2, "two rows")
        # a piece of alice's DID that bob's lacks, typed in lower case
        pieces = (alice.did[i : i + 4].lower() for i in range(len(alice.did) - 4, 8, -1))
        needle = next(p for p in pieces if p not in bob.did.lower())
        await pilot.press("slash", *needle)
        assert table(app).dids == [alice.did]
        assert f"filter '{needle}': 1 of 2 match" in app.agents_title
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is table(app)
        await next_polls(pilot, app)
        assert table(app).dids == [alice.did]
        await pilot.press("escape")
        assert set(table(app).dids) == {alice.did, bob.did}
        assert "filter" not in app.agents_title


@UI
async def test_s_cycles_the_sort_through_every_order(gateway: Gateway) -> None:
    async with (
        agents(gateway, "first", "second", "third") as (first, _, third),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await exchange(third, first, 3)  # third: most recent activity; first and third: busiest
        await until(pilot, lambda: table(app).row_cells(first.did)[5] == "3", "counters")
        assert app.snapshot is not None
        orders = []
        for key in [SortKey.ACTIVITY, SortKey.CONNECTED, SortKey.DID, SortKey.MESSAGES]:
            assert f"sorted by {key.value}" in app.agents_title
            expected = [a.did for a in sort_agents(app.snapshot.agents.values(), key)]
            assert table(app).dids == expected
            orders.append(expected)
            await pilot.press("s")
        assert app.sort_key is SortKey.ACTIVITY
        assert orders[0][0] == third.did  # most recently active first
        assert orders[1][0] == first.did  # longest connected first
        assert len({tuple(order) for order in orders}) > 1


@UI
async def test_cursor_stays_on_its_agent_when_rows_move(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await exchange(bob, alice, 1)  # bob most recently active: first row
        await until(pilot, lambda: table(app).dids == [bob.did, alice.did], "bob first")
        await pilot.press("down")
        assert table(app).cursor_did == alice.did
        await exchange(alice, bob, 1)  # now alice is the most recent: rows swap
        await until(pilot, lambda: table(app).dids == [alice.did, bob.did], "alice first")
        assert table(app).cursor_did == alice.did
        assert table(app).cursor_row == 0


@UI
async def test_enter_opens_the_agent_details_and_escape_goes_back(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await exchange(alice, bob, 2)
        await until(pilot, lambda: bob.did in table(app).dids, "bob's row")
        await until(pilot, lambda: table(app).row_cells(bob.did)[5] == "2", "bob received 2")
        assert table(app).dids == [alice.did, bob.did]
        await pilot.press("down", "enter")
        screen = app.screen
        assert isinstance(screen, AgentScreen)
        details = screen.text
        assert f"DID               {bob.did}" in details  # the full DID
        assert '"name": "bob"' in details
        assert "messages received 2" in details
        assert "connected at      20" in details
        await exchange(alice, bob, 1)  # it follows the agent live
        await until(pilot, lambda: "messages received 3" in screen.text, "live details")
        await pilot.press("s", "slash")  # table keys do not reach the table behind
        assert app.sort_key is SortKey.ACTIVITY and app.screen is screen
        await pilot.press("escape")
        assert not isinstance(app.screen, AgentScreen)
        assert table(app).cursor_did == bob.did


@UI
async def test_details_say_when_the_agent_has_left(gateway: Gateway) -> None:
    async with agents(gateway, "alice") as (alice,), monitoring(gateway.http_url) as (app, pilot):
        await until(pilot, lambda: table(app).dids == [alice.did], "alice's row")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, AgentScreen)
        await alice.close()
        await until(pilot, lambda: "no longer connected" in screen.text, "agent gone")


@UI
async def test_question_mark_shows_help_and_escape_closes_it(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url, interval=SLOW) as (app, pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for line in ("q          quit", "p          pause / resume polling", "?          this"):
            assert line in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@UI
async def test_q_quits(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url) as (app, pilot):
        await next_polls(pilot, app, 1)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the app to exit")
    assert app.return_code == 0


@UI
async def test_footer_shows_every_key(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url, size=(100, 24)) as (app, pilot):
        await until(pilot, lambda: "Quit" in screen_text(app), "the footer")
        footer = screen_text(app).splitlines()[-1]
        for key in ("Details", "q Quit", "r Refresh", "p Pause", "/ Filter", "s Sort", "? Help"):
            assert key in footer


@UI
async def test_only_the_first_pages_are_fetched_and_the_caption_says_so(gateway: Gateway) -> None:
    async with (
        agents(gateway, "a", "b", "c") as clients,
        monitoring(gateway.http_url, page_size=1, max_agents=2) as (app, pilot),
    ):
        await until(pilot, lambda: len(table(app).dids) == 2, "two of three rows")
        # the gateway orders by connection time: the first two connected are fetched
        assert set(table(app).dids) == {clients[0].did, clients[1].did}
        assert "showing 2 of 3" in app.agents_title
        assert total_text(app, "agents") == "Agents 3"
        assert "(first 2 agents)" in total_text(app, "rate")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
@UI
async def test_screen_is_readable_at_common_terminal_sizes(
    gateway: Gateway, size: tuple[int, int]
) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, size=size) as (app, pilot),
    ):
        await exchange(alice, bob, 1)
        await until(pilot, lambda: len(table(app).dids) == 2, "two rows")
        await next_polls(pilot, app)
        lines = screen_text(app).splitlines()
        assert len(lines) == size[1]
        assert all(len(line.rstrip()) <= size[0] for line in lines)
        text = "\n".join(lines)
        for piece in (
            "● healthy",
            gateway.http_url,
            "Agents 2",
            "Messages/s",
            "Agent DID  ",
            "Connected",
            "Active",
            "Sent",
            "Recv",
            "msg/s",
            f"{shorten_did(alice.did)}  alice",
            f"{shorten_did(bob.did)}  bob",
            "Activity",
            "gateway reached",
            "q Quit",
        ):
            assert piece in text, f"{piece!r} not on a {size} screen"
        header = next(line for line in lines if "Agent DID" in line)
        assert header.rstrip().endswith("msg/s")  # the last column is not cut off


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@UI
async def test_gateway_stopped_shows_unreachable_with_stale_data_then_recovers() -> None:
    first = await Gateway.start(Config(port=0, drain_timeout=2.0))
    second: Gateway | None = None
    try:
        async with agents(first, "alice") as (alice,), monitoring(first.http_url) as (app, pilot):
            await until(pilot, lambda: table(app).dids == [alice.did], "alice's row")

            await first.stop(timeout=2.0)
            # a poll caught mid-shutdown may see the connection dropped; the next is refused
            await until(pilot, lambda: app.status.reason == "connection refused", "refused")
            status = status_text(app)
            assert "✖ unreachable: connection refused, retrying every 0.1 s" in status
            assert "(stale)" in status
            assert "STALE: data from" in app.agents_title
            assert app.has_class("-stale")
            assert table(app).dids == [alice.did]  # the last data stays on screen
            polls = app.polls
            await next_polls(pilot, app, 3)  # and polling goes on
            assert app.polls >= polls + 3

            second = await Gateway.start(Config(port=first.port, drain_timeout=2.0))
            await until(pilot, lambda: app.status.state == "healthy", "healthy again")
            assert not app.has_class("-stale")
            assert "STALE" not in app.agents_title
            await until(pilot, lambda: table(app).dids == [], "alice gone after the restart")
            async with agents(second, "bob") as (bob,):
                await until(pilot, lambda: table(app).dids == [bob.did], "bob's row")
            lines = "\n".join(log_lines(app))
            assert "gateway unreachable: connection refused" in lines
            assert "gateway back: healthy, version 0.1.0, restarted" in lines
            assert f"left    {shorten_did(alice.did)} (alice)" in lines
            assert shorten_did(second.did) in status_text(app)
    finally:
        await first.stop(timeout=2.0)
        if second is not None:
            await second.stop(timeout=2.0)


@UI
async def test_gateway_down_at_start_is_shown_and_picked_up_when_it_starts() -> None:
    port = _free_port()
    async with monitoring(f"ws://127.0.0.1:{port}/ws") as (app, pilot):
        await until(pilot, lambda: app.status.state == "unreachable", "unreachable")
        assert status_text(app) == (
            "✖ unreachable: connection refused, retrying every 0.1 s · "
            f"http://127.0.0.1:{port}\nno data yet"
        )
        assert "waiting for the gateway" in app.agents_title
        gateway = await Gateway.start(Config(port=port))
        try:
            async with agents(gateway, "alice") as (alice,):
                await until(pilot, lambda: table(app).dids == [alice.did], "alice's row")
            assert any("gateway reached: healthy" in line for line in log_lines(app))
        finally:
            await gateway.stop(timeout=2.0)


@UI
async def test_agent_metadata_is_shown_as_text_never_as_markup(gateway: Gateway) -> None:
    # an agent chooses its own metadata: "[/]" would end Textual markup and crash a str cell
    async with (
        agents(gateway, "[/]", "[b]x") as (odd, bold),
        monitoring(gateway.http_url) as (
            app,
            pilot,
        ),
    ):
        await until(pilot, lambda: len(table(app).dids) == 2, "two rows")
        assert table(app).row_cells(odd.did)[1] == "[/]"
        text = screen_text(app)
        assert f"{shorten_did(odd.did)}  [/]" in text
        assert f"{shorten_did(bold.did)}  [b]x" in text
        assert any(line.endswith("2 agents connected") for line in log_lines(app))
