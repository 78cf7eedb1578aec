"""The identity proof: the first message on a data channel binds both DIDs to its DTLS certificates.

Why: the fingerprint in a signed SDP proves that the DID's holder *sent* that SDP, not that the
holder is the one at the other end. An agent Mallory could re-sign Alice's OFFER as its own and
send it to Bob, and Bob's ANSWER back to Alice: Alice and Bob would then be connected to each
other, each believing the other is Mallory (an unknown key-share). So once DTLS is up, each side
sends, as its first data-channel message, this JSON text, signed with its DID key:

    {"type": "aiconexus-peer-proof", "version": 1, "negotiation_id": "...",
     "did": "<sender>", "peer_did": "<recipient>",
     "fingerprint": "<sha-256 of the sender's DTLS certificate>",
     "peer_fingerprint": "<sha-256 of the recipient's DTLS certificate>",
     "signature": "<base64 Ed25519 over the RFC 8785 form of every other member>"}

and opens the channel only after checking the peer's: `did` is the DID it negotiated with,
`peer_did` is its own, `fingerprint` is the certificate DTLS actually presented and
`peer_fingerprint` its own certificate. A re-signed OFFER fails the first check (the proof comes
from Alice's key, not Mallory's), and nobody without the DTLS keys can send on the channel.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaClValueError
from nacl.signing import VerifyKey

from ...canonical import CanonicalizationError, canonicalize
from ...did import public_key_from_did
from ...errors import ProtocolError
from ...keys import DIDKey
from ...strictjson import StrictJSONError, loads

PROOF_TYPE = "aiconexus-peer-proof"
MAX_PROOF_LENGTH = 4096


def build_proof(key: DIDKey, negotiation_id: str, peer_did: str, fingerprint: str,
                peer_fingerprint: str) -> str:
    """Our proof, as the JSON text to send first on the data channel."""
    fields: dict[str, Any] = {"type": PROOF_TYPE, "version": 1, "negotiation_id": negotiation_id,
                              "did": key.did, "peer_did": peer_did, "fingerprint": fingerprint,
                              "peer_fingerprint": peer_fingerprint}
    fields["signature"] = base64.b64encode(key.sign(canonicalize(fields))).decode("ascii")
    return canonicalize(fields).decode("utf-8")


def check_proof(message: str | bytes, *, negotiation_id: str, peer_did: str, own_did: str,
                peer_fingerprint: str, own_fingerprint: str) -> None:
    """Check the peer's proof; ValueError says what is wrong."""
    if not isinstance(message, str) or len(message) > MAX_PROOF_LENGTH:
        raise ValueError("the first message on the channel is not an identity proof")
    try:
        fields, _ = loads(message)
    except StrictJSONError:
        raise ValueError("the identity proof is not JSON") from None
    if not isinstance(fields, dict) or fields.get("type") != PROOF_TYPE:
        raise ValueError("the first message on the channel is not an identity proof")
    expected = {"version": 1, "negotiation_id": negotiation_id, "did": peer_did,
                "peer_did": own_did}
    for member, value in expected.items():
        if fields.get(member) != value:
            raise ValueError(f"the identity proof's {member!r} is {fields.get(member)!r}, not "
                             f"{value!r}: the agent at the other end is not the one negotiated with")
    if str(fields.get("fingerprint", "")).upper() != peer_fingerprint.upper():
        raise ValueError("the identity proof names another DTLS certificate than the one presented")
    if str(fields.get("peer_fingerprint", "")).upper() != own_fingerprint.upper():
        raise ValueError("the identity proof was made for another DTLS certificate than ours")
    signature = fields.pop("signature", None)
    try:
        raw = base64.b64decode(signature if isinstance(signature, str) else "", validate=True)
        VerifyKey(public_key_from_did(peer_did)).verify(canonicalize(fields), raw)
    except (binascii.Error, ValueError, BadSignatureError, NaClValueError, ProtocolError,
            CanonicalizationError):
        raise ValueError(f"the identity proof is not signed by {peer_did}") from None
