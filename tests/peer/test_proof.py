"""client/peer/proof.py: the identity proof that binds both DIDs to the DTLS certificates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiconexus_gateway.client.peer.proof import build_proof, check_proof
from aiconexus_gateway.keys import DIDKey

ALICE, BOB, MALLORY = (DIDKey.from_seed(bytes([n]) * 32) for n in (1, 2, 3))
ALICE_CERT, BOB_CERT = "AA:" * 31 + "AA", "BB:" * 31 + "BB"


def bob_checks(text: str | bytes, **changes: Any) -> None:
    expected = {"negotiation_id": "n-1", "peer_did": ALICE.did, "own_did": BOB.did,
                "peer_fingerprint": ALICE_CERT, "own_fingerprint": BOB_CERT, **changes}
    check_proof(text, **expected)


def test_a_proof_checks_for_the_peer_it_was_made_for() -> None:
    bob_checks(build_proof(ALICE, "n-1", BOB.did, ALICE_CERT, BOB_CERT))


def test_a_proof_from_another_did_than_negotiated_is_refused() -> None:
    """The re-signed OFFER: Bob negotiated with Mallory, but Alice is at the other end."""
    with pytest.raises(ValueError, match="not the one negotiated with"):
        bob_checks(build_proof(ALICE, "n-1", BOB.did, ALICE_CERT, BOB_CERT),
                   peer_did=MALLORY.did)


@pytest.mark.parametrize("change, match", [
    ({"negotiation_id": "n-2"}, "negotiation_id"),
    ({"own_did": MALLORY.did}, "peer_did"),
    ({"peer_fingerprint": BOB_CERT}, "another DTLS certificate than the one presented"),
    ({"own_fingerprint": ALICE_CERT}, "made for another DTLS certificate"),
])
def test_a_proof_for_another_negotiation_or_certificate_is_refused(change: dict[str, str],
                                                                  match: str) -> None:
    with pytest.raises(ValueError, match=match):
        bob_checks(build_proof(ALICE, "n-1", BOB.did, ALICE_CERT, BOB_CERT), **change)


def test_a_forged_or_malformed_proof_is_refused() -> None:
    fields = json.loads(build_proof(MALLORY, "n-1", BOB.did, ALICE_CERT, BOB_CERT))
    fields["did"] = ALICE.did  # Mallory's signature under Alice's name
    with pytest.raises(ValueError, match="not signed by"):
        bob_checks(json.dumps(fields))
    for text in (b"bytes", "not json", "[]", json.dumps({"type": "other"}), "x" * 5000):
        with pytest.raises(ValueError):
            bob_checks(text)
