"""A single gateway's durable mailbox (MAILBOX_FILE): the mailbox's records in one file.

At startup the file is read (a snapshot and the journal after it, one JSON object per line),
the mailbox rebuilt from it (Mailbox.replay), and the file rewritten as a snapshot of what is
left (written beside it, flushed to disk, then renamed over it, so a crash during the rewrite
leaves the old file). From then on every change the mailbox makes is appended as one line with
one write(2), before the gateway answers the agent (QUEUED, or nothing for an ACK): a gateway
that is killed (SIGKILL, a crash, a restart) loses nothing it accepted. The data is not flushed
to disk on every line, so a power loss or a kernel crash can lose the last changes the
operating system had not written yet. A last line cut short by a crash is ignored.

Letters that expired while the gateway was down expire at startup: their senders find EXPIRED
receipts when they connect.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .mailbox import Mailbox

log = logging.getLogger("aiconexus.gateway")

COMPACT_AFTER = 10_000  # journal lines before the file may be rewritten as a snapshot


class MailboxFileError(ValueError):
    """MAILBOX_FILE cannot be used; the message is the one line shown at startup."""


class MailboxFile:
    """The journal of one Mailbox."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._mailbox: Mailbox | None = None
        self.appended = 0  # lines written since the last snapshot

    def open(self, mailbox: Mailbox) -> int:
        """Rebuild `mailbox` from the file, rewrite the file as its snapshot and journal every
        later change of `mailbox` to it; the number of records read."""
        records = self._read()
        try:
            mailbox.replay(records)
        except ValueError as exc:
            raise MailboxFileError(f"the mailbox file {self.path} holds {exc}") from None
        self._mailbox = mailbox
        self._compact()
        mailbox.journal = self.append
        return len(records)

    def _compact(self) -> None:
        """Rewrite the file as a snapshot of the mailbox, and append to it from there."""
        assert self._mailbox is not None
        self._write_snapshot(self._mailbox.snapshot())
        self.close()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            raise MailboxFileError(f"cannot open the mailbox file {self.path}: {exc.strerror}") \
                from None

    def append(self, record: dict[str, Any]) -> None:
        """One change, as one line written with one write(2); once the journal is much longer
        than what it describes, the file is first rewritten as a snapshot. The snapshot may or
        may not hold this change already (a letter is journaled before it is kept, the rest
        after), so the line follows it either way: replaying a record twice changes nothing."""
        if self._fd is None or self._mailbox is None:
            return  # closed: the gateway is stopping, and the snapshot at the next start rules
        live = self._mailbox.total_letters + self._mailbox.total_receipts
        if self.appended > max(COMPACT_AFTER, 4 * live):
            self._compact()
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8", "surrogatepass"))
        self.appended += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise MailboxFileError(f"cannot read the mailbox file {self.path}: {exc.strerror}") \
                from None
        lines = data.split(b"\n")
        records: list[dict[str, Any]] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.decode("utf-8", "surrogatepass"))
            except (ValueError, UnicodeDecodeError):
                if number >= len(lines) - 1:  # the last line, cut short by a crash
                    break
                raise MailboxFileError(f"the mailbox file {self.path} is damaged at line "
                                       f"{number} (not JSON)") from None
            if not isinstance(record, dict):
                raise MailboxFileError(f"the mailbox file {self.path} is damaged at line {number}")
            records.append(record)
        return records

    def _write_snapshot(self, records: list[dict[str, Any]]) -> None:
        temporary = self.path.with_name(self.path.name + ".new")
        try:
            with open(temporary, "wb") as file:
                for record in records:
                    file.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"))
                               .encode("utf-8", "surrogatepass") + b"\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            hint = "" if self.path.parent.is_dir() else \
                f" (the directory {str(self.path.parent)!r} does not exist)"
            raise MailboxFileError(f"cannot write the mailbox file {self.path}: "
                                   f"{exc.strerror}{hint}") from None
        self.appended = 0


def open_mailbox_file(mailbox: Mailbox, path: str | None) -> MailboxFile | None:
    """MAILBOX_FILE, opened for `mailbox` (None: in memory only); MailboxFileError says why not."""
    if not path:
        return None
    file = MailboxFile(path)
    read = file.open(mailbox)
    log.info("mailbox: %d records read from %s; %d messages and %d receipts waiting", read, path,
             mailbox.total_letters, mailbox.total_receipts)
    return file
