"""Logging set-up: text for people, JSON lines for log pipelines, optionally a rotated file.

Log lines carry text agents chose (close reasons, metadata, DIDs of bad frames, origins, paths).
Both formats escape control characters in it, so an agent can neither forge a line (a newline in
a close reason) nor drive the operator's terminal (ANSI/OSC sequences, C1 controls, line and
paragraph separators, bidirectional overrides): see `escape_control`.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed with `extra=` and becomes a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
LOG_FILE_MAX_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5


# C0 controls and DEL, C1 controls, U+2028/U+2029 (line breaks to some viewers), and the
# bidirectional embeddings, overrides and isolates (text that reads differently than it is).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_control(text: str) -> str:
    """`text` with every control character written as a visible escape (\\n, \\x1b, \\u2028)."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


class TextFormatter(logging.Formatter):
    """`time level logger: message`, one line per record whatever the message's arguments hold
    (a traceback, the gateway's own text, keeps its lines)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self._second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Formatter.formatTime's text (local time, milliseconds), the date and time written
        once per second: two lines per agent in a registration storm share it."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached, text = self._second
        if cached != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._second = (second, text)
        return f"{text},{int(record.msecs):03d}"  # Formatter.default_msec_format

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_control(record.message)
        return super().formatMessage(record)


# What json.dumps(ensure_ascii=False) leaves raw that a terminal or a line-based reader acts on.
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extra fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def utc_time(self, created: float) -> str:
        """`created` in ISO 8601 UTC with milliseconds ("2026-09-21T14:13:20.123Z"), as
        datetime.fromtimestamp(created, utc).isoformat(timespec="milliseconds") writes it
        (microseconds rounded, then cut), the date and time written once per second."""
        second = int(created // 1)
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{micros // 1000:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.utc_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        line = json.dumps(entry, default=str, ensure_ascii=False)  # escapes C0 controls
        return _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", line)


def setup_logging(level: str, fmt: str = "text", log_file: str | None = None) -> None:
    """Configure the root logger for the gateway process.

    Neither format shows the thread, the process or the calling function and line (JSON lines
    carry only the record's extra fields), so records do not collect them: the logging HOWTO's
    "Optimization" switches, ~2 us of the ~11 us a line costs (two lines per agent).
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # findCaller's frame walk
    formatter: logging.Formatter = JSONFormatter() if fmt == "json" else TextFormatter()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_FILE_MAX_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    # Tornado logs every request at INFO; keep access logs for DEBUG.
    logging.getLogger("tornado.access").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def write_line(stream: TextIO, line: str) -> None:
    """`line` and its newline in one write: workers share one stdout, and under PYTHONUNBUFFERED
    print() writes the text and the newline separately, so another worker's line could land
    between them (two banners merged into one line)."""
    stream.write(f"{line}\n")
    stream.flush()
