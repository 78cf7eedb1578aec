"""discovery.py: query validation, matching, paging and the cost bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiconexus_gateway.cards import parse_card
from aiconexus_gateway.discovery import (
    MAX_DIDS,
    MAX_LIMIT,
    Index,
    Listing,
    Query,
    parse_dids,
    parse_query,
)
from aiconexus_gateway.errors import ErrorCode, ProtocolError
from aiconexus_gateway.keys import DIDKey

KEYS = sorted((DIDKey.from_seed(bytes([i]) * 32) for i in range(1, 41)), key=lambda k: k.did)
DIDS = [key.did for key in KEYS]


def listing(did: str, name: str = "agent", capabilities: tuple[str, ...] = (),
            extra: str = "") -> Listing:
    card = parse_card({"name": name, "capabilities": list(capabilities), "extra": extra})
    return Listing.of(did, card, {"signature": "s"})


@pytest.fixture
def index() -> Index:
    index = Index()
    for number, did in enumerate(DIDS):
        capabilities = ("even",) if number % 2 == 0 else ("odd",)
        index.add(listing(did, f"Agent-{number}", (*capabilities, "all")))
    return index


def test_a_query_is_parsed_with_its_defaults() -> None:
    assert parse_query({}) == Query()
    query = parse_query({"capability": "translate", "name_prefix": "TR", "limit": 5,
                         "dids": [DIDS[1], DIDS[0], DIDS[1]], "cursor": "c"})
    assert query == Query("translate", "tr", (DIDS[0], DIDS[1]), 5, "c")


@pytest.mark.parametrize(("payload", "says"), [
    ({"capabilty": "x"}, "does not take 'capabilty'"),
    ({"capability": ""}, "'capability'"),
    ({"capability": "a b"}, "'capability'"),
    ({"name_prefix": 5}, "'name_prefix'"),
    ({"dids": []}, "'dids'"),
    ({"dids": "did:key:z"}, "'dids'"),
    ({"dids": [DIDS[0]] * (MAX_DIDS + 1)}, "'dids'"),
    ({"dids": [7]}, "DID strings"),
    ({"limit": 0}, "'limit'"),
    ({"limit": MAX_LIMIT + 1}, "'limit'"),
    ({"limit": True}, "'limit'"),
    ({"limit": 2.0}, "'limit'"),
    ({"cursor": ""}, "'cursor'"),
    ({"cursor": "x" * 129}, "'cursor'"),
])
def test_a_malformed_query_says_what_is_wrong(payload: dict[str, Any], says: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_query(payload, "q1")
    assert raised.value.code is ErrorCode.MALFORMED_MESSAGE
    assert says in raised.value.message
    assert raised.value.correlation_id == "q1"


def test_a_query_for_an_invalid_did_is_invalid_did() -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_query({"dids": ["did:key:nope"]}, "q1")
    assert raised.value.code is ErrorCode.INVALID_DID and raised.value.correlation_id == "q1"


def test_watch_dids_are_bounded_and_deduplicated() -> None:
    assert parse_dids({"dids": [DIDS[1], DIDS[0], DIDS[1]]}, "WATCH", 3) == (DIDS[1], DIDS[0])
    with pytest.raises(ProtocolError, match="1-3 DIDs"):
        parse_dids({"dids": DIDS[:4]}, "WATCH", 3)
    with pytest.raises(ProtocolError, match="does not take 'did'"):
        parse_dids({"did": DIDS[0]}, "UNWATCH", 3)


def test_search_by_capability_pages_in_did_order_to_the_end(index: Index) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = index.search(Query(capability="even", limit=7, cursor=cursor))
        seen += [entry["did"] for entry in page.entries]
        pages += 1
        if page.next is None:
            break
        cursor = page.next
    assert seen == DIDS[0::2]
    assert pages == 3


def test_search_by_name_prefix_is_case_insensitive(index: Index) -> None:
    page = index.search(parse_query({"name_prefix": "agent-1"}))
    names = sorted(entry["card"]["name"] for entry in page.entries)
    assert names == sorted(["Agent-1"] + [f"Agent-{n}" for n in range(10, 20)])


def test_search_by_dids_returns_only_those_online(index: Index) -> None:
    index.remove(DIDS[3])
    page = index.search(Query(dids=(DIDS[2], DIDS[3]), capability="even"))
    assert [entry["did"] for entry in page.entries] == [DIDS[2]]
    assert page.next is None


def test_removed_agents_leave_every_list(index: Index) -> None:
    for did in DIDS:
        index.remove(did)
    assert len(index) == 0
    assert index.search(Query(capability="all")).entries == []


def test_a_scan_stops_at_its_bound_and_says_where_to_go_on(index: Index) -> None:
    page = index.search(Query(name_prefix="nobody"), max_scanned=10)
    assert page.entries == [] and page.next == DIDS[9]
    page = index.search(Query(name_prefix="nobody", cursor=page.next), max_scanned=100)
    assert page.next is None


def test_a_page_is_bounded_in_bytes_but_never_empty() -> None:
    index = Index()
    for did in DIDS[:5]:
        index.add(listing(did, extra="z" * 3000))
    page = index.search(Query(limit=100), page_bytes=7000)
    assert len(page.entries) == 2 and page.next == DIDS[1]
    page = index.search(Query(limit=100), page_bytes=10)
    assert len(page.entries) == 1 and page.next == DIDS[0]


def test_an_agent_without_a_card_is_found_by_did_only() -> None:
    index = Index()
    index.add(Listing.of(DIDS[0], None, None))
    assert index.search(Query(dids=(DIDS[0],))).entries == [{"did": DIDS[0], "card": None}]
    assert index.search(Query(name_prefix="a")).entries == []


def test_adding_again_replaces_the_listing(index: Index) -> None:
    index.add(listing(DIDS[0], "Renamed", ("odd",)))
    assert DIDS[0] not in [e["did"] for e in index.search(Query(capability="even")).entries]
    assert index.search(Query(dids=(DIDS[0],))).entries[0]["card"]["name"] == "Renamed"


@pytest.mark.parametrize("did", [DIDS[0], "did:key:z6Mk-._:x", 'did:"quoted"', "did:\u00e9t\u00e9",
                                 "did:back\\slash", "did:ctl\x01"])
def test_a_cardless_listing_s_size_is_its_json_s(did: str) -> None:
    """Listing.of writes no JSON for an agent without a card when the DID needs no escaping; the
    size it gives is still the entry's JSON in bytes (the DISCOVER page bound relies on it)."""
    listing = Listing.of(did, None, None)
    assert listing.entry == {"did": did, "card": None}
    assert listing.size == len(json.dumps(listing.entry, ensure_ascii=False,
                                          separators=(",", ":")).encode())
