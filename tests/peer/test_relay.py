"""client/peer/relay.py: ordered relay frames and the credit window, without a gateway."""

from __future__ import annotations

import pytest

from aiconexus_gateway.client.peer.relay import MAX_RELAY_MESSAGE, RelayStream


def test_text_and_bytes_arrive_in_order() -> None:
    sender, receiver = RelayStream(), RelayStream()
    frames = [sender.data("hello"), sender.data(b"\x00\xffbytes")]
    assert [receiver.receive(frame) for frame in frames] == ["hello", b"\x00\xffbytes"]


def test_a_gap_or_a_repeat_is_an_error_not_a_silent_loss() -> None:
    sender, receiver = RelayStream(), RelayStream()
    first, second = sender.data("a"), sender.data("b")
    with pytest.raises(ValueError, match="expected"):
        receiver.receive(second)
    receiver.receive(first)
    with pytest.raises(ValueError, match="expected"):
        receiver.receive(first)


def test_the_sender_stops_after_a_window_until_the_reader_consumes() -> None:
    sender, receiver = RelayStream(window=4), RelayStream(window=4)
    frames = [sender.data(str(n)) for n in range(4)]
    assert sender.credit == 0
    with pytest.raises(RuntimeError, match="credit"):
        sender.data("one too many")
    for frame in frames:
        receiver.receive(frame)
    acks = [receiver.consumed() for _ in frames]  # acks follow the reader
    assert acks == [None, {"op": "ack", "seq": 1}, None, {"op": "ack", "seq": 3}]
    sender.receive(acks[1])  # type: ignore[arg-type]
    assert sender.credit == 2
    sender.receive(acks[3])  # type: ignore[arg-type]
    assert sender.credit == 4


def test_malformed_frames_are_refused() -> None:
    receiver = RelayStream()
    for bad in ({"op": "data", "seq": "0", "text": "x"}, {"op": "data", "seq": 0},
                {"op": "data", "seq": 0, "bytes": "not base64!"},
                {"op": "ack", "seq": 5}, {"op": "data", "seq": True, "text": "x"}):
        with pytest.raises(ValueError):
            receiver.receive(bad)


def test_too_large_or_wrong_typed_messages_are_refused() -> None:
    sender = RelayStream()
    with pytest.raises(ValueError, match="limited"):
        sender.data(b"x" * (MAX_RELAY_MESSAGE + 1))
    with pytest.raises(TypeError):
        sender.data(42)  # type: ignore[arg-type]
    assert sender.next_out == 0
