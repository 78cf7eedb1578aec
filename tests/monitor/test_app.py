"""The monitor driven headless against a real gateway with real SDK agents; every assertion
reads the screen."""

from __future__ import annotations

from functools import partial

import pytest

from aiconexus_gateway.config import Config
from aiconexus_gateway.server.app import Gateway
from monitor.app import MonitorApp
from monitor.credentials import AdminToken
from monitor.formatting import shorten_did
from monitor.screens import AgentScreen, HelpScreen
from monitor.selection import SortKey, sort_agents
from tests.support.process import free_port

from .helpers import (
    agents,
    caption,
    exchange,
    log_lines,
    monitoring,
    next_polls,
    row_of,
    screen_text,
    shown_dids,
    shows,
    status_text,
    terminal_output,
    total_text,
    until,
    widget_text,
)

UI = pytest.mark.gen_test(timeout=30)


def in_caption(app: MonitorApp, text: str) -> bool:
    return text in caption(app)
# for tests that press many keys: each press waits for the app to go idle, and fast polling
# keeps it busy
SLOW = 0.4


@UI
async def test_connected_agents_appear_as_rows(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url) as (app, pilot),
    ):
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
        assert set(shown_dids(app)) == {shorten_did(alice.did), shorten_did(bob.did)}
        assert (row_of(app, alice.did) or ())[:2] == (shorten_did(alice.did), "alice")
        assert (row_of(app, bob.did) or ())[:2] == (shorten_did(bob.did), "bob")
        status = status_text(app)
        assert status.startswith(f"● healthy · {gateway.http_url}")
        assert shorten_did(gateway.did) in status and "gateway 0.1.0" in status
        assert total_text(app, "agents") == "Agents 2"
        assert caption(app).endswith("2 connected")
        assert any("gateway reached: healthy" in line for line in log_lines(app))


@UI
async def test_agents_joining_and_leaving_are_shown_and_logged(gateway: Gateway) -> None:
    async with agents(gateway, "alice") as (alice,), monitoring(gateway.http_url) as (app, pilot):
        await until(pilot, lambda: shows(app, alice.did), "alice's row")
        async with agents(gateway, "bob") as (bob,):
            await until(pilot, lambda: row_of(app, bob.did) is not None, "bob's row")
            await bob.close()
            await until(pilot, lambda: shows(app, alice.did), "bob's row removed")
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
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
        await next_polls(pilot, app)
        assert (row_of(app, alice.did) or ())[4:] == ("0", "0", "0.0")
        assert total_text(app, "rate") == "Messages/s 0.0"

        await exchange(alice, bob, 12)
        # each poll's screen is sampled (every 20 ms, polls every 200 ms): the poll that saw
        # the counters grow shows a rate for the agent and for the total
        rates: list[float] = []
        totals: list[float] = []

        def sent_twelve() -> bool:
            row = row_of(app, alice.did) or ("",) * 7
            rates.append(float(row[6]) if row[6] not in ("", "-") else 0.0)
            totals.append(float(total_text(app, "rate").split()[1]))
            return row[4] == "12"

        await until(pilot, sent_twelve, "alice sent 12")
        assert (row_of(app, bob.did) or ())[5] == "12"
        assert max(rates) > 0 and max(totals) > 0


@UI
async def test_r_refreshes_at_once(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url, interval=60) as (app, pilot):
        await until(pilot, lambda: app.main.polls == 1, "the first poll")
        async with agents(gateway, "late") as (late,):
            await pilot.press("r")
            await until(pilot, lambda: shows(app, late.did), "row after r")


@UI
async def test_p_pauses_and_resumes_polling(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url) as (app, pilot):
        await next_polls(pilot, app, 1)
        await pilot.press("p")
        await until(pilot, lambda: "paused (p resumes)" in status_text(app), "paused")
        await until(pilot, lambda: not app.main.polling, "a poll in flight to land")
        polls = app.main.polls
        async with agents(gateway, "unseen") as (unseen,):
            # the timer fires three more times: each would have polled if not paused
            ticks = app.main.ticks
            await until(pilot, lambda: app.main.ticks >= ticks + 3, "three timer ticks")
            assert app.main.polls == polls
            assert shown_dids(app) == []
            await pilot.press("p")
            await until(pilot, lambda: shows(app, unseen.did), "row after resume")
            assert "paused" not in status_text(app)
        lines = log_lines(app)
        assert any(line.endswith("polling paused") for line in lines)
        assert any(line.endswith("polling resumed") for line in lines)


@UI
async def test_slash_filters_by_did_substring_and_escape_clears(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
        # a piece of alice's DID that bob's lacks, typed in lower case
        pieces = (alice.did[i : i + 4].lower() for i in range(len(alice.did) - 4, 8, -1))
        needle = next(p for p in pieces if p not in bob.did.lower())
        await pilot.press("slash", *needle)
        await until(pilot, lambda: shows(app, alice.did), "alice alone")
        assert f"filter '{needle}': 1 of 2 match" in caption(app)
        await pilot.press("enter")  # keeps the filter, back to the table
        assert app.focused is app.main.query_one("#agents")
        await next_polls(pilot, app)
        assert shows(app, alice.did)
        await pilot.press("escape")
        await until(pilot, lambda: len(shown_dids(app)) == 2, "both rows again")
        assert "filter" not in caption(app)


@UI
async def test_s_cycles_the_sort_through_every_order(gateway: Gateway) -> None:
    async with (
        agents(gateway, "first", "second", "third") as (first, _, third),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await exchange(third, first, 3)  # third: most recent activity; first and third: busiest
        await until(pilot, lambda: (row_of(app, first.did) or ("",) * 6)[5] == "3", "counters")
        await pilot.press("p")  # hold the data still while the orders are compared
        await until(pilot, lambda: not app.main.polling, "the last poll to land")
        observed = app.main.observed
        assert observed is not None
        orders = []
        for key in [SortKey.ACTIVITY, SortKey.CONNECTED, SortKey.DID, SortKey.MESSAGES]:
            agents_seen = observed.snapshot.agents.values()
            expected = [shorten_did(a.did) for a in sort_agents(agents_seen, key)]
            await until(pilot, partial(in_caption, app, f"sorted by {key.value}"), key.value)
            assert shown_dids(app) == expected
            orders.append(expected)
            await pilot.press("s")
        await until(pilot, lambda: "sorted by activity" in caption(app), "back to the first")
        assert orders[0][0] == shorten_did(third.did)  # most recently active first
        assert orders[1][0] == shorten_did(first.did)  # longest connected first
        assert len({tuple(order) for order in orders}) > 1


@UI
async def test_cursor_stays_on_its_agent_when_rows_move(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await exchange(bob, alice, 1)  # bob most recently active: first row
        await until(pilot, lambda: shows(app, bob.did, alice.did), "bob first")
        await pilot.press("down")
        await exchange(alice, bob, 1)  # now alice is the most recent: rows swap
        await until(pilot, lambda: shows(app, alice.did, bob.did), "alice first")
        await pilot.press("enter")  # the cursor followed alice to the first row
        await until(pilot, lambda: isinstance(app.screen, AgentScreen), "details")
        assert f"DID               {alice.did}" in widget_text(app, "#detail")


@UI
async def test_enter_opens_the_agent_details_and_escape_goes_back(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice", "bob") as (alice, bob),
        monitoring(gateway.http_url, interval=SLOW) as (app, pilot),
    ):
        await exchange(alice, bob, 2)
        await until(pilot, lambda: (row_of(app, bob.did) or ("",) * 6)[5] == "2", "bob got 2")
        assert shows(app, alice.did, bob.did)
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, AgentScreen), "details")
        details = widget_text(app, "#detail")
        assert f"DID               {bob.did}" in details  # the full DID
        assert '"name": "bob"' in details
        assert "messages received 2" in details
        assert "connected at      20" in details
        await exchange(alice, bob, 1)  # it follows the agent live
        await until(
            pilot, lambda: "messages received 3" in widget_text(app, "#detail"), "live details"
        )
        await pilot.press("s", "slash")  # table keys do not reach the table behind
        assert isinstance(app.screen, AgentScreen)
        await pilot.press("escape")
        await until(pilot, lambda: "sorted by activity" in caption(app), "back, same order")
        await pilot.press("enter")  # the cursor is still on bob
        await until(pilot, lambda: isinstance(app.screen, AgentScreen), "details again")
        assert f"DID               {bob.did}" in widget_text(app, "#detail")


@UI
async def test_details_say_when_the_agent_has_left(gateway: Gateway) -> None:
    async with agents(gateway, "alice") as (alice,), monitoring(gateway.http_url) as (app, pilot):
        await until(pilot, lambda: shows(app, alice.did), "alice's row")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentScreen), "details")
        await alice.close()
        await until(
            pilot, lambda: "no longer connected" in widget_text(app, "#detail"), "agent gone"
        )


@UI
async def test_question_mark_shows_help_and_escape_closes_it(gateway: Gateway) -> None:
    async with monitoring(gateway.http_url, interval=SLOW) as (app, pilot):
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        text = screen_text(app)
        for line in ("q          quit", "p          pause / resume polling", "?          this"):
            assert line in text
        await pilot.press("escape")
        await until(pilot, lambda: "q          quit" not in screen_text(app), "help closed")


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
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two of three rows")
        # the gateway orders by connection time: the first two connected are fetched
        assert set(shown_dids(app)) == {shorten_did(c.did) for c in clients[:2]}
        assert caption(app).endswith("showing 2 of 3")
        assert total_text(app, "agents") == "Agents 3"
        await until(pilot, lambda: "(first 2 agents)" in total_text(app, "rate"), "rate caveat")


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
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
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


@UI
async def test_gateway_stopped_shows_unreachable_with_stale_data_then_recovers() -> None:
    first = await Gateway.start(Config(port=0, drain_timeout=2.0))
    second: Gateway | None = None
    try:
        async with (
            agents(first, "alice") as (alice,),
            monitoring(first.http_url, size=(120, 60)) as (app, pilot),
        ):
            await until(pilot, lambda: shows(app, alice.did), "alice's row")

            await first.stop(timeout=2.0)
            # a poll caught mid-shutdown may see the connection dropped; the next is refused
            await until(pilot, lambda: "connection refused" in status_text(app), "refused")
            status = status_text(app)
            assert "✖ unreachable: connection refused, retrying every 0.1 s" in status
            assert "(stale)" in status
            assert "STALE: data from" in caption(app)
            assert shows(app, alice.did)  # the last data stays on screen
            polls = app.main.polls
            await next_polls(pilot, app, 3)  # and polling goes on
            assert app.main.polls >= polls + 3

            second = await Gateway.start(Config(port=first.port, drain_timeout=2.0))
            await until(pilot, lambda: status_text(app).startswith("● healthy"), "healthy")
            assert "STALE" not in caption(app)
            await until(pilot, lambda: shown_dids(app) == [], "alice gone after the restart")
            async with agents(second, "bob") as (bob,):
                await until(pilot, lambda: shows(app, bob.did), "bob's row")
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
    port = free_port()
    async with monitoring(f"ws://127.0.0.1:{port}/ws") as (app, pilot):
        await until(pilot, lambda: "unreachable" in status_text(app), "unreachable")
        assert status_text(app).splitlines() == [
            "✖ unreachable: connection refused, retrying every 0.1 s · "
            f"http://127.0.0.1:{port}",
            "no data yet",
        ]
        assert caption(app).endswith("waiting for the gateway")
        gateway = await Gateway.start(Config(port=port))
        try:
            async with agents(gateway, "alice") as (alice,):
                await until(pilot, lambda: shows(app, alice.did), "alice's row")
            assert any("gateway reached: healthy" in line for line in log_lines(app))
        finally:
            await gateway.stop(timeout=2.0)


@UI
async def test_agent_metadata_is_shown_as_text_never_as_markup(gateway: Gateway) -> None:
    # an agent chooses its own metadata: "[/]" would end Textual markup and crash a str cell
    async with (
        agents(gateway, "[/]", "[b]x") as (odd, bold),
        monitoring(gateway.http_url) as (app, pilot),
    ):
        await until(pilot, lambda: len(shown_dids(app)) == 2, "two rows")
        assert (row_of(app, odd.did) or ())[1] == "[/]"
        text = screen_text(app)
        assert f"{shorten_did(odd.did)}  [/]" in text
        assert f"{shorten_did(bold.did)}  [b]x" in text
        assert any(line.endswith("2 agents connected") for line in log_lines(app))


TOKEN = "s3cret-admin-token-0123456789"


@pytest.mark.gateway_config(admin_token=TOKEN)
@UI
async def test_a_gateway_wanting_a_token_is_said_so_and_not_polled_until_r(
    gateway: Gateway,
) -> None:
    wrong = AdminToken("wrong-admin-token-0123456789")
    async with monitoring(gateway.http_url, token=wrong) as (app, pilot):
        await until(pilot, lambda: "unauthorized" in status_text(app), "unauthorized")
        status = " ".join(status_text(app).split())  # the long line wraps
        assert status.startswith(
            "✖ unauthorized: the gateway refused the admin token sent "
            "(check ADMIN_TOKEN or --token-file) · polling stopped, r retries"
        )
        # retrying would not help: the token does not change by itself
        polls, ticks = app.main.polls, app.main.ticks
        await until(pilot, lambda: app.main.ticks >= ticks + 3, "three timer ticks")
        assert app.main.polls == polls
        assert "wrong-admin-token" not in terminal_output(app, colors=True)
        await pilot.press("r")
        await until(pilot, lambda: app.main.polls > polls, "a poll on r")
        assert any("gateway unauthorized: the gateway refused" in line for line in log_lines(app))


@pytest.mark.gateway_config(admin_token=TOKEN)
@UI
async def test_a_gateway_wanting_a_token_is_watched_with_it(gateway: Gateway) -> None:
    async with (
        agents(gateway, "alice") as (alice,),
        monitoring(gateway.http_url, token=AdminToken(TOKEN)) as (app, pilot),
    ):
        await until(pilot, lambda: shows(app, alice.did), "alice's row")
        assert TOKEN not in terminal_output(app, colors=True)
