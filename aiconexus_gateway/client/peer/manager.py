"""The peer-channel pump: carries out what the pure negotiation (signaling.py) decides.

One `PeerManager` per GatewayClient, created at the first use of a peer API. The client hands
it every verified OFFER / ANSWER / ICE_CANDIDATE that belongs to a negotiation (a payload with
`negotiation_id`), and the gateway's ERRORs about the signals it sent. Each negotiation has an
`Attempt`: its WebRTC link (webrtc.py) or relay stream (relay.py), its PeerChannel, the
connect_peer call waiting for it, and one worker task that carries out its decisions in order,
so that a candidate is never applied before its description and signals leave in the order the
negotiation made them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConnectionClosed
from ..handlers import Background, call_handler
from .channel import PeerChannel
from .errors import PeerClosed, PeerError
from .proof import build_proof, check_proof
from .relay import RelayStream
from .signaling import (
    AddCandidate,
    Adopt,
    ApplyRemote,
    Closed,
    Decision,
    Failed,
    Ignore,
    Negotiation,
    NegotiationState,
    NewOffer,
    Opened,
    PeerSignaling,
    RelayFrame,
    Reply,
    Role,
    Route,
    SendProof,
    Signal,
    StartRelay,
    check_label,
    is_peer_signal,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..gateway_client import GatewayClient
    from ..session import Message
    from .webrtc import WebRTCLink

log = logging.getLogger("aiconexus.client.peer")

PeerHandler = Callable[[PeerChannel], Awaitable[None] | None]
AcceptPolicy = Callable[[str, str], Awaitable[bool] | bool]
Work = Callable[[], Awaitable[None]]
CALLEE_TIMEOUT = 30.0  # seconds an incoming OFFER has to become an open channel
REFRESH_MARGIN = 60.0  # seconds before TURN credentials expire that fresh ones are asked for
CLOSE_DRAIN = 10.0  # seconds close() waits for the data channel to deliver what was sent
_END = object()


class Attempt:
    """The I/O of one negotiation."""

    def __init__(self, negotiation: Negotiation, channel: PeerChannel) -> None:
        self.negotiation = negotiation
        self.channel = channel
        self.link: WebRTCLink | None = None
        self.relay: RelayStream | None = None
        self.credit = asyncio.Event()
        self.send_lock = asyncio.Lock()
        self.waiter: asyncio.Future[PeerChannel] | None = None
        self.queue: asyncio.Queue[Work] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.relay_only = False
        self.ice_servers: list[dict[str, Any]] = []
        self.ended = False
        self.no_candidates = False  # our gathering found none: ICE fails once connecting
        self.proof_seen = False  # the first data-channel message is the peer's identity proof
        self.peer_certificate = ""  # SHA-256 of the certificate DTLS presented
        self.closing = False  # close() is draining the data channel: its close event is ours
        self.rewinding = False  # a RATE_LIMITED relay frame: the unacked frames go again soon


class RelayLink:
    """A channel carried through the gateway as relay frames (relay.py), paced and windowed."""

    def __init__(self, manager: PeerManager, attempt: Attempt) -> None:
        self.manager, self.attempt = manager, attempt

    async def send(self, data: str | bytes) -> None:
        attempt = self.attempt
        assert attempt.relay is not None
        async with attempt.send_lock:  # one frame number, one send, in order
            while attempt.relay.credit <= 0:
                if attempt.channel.state != "open":
                    raise PeerClosed(f"the channel to {attempt.channel.peer_did} is "
                                     f"{attempt.channel.state}", peer_did=attempt.channel.peer_did)
                attempt.credit.clear()
                await attempt.credit.wait()
            frame = attempt.relay.data(data)
            # encrypted end to end (e2e.py): the gateway relays what it cannot read
            await self.manager._signal(attempt, Signal("ICE_CANDIDATE", {
                "negotiation_id": attempt.negotiation.id, "relay": frame}), encrypt=True)


class WebRTCSender:
    """A channel carried by its data channel."""

    def __init__(self, link: WebRTCLink) -> None:
        self.link = link

    async def send(self, data: str | bytes) -> None:
        await self.link.send(data)


class PeerManager:
    """Every peer channel of one GatewayClient."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.signaling = PeerSignaling(client.did)
        self.attempts: dict[str, Attempt] = {}
        self.ice_servers: list[dict[str, Any]] | None = None  # None: the gateway's (REGISTERED)
        self.relay_only = False
        self._handlers: list[PeerHandler] = []
        self._accept: AcceptPolicy | None = None
        self._listening = False
        self._incoming: asyncio.Queue[Any] = asyncio.Queue()
        self._background = Background()
        self._closed = False

    # -- the application's side ------------------------------------------------------------------

    async def connect(self, peer_did: str, label: str, timeout: float, *, fallback: bool,
                      relay_only: bool | None, ice_servers: list[dict[str, Any]] | None
                      ) -> PeerChannel:
        if self._closed:
            raise PeerClosed("the client is closed")
        if not timeout > 0:
            raise ValueError("timeout must be above 0 seconds")
        check_label(label)
        await self._fresh_ice_servers()
        negotiation, replies = self.signaling.connect(peer_did, label, fallback=fallback,
                                                      timeout=timeout)
        for reply in replies:
            self._background_send(reply)
        waiter: asyncio.Future[PeerChannel] = asyncio.get_running_loop().create_future()
        if negotiation.adopted:  # glare: the peer's waiting OFFER is the one that stands
            attempt = self.attempts[negotiation.id]
            attempt.waiter = waiter
            self._arm(attempt, timeout)
        else:
            attempt = self._attempt(negotiation, timeout, relay_only, ice_servers)
            attempt.waiter = waiter
            self._push(attempt, lambda: self._offer(attempt))
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            await self._end(attempt, "failed", "connect_peer was cancelled")
            raise

    async def _fresh_ice_servers(self) -> None:
        """The gateway's TURN credentials expire: ask for new ones a minute before."""
        if self.ice_servers is not None or not self.client.connected:
            return
        if credentials_expire(self.client.ice_servers or [], time.time() + REFRESH_MARGIN):
            try:
                await self.client.refresh_ice_servers()
            except (ConnectionError, asyncio.TimeoutError) as exc:
                log.warning("could not refresh the ICE servers: %s", exc)

    def on_peer(self, handler: PeerHandler) -> PeerHandler:
        self._handlers.append(handler)
        self._listening = True
        return handler

    def accept_policy(self, policy: AcceptPolicy) -> None:
        self._accept = policy
        self._listening = True

    def peers(self) -> AsyncIterator[PeerChannel]:
        self._listening = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[PeerChannel]:
        while True:
            item = await self._incoming.get()
            if item is _END:
                self._incoming.put_nowait(_END)
                return
            yield item

    async def close(self) -> None:
        """The client closes: close every channel (telling the peers), end peers()."""
        self._closed = True
        attempts = list(self.attempts.values())
        if attempts:
            await asyncio.wait([asyncio.ensure_future(self._close_channel(
                attempt.channel, "the peer's client closed")) for attempt in attempts], timeout=2.0)
        for attempt in attempts:  # whatever did not finish within the bound
            if not attempt.ended:
                await self._end(attempt, "closed", "the client closed")
        self._incoming.put_nowait(_END)

    # -- from the client -------------------------------------------------------------------------

    def takes(self, message: Message) -> bool:
        """Handle `message` when it belongs to a negotiation (True), else leave it (False)."""
        if is_peer_signal(message.type, message.payload):
            self._route(self.signaling.receive(message.sender, message.type, message.payload))
            return True
        if message.type == "ERROR" and message.sender == self.client.gateway_did:
            payload = message.payload
            if payload.get("code") == "RATE_LIMITED":  # not routed: the relays send again
                self._rewind_relays()
                return self.signaling.owns(message.correlation_id)
            route = self.signaling.gateway_error(message.correlation_id, str(payload.get("code")),
                                                 str(payload.get("message")))
            if route is not None:
                self._route(route)
                return True
        return False

    def _route(self, outcome: Route | NewOffer | Adopt | Reply | Ignore) -> None:
        if isinstance(outcome, Route):
            existing = self.attempts.get(outcome.negotiation.id)
            if existing is not None and outcome.decisions:
                self._push(existing, _bind(self._carry_out, existing, outcome.decisions))
        elif isinstance(outcome, NewOffer):
            incoming = self._attempt(outcome.negotiation, CALLEE_TIMEOUT, None, None)
            self._push(incoming, lambda: self._decide(incoming))
        elif isinstance(outcome, Adopt):
            superseded = self.attempts.get(outcome.superseded.id)
            attempt = self._attempt(outcome.negotiation, outcome.negotiation.timeout,
                                    superseded.relay_only if superseded else None,
                                    superseded.ice_servers if superseded else None)
            if superseded is not None:
                attempt.waiter, superseded.waiter = superseded.waiter, None
                self._spawn(self._end(superseded, "closed", "glare: the peer's offer stands"))
            self._push(attempt, lambda: self._carry_out(attempt, attempt.negotiation.accept()))
        elif isinstance(outcome, Reply):
            self._background_send(outcome)
        else:
            log.debug("peer signal ignored: %s", outcome.reason)

    # -- attempts --------------------------------------------------------------------------------

    def _attempt(self, negotiation: Negotiation, timeout: float, relay_only: bool | None,
                 ice_servers: list[dict[str, Any]] | None) -> Attempt:
        channel = PeerChannel(negotiation.peer_did, negotiation.label, negotiation.id,
                              self._close_channel, self._consumed)
        attempt = Attempt(negotiation, channel)
        attempt.relay_only = self.relay_only if relay_only is None else relay_only
        if ice_servers is not None:
            attempt.ice_servers = ice_servers
        elif self.ice_servers is not None:
            attempt.ice_servers = self.ice_servers
        else:
            attempt.ice_servers = list(self.client.ice_servers or [])
        self.attempts[negotiation.id] = attempt
        attempt.worker = asyncio.create_task(self._work(attempt))
        self._arm(attempt, timeout)
        return attempt

    def _arm(self, attempt: Attempt, timeout: float) -> None:
        if attempt.deadline is not None:
            attempt.deadline.cancel()
        attempt.negotiation.timeout = timeout
        attempt.deadline = asyncio.get_running_loop().call_later(
            timeout, lambda: self._spawn(self._expire(attempt)))

    async def _expire(self, attempt: Attempt) -> None:
        await self._carry_out(attempt, attempt.negotiation.timed_out())

    def _push(self, attempt: Attempt, work: Work) -> None:
        attempt.queue.put_nowait(work)

    async def _work(self, attempt: Attempt) -> None:
        while not attempt.ended:
            work = await attempt.queue.get()
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except PeerError as exc:  # already carried out (the channel ended)
                log.debug("peer channel %s: %s", attempt.negotiation.id, exc)
            except Exception as exc:
                log.exception("peer channel %s with %s failed", attempt.negotiation.id,
                              attempt.negotiation.peer_did)
                await self._end(attempt, "failed", f"internal error: {exc}",
                                PeerError(f"the channel failed: {exc}",
                                          peer_did=attempt.negotiation.peer_did))

    def _link(self, attempt: Attempt) -> WebRTCLink:
        from .webrtc import WebRTCLink

        def later(work: Callable[[WebRTCLink], Awaitable[None]]) -> Callable[..., None]:
            def callback(*_: Any) -> None:
                if attempt.link is link:  # not after a switch to the relay or the end
                    self._push(attempt, lambda: work(link))
            return callback

        async def opened(current: WebRTCLink) -> None:
            digests = current.certificate_digests()
            attempt.peer_certificate = digests.get("sha-256", "")
            await self._carry_out(attempt, attempt.negotiation.connected(
                digests, relayed=current.relayed()))

        def message(data: str | bytes) -> None:
            if attempt.proof_seen:
                attempt.channel.delivered(data)
                return
            attempt.proof_seen = True
            if attempt.link is link:
                self._push(attempt, lambda: self._check_proof(link, data))

        async def failed(current: WebRTCLink) -> None:
            negotiation = attempt.negotiation
            decisions = negotiation.dtls_failed() if current.dtls_failed() else negotiation.ice_failed()
            await self._carry_out(attempt, decisions)

        async def closed(current: WebRTCLink) -> None:
            if attempt.closing:  # our own graceful close (_close_channel) carries on from here
                return
            await self._carry_out(attempt, attempt.negotiation.link_closed())

        link = WebRTCLink(attempt.negotiation.label, attempt.ice_servers,
                          relay_only=attempt.relay_only, on_open=later(opened),
                          on_failed=later(failed), on_close=later(closed),
                          on_message=message)
        attempt.link = link
        return link

    async def _offer(self, attempt: Attempt) -> None:
        link = self._link(attempt)
        description, candidates = await link.offer()
        await self._carry_out(attempt, attempt.negotiation.local_offer(description))
        await self._trickle(attempt, candidates)

    async def _trickle(self, attempt: Attempt, candidates: list[dict[str, Any]]) -> None:
        for candidate in [*candidates, None]:
            await self._carry_out(attempt, attempt.negotiation.local_candidate(candidate))
        if not candidates:  # nothing to pair with (relay-only without TURN): ICE cannot succeed,
            attempt.no_candidates = True  # and aiortc would wait; fail once connecting, and
            # only once the answer is applied (an ANSWER that came while we trickled waits in
            # the queue: _apply fails ICE after applying it, on the link that made the offer)
            negotiation = attempt.negotiation
            if negotiation.state is NegotiationState.CONNECTING and negotiation.remote_applied:
                await self._carry_out(attempt, attempt.negotiation.ice_failed())

    async def _decide(self, attempt: Attempt) -> None:
        """A new OFFER: ask the application (unless glare made it ours), then accept or refuse."""
        negotiation = attempt.negotiation
        if self.ice_servers is None and attempt.link is None:
            await self._fresh_ice_servers()
            attempt.ice_servers = list(self.client.ice_servers or [])
        accepted, why = True, ""
        if not negotiation.adopted:
            if not self._listening or self._closed:
                accepted, why = False, "this agent does not accept peer channels"
            elif self._accept is not None:
                try:
                    verdict = self._accept(negotiation.peer_did, negotiation.label)
                    accepted = bool(await verdict) if inspect.isawaitable(verdict) else bool(verdict)
                except Exception:
                    log.exception("the peer accept policy failed; refusing")
                    accepted = False
                why = "the agent refused the channel"
        if negotiation.adopted or accepted:
            await self._carry_out(attempt, negotiation.accept())
            return
        await self._carry_out(attempt, negotiation.refuse(message=why))
        await self._end(attempt, "failed", why)

    async def _carry_out(self, attempt: Attempt, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Signal):
                await self._signal(attempt, decision)
            elif isinstance(decision, ApplyRemote):
                await self._apply(attempt, decision)
            elif isinstance(decision, AddCandidate):
                if attempt.link is not None:
                    try:
                        await attempt.link.add_candidate(decision.candidate)
                    except Exception as exc:  # one bad candidate does not end the negotiation
                        log.info("a remote candidate was not usable: %s", exc)
            elif isinstance(decision, SendProof):
                if attempt.link is not None:
                    negotiation = attempt.negotiation
                    attempt.link.send_now(build_proof(
                        self.client.key, negotiation.id, negotiation.peer_did,
                        attempt.link.local_fingerprint(), attempt.peer_certificate))
            elif isinstance(decision, Opened):
                self._opened(attempt, decision.transport)
            elif isinstance(decision, Failed):
                await self._end(attempt, "failed", decision.error.message, decision.error)
            elif isinstance(decision, Closed):
                await self._end(attempt, "closed", decision.reason)
            elif isinstance(decision, StartRelay):
                link, attempt.link = attempt.link, None
                attempt.relay = RelayStream()
                if link is not None:
                    self._spawn(link.close())
            elif isinstance(decision, RelayFrame):
                self._relay_frame(attempt, decision.frame)

    async def _check_proof(self, link: WebRTCLink, message: str | bytes) -> None:
        attempt = next((a for a in self.attempts.values() if a.link is link), None)
        if attempt is None:
            return
        negotiation = attempt.negotiation
        try:
            check_proof(message, negotiation_id=negotiation.id, peer_did=negotiation.peer_did,
                        own_did=self.client.did, peer_fingerprint=attempt.peer_certificate,
                        own_fingerprint=link.local_fingerprint())
        except ValueError as exc:
            await self._carry_out(attempt, negotiation.proved(str(exc)))
            return
        await self._carry_out(attempt, negotiation.proved(None))

    async def _apply(self, attempt: Attempt, decision: ApplyRemote) -> None:
        negotiation = attempt.negotiation
        if attempt.relay is not None:  # switched to the relay meanwhile: no link to apply to
            return
        link = attempt.link if attempt.link is not None else self._link(attempt)
        await link.set_remote(decision.description)
        if negotiation.role is Role.CALLEE:
            description, candidates = await link.answer()
            await self._carry_out(attempt, negotiation.local_answer(description))
            await self._trickle(attempt, candidates)
        await self._carry_out(attempt, negotiation.applied())
        if attempt.no_candidates and negotiation.state is NegotiationState.CONNECTING:
            await self._carry_out(attempt, negotiation.ice_failed())

    async def _signal(self, attempt: Attempt, signal: Signal, *, encrypt: bool = False) -> None:
        try:
            message_id = await self.client.send(attempt.negotiation.peer_did, signal.type,
                                                signal.payload, encrypt=encrypt)
        except ConnectionClosed as exc:
            error = PeerClosed(f"the connection to the gateway is closed ({exc})",
                               peer_did=attempt.negotiation.peer_did)
            if attempt.negotiation.live:
                attempt.negotiation.state = NegotiationState.FAILED
                await self._end(attempt, "failed", error.message, error)
            raise error from None
        self.signaling.sent(message_id, attempt.negotiation.id)

    def _opened(self, attempt: Attempt, transport: str) -> None:
        if transport == "relay":
            attempt.channel.opened(transport, RelayLink(self, attempt))
        else:
            assert attempt.link is not None
            attempt.channel.opened(transport, WebRTCSender(attempt.link))
        if attempt.deadline is not None:
            attempt.deadline.cancel()
        log.info("peer channel %r with %s open over %s", attempt.channel.label,
                 attempt.channel.peer_did, transport)
        if attempt.waiter is not None:
            if not attempt.waiter.done():
                attempt.waiter.set_result(attempt.channel)
            return
        if self._handlers:
            for handler in self._handlers:
                self._spawn(call_handler(handler, attempt.channel, "on_peer"))
        else:
            self._incoming.put_nowait(attempt.channel)

    def _relay_frame(self, attempt: Attempt, frame: dict[str, Any]) -> None:
        if attempt.relay is None:
            return
        try:
            message = attempt.relay.receive(frame)
        except ValueError as exc:
            log.warning("relay frame refused on the channel with %s: %s",
                        attempt.negotiation.peer_did, exc)
            self._spawn(self._close_channel(attempt.channel, f"relay broken: {exc}"))
            return
        if message is None:
            attempt.credit.set()
        else:
            attempt.channel.delivered(message)

    def _rewind_relays(self) -> None:
        """The gateway refused one of our frames (RATE_LIMITED; its ERROR may not say which):
        every open relay sends its unacknowledged frames and its last ack again (relay.py)."""
        for attempt in list(self.attempts.values()):
            if attempt.relay is not None and attempt.channel.state == "open" \
                    and not attempt.rewinding:
                attempt.rewinding = True
                self._spawn(self._rewind(attempt))

    async def _rewind(self, attempt: Attempt) -> None:
        relay = attempt.relay
        assert relay is not None
        async with attempt.send_lock:  # after the frame the writer is sending (paced: it waits
            attempt.rewinding = False  # the retry_after), before its next one
            if attempt.ended:
                return
            frames = relay.resend()
            ack = relay.last_ack()
            log.debug("relay to %s: RATE_LIMITED, sending %d frames again",
                      attempt.negotiation.peer_did, len(frames))
            with contextlib.suppress(PeerError):
                for frame in [*frames, *([ack] if ack is not None else [])]:
                    await self._signal(attempt, Signal("ICE_CANDIDATE", {
                        "negotiation_id": attempt.negotiation.id, "relay": frame}),
                        encrypt=frame["op"] == "data")

    def _consumed(self, channel: PeerChannel) -> None:
        attempt = self.attempts.get(channel.negotiation_id)
        if attempt is None or attempt.relay is None or channel.state != "open":
            return
        ack = attempt.relay.consumed()
        if ack is not None:
            signal = Signal("ICE_CANDIDATE", {"negotiation_id": channel.negotiation_id,
                                              "relay": ack})
            self._push(attempt, lambda: self._signal(attempt, signal))

    async def _close_channel(self, channel: PeerChannel, reason: str) -> None:
        attempt = self.attempts.get(channel.negotiation_id)
        if attempt is None:
            channel.ended("closed", reason)
            return
        link = attempt.link
        if link is not None and channel.state == "open" and not attempt.closing:
            # what was sent reaches the peer before the connection goes: drain, then close the
            # data channel (its stream reset follows the data), then signal and close the rest
            attempt.closing = True
            await link.close_channel(CLOSE_DRAIN)
            if attempt.ended:  # the peer closed meanwhile, or the client did
                return
        decisions = attempt.negotiation.close(reason)
        with contextlib.suppress(PeerError):
            await self._carry_out(attempt, decisions)
        await self._end(attempt, "closed", reason)

    async def _end(self, attempt: Attempt, state: str, reason: str,
                   error: PeerError | None = None) -> None:
        """Release the attempt: its link, its timer, its worker; tell the channel and the waiter."""
        attempt.ended = True
        if self.attempts.get(attempt.negotiation.id) is attempt:
            del self.attempts[attempt.negotiation.id]
        self.signaling.forget(attempt.negotiation)
        if attempt.deadline is not None:
            attempt.deadline.cancel()
        attempt.channel.ended(state, reason)
        attempt.credit.set()
        if attempt.waiter is not None and not attempt.waiter.done():
            attempt.waiter.set_exception(error or PeerClosed(reason, peer_did=attempt.channel.peer_did))
        link, attempt.link = attempt.link, None
        if link is not None:
            await link.close()
        worker = attempt.worker
        if worker is not None and worker is not asyncio.current_task():
            worker.cancel()

    # -- background work -------------------------------------------------------------------------

    def _background_send(self, reply: Reply) -> None:
        async def send() -> None:
            with contextlib.suppress(ConnectionError):
                await self.client.send(reply.peer_did, reply.type, reply.payload)
        self._spawn(send())

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        self._background.spawn(coroutine)


def credentials_expire(servers: list[dict[str, Any]], by: float) -> bool:
    """True when a TURN REST username (`<expiry>:<user>`) in `servers` expires before `by`."""
    for server in servers:
        expiry = str(server.get("username", "")).partition(":")[0]
        if expiry.isdigit() and int(expiry) < by:
            return True
    return False


def _bind(function: Callable[[Attempt, list[Decision]], Awaitable[None]], attempt: Attempt,
          decisions: list[Decision]) -> Work:
    return lambda: function(attempt, decisions)
