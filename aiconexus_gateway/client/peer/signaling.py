"""Peer-channel negotiation as pure objects: signaling payloads in, decisions out. No I/O.

Theory of operation. Opening a channel to another agent is one *negotiation*, named by a
`negotiation_id` (a UUID4) that every OFFER, ANSWER and ICE_CANDIDATE of it carries in its
payload (docs/protocol.md, "Peer channels"). `Negotiation` is the state of one attempt, on
either side; `PeerSignaling` is every negotiation of one agent: it routes received payloads to
their negotiation, starts the callee's side of new OFFERs, and resolves glare. The pump
(client/peer/manager.py) feeds both what happened (a payload arrived, the WebRTC stack produced
an offer, a candidate, connected or failed; the gateway answered an ERROR; time ran out) and
carries out the decisions they return: send a signal, apply the remote description, add a
remote candidate, report the channel open, failed or closed, switch to the relay.

    state       event                                   decisions                     next
    NEW         local_offer(description)   (caller)     Signal(OFFER)                 OFFERED
    OFFERED     ANSWER {description}                    ApplyRemote                   CONNECTING
    OFFERED     ANSWER {refused}                        Failed(PeerRefused)           FAILED
    OFFERED     gateway ERROR for the OFFER             Failed(PeerUnknownAgent/...)  FAILED
    RECEIVED    (callee, made from an OFFER) accept:    ApplyRemote                   RECEIVED
                local_answer(description)               Signal(ANSWER)                CONNECTING
    RECEIVED    refuse(code)                            Signal(ANSWER {refused})      CLOSED
    any live    ICE_CANDIDATE {candidate|null}          AddCandidate (buffered until the remote
                                                        description is applied)
    CONNECTING  connected(certificate digests)          SendProof                     PROVING
                  digests do not match the signed SDP   Failed(PeerIdentityError)     FAILED
    PROVING     proved(None): the peer's proof checks   Opened(direct|turn)           OPEN
                proved(problem)                         Failed(PeerIdentityError)     FAILED
    CONNECTING  ice_failed(), fallback                  StartRelay, Signal(relay open) RELAYING
    CONNECTING  relay open (the peer's ICE failed)      StartRelay, Signal(relay
                                                        opened), Opened(relay)        OPEN
    RELAYING    relay open (both failed) / opened       Opened(relay)                 OPEN
    CONNECTING  ice_failed(), no fallback               Failed(PeerICEFailed)         FAILED
    CONNECTING  dtls_failed()                           Failed(PeerIdentityError)     FAILED
    not OPEN    timed_out()                             Failed(PeerTimeout when unanswered,
                                                        PeerICEFailed after the answer)
    OPEN        ICE_CANDIDATE {closed} / close()        Closed / Signal(closed)       CLOSED

Glare: both agents ask for a channel with the same label at the same moment, so two OFFERs cross.
The rule is the same on both sides: the negotiation offered by the DID that sorts first (plain
string comparison) stands. The first DID answers the second's OFFER with a refusal `GLARE`; the
second DID drops its own OFFER and answers the first's, and that channel is the one its
`connect_peer` call returns. Each side therefore ends with exactly one channel, and neither
side's `on_peer` sees it: both asked for it. Because every agent's messages to another arrive
in order (docs/protocol.md section 14), an agent that answered an OFFER before offering its own
is never taken for glare by the other side.

The identity rule (SECURITY.md): an OFFER or ANSWER whose SDP has no fingerprint this SDK can
check is refused (`NO_FINGERPRINT`); a channel opens only when the certificate DTLS negotiated
matches the fingerprints of the signed SDP, and then the peer's identity proof (proof.py: its DID
key's signature over both certificates, sent first on the channel) checks.
"""

from __future__ import annotations

import enum
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    PeerError,
    PeerICEFailed,
    PeerIdentityError,
    PeerRefused,
    PeerTimeout,
    PeerUnknownAgent,
    PeerUnreachable,
)
from .sdp import (
    Fingerprint,
    certificate_matches,
    check_candidate,
    check_description,
    supported_fingerprints,
)

PEER_TYPES = frozenset({"OFFER", "ANSWER", "ICE_CANDIDATE"})
MAX_LABEL_LENGTH = 128
MAX_ID_LENGTH = 128
MAX_TRACKED = 4096  # sent message ids remembered for the gateway's ERRORs (bounded memory)
# Refusal codes an ANSWER may carry in `refused.code`.
PEER_REFUSED = "PEER_REFUSED"  # the callee does not want the channel
GLARE = "GLARE"  # both offered at once; the other negotiation stands
NO_FINGERPRINT = "NO_FINGERPRINT"  # the OFFER's SDP has no checkable DTLS fingerprint
BAD_OFFER = "BAD_OFFER"  # the OFFER's payload is not as docs/protocol.md says


class Role(enum.Enum):
    CALLER = "caller"
    CALLEE = "callee"


class NegotiationState(enum.Enum):
    NEW = "new"  # caller: the local offer is being made
    OFFERED = "offered"  # caller: OFFER sent; waiting for the ANSWER
    AWAITING_WINNER = "awaiting-winner"  # caller: refused for glare; the peer's OFFER is coming
    RECEIVED = "received"  # callee: OFFER received; ANSWER not sent yet
    CONNECTING = "connecting"  # descriptions exchanged; ICE and DTLS at work
    PROVING = "proving"  # DTLS up, certificate checked; waiting for the peer's identity proof
    RELAYING = "relaying"  # ICE failed; switching to the relay through the gateway
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


_LIVE = frozenset({NegotiationState.NEW, NegotiationState.OFFERED, NegotiationState.AWAITING_WINNER,
                   NegotiationState.RECEIVED, NegotiationState.CONNECTING,
                   NegotiationState.PROVING, NegotiationState.RELAYING, NegotiationState.OPEN})
_UNANSWERED = frozenset({NegotiationState.NEW, NegotiationState.OFFERED,
                         NegotiationState.AWAITING_WINNER})


# -- decisions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signal:
    """Send `type` with `payload` to the peer (signed, through the gateway)."""

    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ApplyRemote:
    """Give the peer's (signed) description to the WebRTC stack."""

    description: dict[str, str]


@dataclass(frozen=True, slots=True)
class AddCandidate:
    """Give a remote candidate (RTCIceCandidateInit) to the stack; None: end-of-candidates."""

    candidate: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class SendProof:
    """Send our identity proof (proof.py) as the first message on the data channel."""


@dataclass(frozen=True, slots=True)
class Opened:
    """The channel is open over `transport`: direct, turn or relay."""

    transport: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The attempt (or the open channel) ended with `error`; release the WebRTC side."""

    error: PeerError


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer closed the channel (or left)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StartRelay:
    """ICE failed and both sides allow the fallback: drop the WebRTC side, carry the channel
    through the gateway (client/peer/relay.py)."""


@dataclass(frozen=True, slots=True)
class RelayFrame:
    """A relay frame (data or ack) for the channel's RelayStream."""

    frame: dict[str, Any]


Decision = (Signal | ApplyRemote | AddCandidate | SendProof | Opened | Failed | Closed | StartRelay
            | RelayFrame)


# -- one negotiation -----------------------------------------------------------------------------


@dataclass
class Negotiation:
    """One attempt to open one channel between this agent and `peer_did`."""

    id: str
    local_did: str
    peer_did: str
    label: str
    role: Role
    fallback: bool = False
    state: NegotiationState = NegotiationState.NEW
    transport: str | None = None
    remote_description: dict[str, str] | None = None
    remote_fingerprints: list[Fingerprint] = field(default_factory=list)
    remote_applied: bool = False
    adopted: bool = False  # a callee negotiation that answers this agent's own connect_peer
    timeout: float = 20.0
    _buffered: list[dict[str, Any] | None] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.state in _LIVE

    @property
    def unanswered(self) -> bool:
        """Caller side, still without the peer's ANSWER (the glare window)."""
        return self.state in _UNANSWERED

    def _payload(self, **members: Any) -> dict[str, Any]:
        return {"negotiation_id": self.id, **members}

    # caller

    def local_offer(self, description: dict[str, str]) -> list[Decision]:
        """The stack made the local offer (without candidates): send the OFFER."""
        if self.state is not NegotiationState.NEW:
            return []
        self.state = NegotiationState.OFFERED
        return [Signal("OFFER", self._payload(label=self.label, description=description,
                                              fallback=self.fallback))]

    # callee

    def local_answer(self, description: dict[str, str]) -> list[Decision]:
        """The stack made the local answer (without candidates): send the ANSWER."""
        if self.state is not NegotiationState.RECEIVED:
            return []
        self.state = NegotiationState.CONNECTING
        return [Signal("ANSWER", self._payload(description=description))]

    def accept(self) -> list[Decision]:
        """The application accepts the OFFER: apply it (then make the answer)."""
        if self.state is not NegotiationState.RECEIVED or self.remote_description is None:
            return []
        return [ApplyRemote(self.remote_description)]

    def refuse(self, code: str = PEER_REFUSED, message: str = "the peer refused the channel"
               ) -> list[Decision]:
        """Refuse the OFFER (callee) with an ANSWER carrying `refused`."""
        if self.state is not NegotiationState.RECEIVED:
            return []
        self.state = NegotiationState.CLOSED
        return [Signal("ANSWER", self._payload(refused={"code": code, "message": message}))]

    # both

    def applied(self) -> list[Decision]:
        """The remote description was applied: the candidates that came meanwhile, in order."""
        self.remote_applied = True
        buffered, self._buffered = self._buffered, []
        return [AddCandidate(candidate) for candidate in buffered]

    def local_candidate(self, candidate: dict[str, Any] | None) -> list[Decision]:
        """A local candidate (None: gathering is complete) for the peer (trickle ICE)."""
        if self.state not in (NegotiationState.OFFERED, NegotiationState.CONNECTING,
                              NegotiationState.OPEN):
            return []
        return [Signal("ICE_CANDIDATE", self._payload(candidate=candidate))]

    def connected(self, certificate: dict[str, str], *, relayed: bool) -> list[Decision]:
        """DTLS completed with a certificate whose digests are `certificate` (algorithm -> hex);
        `relayed`: the selected candidate pair goes through TURN."""
        if self.state is not NegotiationState.CONNECTING:
            return []
        if not certificate_matches(self.remote_fingerprints, certificate):
            return self._fail(PeerIdentityError(
                f"the DTLS certificate of {self.peer_did} does not match the fingerprint in its "
                "signed SDP: the channel is not with the DID's holder; refused",
                peer_did=self.peer_did), tell_peer=True)
        self.state = NegotiationState.PROVING
        self.transport = "turn" if relayed else "direct"
        return [SendProof()]

    def proved(self, problem: str | None) -> list[Decision]:
        """The peer's identity proof arrived: `problem` is None when it checked (proof.py)."""
        if self.state is not NegotiationState.PROVING:
            return []
        if problem is not None:
            return self._fail(PeerIdentityError(
                f"the channel negotiated with {self.peer_did} is refused: {problem}",
                peer_did=self.peer_did), tell_peer=True)
        self.state = NegotiationState.OPEN
        return [Opened(self.transport or "direct")]

    def dtls_failed(self) -> list[Decision]:
        """ICE connected but DTLS did not: the WebRTC stack refused the peer's certificate (it
        does not match the signed SDP's fingerprint), or the handshake broke. Never relayed."""
        if self.state not in (NegotiationState.CONNECTING, NegotiationState.PROVING):
            return []
        return self._fail(PeerIdentityError(
            f"the DTLS handshake with {self.peer_did} failed: its certificate does not match the "
            "fingerprint in its signed SDP (or DTLS broke); refused", peer_did=self.peer_did),
            tell_peer=True)

    def link_closed(self) -> list[Decision]:
        """The data channel or its connection closed without a signaled close."""
        if self.state is NegotiationState.OPEN and self.transport != "relay":
            self.state = NegotiationState.CLOSED
            return [Closed(f"the connection to {self.peer_did} closed")]
        return self.ice_failed()

    def ice_failed(self) -> list[Decision]:
        """No candidate pair connected (or the connection failed before opening)."""
        if self.state not in (NegotiationState.CONNECTING, NegotiationState.PROVING):
            return []
        if not self.fallback:
            return self._fail(PeerICEFailed(
                f"no ICE candidate pair to {self.peer_did} connected (UDP blocked, symmetric "
                "NATs, or no TURN server); connect_peer(..., fallback=True) would relay through "
                "the gateway", peer_did=self.peer_did), tell_peer=True)
        self.state = NegotiationState.RELAYING
        return [StartRelay(), Signal("ICE_CANDIDATE", self._payload(relay={"op": "open"}))]

    def timed_out(self) -> list[Decision]:
        """The connect timeout passed before the channel opened."""
        if self.state in _UNANSWERED:
            return self._fail(PeerTimeout(
                f"{self.peer_did} did not answer the OFFER within {self.timeout:g} s",
                peer_did=self.peer_did), tell_peer=True)
        if self.state is NegotiationState.PROVING:
            return self._fail(PeerIdentityError(
                f"{self.peer_did} sent no identity proof on the channel within "
                f"{self.timeout:g} s", peer_did=self.peer_did), tell_peer=True)
        if self.state in (NegotiationState.RECEIVED, NegotiationState.CONNECTING,
                          NegotiationState.RELAYING):
            return self._fail(PeerICEFailed(
                f"the channel to {self.peer_did} did not connect within {self.timeout:g} s "
                "(ICE did not succeed)", peer_did=self.peer_did), tell_peer=True)
        return []

    def close(self, reason: str = "closed") -> list[Decision]:
        """The application closes the channel: tell the peer, when it knows of it."""
        if not self.live:
            return []
        known = self.state is not NegotiationState.NEW
        self.state = NegotiationState.CLOSED
        return [Signal("ICE_CANDIDATE", self._payload(closed={"reason": reason}))] if known else []

    def gateway_error(self, code: str, message: str) -> list[Decision]:
        """The gateway did not forward one of our signals: UNKNOWN_AGENT, DELIVERY_FAILED, ..."""
        if not self.live:
            return []
        if self.state is NegotiationState.OPEN:
            if self.transport == "relay":  # the relay rides the gateway: the channel is gone
                self.state = NegotiationState.CLOSED
                return [Closed(f"the gateway could not reach {self.peer_did}: {code}")]
            return []  # a late ICE_CANDIDATE or close notice: the direct channel is unaffected
        if code == "UNKNOWN_AGENT":
            error: PeerError = PeerUnknownAgent(
                f"no agent {self.peer_did} is connected to the gateway (UNKNOWN_AGENT)",
                peer_did=self.peer_did)
        else:
            error = PeerUnreachable(f"the gateway did not deliver the signaling to "
                                    f"{self.peer_did}: {code}: {message}", peer_did=self.peer_did)
        return self._fail(error, tell_peer=False)

    def receive(self, type: str, payload: dict[str, Any]) -> list[Decision]:
        """A signaling payload of this negotiation from the peer (already verified as its)."""
        if type == "ANSWER":
            return self._answer(payload)
        if type == "ICE_CANDIDATE":
            if "closed" in payload:
                return self._remote_closed(payload.get("closed"))
            if "relay" in payload:
                return self._relay(payload.get("relay"))
            if "candidate" in payload:
                return self._candidate(payload.get("candidate"))
        return []  # a second OFFER for the same id, or an ICE_CANDIDATE with nothing we know

    def _answer(self, payload: dict[str, Any]) -> list[Decision]:
        if self.role is not Role.CALLER or self.state is not NegotiationState.OFFERED:
            return []
        refused = payload.get("refused")
        if refused is not None:
            code = refused.get("code") if isinstance(refused, dict) else None
            text = refused.get("message") if isinstance(refused, dict) else None
            code = code if isinstance(code, str) else PEER_REFUSED
            if code == GLARE and self.local_did > self.peer_did:
                self.state = NegotiationState.AWAITING_WINNER  # the peer's OFFER answers us
                return []
            self.state = NegotiationState.FAILED
            return [Failed(PeerRefused(f"{self.peer_did} refused the channel ({code}"
                                       f"{': ' + text if isinstance(text, str) else ''})",
                                       peer_did=self.peer_did, reason_code=code))]
        try:
            description = check_description(payload.get("description"), "answer")
        except ValueError as exc:
            return self._fail(PeerRefused(f"{self.peer_did} sent an unusable ANSWER: {exc}",
                                          peer_did=self.peer_did, reason_code=BAD_OFFER),
                              tell_peer=True)
        prints = supported_fingerprints(description["sdp"])
        if not prints:
            return self._fail(PeerIdentityError(
                f"the signed ANSWER of {self.peer_did} carries no DTLS fingerprint "
                "(a=fingerprint with SHA-256/384/512): the channel could not be authenticated; "
                "refused", peer_did=self.peer_did), tell_peer=True)
        self.remote_description, self.remote_fingerprints = description, prints
        self.state = NegotiationState.CONNECTING
        return [ApplyRemote(description)]

    def _candidate(self, value: Any) -> list[Decision]:
        if self.state not in (NegotiationState.RECEIVED, NegotiationState.CONNECTING,
                              NegotiationState.PROVING, NegotiationState.OPEN,
                              NegotiationState.OFFERED):
            return []
        try:
            candidate = check_candidate(value)
        except ValueError:
            return []  # one unusable candidate does not end the negotiation
        if not self.remote_applied:
            self._buffered.append(candidate)
            return []
        return [AddCandidate(candidate)]

    def _relay(self, value: Any) -> list[Decision]:
        op = value.get("op") if isinstance(value, dict) else None
        if op == "open" and self.fallback:
            if self.state is NegotiationState.RELAYING:  # both sides failed: both asked
                self.state = NegotiationState.OPEN
                self.transport = "relay"
                return [Opened("relay")]
            if self.state in (NegotiationState.CONNECTING, NegotiationState.PROVING):
                # the peer's ICE failed first: ours will not do better; switch now
                self.state = NegotiationState.RELAYING
                return [StartRelay(), *self._relay_opened()]
            return []
        if op == "opened" and self.state is NegotiationState.RELAYING:
            self.state = NegotiationState.OPEN
            self.transport = "relay"
            return [Opened("relay")]
        if op in ("data", "ack") and self.state is NegotiationState.OPEN \
                and self.transport == "relay":
            return [RelayFrame(value)]
        return []

    def _relay_opened(self) -> list[Decision]:
        self.state = NegotiationState.OPEN
        self.transport = "relay"
        return [Signal("ICE_CANDIDATE", self._payload(relay={"op": "opened"})), Opened("relay")]

    def _remote_closed(self, value: Any) -> list[Decision]:
        reason = value.get("reason") if isinstance(value, dict) else None
        reason = reason[:200] if isinstance(reason, str) else "closed"
        code = value.get("code") if isinstance(value, dict) else None
        if self.state is NegotiationState.OPEN:
            self.state = NegotiationState.CLOSED
            return [Closed(f"closed by {self.peer_did}: {reason}")]
        if not self.live:
            return []
        self.state = NegotiationState.FAILED
        text = f"{self.peer_did} gave up the negotiation: {reason}"
        error: PeerError
        if code == PeerIdentityError.code:
            error = PeerIdentityError(text, peer_did=self.peer_did)
        elif code in (PeerICEFailed.code, PeerTimeout.code):  # the peer saw no route
            error = PeerICEFailed(text, peer_did=self.peer_did)
        else:
            error = PeerRefused(text, peer_did=self.peer_did,
                                reason_code=code if isinstance(code, str) else "CLOSED")
        return [Failed(error)]

    def _fail(self, error: PeerError, *, tell_peer: bool) -> list[Decision]:
        known = self.state not in (NegotiationState.NEW,)
        self.state = NegotiationState.FAILED
        decisions: list[Decision] = [Failed(error)]
        if tell_peer and known:
            decisions.append(Signal("ICE_CANDIDATE", self._payload(
                closed={"code": error.code, "reason": error.message[:200]})))
        return decisions


# -- every negotiation of one agent --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """Decisions of an existing negotiation."""

    negotiation: Negotiation
    decisions: list[Decision]


@dataclass(frozen=True, slots=True)
class NewOffer:
    """A new OFFER for this agent: ask the application, then accept() or refuse()."""

    negotiation: Negotiation


@dataclass(frozen=True, slots=True)
class Adopt:
    """Glare lost: `negotiation` (the peer's OFFER, accepted at once) replaces our own
    `superseded` one; its channel goes to the connect_peer call that made `superseded`."""

    negotiation: Negotiation
    superseded: Negotiation


@dataclass(frozen=True, slots=True)
class Reply:
    """Send a one-off signal to `peer_did` (a refusal of an OFFER that starts no negotiation)."""

    peer_did: str
    type: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ignore:
    """Nothing to do; `reason` is for the log."""

    reason: str


Outcome = Route | NewOffer | Adopt | Reply | Ignore


def is_peer_signal(type: str, payload: dict[str, Any]) -> bool:
    """True for an OFFER / ANSWER / ICE_CANDIDATE that belongs to a peer-channel negotiation."""
    return type in PEER_TYPES and isinstance(payload.get("negotiation_id"), str)


def _check_id(value: Any) -> str | None:
    return value if isinstance(value, str) and 1 <= len(value) <= MAX_ID_LENGTH else None


class PeerSignaling:
    """Every negotiation of the agent `did`, keyed by negotiation id."""

    def __init__(self, did: str, *, new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self.did = did
        self.negotiations: dict[str, Negotiation] = {}
        self._new_id = new_id
        # id of a message we sent -> its negotiation id, for the gateway's ERRORs about it; those
        # come right after the send, so only the latest MAX_TRACKED are kept
        self._signals: OrderedDict[str, str] = OrderedDict()

    def connect(self, peer_did: str, label: str, *, fallback: bool = False,
                timeout: float = 20.0) -> tuple[Negotiation, list[Reply]]:
        """A new negotiation for connect_peer, or the peer's unanswered OFFER with the same label
        when glare makes it the one that stands (then `adopted` is true and nothing is offered).
        The replies refuse the peer's OFFERs that lose to ours."""
        check_label(label)
        replies: list[Reply] = []
        for other in list(self.negotiations.values()):
            if (other.role is Role.CALLEE and other.peer_did == peer_did and other.label == label
                    and other.state is NegotiationState.RECEIVED and not other.adopted):
                if peer_did < self.did:  # the peer's negotiation stands: answer it ourselves
                    other.adopted = True
                    other.timeout = timeout
                    return other, []
                replies.extend(self._glare_refusal(other))
        negotiation = Negotiation(self._new_id(), self.did, peer_did, label, Role.CALLER,
                                  fallback=fallback, timeout=timeout)
        self.negotiations[negotiation.id] = negotiation
        return negotiation, replies

    def sent(self, message_id: str, negotiation_id: str) -> None:
        """A signal of `negotiation_id` went out as message `message_id` (for gateway ERRORs)."""
        self._signals[message_id] = negotiation_id
        if len(self._signals) > MAX_TRACKED:
            self._signals.popitem(last=False)

    def receive(self, sender: str, type: str, payload: dict[str, Any]) -> Outcome:
        """A verified OFFER / ANSWER / ICE_CANDIDATE from `sender` (see is_peer_signal)."""
        negotiation_id = _check_id(payload.get("negotiation_id"))
        if negotiation_id is None:
            return Ignore("a signal without a usable negotiation_id")
        negotiation = self.negotiations.get(negotiation_id)
        if negotiation is not None:
            if negotiation.peer_did != sender:
                return Ignore(f"{sender} sent a signal for a negotiation with {negotiation.peer_did}")
            return Route(negotiation, negotiation.receive(type, payload))
        if type != "OFFER":
            return Ignore(f"a {type} for an unknown negotiation {negotiation_id!r}")
        return self._offer(sender, negotiation_id, payload)

    def _offer(self, sender: str, negotiation_id: str, payload: dict[str, Any]) -> Outcome:
        label, fallback = payload.get("label", "default"), payload.get("fallback", False)
        try:
            label = check_label(label)
            if not isinstance(fallback, bool):
                raise ValueError("'fallback' must be true or false")
            description = check_description(payload.get("description"), "offer")
        except ValueError as exc:
            return Reply(sender, "ANSWER", {"negotiation_id": negotiation_id,
                                            "refused": {"code": BAD_OFFER, "message": str(exc)}})
        prints = supported_fingerprints(description["sdp"])
        if not prints:
            return Reply(sender, "ANSWER", {"negotiation_id": negotiation_id, "refused": {
                "code": NO_FINGERPRINT, "message": "the OFFER's SDP has no DTLS fingerprint "
                "(a=fingerprint with SHA-256/384/512); the channel could not be authenticated"}})
        negotiation = Negotiation(negotiation_id, self.did, sender, label, Role.CALLEE,
                                  fallback=fallback, state=NegotiationState.RECEIVED,
                                  remote_description=description, remote_fingerprints=prints)
        ours = self._own_unanswered(sender, label)
        if ours is not None and self.did < sender:  # ours stands
            refusal = self._glare_refusal(negotiation)
            return refusal[0]
        self.negotiations[negotiation_id] = negotiation
        if ours is not None:  # theirs stands: it answers our connect_peer
            ours.state = NegotiationState.CLOSED
            negotiation.adopted = True
            negotiation.timeout = ours.timeout
            return Adopt(negotiation, ours)
        return NewOffer(negotiation)

    def _own_unanswered(self, peer_did: str, label: str) -> Negotiation | None:
        for negotiation in self.negotiations.values():
            if (negotiation.role is Role.CALLER and negotiation.peer_did == peer_did
                    and negotiation.label == label and negotiation.unanswered):
                return negotiation
        return None

    def _glare_refusal(self, negotiation: Negotiation) -> list[Reply]:
        negotiation.state = NegotiationState.CLOSED
        self.negotiations.pop(negotiation.id, None)
        return [Reply(negotiation.peer_did, "ANSWER", {"negotiation_id": negotiation.id, "refused": {
            "code": GLARE, "message": f"both agents offered a channel {negotiation.label!r} at "
            f"once; the OFFER of {self.did} (the DID that sorts first) stands"}})]

    def owns(self, correlation_id: str | None) -> bool:
        """`correlation_id` is the id of a signal we sent (and still remember)."""
        return correlation_id is not None and correlation_id in self._signals

    def gateway_error(self, correlation_id: str | None, code: str, message: str) -> Route | None:
        """A gateway ERROR about a message we sent for some negotiation, else None."""
        if correlation_id is None:
            return None
        negotiation_id = self._signals.pop(correlation_id, None)
        negotiation = self.negotiations.get(negotiation_id) if negotiation_id else None
        if negotiation is None:
            return None
        return Route(negotiation, negotiation.gateway_error(code, message))

    def forget(self, negotiation: Negotiation) -> None:
        """The negotiation is over and its channel released: drop it (and its message ids)."""
        self.negotiations.pop(negotiation.id, None)
        for message_id in [key for key, value in self._signals.items() if value == negotiation.id]:
            del self._signals[message_id]


def check_label(label: Any) -> str:
    """A channel label: a string of 0-128 characters (WebRTC allows up to 65535 bytes; ours is
    shorter, so that it fits any log line); ValueError otherwise."""
    if not isinstance(label, str) or len(label) > MAX_LABEL_LENGTH:
        raise ValueError(f"a channel label must be a string of at most {MAX_LABEL_LENGTH} "
                         "characters")
    return label
