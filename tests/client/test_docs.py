"""docs/sdk.md documents what the SDK has: every keyword, every exported name, every ClientState."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import aiconexus_gateway.client as sdk
from aiconexus_gateway.client import ClientState, GatewayClient, Message

SDK_DOC = (Path(__file__).resolve().parents[2] / "docs" / "sdk.md").read_text(encoding="utf-8")


def table_names(heading: str) -> set[str]:
    """The first-column `names` of the first table at or after `heading`."""
    lines = SDK_DOC.split(heading, 1)[1].splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("|"))
    names: set[str] = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        names.update(re.findall(r"^\| `([a-z_]+)`", line))
    return names


def test_every_gateway_client_keyword_is_in_the_keyword_table() -> None:
    keywords = set(inspect.signature(GatewayClient.__init__).parameters) - {"self"}
    assert keywords == table_names("| keyword | meaning |")


def test_every_message_field_is_documented() -> None:
    assert set(Message.__slots__) | {"error_code"} == table_names("## Message")


def test_every_exported_name_and_state_is_mentioned() -> None:
    missing = [name for name in sdk.__all__ if f"`{name}" not in SDK_DOC and name not in SDK_DOC]
    assert not missing
    assert all(f"`{state.name}`" in SDK_DOC for state in ClientState)


def test_the_readme_links_the_sdk_reference() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "docs/sdk.md" in readme
