"""Log set-up: text or JSON lines, optional rotated file; the root logger restored afterwards."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiconexus_gateway.logs import (
    LOG_FILE_BACKUPS,
    LOG_FILE_MAX_BYTES,
    JSONFormatter,
    TextFormatter,
    setup_logging,
    write_line,
)


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access_level = logging.getLogger("tornado.access").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("tornado.access").setLevel(access_level)


def _record(msg: str = "agent registered: %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("aiconexus.gateway", logging.INFO, __file__, 1, msg, args or ("d",), None)
    record.created = 1_790_000_000.123
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_formatter_writes_one_object_with_time_level_logger_message_and_fields() -> None:
    line = JSONFormatter().format(_record("agent registered: %s", "did:key:z6Mk", did="did:key:z6Mk",
                                          _private=1, path=Path("/x")))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry == {"time": "2026-09-21T14:13:20.123Z", "level": "INFO", "logger": "aiconexus.gateway",
                     "message": "agent registered: did:key:z6Mk", "did": "did:key:z6Mk", "path": "/x"}


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.floats(0, 4e9), st.integers(0, 4 * 10**9).map(lambda s: s + 0.0005),
                 st.integers(0, 4 * 10**9).map(lambda s: s + 0.9999996)))
def test_both_formats_write_the_time_as_the_standard_library_does(created: float) -> None:
    """Each formatter writes the date and time once per second (cached); the text is the same as
    logging.Formatter's (local time, milliseconds) and datetime's ISO 8601 UTC, at any instant."""
    record = _record()
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    assert TextFormatter().formatTime(record) == logging.Formatter().formatTime(record)
    expected = datetime.fromtimestamp(created, tz=timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")
    assert json.loads(JSONFormatter().format(record))["time"] == expected
    cached = JSONFormatter()
    cached.utc_time(float(int(created)))  # the same second, cached from another instant of it
    assert cached.utc_time(created) == expected


def test_json_formatter_includes_the_exception() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = _record()
        record.exc_info = sys.exc_info()
    entry = json.loads(JSONFormatter().format(record))
    assert "RuntimeError: boom" in entry["exception"]


def test_text_setup_replaces_root_handlers_and_quiets_access_logs() -> None:
    setup_logging("INFO")
    root = logging.getLogger()
    assert root.level == logging.INFO
    assert len(root.handlers) == 1 and isinstance(root.handlers[0], logging.StreamHandler)
    assert not isinstance(root.handlers[0].formatter, JSONFormatter)
    assert logging.getLogger("tornado.access").level == logging.WARNING


def test_debug_setup_keeps_access_logs() -> None:
    setup_logging("DEBUG", "json")
    assert isinstance(logging.getLogger().handlers[0].formatter, JSONFormatter)
    assert logging.getLogger("tornado.access").level == logging.DEBUG


def test_log_file_gets_a_rotating_handler_with_the_same_format(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    setup_logging("INFO", "json", str(path))
    handlers = logging.getLogger().handlers
    rotating = [h for h in handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
    assert len(handlers) == 2 and len(rotating) == 1
    assert (rotating[0].maxBytes, rotating[0].backupCount) == (LOG_FILE_MAX_BYTES, LOG_FILE_BACKUPS)
    logging.getLogger("aiconexus.gateway").info("hello", extra={"did": "x"})
    rotating[0].flush()
    entry = json.loads(path.read_text().splitlines()[-1])
    assert (entry["message"], entry["did"]) == ("hello", "x")


def test_an_operator_line_and_its_newline_leave_in_one_write() -> None:
    """Workers share one stdout; under PYTHONUNBUFFERED print() writes text and newline apart, and
    another worker's banner landed between them (two banners merged into one line)."""
    writes: list[str] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    write_line(Recorder(), "AIConexus Gateway listening on ws://127.0.0.1:1/ws")
    assert writes == ["AIConexus Gateway listening on ws://127.0.0.1:1/ws\n"]
