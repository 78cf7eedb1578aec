"""The pure mailbox (aiconexus_gateway/mailbox.py): bounds, order, acknowledgement, expiry."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from aiconexus_gateway.errors import ErrorCode, ProtocolError
from aiconexus_gateway.mailbox import (
    DELIVERED,
    EXPIRED,
    MAX_BLOCKED,
    Letter,
    Mailbox,
    MailboxSettings,
    Receipt,
    parse_ack,
    parse_policy,
    parse_ttl,
)

ALICE, BOB, CAROL, MALLORY = (f"did:key:z6Mk{name}" for name in ("alice", "bob", "carol", "mallory"))
NOW = 1_800_000_000.0


def _mailbox(**settings: Any) -> Mailbox:
    counter = itertools.count()
    return Mailbox(MailboxSettings(**settings), receipt_id=lambda: f"r-{next(counter)}")


def _store(mailbox: Mailbox, id: str, sender: str = ALICE, recipient: str = BOB, *,
           text: str | None = None, ttl: int = 60, now: float = NOW) -> Letter:
    return mailbox.store(id=id, sender=sender, recipient=recipient, type="INTENT",
                         text=text if text is not None else f'{{"id":"{id}"}}', ttl=ttl, now=now)


def _refusal(mailbox: Mailbox, id: str, sender: str = ALICE, **kwargs: object) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        _store(mailbox, id, sender, **kwargs)  # type: ignore[arg-type]
    assert caught.value.correlation_id == id
    return caught.value


def test_letters_come_out_in_arrival_order_once_per_connection() -> None:
    mailbox = _mailbox()
    for i in range(5):
        _store(mailbox, f"m{i}", sender=ALICE if i % 2 else CAROL)
    first = mailbox.unsent(BOB)
    assert [item.id for item in first] == ["m0", "m1", "m2", "m3", "m4"]
    assert mailbox.unsent(BOB) == []  # written to this connection already
    mailbox.disconnected(BOB)  # gone before acknowledging: all of them again, same order
    assert [item.id for item in mailbox.unsent(BOB)] == ["m0", "m1", "m2", "m3", "m4"]


def test_the_stored_text_is_kept_byte_for_byte() -> None:
    mailbox = _mailbox()
    text = '{ "id" : "m1",\n "payload": {"é": "\\u00e9"} }'
    _store(mailbox, "m1", text=text)
    [letter] = mailbox.unsent(BOB)
    assert isinstance(letter, Letter) and letter.text == text
    assert letter.size == len(text.encode("utf-8"))


def test_an_ack_removes_the_letter_and_a_repeat_finds_nothing() -> None:
    mailbox = _mailbox()
    _store(mailbox, "m1")
    _store(mailbox, "m2")
    acked = mailbox.ack(BOB, ALICE, "m1", NOW + 1)
    assert isinstance(acked, Letter) and acked.id == "m1"
    assert mailbox.ack(BOB, ALICE, "m1", NOW + 1) is None
    assert mailbox.ack(BOB, CAROL, "m2", NOW + 1) is None  # the id of another sender's letter
    assert mailbox.depth(BOB)["messages"] == 1
    mailbox.disconnected(BOB)
    assert [item.id for item in mailbox.unsent(BOB)] == ["m2"]


def test_an_acknowledged_letter_leaves_a_receipt_for_its_sender_until_acknowledged() -> None:
    mailbox = _mailbox()
    letter = _store(mailbox, "m1")
    mailbox.ack(BOB, ALICE, "m1", NOW + 1)
    receipt = mailbox.receipt(letter, DELIVERED, NOW + 1)
    assert receipt.payload() == {"id": "m1", "to": BOB, "status": DELIVERED}
    assert mailbox.unsent(ALICE) == [receipt]
    mailbox.disconnected(ALICE)
    assert mailbox.unsent(ALICE) == [receipt]  # the same receipt id again: the SDK drops repeats
    assert mailbox.ack(ALICE, "did:key:gateway", receipt.id, NOW + 2) is receipt
    assert mailbox.boxes == {} and mailbox.total_receipts == 0


def test_same_sender_and_id_again_is_the_same_letter() -> None:
    mailbox = _mailbox()
    first = _store(mailbox, "m1")
    assert _store(mailbox, "m1") is first
    assert mailbox.total_letters == 1
    other = _store(mailbox, "m1", sender=CAROL)  # another sender's id: its own letter
    assert other is not first and mailbox.total_letters == 2


def test_ttl_over_the_maximum_is_refused() -> None:
    error = _refusal(_mailbox(max_ttl=30), "m1", ttl=31)
    assert error.code is ErrorCode.MALFORMED_MESSAGE and error.details == {"max_ttl": 30}


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True, None, 2**31])
def test_ttl_must_be_whole_seconds_from_one(value: object) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_ttl(value, "m1")
    assert caught.value.code is ErrorCode.MALFORMED_MESSAGE and caught.value.correlation_id == "m1"


def test_one_sender_cannot_fill_another_agents_mailbox() -> None:
    mailbox = _mailbox(max_per_sender=3, max_messages=10)
    for i in range(3):
        _store(mailbox, f"x{i}", sender=MALLORY)
    error = _refusal(mailbox, "x3", sender=MALLORY)
    assert error.code is ErrorCode.MAILBOX_FULL and error.details == {"reason": "pair_messages", "to": BOB}
    _store(mailbox, "a1")  # others still get through
    mailbox.ack(BOB, MALLORY, "x0", NOW)
    _store(mailbox, "x3", sender=MALLORY)  # room again once one was taken


def test_the_recipient_message_bound() -> None:
    mailbox = _mailbox(max_messages=2)
    _store(mailbox, "m1")
    _store(mailbox, "m2", sender=CAROL)
    assert _refusal(mailbox, "m3", sender=MALLORY).details["reason"] == "recipient_messages"
    assert mailbox.total_letters == 2


def test_the_recipient_byte_bound_and_the_total_byte_bound() -> None:
    mailbox = _mailbox(max_bytes=100, max_total_bytes=150)
    _store(mailbox, "m1", text="x" * 60)
    assert _refusal(mailbox, "m2", text="y" * 41).details["reason"] == "recipient_bytes"
    _store(mailbox, "m2", text="y" * 40)  # exactly at the bound
    _store(mailbox, "m3", recipient=CAROL, text="z" * 50)
    error = _refusal(mailbox, "m4", recipient=CAROL, text="w")
    assert error.code is ErrorCode.MAILBOX_FULL and error.details["reason"] == "total_bytes"
    assert mailbox.total_bytes == 150


def test_a_recipient_can_disable_its_mailbox_or_refuse_some_senders() -> None:
    mailbox = _mailbox()
    _store(mailbox, "kept")
    view = mailbox.policy(BOB, enabled=False)
    assert view == {"enabled": False, "blocked": [], "messages": 1, "bytes": view["bytes"],
                    "receipts": 0}
    error = _refusal(mailbox, "m2", sender=CAROL)
    assert error.code is ErrorCode.MAILBOX_REFUSED and error.details["reason"] == "disabled"
    mailbox.policy(BOB, enabled=True, blocked=[MALLORY])
    assert _refusal(mailbox, "m3", sender=MALLORY).details["reason"] == "blocked"
    _store(mailbox, "m4", sender=CAROL)
    assert mailbox.depth(BOB)["blocked"] == [MALLORY]
    assert [item.id for item in mailbox.unsent(BOB)] == ["kept", "m4"]  # waiting letters stay


def test_default_rules_and_nothing_held_forget_the_box() -> None:
    mailbox = _mailbox()
    mailbox.policy(BOB, enabled=False)
    mailbox.policy(BOB, enabled=True)
    assert mailbox.boxes == {}
    assert mailbox.depth(BOB) == {"enabled": True, "blocked": [], "messages": 0, "bytes": 0,
                                  "receipts": 0}


def test_letters_expire_at_their_time_and_acknowledged_ones_do_not() -> None:
    mailbox = _mailbox()
    _store(mailbox, "short", ttl=5)
    _store(mailbox, "acked", ttl=5)
    _store(mailbox, "long", ttl=50)
    mailbox.ack(BOB, ALICE, "acked", NOW + 1)
    assert mailbox.next_deadline() == NOW + 5
    assert mailbox.expire(NOW + 4.9) == []
    assert [letter.id for letter in mailbox.expire(NOW + 5)] == ["short"]
    assert mailbox.depth(BOB)["messages"] == 1
    assert [letter.id for letter in mailbox.expire(NOW + 50)] == ["long"]
    assert mailbox.total_letters == 0 and mailbox.total_bytes == 0


def test_receipts_nobody_collects_expire_too_and_are_bounded() -> None:
    mailbox = _mailbox(max_ttl=10, max_messages=2)
    letters = [_store(mailbox, f"m{i}", ttl=5) for i in range(2)]
    for letter in letters:
        mailbox.ack(BOB, ALICE, letter.id, NOW)
    receipts = [mailbox.receipt(letter, DELIVERED, NOW) for letter in letters]
    third = _store(mailbox, "m2", recipient=CAROL, ttl=5)
    [expired] = mailbox.expire(NOW + 5)
    newest = mailbox.receipt(expired, EXPIRED, NOW + 5)
    assert expired is third
    assert [r.id for r in mailbox.unsent(ALICE) if isinstance(r, Receipt)] == [receipts[1].id, newest.id]
    mailbox.expire(NOW + 100)
    assert mailbox.boxes == {} and mailbox.total_receipts == 0


def test_ack_and_policy_payloads_are_checked() -> None:
    assert parse_ack({"from": ALICE, "id": "m1"}, "a1") == (ALICE, "m1")
    payloads: list[dict[str, object]] = [{}, {"id": "m1"}, {"from": ALICE, "id": ""},
                                         {"from": 1, "id": "m1"}]
    for payload in payloads:
        with pytest.raises(ProtocolError):
            parse_ack(payload, "a1")
    assert parse_policy({}, "p1") == (None, None)
    assert parse_policy({"enabled": False, "blocked": [ALICE]}, "p1") == (False, [ALICE])
    policies: list[dict[str, object]] = [{"enabled": "no"}, {"blocked": ALICE}, {"blocked": ["bob"]},
                                         {"blocked": [ALICE] * (MAX_BLOCKED + 1)}]
    for payload in policies:
        with pytest.raises(ProtocolError):
            parse_policy(payload, "p1")


def test_a_backlog_is_written_within_the_window_in_order_as_acks_come_back() -> None:
    mailbox = _mailbox(window=250)
    for n in range(5):
        _store(mailbox, f"m{n}", text="x" * 100)
    assert [i.id for i in mailbox.unsent(BOB)] == ["m0", "m1"]  # 200 in flight; 300 > 250
    _store(mailbox, "small", text="y")  # a later one does not jump the queue
    assert mailbox.unsent(BOB) == []
    mailbox.ack(BOB, ALICE, "m0", NOW)
    assert [i.id for i in mailbox.unsent(BOB)] == ["m2"]
    mailbox.disconnected(BOB)  # a new connection: the window starts empty again
    assert [i.id for i in mailbox.unsent(BOB)] == ["m1", "m2"]
    big = _mailbox(window=50)
    _store(big, "huge", text="z" * 100)
    assert [i.id for i in big.unsent(BOB)] == ["huge"]  # one always goes, whatever its size


def test_acknowledged_letters_do_not_pile_up_in_the_deadline_heap() -> None:
    mailbox = _mailbox()
    waiting = _store(mailbox, "stays", sender=CAROL, ttl=3600)
    for n in range(5000):  # a busy pair: stored, acknowledged, its receipt acknowledged
        letter = _store(mailbox, f"m{n}", ttl=3600)
        mailbox.ack(BOB, ALICE, letter.id, NOW)
        receipt = mailbox.receipt(letter, DELIVERED, NOW)
        mailbox.ack(ALICE, "did:key:gateway", receipt.id, NOW)
    assert mailbox.deadlines <= 2 * 1 + 1024 + 1
    assert [letter.id for letter in mailbox.expire(NOW + 3600)] == [waiting.id]
