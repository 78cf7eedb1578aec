"""The gateway's admin token, as the monitor holds it: sent, never shown.

A gateway started with `ADMIN_TOKEN` answers `/agents` and `/metrics` only to requests that
carry `Authorization: Bearer <token>`. The monitor reads the same variable (or `--token`,
`--token-file`). The token is kept inside `AdminToken`, whose `repr` and `str` hide it, so it
cannot reach the screen, an error message or a traceback's locals by way of formatting.
Standard library only (the command line imports it before Textual).
"""

from __future__ import annotations

from pathlib import Path


class BadToken(ValueError):
    """A token the monitor cannot send; the message never contains the token."""


class AdminToken:
    """A bearer token; `authorization` is the header value, nothing else reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value:
            raise BadToken("the admin token is empty")
        # an HTTP header value: printable ASCII (what does not fit would be echoed by the
        # HTTP library's error, token included)
        if not all(" " <= char <= "~" for char in value):
            raise BadToken("the admin token must be printable ASCII (it is sent in an HTTP header)")
        self._value = value

    @property
    def authorization(self) -> str:
        """The `Authorization` header's value."""
        return f"Bearer {self._value}"

    def __repr__(self) -> str:
        return "AdminToken(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AdminToken) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    @classmethod
    def from_file(cls, path: str) -> AdminToken:
        """The token in a file (its surrounding whitespace and final newline dropped)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
            raise BadToken(f"cannot read the token file {path}: {reason}") from None
        if not text.strip():
            raise BadToken(f"the token file {path} is empty")
        return cls(text)
