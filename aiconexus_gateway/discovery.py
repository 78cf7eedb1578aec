"""Discovery: which listed agents are online now, by capability, name prefix or DID. No I/O.

Theory of operation: the `Index` holds one `Listing` per listed agent online here (unlisted agents
are never added), in DID order, with one sorted DID list per capability. `parse_query` turns a
DISCOVER payload into a `Query` or a MALFORMED_MESSAGE saying what is wrong; `Index.search`
answers one page. Pages are in DID order and the cursor is the last DID looked at, so paging is
stable while agents come and go. Each search looks at no more than MAX_SCANNED candidates and
returns at most `limit` entries and about PAGE_BYTES of JSON: a hostile query costs a bounded
amount of time and memory, and an unfinished scan says so with a `next` cursor.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right, insort
from dataclasses import dataclass
from typing import Any

from .cards import CAPABILITY, MAX_NAME, Card
from .did import public_key_from_did
from .errors import ErrorCode, ProtocolError

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_DIDS = 100  # DIDs in one query
MAX_SCANNED = 2000  # candidates looked at per query
PAGE_BYTES = 32768  # JSON of the entries of one page (at least one entry is always returned)
MAX_CURSOR = 128
_MEMBERS = frozenset({"capability", "name_prefix", "dids", "limit", "cursor"})


@dataclass(frozen=True, slots=True)
class Query:
    capability: str | None = None
    name_prefix: str | None = None  # compared case-insensitively (casefold)
    dids: tuple[str, ...] | None = None  # sorted, without repeats
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None  # answers start after this DID


# {"did":"<did>","card":null}: its size without the DID, for a DID JSON writes as it is
_CARDLESS_OVERHEAD = len('{"did":"","card":null}')
_PLAIN_DID = re.compile(r"[A-Za-z0-9:._-]*")


@dataclass(frozen=True, slots=True)
class Listing:
    """A listed agent as discovery returns it: the entry is built once, at registration."""

    did: str
    folded_name: str | None
    capabilities: tuple[str, ...]
    entry: dict[str, Any]  # {"did", "card", "register"}
    size: int  # bytes of the entry's JSON, for the page bound

    @classmethod
    def of(cls, did: str, card: Card | None, register: dict[str, Any] | None) -> Listing:
        entry: dict[str, Any] = {"did": did, "card": card.document if card else None}
        if card is None and _PLAIN_DID.fullmatch(did):  # most agents: no dumps per registration
            return cls(did, None, (), entry, len(did) + _CARDLESS_OVERHEAD)
        if card is not None and register is not None:
            entry["register"] = register
        size = len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode())
        return cls(did, card.name.casefold() if card else None,
                   card.capabilities if card else (), entry, size)


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[dict[str, Any]]
    next: str | None  # the cursor of the next page; None when this one is the last


def parse_query(payload: dict[str, Any], message_id: str | None = None) -> Query:
    """A DISCOVER payload as a Query; MALFORMED_MESSAGE (or INVALID_DID) saying what is wrong."""
    unknown = sorted(set(payload) - _MEMBERS)
    if unknown:
        raise _bad(f"DISCOVER does not take {unknown[0]!r}; its members are capability, "
                   "name_prefix, dids, limit, cursor", message_id)
    capability = payload.get("capability")
    if capability is not None and (type(capability) is not str
                                   or CAPABILITY.match(capability) is None):
        raise _bad("'capability' must be 1-64 characters of A-Z a-z 0-9 . _ : / + -", message_id)
    prefix = payload.get("name_prefix")
    if prefix is not None and (type(prefix) is not str or not 0 < len(prefix) <= MAX_NAME):
        raise _bad(f"'name_prefix' must be a string of 1-{MAX_NAME} characters", message_id)
    dids = payload.get("dids")
    if dids is not None:
        if type(dids) is not list or not 0 < len(dids) <= MAX_DIDS:
            raise _bad(f"'dids' must be a list of 1-{MAX_DIDS} DIDs", message_id)
        for did in dids:
            _check_did(did, "dids", message_id)
        dids = tuple(sorted(set(dids)))
    limit = payload.get("limit", DEFAULT_LIMIT)
    if type(limit) is not int or not 0 < limit <= MAX_LIMIT:
        raise _bad(f"'limit' must be a whole number from 1 to {MAX_LIMIT}", message_id)
    cursor = payload.get("cursor")
    if cursor is not None and (type(cursor) is not str or not 0 < len(cursor) <= MAX_CURSOR):
        raise _bad("'cursor' must be the 'next' of a previous answer", message_id)
    return Query(capability, prefix.casefold() if prefix else None, dids, limit, cursor)


def parse_dids(payload: dict[str, Any], kind: str, limit: int,
               message_id: str | None = None) -> tuple[str, ...]:
    """The `dids` of a WATCH or UNWATCH payload (1 to `limit` DIDs, repeats removed)."""
    unknown = sorted(set(payload) - {"dids"})
    if unknown:
        raise _bad(f"{kind} does not take {unknown[0]!r}; its one member is dids", message_id)
    dids = payload.get("dids")
    if type(dids) is not list or not 0 < len(dids) <= limit:
        raise _bad(f"'dids' must be a list of 1-{limit} DIDs", message_id)
    for did in dids:
        _check_did(did, "dids", message_id)
    return tuple(dict.fromkeys(dids))


class Index:
    """The listed agents of this instance, searchable by capability, name prefix and DID."""

    __slots__ = ("_by_capability", "_dids", "_listings")

    def __init__(self) -> None:
        self._listings: dict[str, Listing] = {}
        self._dids: list[str] = []  # sorted
        self._by_capability: dict[str, list[str]] = {}  # capability -> sorted DIDs

    def __len__(self) -> int:
        return len(self._listings)

    def __contains__(self, did: object) -> bool:
        return did in self._listings

    def add(self, listing: Listing) -> None:
        self.remove(listing.did)
        self._listings[listing.did] = listing
        insort(self._dids, listing.did)
        for capability in listing.capabilities:
            insort(self._by_capability.setdefault(capability, []), listing.did)

    def remove(self, did: str) -> None:
        listing = self._listings.pop(did, None)
        if listing is None:
            return
        _discard(self._dids, did)
        for capability in listing.capabilities:
            dids = self._by_capability[capability]
            _discard(dids, did)
            if not dids:
                del self._by_capability[capability]

    def search(self, query: Query, *, max_scanned: int = MAX_SCANNED,
               page_bytes: int = PAGE_BYTES) -> Page:
        """One page of the agents that match `query`, after its cursor, in DID order."""
        if query.dids is not None:
            candidates: list[str] | tuple[str, ...] = query.dids
        elif query.capability is not None:
            candidates = self._by_capability.get(query.capability, [])
        else:
            candidates = self._dids
        start = bisect_right(candidates, query.cursor) if query.cursor is not None else 0
        entries: list[dict[str, Any]] = []
        size = 0
        end = min(len(candidates), start + max_scanned)
        for position in range(start, end):
            did = candidates[position]
            listing = self._listings.get(did)
            if listing is None or not _matches(listing, query):
                continue
            if entries and size + listing.size > page_bytes:
                return Page(entries, candidates[position - 1])
            entries.append(listing.entry)
            size += listing.size
            if len(entries) == query.limit:
                return Page(entries, did if position + 1 < len(candidates) else None)
        return Page(entries, candidates[end - 1] if end < len(candidates) else None)


def _matches(listing: Listing, query: Query) -> bool:
    if query.capability is not None and query.capability not in listing.capabilities:
        return False
    return query.name_prefix is None or (listing.folded_name is not None
                                         and listing.folded_name.startswith(query.name_prefix))


def _discard(ordered: list[str], did: str) -> None:
    position = bisect_right(ordered, did) - 1
    if position >= 0 and ordered[position] == did:
        del ordered[position]


def _check_did(did: Any, member: str, message_id: str | None) -> None:
    if type(did) is not str:
        raise _bad(f"'{member}' must hold DID strings", message_id)
    try:
        public_key_from_did(did)
    except ProtocolError as error:
        error.correlation_id = message_id
        raise


def _bad(message: str, message_id: str | None) -> ProtocolError:
    return ProtocolError(ErrorCode.MALFORMED_MESSAGE, message, correlation_id=message_id)
