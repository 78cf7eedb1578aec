"""The /ws endpoint: pumps WebSocket frames between a socket and the hub, nothing more."""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.ioloop import IOLoop
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from .. import PROTOCOL
from ..errors import CloseCode, ErrorCode, ProtocolError
from ..hub import Hub, Peer

log = logging.getLogger("aiconexus.gateway.ws")


def offered_subprotocols(header: str | None) -> list[str]:
    """The subprotocols listed in a Sec-WebSocket-Protocol header."""
    if not header:
        return []
    return [item.strip() for item in header.split(",") if item.strip()]


def utf8_length_exceeds(text: str, limit: int) -> bool:
    """True when `text` encoded as UTF-8 is longer than `limit` bytes (cheap for short text)."""
    if len(text) * 4 <= limit:
        return False
    return len(text) > limit or len(text.encode("utf-8", "surrogatepass")) > limit


class AgentSocketHandler(WebSocketHandler):
    """One agent connection. Frames go to the hub in arrival order; the hub answers via `send`."""

    def initialize(self, hub: Hub, max_message_size: int) -> None:
        self.hub = hub
        self.limit = max_message_size
        self.peer: Peer | None = None
        self._timer: object | None = None  # the challenge timer, then the idle timer
        self._watching_idle = False

    @property
    def remote_ip(self) -> str:
        return str(self.request.remote_ip)

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self._refuse(400, "NOT_A_WEBSOCKET",
                         f"/ws is a WebSocket endpoint (subprotocol {PROTOCOL}); "
                         "send an Upgrade: websocket request")
            return
        offered = offered_subprotocols(self.request.headers.get("Sec-WebSocket-Protocol"))
        if offered and PROTOCOL not in offered:
            self._refuse(400, "UNSUPPORTED_SUBPROTOCOL",
                         f"this gateway speaks subprotocol {PROTOCOL}; offered: {', '.join(offered)}")
            return
        if self.hub.draining:
            self._refuse(503, "DRAINING", "the gateway is shutting down; connect to another instance")
            return
        await super().get(*args, **kwargs)

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.hub.metrics.connections.labels("refused").inc()
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": code, "message": message}))

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return PROTOCOL if PROTOCOL in subprotocols else None

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)
        self.peer = self.hub.open(self)
        loop = IOLoop.current()
        self._timer = loop.call_later(self.hub.settings.session.challenge_timeout,
                                      self._challenge_expired)

    def on_message(self, message: str | bytes) -> None:
        peer = self.peer
        if peer is None:
            return
        if isinstance(message, str):
            if utf8_length_exceeds(message, self.limit):
                self._too_large()
                return
            try:
                self.hub.receive(peer, message)
            except Exception:  # a bug of ours: answer INTERNAL_ERROR, never drop silently
                log.exception("internal error handling a frame", extra={"did": peer.did})
                self.hub.internal_error(peer, message)
            if not self._watching_idle and peer.record is not None:
                self._registered()
        else:
            if len(message) > self.limit:
                self._too_large()
                return
            self.hub.receive_binary(peer)

    def _too_large(self) -> None:
        assert self.peer is not None
        self.hub.send_error(self.peer, ProtocolError(
            ErrorCode.MESSAGE_TOO_LARGE, f"frames are limited to {self.limit} bytes"))
        self.peer.session.close()
        self.close(CloseCode.TOO_LARGE, "message too big")

    def _challenge_expired(self) -> None:
        self._timer = None
        if self.peer is not None:
            self.hub.challenge_expired(self.peer)

    def _registered(self) -> None:
        """The challenge timer gives way to the idle timer (AGENT_TIMEOUT)."""
        self._watching_idle = True
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
        self._schedule_idle_check(self.hub.settings.agent_timeout)

    def _schedule_idle_check(self, delay: float) -> None:
        self._timer = IOLoop.current().call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        self._timer = None
        if self.peer is None:
            return
        delay = self.hub.check_idle(self.peer)
        if delay is not None:
            self._schedule_idle_check(delay)

    def on_close(self) -> None:
        if self._timer is not None:
            IOLoop.current().remove_timeout(self._timer)
            self._timer = None
        if self.peer is not None:
            self.hub.closed(self.peer, self.close_code, self.close_reason)

    # -- the hub's Connection protocol ----------------------------------------------------------

    def send(self, text: str) -> bool:
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return False
        try:
            self.write_message(text)
        except WebSocketClosedError:
            return False
        return True
