"""client/peer/sdp.py: fingerprints and trickled candidates, on plain texts."""

from __future__ import annotations

import pytest

from aiconexus_gateway.client.peer.sdp import (
    Fingerprint,
    candidate_type,
    certificate_matches,
    check_candidate,
    check_description,
    fingerprints,
    split_candidates,
    supported_fingerprints,
)
from tests.peer.sdp_samples import FINGERPRINT, offer_sdp


def test_the_fingerprint_is_read_and_normalized() -> None:
    sdp = offer_sdp(FINGERPRINT.lower()).replace("sha-256", "SHA-256")
    assert fingerprints(sdp) == [Fingerprint("sha-256", FINGERPRINT)]


def test_an_sdp_without_a_checkable_fingerprint_has_none() -> None:
    assert supported_fingerprints(offer_sdp(None)) == []
    assert supported_fingerprints(offer_sdp().replace("sha-256", "md5")) == []


def test_the_certificate_must_match_every_supported_fingerprint() -> None:
    signed = [Fingerprint("sha-256", FINGERPRINT)]
    assert certificate_matches(signed, {"sha-256": FINGERPRINT.lower()})
    assert not certificate_matches(signed, {"sha-256": FINGERPRINT.replace("8F", "8E", 1)})
    assert not certificate_matches(signed, {"sha-384": FINGERPRINT})
    assert not certificate_matches([], {"sha-256": FINGERPRINT})


def test_candidates_are_taken_out_of_the_sdp_with_their_section() -> None:
    bare, candidates = split_candidates(offer_sdp())
    assert "a=candidate" not in bare and "end-of-candidates" not in bare
    assert "a=fingerprint:sha-256" in bare and bare.endswith("\r\n")
    assert [c["candidate"].split()[0] for c in candidates] == ["candidate:1", "candidate:2"]
    assert {(c["sdpMid"], c["sdpMLineIndex"]) for c in candidates} == {("0", 0)}
    assert [candidate_type(c["candidate"]) for c in candidates] == ["host", "srflx"]


def test_a_description_is_checked() -> None:
    sdp = offer_sdp()
    assert check_description({"type": "offer", "sdp": sdp}, "offer") == {"type": "offer", "sdp": sdp}
    for bad in (None, "v=0", {"type": "answer", "sdp": sdp}, {"type": "offer", "sdp": "x"},
                {"type": "offer", "sdp": "v=0" + "x" * 40_000}):
        with pytest.raises(ValueError):
            check_description(bad, "offer")


def test_a_candidate_is_checked_and_empty_means_end_of_candidates() -> None:
    good = {"candidate": "candidate:1 1 UDP 2130706431 192.0.2.2 50000 typ host", "sdpMid": "0",
            "sdpMLineIndex": 0}
    assert check_candidate(good) == good
    assert check_candidate(None) is None
    assert check_candidate({"candidate": "", "sdpMid": "0"}) is None
    for bad in ("x", {"candidate": "candidate:1 1 UDP"}, {**good, "sdpMid": 3},
                {**good, "sdpMLineIndex": -1}, {**good, "sdpMid": None, "sdpMLineIndex": None}):
        with pytest.raises(ValueError):
            check_candidate(bad)
