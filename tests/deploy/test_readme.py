"""README.md: what a new user copies from it is true of this checkout.

The configuration table against the gateway's options (what `aiconexus-gateway --help` prints),
the sample HTTP output against what the examples send, the "Coming from the deployment guide?"
table against the files and compose services it names, and the browser section against the
gateway's close code for a refused origin.
"""

from __future__ import annotations

import ast
import json
import re
import shlex

import pytest

from aiconexus_gateway.config import OPTIONS, Config

from .helpers import COMPOSE_FILE, REPO, load_yaml

README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    level = title.split(" ")[0]
    end = README.find(f"\n{level} ", start + len(title) + 2)
    return README[start:] if end == -1 else README[start:end]


def _table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def _ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


CONFIG_ROWS = _table_rows(_section("## Configuration"))


def test_the_configuration_table_lists_every_option_with_its_variable_and_flag() -> None:
    variables = [name for row in CONFIG_ROWS for name in _ticked(row[0])]
    flags = [flag for row in CONFIG_ROWS for flag in _ticked(row[1])]
    assert sorted(variables) == sorted(option.env for option in OPTIONS)
    assert sorted(flags) == sorted(option.flag for option in OPTIONS)
    for row in CONFIG_ROWS:  # a row of two settings names them in the same order
        pairs = zip(_ticked(row[0]), _ticked(row[1]), strict=True)
        assert all((env, flag) in {(o.env, o.flag) for o in OPTIONS} for env, flag in pairs), row


def _shown(value: object) -> str | None:
    if value is None or value == ():
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_the_configuration_table_shows_the_real_defaults() -> None:
    defaults = Config()
    env_to_field = {option.env: option.field for option in OPTIONS}
    for row in CONFIG_ROWS:
        names, shown = _ticked(row[0]), row[2]
        values = [_shown(getattr(defaults, env_to_field[name])) for name in names]
        if all(value is None for value in values):  # unset, none, generated
            assert not _ticked(shown), row
        else:
            assert _ticked(shown) == values, row


def _metadata_sent_by_examples() -> list[dict[str, object]]:
    found = []
    for script in ("two_clients.py", "message_exchange.py"):
        source = (REPO / "examples" / script).read_text(encoding="utf-8")
        found += [ast.literal_eval(text) for text in re.findall(r"metadata=(\{[^}]*\})", source)]
    assert found, "the examples send metadata"
    return found


def test_the_sample_agents_carry_the_metadata_the_examples_send() -> None:
    sent = _metadata_sent_by_examples()
    http = _section("## HTTP API (with real output)")
    shown = [json.loads(text) for text in re.findall(r'"metadata": (\{[^}]*\})', http)]
    assert shown, "the HTTP API section shows agents"
    assert all(metadata in sent for metadata in shown), (shown, sent)
    assert "message_exchange.py" in http  # and says which example produced them


GUIDE_ROWS = _table_rows(_section("### Coming from the deployment guide?"))


def test_the_deployment_guide_table_names_files_that_exist() -> None:
    ours = " ".join(row[1] for row in GUIDE_ROWS)
    paths = set(re.findall(r"\b((?:examples|deploy|docs)/[\w./-]+\.\w+)", ours))
    assert {"examples/two_clients.py", "examples/message_exchange.py"} <= paths
    for path in paths:
        assert (REPO / path).is_file(), path


@pytest.mark.parametrize("row", GUIDE_ROWS, ids=[row[0][:40] for row in GUIDE_ROWS])
def test_the_compose_commands_of_the_guide_table_use_v2_and_name_real_services(
        row: list[str]) -> None:
    compose = load_yaml(COMPOSE_FILE)
    for command in _ticked(row[1]):
        if not command.startswith(("docker compose", "docker-compose")) or " -f " not in command:
            continue
        words = shlex.split(command)
        assert words[:2] == ["docker", "compose"], command  # the v2 plugin, not Compose 1.x
        assert REPO.joinpath(words[words.index("-f") + 1]).is_file()
        if "--profile" in words:
            profile = words[words.index("--profile") + 1]
            assert any(profile in service.get("profiles", ()) for service in
                       compose["services"].values()), profile
        if "--scale" in words:
            service = words[words.index("--scale") + 1].split("=")[0]
            assert service in compose["services"], service


def test_make_run_takes_the_port_the_guide_table_shows() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "make run PORT=8001" in " ".join(row[1] for row in GUIDE_ROWS)
    assert "--port $(PORT)" in makefile


def test_the_browser_section_shows_the_close_code_and_reason_the_gateway_sends() -> None:
    from aiconexus_gateway.server import websocket

    browser = _section("### From a browser")
    assert "new WebSocket('ws://localhost:8000/ws', 'ioap.v1')" in browser
    assert "ALLOWED_ORIGINS=" in browser
    assert f"**{websocket.ORIGIN_NOT_ALLOWED}**" in browser
    reason = re.search(r"close\(ORIGIN_NOT_ALLOWED, \"([^\"]+)\"\)",
                       (REPO / "aiconexus_gateway" / "server" / "websocket.py").read_text())
    assert reason is not None and f"`{reason.group(1)}`" in browser
