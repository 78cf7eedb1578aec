"""The private parts of Tornado the gateway relies on (server/tornado_internals.py) all exist.

A Tornado upgrade that removes or renames any of them fails here, with one message naming each,
instead of failing connections at random; setup.py bounds the version for the same reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tornado

from aiconexus_gateway.server import tornado_internals
from aiconexus_gateway.server.tornado_internals import (
    REQUIRED,
    check_internals,
    missing_internals,
    valid_close_code,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_tornado_internal_the_gateway_uses_exists() -> None:
    missing = missing_internals()
    assert not missing, (
        f"Tornado {tornado.version} lacks internals server/tornado_internals.py relies on: "
        f"{', '.join(missing)}")


def test_a_missing_internal_is_named_in_one_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REQUIRED, "tornado.iostream.IOStream",
                        (*REQUIRED["tornado.iostream.IOStream"], "_gone_in_7_0"))
    assert missing_internals() == ["tornado.iostream.IOStream._gone_in_7_0"]
    with pytest.raises(RuntimeError, match=r"lacks internals .*IOStream\._gone_in_7_0.*tornado>=6\.6,<6\.7"):
        check_internals()


def test_no_other_server_module_touches_a_private_tornado_name() -> None:
    """Private names of Tornado objects (stream._x, protocol._x) appear only in tornado_internals."""
    pattern = re.compile(r"\b(?:stream|connection|ws_connection|protocol|server)\._[a-z]")
    server = Path(tornado_internals.__file__).parent
    offenders = [f"{path.name}:{number}: {line.strip()}"
                 for path in sorted(server.glob("*.py")) if path.name != "tornado_internals.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []


def test_setup_py_bounds_tornado_to_the_versions_the_internals_were_checked_on() -> None:
    setup = (ROOT / "setup.py").read_text()
    assert '"tornado>=6.6,<6.7"' in setup
    major, minor = (int(part) for part in tornado.version.split(".")[:2])
    assert (major, minor) == (6, 6)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                  1013, 1014, 3000, 3999, 4000, 4999])
def test_close_codes_a_peer_may_send(code: int) -> None:
    assert valid_close_code(code)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000,
                                  65535])
def test_close_codes_reserved_or_unassigned_are_invalid(code: int) -> None:
    assert not valid_close_code(code)


def test_a_method_tornado_stops_calling_is_caught_on_tornados_class_not_on_our_override(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """FrameProtocol overrides _receive_frame_loop; were Tornado to rename it, the override would
    still exist but never run. The check looks at Tornado's own class, so it names it."""
    from tornado.websocket import WebSocketProtocol, WebSocketProtocol13

    monkeypatch.delattr(WebSocketProtocol13, "_receive_frame_loop")
    monkeypatch.delattr(WebSocketProtocol, "_receive_frame_loop")  # (its abstract declaration)
    monkeypatch.delattr(WebSocketProtocol13, "_write_frame")
    assert missing_internals() == ["tornado.websocket.WebSocketProtocol13._receive_frame_loop",
                                   "tornado.websocket.WebSocketProtocol13._write_frame"]
