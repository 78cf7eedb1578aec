"""cards.py: the card schema, its bounds, and the proof a receiver checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiconexus_gateway import messages
from aiconexus_gateway.cards import (
    MAX_CARD_BYTES,
    check_card_size,
    check_proof,
    parse_card,
    parse_unlisted,
)
from aiconexus_gateway.errors import ErrorCode, ProtocolError
from tests.core.support import ALICE, BOB, GATEWAY, WALL


def test_a_full_card_is_kept_as_given_with_free_form_members() -> None:
    document = {"name": "Translator", "description": "fr<->en", "version": "1.2.0",
                "capabilities": ["translate", "llm:chat"], "provider": {"organization": "x"}}
    card = parse_card(document)
    assert card.name == "Translator"
    assert card.capabilities == ("translate", "llm:chat")
    assert card.document is document


@pytest.mark.parametrize(("value", "names"), [
    ([], "'card' must be an object"),
    ({}, "card.name"),
    ({"name": ""}, "card.name"),
    ({"name": "x" * 65}, "card.name"),
    ({"name": "a", "description": 3}, "card.description"),
    ({"name": "a", "version": ""}, "card.version"),
    ({"name": "a", "capabilities": "translate"}, "card.capabilities must be a list"),
    ({"name": "a", "capabilities": ["ok", "not ok"]}, "card.capabilities[1]"),
    ({"name": "a", "capabilities": [1]}, "card.capabilities[0]"),
    ({"name": "a", "capabilities": ["x"] * 33}, "at most 32"),
    ({"name": "a", "capabilities": ["x", "x"]}, "must not repeat"),
    ({"name": "a", "blob": "y" * (2 * MAX_CARD_BYTES)}, "far over"),
])
def test_a_bad_card_is_malformed_naming_what_is_wrong(value: Any, names: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse_card(value, "m1")
    assert raised.value.code is ErrorCode.MALFORMED_MESSAGE
    assert names in raised.value.message
    assert raised.value.correlation_id == "m1"


def test_the_exact_bound_is_in_canonical_bytes() -> None:
    base = {"name": "a", "blob": ""}
    room = MAX_CARD_BYTES - len('{"blob":"","name":"a"}')
    check_card_size(parse_card({**base, "blob": "y" * room}))
    with pytest.raises(ProtocolError, match=f"at most {MAX_CARD_BYTES}"):
        check_card_size(parse_card({**base, "blob": "y" * (room + 1)}))


@pytest.mark.parametrize("value", [1, "yes", 0, []])
def test_unlisted_must_be_a_boolean(value: Any) -> None:
    assert parse_unlisted(None) is False and parse_unlisted(True) is True
    with pytest.raises(ProtocolError, match="'unlisted' must be true or false"):
        parse_unlisted(value)


def _register(key: Any, card: dict[str, Any]) -> dict[str, Any]:
    text, _ = messages.build(key, "REGISTER", GATEWAY.did, {"nonce": "n", "card": card}, now=WALL)
    register: dict[str, Any] = json.loads(text)
    return register


def test_the_proof_verifies_the_card_signed_by_its_agent() -> None:
    card = {"name": "alice", "capabilities": ["x"]}
    check_proof(ALICE.did, card, _register(ALICE, card))


@pytest.mark.parametrize("tamper", ["other card", "other did", "bad signature", "not register"])
def test_a_forged_or_altered_proof_is_refused(tamper: str) -> None:
    card = {"name": "alice", "capabilities": ["x"]}
    register = _register(ALICE, card)
    did = ALICE.did
    if tamper == "other card":
        card = {"name": "mallory", "capabilities": ["x"]}
        register["payload"]["card"] = card
    elif tamper == "other did":
        did = BOB.did
    elif tamper == "bad signature":
        register = _register(BOB, card)
        register["from"] = ALICE.did
    else:
        register["type"] = "PING"
    with pytest.raises(ProtocolError) as raised:
        check_proof(did, card, register)
    assert raised.value.code is ErrorCode.INVALID_SIGNATURE
