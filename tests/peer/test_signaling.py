"""client/peer/signaling.py: the negotiation as pure objects, without sockets or WebRTC."""

from __future__ import annotations

from typing import Any

from aiconexus_gateway.client.peer.errors import (
    PeerICEFailed,
    PeerIdentityError,
    PeerRefused,
    PeerTimeout,
    PeerUnknownAgent,
    PeerUnreachable,
)
from aiconexus_gateway.client.peer.sdp import split_candidates
from aiconexus_gateway.client.peer.signaling import (
    GLARE,
    MAX_TRACKED,
    NO_FINGERPRINT,
    AddCandidate,
    Adopt,
    ApplyRemote,
    Closed,
    Decision,
    Failed,
    Ignore,
    NegotiationState,
    NewOffer,
    Opened,
    PeerSignaling,
    RelayFrame,
    Reply,
    Route,
    SendProof,
    Signal,
    StartRelay,
    is_peer_signal,
)
from aiconexus_gateway.keys import DIDKey
from tests.peer.sdp_samples import FINGERPRINT, offer_sdp

FIRST, SECOND = sorted(DIDKey.from_seed(bytes([n]) * 32).did for n in (1, 2))
CERTIFICATE = {"sha-256": FINGERPRINT}
CANDIDATE = {"candidate": "candidate:1 1 UDP 2130706431 192.0.2.2 50000 typ host", "sdpMid": "0",
             "sdpMLineIndex": 0}


def description(kind: str, fingerprint: str | None = FINGERPRINT) -> dict[str, str]:
    return {"type": kind, "sdp": split_candidates(offer_sdp(fingerprint))[0]}


def only(decisions: list[Decision], kind: type) -> Any:
    found = [decision for decision in decisions if isinstance(decision, kind)]
    assert len(found) == 1, decisions
    return found[0]


def offered(caller: PeerSignaling, callee_did: str, label: str = "default",
            **options: Any) -> tuple[Any, Signal]:
    negotiation, replies = caller.connect(callee_did, label, **options)
    assert replies == []
    return negotiation, only(negotiation.local_offer(description("offer")), Signal)


def test_offer_answer_candidates_open_a_direct_channel() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND, "chat")
    assert offer.type == "OFFER" and is_peer_signal("OFFER", offer.payload)
    assert offer.payload == {"negotiation_id": caller.id, "label": "chat",
                             "description": description("offer"), "fallback": False}
    outcome = bob.receive(FIRST, "OFFER", offer.payload)
    assert isinstance(outcome, NewOffer)
    callee = outcome.negotiation
    assert (callee.peer_did, callee.label, callee.id) == (FIRST, "chat", caller.id)
    # a candidate that comes before the description is applied waits for it
    assert bob.receive(FIRST, "ICE_CANDIDATE", {"negotiation_id": caller.id,
                                                "candidate": CANDIDATE}).decisions == []  # type: ignore[union-attr]
    assert callee.accept() == [ApplyRemote(description("offer"))]
    assert callee.applied() == [AddCandidate(CANDIDATE)]
    answer = only(callee.local_answer(description("answer")), Signal)
    assert answer.type == "ANSWER"
    route = alice.receive(SECOND, "ANSWER", answer.payload)
    assert isinstance(route, Route) and route.decisions == [ApplyRemote(description("answer"))]
    assert caller.applied() == []
    end = alice.receive(SECOND, "ICE_CANDIDATE", {"negotiation_id": caller.id, "candidate": None})
    assert end.decisions == [AddCandidate(None)]  # type: ignore[union-attr]
    assert caller.connected(CERTIFICATE, relayed=False) == [SendProof()]
    assert callee.connected(CERTIFICATE, relayed=True) == [SendProof()]
    assert caller.state is NegotiationState.PROVING  # open only once the peer's proof checks
    assert caller.proved(None) == [Opened("direct")]
    assert callee.proved(None) == [Opened("turn")]
    assert caller.state is NegotiationState.OPEN and callee.transport == "turn"


def test_a_failed_identity_proof_refuses_the_channel_and_so_does_none_in_time() -> None:
    alice = PeerSignaling(FIRST)
    for ending in ("proof", "time"):
        caller, _ = offered(alice, SECOND)
        alice.receive(SECOND, "ANSWER", {"negotiation_id": caller.id,
                                         "description": description("answer")})
        caller.connected(CERTIFICATE, relayed=False)
        decisions = caller.proved("signed by another DID") if ending == "proof" else \
            caller.timed_out()
        assert isinstance(only(decisions, Failed).error, PeerIdentityError)
        assert only(decisions, Signal).payload["closed"]["code"] == "IDENTITY_MISMATCH"


def test_local_candidates_and_end_of_candidates_are_trickled() -> None:
    caller, _ = offered(PeerSignaling(FIRST), SECOND)
    assert caller.local_candidate(CANDIDATE) == [Signal("ICE_CANDIDATE", {
        "negotiation_id": caller.id, "candidate": CANDIDATE})]
    assert caller.local_candidate(None)[0].payload["candidate"] is None


def test_a_refusal_reaches_the_caller_as_peer_refused() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND)
    callee = bob.receive(FIRST, "OFFER", offer.payload).negotiation  # type: ignore[union-attr]
    refusal = only(callee.refuse(message="busy"), Signal)
    assert refusal.payload["refused"] == {"code": "PEER_REFUSED", "message": "busy"}
    failed = only(alice.receive(SECOND, "ANSWER", refusal.payload).decisions, Failed)  # type: ignore[union-attr]
    assert isinstance(failed.error, PeerRefused) and failed.error.reason_code == "PEER_REFUSED"
    assert "busy" in str(failed.error) and caller.state is NegotiationState.FAILED


def test_an_offer_without_a_fingerprint_is_refused_and_so_is_such_an_answer() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND)
    bare = {**offer.payload, "description": description("offer", None)}
    reply = bob.receive(FIRST, "OFFER", bare)
    assert isinstance(reply, Reply) and reply.payload["refused"]["code"] == NO_FINGERPRINT
    decisions = alice.receive(SECOND, "ANSWER", {"negotiation_id": caller.id,
                                                 "description": description("answer", None)})
    failed = only(decisions.decisions, Failed)  # type: ignore[union-attr]
    assert isinstance(failed.error, PeerIdentityError)
    assert only(decisions.decisions, Signal).payload["closed"]  # type: ignore[union-attr]


def test_a_certificate_that_does_not_match_the_signed_fingerprint_is_refused() -> None:
    alice = PeerSignaling(FIRST)
    caller, _ = offered(alice, SECOND)
    alice.receive(SECOND, "ANSWER", {"negotiation_id": caller.id,
                                     "description": description("answer")})
    other = {"sha-256": FINGERPRINT.replace("8F", "00", 1)}
    decisions = caller.connected(other, relayed=False)
    assert isinstance(only(decisions, Failed).error, PeerIdentityError)
    assert only(decisions, Signal).payload["closed"]["code"] == "IDENTITY_MISMATCH"


def test_unknown_agent_and_other_gateway_errors_are_distinct() -> None:
    alice = PeerSignaling(FIRST)
    caller, _ = offered(alice, SECOND)
    alice.sent("message-1", caller.id)
    route = alice.gateway_error("message-1", "UNKNOWN_AGENT", "no such agent")
    assert route is not None and isinstance(only(route.decisions, Failed).error, PeerUnknownAgent)
    other, _ = offered(alice, SECOND)
    alice.sent("message-2", other.id)
    route = alice.gateway_error("message-2", "DELIVERY_FAILED", "slow consumer")
    assert route is not None and isinstance(only(route.decisions, Failed).error, PeerUnreachable)
    assert alice.gateway_error("unrelated", "UNKNOWN_AGENT", "") is None


def test_time_running_out_is_a_timeout_unanswered_and_an_ice_failure_after() -> None:
    alice = PeerSignaling(FIRST)
    unanswered, _ = offered(alice, SECOND, timeout=3)
    failed = only(unanswered.timed_out(), Failed)
    assert isinstance(failed.error, PeerTimeout) and isinstance(failed.error, TimeoutError)
    assert "within 3 s" in str(failed.error)
    answered, _ = offered(alice, SECOND)
    alice.receive(SECOND, "ANSWER", {"negotiation_id": answered.id,
                                     "description": description("answer")})
    assert isinstance(only(answered.timed_out(), Failed).error, PeerICEFailed)
    assert answered.timed_out() == []  # once


def test_ice_failure_without_fallback_fails_and_tells_the_peer() -> None:
    alice = PeerSignaling(FIRST)
    caller, _ = offered(alice, SECOND)
    alice.receive(SECOND, "ANSWER", {"negotiation_id": caller.id,
                                     "description": description("answer")})
    decisions = caller.ice_failed()
    assert isinstance(only(decisions, Failed).error, PeerICEFailed)
    assert "fallback=True" in str(only(decisions, Failed).error)
    assert only(decisions, Signal).payload["closed"]


def test_ice_failure_with_fallback_switches_both_sides_to_the_relay() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND, fallback=True)
    callee = bob.receive(FIRST, "OFFER", offer.payload).negotiation  # type: ignore[union-attr]
    assert callee.fallback
    callee.accept()
    answer = only(callee.local_answer(description("answer")), Signal)
    alice.receive(SECOND, "ANSWER", answer.payload)
    decisions = caller.ice_failed()
    assert isinstance(decisions[0], StartRelay) and caller.state is NegotiationState.RELAYING
    relay_open = only(decisions, Signal)
    assert relay_open.payload["relay"] == {"op": "open"}
    route = bob.receive(FIRST, "ICE_CANDIDATE", relay_open.payload)
    assert isinstance(route.decisions[0], StartRelay)  # type: ignore[union-attr]
    assert only(route.decisions, Opened) == Opened("relay")  # type: ignore[union-attr]
    opened = only(route.decisions, Signal)  # type: ignore[union-attr]
    assert alice.receive(SECOND, "ICE_CANDIDATE", opened.payload).decisions == [Opened("relay")]  # type: ignore[union-attr]
    data = {"negotiation_id": caller.id, "relay": {"op": "data", "seq": 0, "text": "hi"}}
    assert bob.receive(FIRST, "ICE_CANDIDATE", data).decisions == [RelayFrame(data["relay"])]  # type: ignore[union-attr]


def test_when_both_ice_fail_at_once_both_open_the_relay() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND, fallback=True)
    callee = bob.receive(FIRST, "OFFER", offer.payload).negotiation  # type: ignore[union-attr]
    callee.accept()
    alice.receive(SECOND, "ANSWER", only(callee.local_answer(description("answer")), Signal).payload)
    from_caller, from_callee = only(caller.ice_failed(), Signal), only(callee.ice_failed(), Signal)
    assert bob.receive(FIRST, "ICE_CANDIDATE", from_caller.payload).decisions == [Opened("relay")]  # type: ignore[union-attr]
    assert alice.receive(SECOND, "ICE_CANDIDATE", from_callee.payload).decisions == [Opened("relay")]  # type: ignore[union-attr]


def test_the_relay_needs_the_fallback_on_the_offer() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND)
    callee = bob.receive(FIRST, "OFFER", offer.payload).negotiation  # type: ignore[union-attr]
    callee.accept()
    callee.local_answer(description("answer"))
    asked = {"negotiation_id": caller.id, "relay": {"op": "open"}}
    assert bob.receive(FIRST, "ICE_CANDIDATE", asked).decisions == []  # type: ignore[union-attr]


def test_closing_is_seen_by_the_other_side() -> None:
    alice, bob = PeerSignaling(FIRST), PeerSignaling(SECOND)
    caller, offer = offered(alice, SECOND)
    callee = bob.receive(FIRST, "OFFER", offer.payload).negotiation  # type: ignore[union-attr]
    callee.accept()
    alice.receive(SECOND, "ANSWER", only(callee.local_answer(description("answer")), Signal).payload)
    for side in (caller, callee):
        side.connected(CERTIFICATE, relayed=False)
        side.proved(None)
    notice = only(caller.close("done"), Signal)
    assert caller.close() == []  # once
    closed = only(bob.receive(FIRST, "ICE_CANDIDATE", notice.payload).decisions, Closed)  # type: ignore[union-attr]
    assert "done" in closed.reason and callee.state is NegotiationState.CLOSED


def test_a_peer_giving_up_before_the_channel_opens_says_why() -> None:
    alice = PeerSignaling(FIRST)
    for code, kind in (("ICE_FAILED", PeerICEFailed), ("IDENTITY_MISMATCH", PeerIdentityError),
                       ("TIMEOUT", PeerICEFailed), (None, PeerRefused)):
        caller, _ = offered(alice, SECOND)
        closed = {"negotiation_id": caller.id, "closed": {"code": code, "reason": "why"}}
        failed = only(alice.receive(SECOND, "ICE_CANDIDATE", closed).decisions, Failed)  # type: ignore[union-attr]
        assert type(failed.error) is kind and "why" in str(failed.error)


def test_a_signal_from_another_agent_is_ignored() -> None:
    alice = PeerSignaling(FIRST)
    caller, _ = offered(alice, SECOND)
    third = DIDKey.from_seed(b"\x03" * 32).did
    outcome = alice.receive(third, "ANSWER", {"negotiation_id": caller.id,
                                              "description": description("answer")})
    assert isinstance(outcome, Ignore) and caller.state is NegotiationState.OFFERED
    assert isinstance(alice.receive(SECOND, "ANSWER", {"negotiation_id": "nope"}), Ignore)


def test_a_malformed_offer_is_refused_with_bad_offer() -> None:
    bob = PeerSignaling(SECOND)
    for payload in ({"negotiation_id": "n", "description": "v=0"},
                    {"negotiation_id": "n", "description": description("offer"), "label": 5},
                    {"negotiation_id": "n", "description": description("offer"), "fallback": 1}):
        reply = bob.receive(FIRST, "OFFER", payload)
        assert isinstance(reply, Reply) and reply.payload["refused"]["code"] == "BAD_OFFER"


def test_glare_the_first_did_offer_stands_on_both_sides() -> None:
    first, second = PeerSignaling(FIRST), PeerSignaling(SECOND)
    winner, winner_offer = offered(first, SECOND, "x")
    loser, loser_offer = offered(second, FIRST, "x")
    # the offers cross: each arrives while the other side's own is unanswered
    at_first = first.receive(SECOND, "OFFER", loser_offer.payload)
    assert isinstance(at_first, Reply) and at_first.payload["refused"]["code"] == GLARE
    at_second = second.receive(FIRST, "OFFER", winner_offer.payload)
    assert isinstance(at_second, Adopt)
    assert at_second.superseded is loser and at_second.negotiation.id == winner.id
    assert at_second.negotiation.adopted and loser.state is NegotiationState.CLOSED
    # the late GLARE refusal of the dropped offer changes nothing
    late = second.receive(FIRST, "ANSWER", at_first.payload)
    assert late.decisions == []  # type: ignore[union-attr]


def test_glare_when_the_refusal_comes_before_the_winning_offer() -> None:
    first, second = PeerSignaling(FIRST), PeerSignaling(SECOND)
    _, winner_offer = offered(first, SECOND, "x")
    loser, loser_offer = offered(second, FIRST, "x")
    refusal = first.receive(SECOND, "OFFER", loser_offer.payload)
    assert second.receive(FIRST, "ANSWER", refusal.payload).decisions == []  # type: ignore[union-attr]
    assert loser.state is NegotiationState.AWAITING_WINNER
    assert isinstance(second.receive(FIRST, "OFFER", winner_offer.payload), Adopt)


def test_connect_while_the_peer_offer_waits_follows_the_same_rule() -> None:
    first, second = PeerSignaling(FIRST), PeerSignaling(SECOND)
    _, from_second = offered(second, FIRST, "x")
    incoming = first.receive(SECOND, "OFFER", from_second.payload)
    assert isinstance(incoming, NewOffer)
    ours, replies = first.connect(SECOND, "x")  # FIRST sorts first: its own offer stands
    assert ours is not incoming.negotiation
    assert [reply.payload["refused"]["code"] for reply in replies] == [GLARE]
    _, from_first = offered(first, SECOND, "y")
    waiting = second.receive(FIRST, "OFFER", from_first.payload)
    assert isinstance(waiting, NewOffer)
    adopted, replies = second.connect(FIRST, "y")  # SECOND answers FIRST's offer instead
    assert adopted is waiting.negotiation and adopted.adopted and replies == []


def test_different_labels_are_not_glare() -> None:
    first, second = PeerSignaling(FIRST), PeerSignaling(SECOND)
    offered(first, SECOND, "x")
    _, other = offered(second, FIRST, "y")
    assert isinstance(first.receive(SECOND, "OFFER", other.payload), NewOffer)


def test_the_sent_ids_kept_for_gateway_errors_are_bounded() -> None:
    alice = PeerSignaling(FIRST)
    caller, _ = offered(alice, SECOND)
    for n in range(MAX_TRACKED + 10):
        alice.sent(f"m{n}", caller.id)
    assert alice.gateway_error("m0", "UNKNOWN_AGENT", "") is None  # long forgotten
    route = alice.gateway_error(f"m{MAX_TRACKED + 9}", "UNKNOWN_AGENT", "")
    assert route is not None and isinstance(only(route.decisions, Failed).error, PeerUnknownAgent)
