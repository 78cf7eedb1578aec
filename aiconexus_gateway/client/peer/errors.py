"""The exceptions of peer channels: one per way a connection attempt or a channel can end badly.

Each carries a `code` (the same text a JavaScript client would see) so that an application can
log or branch on it without matching class names. All are `PeerError`s; the docs (docs/sdk.md,
"Peer channels") list when each is raised.
"""

from __future__ import annotations


class PeerError(Exception):
    """A peer channel could not be opened, or failed."""

    code = "PEER_ERROR"

    def __init__(self, message: str, *, peer_did: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.peer_did = peer_did


class PeerUnknownAgent(PeerError):
    """The gateway answered UNKNOWN_AGENT: no agent with that DID is connected."""

    code = "UNKNOWN_AGENT"


class PeerUnreachable(PeerError):
    """The gateway could not deliver the OFFER (DELIVERY_FAILED) or refused it (another ERROR)."""

    code = "DELIVERY_FAILED"


class PeerTimeout(PeerError, TimeoutError):
    """The peer did not answer the OFFER within the timeout (it is connected, but silent)."""

    code = "TIMEOUT"


class PeerRefused(PeerError):
    """The peer answered with a refusal (PEER_REFUSED, or a refusal code such as NO_FINGERPRINT)."""

    code = "PEER_REFUSED"

    def __init__(self, message: str, *, peer_did: str | None = None,
                 reason_code: str = "PEER_REFUSED") -> None:
        super().__init__(message, peer_did=peer_did)
        self.reason_code = reason_code


class PeerICEFailed(PeerError):
    """The descriptions were exchanged but no ICE candidate pair connected (and no fallback)."""

    code = "ICE_FAILED"


class PeerIdentityError(PeerError):
    """The DTLS certificate does not match the fingerprint in the peer's signed SDP (or there was
    no fingerprint): someone other than the DID's holder is at the other end. Never retried."""

    code = "IDENTITY_MISMATCH"


class PeerClosed(PeerError, ConnectionError):
    """The channel is closed (by either side, or because the client closed)."""

    code = "CLOSED"
