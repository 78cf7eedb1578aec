"""Log set-up: text or JSON lines, optional rotated file; the root logger restored afterwards."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiconexus_gateway.logs import (
    LOG_FILE_BACKUPS,
    LOG_FILE_MAX_BYTES,
    JSONFormatter,
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
