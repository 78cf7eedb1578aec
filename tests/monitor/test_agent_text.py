"""Text that agents choose (metadata, names, DIDs) reaches the operator's terminal only as
visible characters: no escape sequence it carries is sent to the terminal, no markup is read.

An agent's metadata is its own to choose, and the gateway passes it on: `ESC ] 52` would
write the operator's clipboard, `ESC [ 2 J` clear the screen, `CSI 6 n` (C1 `\\x9b`) make the
terminal answer into the monitor's input.
"""

from __future__ import annotations

import pytest

from aiconexus_gateway.server.app import Gateway

from .fake_gateway import FakeGateway, fake_agent
from .helpers import (
    agents,
    log_lines,
    monitoring,
    row_of,
    screen_text,
    shown_dids,
    status_text,
    terminal_output,
    until,
    widget_text,
)

UI = pytest.mark.gen_test(timeout=30)

CLIPBOARD = "\x1b]52;c;SGVsbG8=\x07"
CLEAR = "\x1b[2J"
C1_CSI = "\x9b6n"
MARKUP = "[red]x[/red]"
HOSTILE_DID = "did:key:z6Mk\x1b]0;pwned\x07" + "y" * 40
SEQUENCES = ("\x1b]", "\x07", "\x1b[2J", "\x9b", "\x1b[6n")


def hostile_agent() -> dict[str, object]:
    agent = fake_agent(7)
    agent["did"] = HOSTILE_DID
    agent["metadata"] = {
        "name": CLIPBOARD + "eve",
        "clear": CLEAR,
        "query": C1_CSI,
        "markup": MARKUP,
        "del": "a\x7fb",
    }
    return agent


def marked_up_agent() -> dict[str, object]:
    agent = fake_agent(8)
    agent["metadata"] = {"name": MARKUP}
    return agent


def assert_no_sequence_reaches_the_terminal(output: str) -> None:
    for sequence in SEQUENCES:
        assert sequence not in output, f"{sequence!r} reaches the terminal"


@UI
async def test_agent_text_is_escaped_on_every_screen(fake: FakeGateway, fake_url: str) -> None:
    fake.agent_count = 1
    fake.gateway_did = "did:key:z6Mk\x1b]2;gateway title\x07" + "g" * 40
    async with monitoring(fake_url, size=(120, 40)) as (app, pilot):
        await until(pilot, lambda: len(shown_dids(app)) == 1, "the first agent")
        fake.extra_agents += [hostile_agent(), marked_up_agent()]  # they join: logged too
        await until(pilot, lambda: len(shown_dids(app)) == 3, "three rows")

        assert_no_sequence_reaches_the_terminal(terminal_output(app, colors=True))
        text = screen_text(app)
        assert MARKUP in text  # as typed, not read as markup
        row = row_of(app, HOSTILE_DID)
        assert row is not None and row[0].startswith("did:key:z6Mk\\x1b")
        assert row[1].startswith("\\x1b]52;")
        assert "did:key:z6Mk\\x1b…gggg" in status_text(app)  # the gateway's DID
        joined = [line for line in log_lines(app) if "joined" in line]
        assert any("(\\x1b]52;c;SGVsbG8=\\x07eve)" in line for line in joined)
        assert any(f"({MARKUP})" in line for line in joined)

        # the cursor stayed on the first agent, now last (by activity): the one above is eve
        await pilot.press("up", "enter")
        await until(pilot, lambda: "metadata" in screen_text(app), "the details")
        assert_no_sequence_reaches_the_terminal(terminal_output(app, colors=True))
        details = widget_text(app, "#detail")
        assert "did:key:z6Mk\\x1b]0;pwned\\x07yyy" in details
        assert '"query": "\\x9b6n"' in details
        assert '"clear": "\\u001b[2J"' in details  # JSON's own escape
        assert '"del": "a\\x7fb"' in details
        assert f'"markup": "{MARKUP}"' in details



@UI
async def test_a_real_agent_cannot_write_to_the_operators_terminal(gateway: Gateway) -> None:
    async with (
        agents(gateway, CLIPBOARD + "eve", clear=CLEAR, query=C1_CSI, markup=MARKUP) as (eve,),
        monitoring(gateway.http_url) as (app, pilot),
    ):
        await until(pilot, lambda: row_of(app, eve.did) is not None, "eve's row")
        assert_no_sequence_reaches_the_terminal(terminal_output(app, colors=True))
        await pilot.press("enter")
        await until(pilot, lambda: "metadata" in screen_text(app), "the details")
        assert_no_sequence_reaches_the_terminal(terminal_output(app, colors=True))
        details = widget_text(app, "#detail")
        assert '"query": "\\x9b6n"' in details and f'"markup": "{MARKUP}"' in details
