"""Record what the Python SDK says in a peer-channel negotiation, for the JavaScript client's unit
tests (clients/js/test/peer.test.js): the payloads of OFFER, ANSWER and ICE_CANDIDATE exactly as the
Python negotiation (client/peer/signaling.py) makes them around real aiortc descriptions, and each
side's identity proof (client/peer/proof.py).

Run it by hand (`.venv/bin/python -m tests.js.record_peer_transcript`) when the peer-channel
payloads change; it writes clients/js/test/fixtures/peer-transcript.json. Alice (seed 0x0a...) calls,
Bob (seed 0x0b...) answers; both are Python agents here, and the JavaScript test plays either side
against the other's recorded messages.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from aiconexus_gateway.client.peer.proof import build_proof
from aiconexus_gateway.client.peer.sdp import supported_fingerprints
from aiconexus_gateway.client.peer.signaling import Negotiation, NegotiationState, PeerSignaling, Role, Signal
from aiconexus_gateway.client.peer.webrtc import WebRTCLink
from aiconexus_gateway.keys import DIDKey

OUT = Path(__file__).resolve().parents[2] / "clients/js/test/fixtures/peer-transcript.json"
ALICE_SEED = bytes([0x0A]) * 32
BOB_SEED = bytes([0x0B]) * 32
NEGOTIATION_ID = "3f2b8c1a-6d4e-4f5a-9b8c-7d6e5f4a3b2c"


def _signals(decisions: list[Any]) -> list[dict[str, Any]]:
    return [{"type": d.type, "payload": d.payload} for d in decisions if isinstance(d, Signal)]


def _sha256(sdp: str) -> str:
    return next(p.value for p in supported_fingerprints(sdp) if p.algorithm == "sha-256")


async def record() -> dict[str, Any]:
    alice, bob = DIDKey.from_seed(ALICE_SEED), DIDKey.from_seed(BOB_SEED)

    def nothing(*_: Any) -> None:
        pass

    links = [WebRTCLink("default", [], relay_only=False, on_open=nothing, on_failed=nothing,
                        on_close=nothing, on_message=nothing) for _ in range(2)]
    try:
        caller = PeerSignaling(alice.did, new_id=lambda: NEGOTIATION_ID)
        negotiation, _ = caller.connect(bob.did, "default", fallback=True)
        offer, offer_candidates = await links[0].offer()
        from_alice = _signals(negotiation.local_offer(offer))
        for candidate in [*offer_candidates[:2], None]:
            from_alice += _signals(negotiation.local_candidate(candidate))
        callee = Negotiation(NEGOTIATION_ID, bob.did, alice.did, "default", Role.CALLEE,
                             fallback=True, state=NegotiationState.RECEIVED)
        await links[1].set_remote(offer)
        answer, answer_candidates = await links[1].answer()
        from_bob = _signals(callee.local_answer(answer))
        for candidate in [*answer_candidates[:2], None]:
            from_bob += _signals(callee.local_candidate(candidate))
        alice_print, bob_print = _sha256(offer["sdp"]), _sha256(answer["sdp"])
        from_alice.append({"proof": build_proof(alice, NEGOTIATION_ID, bob.did, alice_print,
                                                bob_print)})
        from_bob.append({"proof": build_proof(bob, NEGOTIATION_ID, alice.did, bob_print,
                                              alice_print)})
        # glare: Bob (whose DID sorts ...) and Alice offer at once; what Python's rule answers
        glare = PeerSignaling(bob.did, new_id=lambda: "bob-offer")
        glare.connect(alice.did, "default")
        outcome = glare.receive(alice.did, "OFFER", from_alice[0]["payload"])
        glare_answer = {"outcome": type(outcome).__name__,
                        "payload": getattr(outcome, "payload", None)}
    finally:
        for link in links:
            await link.close()
    return {
        "about": "recorded by tests/js/record_peer_transcript.py from the Python SDK's negotiation",
        "alice_seed": ALICE_SEED.hex(), "bob_seed": BOB_SEED.hex(),
        "alice": alice.did, "bob": bob.did, "negotiation_id": NEGOTIATION_ID,
        "alice_fingerprint": alice_print, "bob_fingerprint": bob_print,
        "from_alice": from_alice, "from_bob": from_bob, "glare_at_bob": glare_answer,
    }


def main() -> None:
    transcript = asyncio.run(record())
    OUT.write_text(json.dumps(transcript, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
