"""The relay fallback's stream as a pure object: ordered frames and a credit window. No I/O.

When ICE fails and both sides allowed it (`fallback`), the channel's messages travel through the
gateway as ICE_CANDIDATE messages of the negotiation, payload member `relay` (docs/protocol.md,
"Peer channels"): `{"op": "data", "seq": n, "text": ...}` or `{"op": "data", "seq": n,
"bytes": <base64>}`, numbered from 0, and `{"op": "ack", "seq": n}`: everything up to n was
received. The gateway keeps each sender's order (protocol.md section 14), so a gap means loss.

Flow control: a sender keeps at most `window` frames unacknowledged, and the receiver acks every
`window // 2`, so a reader that stops reading stops the writer after one window instead of
piling frames in the gateway's buffer (MAX_OUTBOUND_BUFFER; a slow consumer is cut off). The
rate limit is the client's pacer's business: every frame is sent with the client's `send`,
paced under the rate the gateway announced.

RATE_LIMITED: the gateway may still refuse a frame (it charges a slow frame extra tokens, which
the pacer cannot foresee); a refused frame is not routed, and its ERROR does not say which frame
it was. The sender then sends every unacknowledged frame again, in order (`resend`, go-back-N),
and the receiver drops a frame it already has (a repeat within the window) or one that came
ahead of the refused one (it will come again): each message is delivered once, in order. A frame
outside the window cannot come from an honest sender and fails the channel.
"""

from __future__ import annotations

import base64
import binascii
from collections import deque
from typing import Any

MAX_RELAY_MESSAGE = 32 * 1024  # bytes (or UTF-8 bytes of text) per message: base64 fits 64 KiB
DEFAULT_WINDOW = 64


class RelayStream:
    """One direction pair of a relayed channel: numbering out, checking and acknowledging in."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 2:
            raise ValueError("the relay window must be at least 2")
        self.window = window
        self.next_out = 0  # seq of the next frame we send
        self.acked = -1  # highest seq the peer acknowledged
        self.next_in = 0  # seq we expect next
        self._unacked_in = 0  # messages consumed since our last ack
        self._consumed = 0  # messages the application took
        self._sent: deque[dict[str, Any]] = deque()  # data frames the peer has not acked yet
        self.dropped = 0  # frames received again or ahead of a refused one (RATE_LIMITED)

    @property
    def credit(self) -> int:
        """Frames we may send before an ack (0: wait)."""
        return self.window - (self.next_out - 1 - self.acked)

    def data(self, message: str | bytes) -> dict[str, Any]:
        """The relay frame for one message; ValueError when too large, RuntimeError without credit."""
        if isinstance(message, str):
            size = len(message.encode("utf-8"))
            frame: dict[str, Any] = {"op": "data", "seq": self.next_out, "text": message}
        elif isinstance(message, (bytes, bytearray, memoryview)):
            raw = bytes(message)
            size = len(raw)
            frame = {"op": "data", "seq": self.next_out,
                     "bytes": base64.b64encode(raw).decode("ascii")}
        else:
            raise TypeError(f"a channel sends str or bytes, not {type(message).__name__}")
        if size > MAX_RELAY_MESSAGE:
            raise ValueError(f"a relayed message is limited to {MAX_RELAY_MESSAGE} bytes; "
                             f"this one has {size}")
        if self.credit <= 0:
            raise RuntimeError("no credit: wait for the peer's ack")
        self.next_out += 1
        self._sent.append(frame)
        return frame

    def resend(self) -> list[dict[str, Any]]:
        """The frames to send again after a RATE_LIMITED: every one not acknowledged, in order."""
        return list(self._sent)

    def last_ack(self) -> dict[str, Any] | None:
        """Our latest ack again (acks are cumulative: a refused one is repaired by sending it)."""
        return {"op": "ack", "seq": self._consumed - 1} if self._consumed else None

    def receive(self, frame: dict[str, Any]) -> str | bytes | None:
        """The message a data frame carries, or None for an ack (which adds credit) or a frame
        dropped (a repeat, or ahead of a refused frame: see RATE_LIMITED above). Call `consumed`
        when the application takes the message: acks follow the reader, not the wire.

        ValueError when the frame is malformed or outside the window: the channel must fail
        rather than deliver a gap."""
        op, seq = frame.get("op"), frame.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise ValueError("a relay frame needs a non-negative integer 'seq'")
        if op == "ack":
            if seq >= self.next_out:
                raise ValueError(f"ack {seq} for a frame never sent")
            self.acked = max(self.acked, seq)
            while self._sent and self._sent[0]["seq"] <= self.acked:
                self._sent.popleft()
            return None
        if op != "data":
            raise ValueError("a relay frame's 'op' is 'data' or 'ack'")
        if not self.next_in - self.window <= seq < self.next_in + self.window:
            raise ValueError(f"relay frame {seq} arrived where {self.next_in} was expected "
                             f"(outside the window of {self.window})")
        if seq != self.next_in:  # sent again, or ahead of a refused frame: it comes (again) later
            self.dropped += 1
            return None
        if "text" in frame and isinstance(frame["text"], str):
            message: str | bytes = frame["text"]
        elif "bytes" in frame and isinstance(frame["bytes"], str):
            try:
                message = base64.b64decode(frame["bytes"], validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("'bytes' is not base64") from None
        else:
            raise ValueError("a data frame carries 'text' (a string) or 'bytes' (base64)")
        self.next_in += 1
        return message

    def consumed(self) -> dict[str, Any] | None:
        """The application took one received message: the ack to send, every `window // 2`."""
        self._consumed += 1
        self._unacked_in += 1
        if self._unacked_in < self.window // 2:
            return None
        self._unacked_in = 0
        return {"op": "ack", "seq": self._consumed - 1}
