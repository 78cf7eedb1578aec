"""client/peer/relay.py: ordered relay frames and the credit window, without a gateway."""

from __future__ import annotations

from typing import Any

import pytest

from aiconexus_gateway.client.peer.relay import MAX_RELAY_MESSAGE, RelayStream


def test_text_and_bytes_arrive_in_order() -> None:
    sender, receiver = RelayStream(), RelayStream()
    frames = [sender.data("hello"), sender.data(b"\x00\xffbytes")]
    assert [receiver.receive(frame) for frame in frames] == ["hello", b"\x00\xffbytes"]


def test_a_refused_frame_is_sent_again_and_arrives_once_in_order() -> None:
    """RATE_LIMITED: frame 1 was not routed, 2 was; the sender sends every unacked frame again
    and the receiver drops what it had (0) and what came ahead of the gap (2 the first time)."""
    sender, receiver = RelayStream(window=8), RelayStream(window=8)
    frames = [sender.data(str(n)) for n in range(3)]
    assert receiver.receive(frames[0]) == "0"
    assert receiver.receive(frames[2]) is None  # ahead of the refused frame 1: comes again
    assert sender.resend() == frames
    assert [receiver.receive(frame) for frame in sender.resend()] == [None, "1", "2"]
    assert receiver.dropped == 2
    for _ in range(3):
        receiver.consumed()
    assert receiver.last_ack() == {"op": "ack", "seq": 2}
    sender.receive({"op": "ack", "seq": 1})
    assert sender.resend() == [frames[2]]  # acknowledged frames are not kept


def test_a_frame_outside_the_window_is_an_error_not_a_silent_loss() -> None:
    sender, receiver = RelayStream(window=4), RelayStream(window=4)
    frames: list[dict[str, Any]] = []
    for _ in range(3):  # the sender's window moves on as the reader consumes
        frames += [sender.data(str(len(frames) + n)) for n in range(4)]
        for frame in frames[-4:]:
            receiver.receive(frame)
        for _ in range(4):
            ack = receiver.consumed()
        sender.receive(ack)  # type: ignore[arg-type]
    assert receiver.next_in == 12
    with pytest.raises(ValueError, match="outside the window"):
        receiver.receive(frames[7])  # a repeat from before the window
    far = {"op": "data", "seq": 16, "text": "x"}
    with pytest.raises(ValueError, match="outside the window"):
        receiver.receive(far)  # beyond what an honest sender may have out: a loss


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
