"""Pure SDP helpers for peer channels: DTLS fingerprints and trickled candidates. No I/O.

The fingerprint is what ties a DID to the channel (SECURITY.md): RFC 8122 section 5 puts it in
the SDP as `a=fingerprint:<hash-func> <hex pairs separated by ':'>`, and RFC 8842 section 5
requires the DTLS certificate to match it. The SDP travels inside a signed OFFER / ANSWER, so a
fingerprint read here is one the peer's DID vouched for.

Candidates are trickled (RFC 8838): the SDP that is signed and sent carries none, and each local
candidate goes out as its own ICE_CANDIDATE in the shape of WebRTC's `RTCIceCandidateInit`
(`candidate`, `sdpMid`, `sdpMLineIndex`), followed by end-of-candidates (`null`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# RFC 8122 section 5 hash functions, as the attribute spells them (lower case).
SUPPORTED_HASHES = ("sha-256", "sha-384", "sha-512")
_FINGERPRINT = re.compile(r"^a=fingerprint:(\S+) ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+)\s*$")
MAX_SDP_LENGTH = 32_768  # far above a data-channel SDP (about 600 bytes without candidates)
MAX_CANDIDATE_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """One `a=fingerprint` line: the hash function (lower case) and the upper-case hex pairs."""

    algorithm: str
    value: str


def fingerprints(sdp: str) -> list[Fingerprint]:
    """Every `a=fingerprint` of an SDP (session and media level), normalized."""
    found = []
    for line in sdp.splitlines():
        match = _FINGERPRINT.match(line.strip())
        if match:
            found.append(Fingerprint(match.group(1).lower(), match.group(2).upper()))
    return found


def supported_fingerprints(sdp: str) -> list[Fingerprint]:
    """The fingerprints this SDK can check (SHA-256/384/512): at least one must be present."""
    return [print_ for print_ in fingerprints(sdp) if print_.algorithm in SUPPORTED_HASHES]


def certificate_matches(signed: list[Fingerprint], certificate: dict[str, str]) -> bool:
    """True when the certificate's digests (algorithm -> upper-case hex pairs) match every
    supported fingerprint of the signed SDP, and there is at least one (RFC 8842 section 5)."""
    checked = [print_ for print_ in signed if print_.algorithm in SUPPORTED_HASHES]
    return bool(checked) and all(certificate.get(print_.algorithm, "").upper() == print_.value
                                 for print_ in checked)


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """(the SDP without `a=candidate` / `a=end-of-candidates` lines, its candidates as
    RTCIceCandidateInit dicts). `sdpMid` is the section's `a=mid`, `sdpMLineIndex` its index."""
    kept: list[str] = []
    candidates: list[dict[str, Any]] = []
    pending: list[str] = []
    index = -1
    mid: str | None = None

    def flush() -> None:
        for text in pending:
            candidates.append({"candidate": text, "sdpMid": mid, "sdpMLineIndex": index})
        pending.clear()

    for line in sdp.splitlines():
        if line.startswith("m="):
            flush()
            index += 1
            mid = None
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:"):].strip()
        if line.startswith("a=candidate:"):
            pending.append(line[2:].strip())
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        kept.append(line)
    flush()
    return "\r\n".join(kept) + "\r\n", candidates


def check_description(value: Any, expected_type: str) -> dict[str, str]:
    """A received RTCSessionDescriptionInit (`{"type", "sdp"}`), checked; ValueError says why."""
    if not isinstance(value, dict):
        raise ValueError("'description' must be an object {\"type\", \"sdp\"}")
    kind, sdp = value.get("type"), value.get("sdp")
    if kind != expected_type:
        raise ValueError(f"'description.type' must be {expected_type!r}, not {kind!r}")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise ValueError("'description.sdp' must be an SDP text starting with 'v=0'")
    if len(sdp) > MAX_SDP_LENGTH:
        raise ValueError(f"'description.sdp' is longer than {MAX_SDP_LENGTH} characters")
    return {"type": kind, "sdp": sdp}


def check_candidate(value: Any) -> dict[str, Any] | None:
    """A received RTCIceCandidateInit, or None for end-of-candidates; ValueError says why."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("'candidate' must be an RTCIceCandidateInit object or null")
    text = value.get("candidate")
    if not isinstance(text, str) or len(text) > MAX_CANDIDATE_LENGTH:
        raise ValueError("'candidate.candidate' must be a candidate-attribute string")
    if text == "":  # a browser's empty candidate is end-of-candidates too
        return None
    if not text.startswith("candidate:") or len(text.split()) < 8:
        raise ValueError("'candidate.candidate' must read 'candidate:<foundation> <component> "
                         "<transport> <priority> <address> <port> typ <type> ...' (RFC 8839)")
    mid, index = value.get("sdpMid"), value.get("sdpMLineIndex")
    if mid is not None and not isinstance(mid, str):
        raise ValueError("'candidate.sdpMid' must be a string or null")
    if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
        raise ValueError("'candidate.sdpMLineIndex' must be a non-negative integer or null")
    if mid is None and index is None:
        raise ValueError("a candidate needs 'sdpMid' or 'sdpMLineIndex'")
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index}


def candidate_type(candidate: str) -> str | None:
    """The `typ` of a candidate-attribute (host, srflx, prflx, relay), or None."""
    parts = candidate.split()
    for position, part in enumerate(parts[:-1]):
        if part == "typ":
            return parts[position + 1]
    return None
