"""SDP texts for the pure tests: what aiortc produces for one data channel, candidates included."""

from __future__ import annotations

FINGERPRINT = ("8F:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:"
               "A4:B5:C6:D7:E8")


def offer_sdp(fingerprint: str | None = FINGERPRINT, candidates: bool = True) -> str:
    lines = [
        "v=0", "o=- 3913390000 3913390000 IN IP4 0.0.0.0", "s=-", "t=0 0",
        "a=group:BUNDLE 0", "a=msid-semantic:WMS *",
        "m=application 9 DTLS/SCTP 5000", "c=IN IP4 0.0.0.0", "a=mid:0",
        "a=sctpmap:5000 webrtc-datachannel 65535", "a=max-message-size:65536",
    ]
    if candidates:
        lines += ["a=candidate:1 1 UDP 2130706431 192.0.2.2 50000 typ host",
                  "a=candidate:2 1 UDP 1694498815 198.51.100.7 50001 typ srflx raddr 192.0.2.2 "
                  "rport 50000",
                  "a=end-of-candidates"]
    lines += ["a=ice-ufrag:abcd", "a=ice-pwd:0123456789abcdef01234567"]
    if fingerprint is not None:
        lines.append(f"a=fingerprint:sha-256 {fingerprint}")
    lines.append("a=setup:actpass")
    return "\r\n".join(lines) + "\r\n"
