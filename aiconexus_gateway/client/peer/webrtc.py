"""The WebRTC side of a peer channel: one aiortc RTCPeerConnection with one data channel.

The only module that imports aiortc (the `webrtc` extra: `pip install 'aiconexus-gateway[webrtc]'`),
and lazily, so the SDK works without it until a peer channel is asked for.

Each negotiation gets its own RTCPeerConnection carrying one data channel, `negotiated` with id 0
(both sides create it, RFC 8832 is not needed), ordered and reliable: a browser does the same
with `pc.createDataChannel(label, {negotiated: true, id: 0})`.

Debts to aiortc's private attributes, paid here only (tests/peer/test_webrtc_internals.py names
them, setup.py bounds the version): the DTLS peer certificate (`RTCDtlsTransport._ssl`), to check
it against the signed SDP's fingerprint ourselves, and the nominated ICE pair
(`RTCIceTransport._connection._nominated`), to tell `direct` from `turn`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import PeerClosed
from .sdp import SUPPORTED_HASHES, split_candidates

if TYPE_CHECKING:  # pragma: no cover
    from aiortc import RTCDataChannel, RTCPeerConnection

log = logging.getLogger("aiconexus.client.peer")
HIGH_WATER = 1024 * 1024  # bytes buffered in the data channel before send() waits
LOW_WATER = 256 * 1024

def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


# Closes deferred until a gathering ends (WebRTCLink.close), kept referenced until they are done.
_deferred_closes: set[asyncio.Future[None]] = set()


def _aiortc() -> Any:
    try:
        import aiortc
    except ImportError:  # tests/peer/test_optional_dependency.py
        raise ImportError("peer channels need aiortc: pip install 'aiconexus-gateway[webrtc]'"
                          ) from None
    return aiortc


class WebRTCLink:
    """One RTCPeerConnection and its data channel, with the events the pump needs."""

    def __init__(self, label: str, ice_servers: list[dict[str, Any]], *, relay_only: bool,
                 on_open: Callable[[], None], on_failed: Callable[[], None],
                 on_message: Callable[[str | bytes], None], on_close: Callable[[], None]) -> None:
        aiortc = _aiortc()
        servers = [aiortc.RTCIceServer(urls=server["urls"], username=server.get("username"),
                                       credential=server.get("credential"))
                   for server in ice_servers]
        configuration = aiortc.RTCConfiguration(
            iceServers=servers,
            iceTransportPolicy=(aiortc.RTCIceTransportPolicy.RELAY if relay_only
                                else aiortc.RTCIceTransportPolicy.ALL))
        self.pc: RTCPeerConnection = aiortc.RTCPeerConnection(configuration)
        self.channel: RTCDataChannel = self.pc.createDataChannel(label, negotiated=True, id=0,
                                                                 ordered=True)
        self.channel.bufferedAmountLowThreshold = LOW_WATER
        self._low = asyncio.Event()
        self._drained = asyncio.Event()
        self._channel_closed = asyncio.Event()
        self._closed = False
        self._gathering: asyncio.Future[None] | None = None  # setLocalDescription, while it runs
        self.channel.on("open", on_open)
        self.channel.on("message", on_message)
        self.channel.on("close", self._channel_closed.set)
        self.channel.on("close", self._drained.set)  # a drain wait ends with the channel
        self.channel.on("close", on_close)
        self.channel.on("bufferedamountlow", self._low.set)

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "failed":
                on_failed()
            elif self.pc.connectionState == "closed":
                on_close()

    async def offer(self) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """The local offer (without candidates) and its candidates, to trickle."""
        await self._set_local(await self.pc.createOffer())
        return self._local()

    async def answer(self) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """The local answer (after set_remote with the offer) and its candidates."""
        await self._set_local(await self.pc.createAnswer())
        return self._local()

    async def _set_local(self, description: Any) -> None:
        """setLocalDescription, which gathers the ICE candidates, run to its end even when the
        caller is cancelled: aioice binds a candidate's socket before it records it among those
        its close() closes, so a gathering cut short, or overtaken by a close, leaks UDP sockets
        (`close` waits for it in the background)."""
        gathering = asyncio.ensure_future(self.pc.setLocalDescription(description))
        gathering.add_done_callback(_retrieve)  # its error is the caller's, or nobody's
        self._gathering = gathering
        await asyncio.shield(gathering)

    def _local(self) -> tuple[dict[str, str], list[dict[str, Any]]]:
        local = self.pc.localDescription
        sdp, candidates = split_candidates(local.sdp)
        return {"type": local.type, "sdp": sdp}, candidates

    async def set_remote(self, description: dict[str, str]) -> None:
        aiortc = _aiortc()
        await self.pc.setRemoteDescription(
            aiortc.RTCSessionDescription(sdp=description["sdp"], type=description["type"]))

    async def add_candidate(self, candidate: dict[str, Any] | None) -> None:
        """A trickled remote candidate (RTCIceCandidateInit), or None: end-of-candidates."""
        if candidate is None:
            await self.pc.addIceCandidate(None)
            return
        from aiortc.sdp import candidate_from_sdp

        parsed = candidate_from_sdp(candidate["candidate"].split(":", 1)[1])
        parsed.sdpMid = candidate.get("sdpMid")
        parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    def dtls_failed(self) -> bool:
        """ICE connected but DTLS failed: the handshake or the certificate check went wrong."""
        sctp = self.pc.sctp
        if sctp is None:
            return False
        return sctp.transport.state == "failed" and sctp.transport.transport.state == "completed"

    def certificate_digests(self) -> dict[str, str]:
        """The digests (algorithm -> upper-case hex pairs) of the certificate DTLS negotiated."""
        from aiortc.rtcdtlstransport import certificate_digest

        sctp = self.pc.sctp
        ssl = getattr(sctp.transport, "_ssl", None) if sctp is not None else None
        certificate = ssl.get_peer_certificate(as_cryptography=True) if ssl is not None else None
        if certificate is None:
            return {}
        return {algorithm: certificate_digest(certificate, algorithm)
                for algorithm in SUPPORTED_HASHES}

    def local_fingerprint(self) -> str:
        """The SHA-256 fingerprint of our own DTLS certificate (upper-case hex pairs)."""
        sctp = self.pc.sctp
        assert sctp is not None
        for fingerprint in sctp.transport.getLocalParameters().fingerprints:
            if fingerprint.algorithm.lower() == "sha-256":
                return str(fingerprint.value).upper()
        raise RuntimeError("aiortc gave no SHA-256 fingerprint for the local certificate")

    def send_now(self, text: str) -> None:
        """Send without waiting (the identity proof, before anything else)."""
        self.channel.send(text)

    def relayed(self) -> bool:
        """The nominated candidate pair goes through a TURN server (either side's candidate)."""
        sctp = self.pc.sctp
        connection = getattr(sctp.transport.transport, "_connection", None) if sctp else None
        nominated = getattr(connection, "_nominated", {}) if connection is not None else {}
        for pair in nominated.values():
            for candidate in (pair.local_candidate, pair.remote_candidate):
                if getattr(candidate, "type", None) == "relay":
                    return True
        return False

    async def send(self, data: str | bytes) -> None:
        """Send one message; waits while more than HIGH_WATER bytes are buffered."""
        while self.channel.bufferedAmount > HIGH_WATER and self.channel.readyState == "open":
            self._low.clear()
            await self._low.wait()
        if self.channel.readyState != "open":
            raise PeerClosed(f"the data channel is {self.channel.readyState}")
        self.channel.send(data)

    async def close_channel(self, timeout: float) -> None:
        """Close the data channel gracefully: wait until every message sent was handed to SCTP,
        close the channel (its stream reset follows the data, so the peer reads everything before
        it) and wait for its close event, all within `timeout` seconds; then the connection may
        close without losing what was sent."""
        try:
            await asyncio.wait_for(self._drain_and_close(), timeout)
        except asyncio.TimeoutError:
            log.info("the data channel did not close within %g s; closing the connection", timeout)

    async def _drain_and_close(self) -> None:
        channel = self.channel
        if channel.readyState == "open" and channel.bufferedAmount > 0:
            channel.bufferedAmountLowThreshold = 0  # "bufferedamountlow" once the buffer is empty
            self._drained.clear()
            channel.on("bufferedamountlow", self._drained.set)
            while channel.bufferedAmount > 0 and channel.readyState == "open":
                await self._drained.wait()
                self._drained.clear()
        if channel.readyState == "open":
            channel.close()
        if channel.readyState != "closed":
            await self._channel_closed.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        gathering = self._gathering
        if gathering is not None and not gathering.done():  # closed once it ends (_set_local)
            deferred = asyncio.ensure_future(self._close_after(gathering))
            _deferred_closes.add(deferred)
            deferred.add_done_callback(_deferred_closes.discard)
            return
        await self._close_pc()

    async def _close_after(self, gathering: asyncio.Future[None]) -> None:
        await asyncio.wait([gathering])
        await self._close_pc()

    async def _close_pc(self) -> None:
        try:
            await self.pc.close()
        except Exception:  # closing must not fail the caller's close
            log.debug("closing an RTCPeerConnection failed", exc_info=True)

