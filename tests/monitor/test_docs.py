"""docs/monitor.md's recipe, followed as written: the monitor shows the example's agents."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import sys
from pathlib import Path

import pytest

from aiconexus_gateway.server.app import Gateway

from .helpers import monitoring, next_polls, screen_text, shown_dids, until

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "monitor.md"


def recipe_example_command() -> list[str]:
    """The recipe's "terminal 3" line: the example that gives the monitor something to show."""
    text = DOC.read_text(encoding="utf-8")
    recipe = text.split("## Running it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    line = next(line for line in recipe.splitlines() if "examples/" in line)
    argv = shlex.split(line.split("#", 1)[0])
    assert argv[0] == ".venv/bin/python", line
    return [sys.executable, *argv[1:]]


@pytest.mark.gen_test(timeout=60)
async def test_the_documented_recipe_shows_two_agents_for_several_polls(gateway: Gateway) -> None:
    command = recipe_example_command()
    example = await asyncio.create_subprocess_exec(
        *command,
        "--url",
        gateway.ws_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # the monitor as `make monitor` runs it: one poll a second
        async with monitoring(gateway.http_url, interval=1.0) as (app, pilot):
            await until(pilot, lambda: len(shown_dids(app)) == 2, "the two agents", 15)
            await next_polls(pilot, app, 3)  # and they stay long enough to be watched
            text = screen_text(app)
            assert len(shown_dids(app)) == 2
            assert re.search(r"\balice\b", text) and re.search(r"\bbob\b", text)
    finally:
        with contextlib.suppress(ProcessLookupError):
            example.terminate()
        _, stderr = await example.communicate()
    assert not stderr.strip(), stderr.decode()
