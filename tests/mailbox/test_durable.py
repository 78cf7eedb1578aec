"""MAILBOX_FILE: a single gateway restarted (even killed) with messages waiting loses none."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from aiconexus_gateway.client import DIDKey, GatewayClient
from aiconexus_gateway.config import ConfigError, load
from aiconexus_gateway.mailbox import Letter, Mailbox, MailboxSettings
from aiconexus_gateway.mailbox_file import MailboxFile, MailboxFileError
from tests.support.process import GatewayProcess
from tests.support.sdk import next_of_type

NOW = 1_800_000_000.0
ALICE, BOB = "did:key:z6Mkalice", "did:key:z6Mkbob"



async def _agent(gateway: GatewayProcess, key: DIDKey) -> GatewayClient:
    client = GatewayClient(gateway.ws_url, key, connect_timeout=5)
    await client.connect()
    return client


@pytest.mark.gen_test(timeout=60)
async def test_a_killed_gateway_restarted_on_its_file_delivers_what_waited(tmp_path: Path) -> None:
    key_file, mailbox_file = tmp_path / "gateway.key", tmp_path / "data" / "mailbox.jsonl"
    mailbox_file.parent.mkdir()
    DIDKey.generate().save(key_file)
    args = ("--key-file", str(key_file), "--mailbox-file", str(mailbox_file))
    gateway = GatewayProcess(*args)
    alice_key, bob_key = DIDKey.generate(), DIDKey.generate()
    try:
        alice = await _agent(gateway, alice_key)
        ids = [await alice.send(bob_key.did, "INTENT", {"n": n}, ttl=60) for n in range(3)]
        short = await alice.send(DIDKey.generate().did, "INTENT", {}, ttl=1)
        for _ in range(4):
            await next_of_type(alice, "QUEUED")  # each one written to the file before this answer
        gateway.stop(signal.SIGKILL)
        await alice.close()

        gateway = GatewayProcess(*args, port=gateway.port)
        bob = await _agent(gateway, bob_key)
        got = [await next_of_type(bob, "INTENT") for _ in ids]
        assert [m.id for m in got] == ids
        alice = await _agent(gateway, alice_key)
        assert [await alice.receipt(i, timeout=10) for i in ids] == ["DELIVERED"] * 3
        assert await alice.receipt(short, timeout=10) == "EXPIRED"
        await alice.close()
        await bob.close()
    finally:
        gateway.stop()
    assert "records read from" in gateway.output()


def test_the_file_replays_to_the_same_state_and_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "mailbox.jsonl"
    first = Mailbox(MailboxSettings())
    file = MailboxFile(path)
    assert file.open(first) == 0
    first.policy(BOB, blocked=["did:key:z6Mkmallory"])
    for n in range(3):
        first.store(id=f"m{n}", sender=ALICE, recipient=BOB, type="INTENT",
                    text=f'{{"n": {n}, "é": "\\u00e9"}}', ttl=60, now=NOW)
    letter = first.ack(BOB, ALICE, "m0", NOW)
    assert isinstance(letter, Letter)
    first.receipt(letter, "DELIVERED", NOW)
    file.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 3 + 2  # policy, three puts, a drop, a receipt

    second = Mailbox(MailboxSettings())
    again = MailboxFile(path)
    assert again.open(second) == 6
    again.close()
    assert second.depth(BOB) == first.depth(BOB)
    assert second.depth(ALICE) == first.depth(ALICE)
    assert [i.id for i in second.unsent(BOB)] == ["m1", "m2"]
    assert [i.id for i in second.unsent(ALICE)] == [i.id for i in first.unsent(ALICE)]
    assert len(path.read_text().splitlines()) == 1 + 2 + 1  # rewritten as a snapshot


def test_a_line_cut_short_by_a_crash_is_ignored_and_damage_elsewhere_is_refused(
        tmp_path: Path) -> None:
    path = tmp_path / "mailbox.jsonl"
    record = {"op": "policy", "did": BOB, "enabled": False, "blocked": []}
    path.write_text(json.dumps(record) + "\n" + '{"op": "put", "to"')
    mailbox = Mailbox(MailboxSettings())
    MailboxFile(path).open(mailbox)
    assert mailbox.depth(BOB)["enabled"] is False
    path.write_text('{"op": "put"\n' + json.dumps(record) + "\n")
    with pytest.raises(MailboxFileError, match="line 1"):
        MailboxFile(path).open(Mailbox(MailboxSettings()))
    path.write_text(json.dumps({"op": "what"}) + "\n")
    with pytest.raises(MailboxFileError, match="what"):
        MailboxFile(path).open(Mailbox(MailboxSettings()))
    with pytest.raises(MailboxFileError, match="does not exist"):
        MailboxFile(tmp_path / "missing" / "mailbox.jsonl").open(Mailbox(MailboxSettings()))


def test_mailbox_options_are_validated() -> None:
    config = load(["--mailbox-file", "/data/mailbox.jsonl", "--mailbox-max-ttl", "60"], {})
    assert (config.mailbox_file, config.mailbox_max_ttl) == ("/data/mailbox.jsonl", 60)
    assert load([], {"MAILBOX_MAX_TTL": "0"}).mailbox_max_ttl == 0  # no mailbox
    with pytest.raises(ConfigError, match="single gateway"):
        load(["--mailbox-file", "m.jsonl", "--redis-url", "redis://127.0.0.1:6390/0"], {})
    for bad in (["--mailbox-max-ttl", "-1"], ["--mailbox-max-per-sender", "0"],
                ["--mailbox-max-bytes", "100"]):
        with pytest.raises(ConfigError, match=r"(?i)mailbox"):
            load(bad, {})


def test_a_journal_that_cannot_write_keeps_nothing() -> None:
    mailbox = Mailbox(MailboxSettings())

    def full(record: dict[str, object]) -> None:
        raise OSError(28, "No space left on device")

    mailbox.journal = full
    with pytest.raises(OSError):
        mailbox.store(id="m1", sender=ALICE, recipient=BOB, type="INTENT", text="{}", ttl=60,
                      now=NOW)
    assert mailbox.total_letters == 0 and mailbox.boxes == {}  # the sender gets INTERNAL_ERROR


def test_compaction_in_the_middle_of_traffic_loses_and_doubles_nothing(tmp_path: Path) -> None:
    import aiconexus_gateway.mailbox_file as mailbox_file

    path = tmp_path / "mailbox.jsonl"
    first = Mailbox(MailboxSettings())
    file = MailboxFile(path)
    file.open(first)
    original, mailbox_file.COMPACT_AFTER = mailbox_file.COMPACT_AFTER, 5
    try:
        for n in range(10):  # a journal much longer than what is left: the next change compacts
            letter = first.store(id=f"m{n}", sender=ALICE, recipient=BOB, type="INTENT",
                                 text="{}", ttl=60, now=NOW)
            first.ack(BOB, ALICE, letter.id, NOW)
            receipt = first.receipt(letter, "DELIVERED", NOW)
            if n < 9:
                first.ack(ALICE, "did:key:gateway", receipt.id, NOW)
        file.appended = 100  # due: the next change compacts the file
        first.store(id="kept", sender=ALICE, recipient=BOB, type="INTENT", text="{}", ttl=60,
                    now=NOW)  # a put (journaled before it is kept) on which the file compacts
        first.policy(BOB, enabled=False)  # a change journaled after it was made (no compaction)
    finally:
        mailbox_file.COMPACT_AFTER = original
    file.close()
    second = Mailbox(MailboxSettings())
    MailboxFile(path).open(second)
    assert second.depth(BOB) == first.depth(BOB) and second.depth(ALICE) == first.depth(ALICE)
    assert (second.total_letters, second.total_receipts) == (1, 1)
    assert [i.id for i in second.unsent(BOB)] == ["kept"]


def test_a_change_journaled_after_a_compaction_that_holds_it_is_replayed_once(
        tmp_path: Path) -> None:
    path = tmp_path / "mailbox.jsonl"
    first = Mailbox(MailboxSettings())
    file = MailboxFile(path)
    file.open(first)
    letter = first.store(id="m1", sender=ALICE, recipient=BOB, type="INTENT", text="{}", ttl=60,
                         now=NOW)
    first.ack(BOB, ALICE, "m1", NOW)
    file.appended = 10**6  # due: the receipt's line compacts the file, then follows the snapshot
    first.receipt(letter, "DELIVERED", NOW)
    file.close()
    second = Mailbox(MailboxSettings())
    MailboxFile(path).open(second)
    assert (second.total_receipts, second.depth(ALICE)["receipts"]) == (1, 1)
