"""aiconexus_gateway/turn.py: the TURN REST scheme coturn's use-auth-secret checks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from aiconexus_gateway.client.peer.manager import credentials_expire
from aiconexus_gateway.turn import (
    IceServerIssuer,
    check_turn_credential,
    ice_servers,
    parse_ice_urls,
    turn_credential,
    turn_password,
)

DID = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"


def test_the_password_is_base64_of_hmac_sha1_of_the_username() -> None:
    # the constant: echo -n 1700000000:alice | openssl dgst -sha1 -hmac north -binary | base64
    expected = base64.b64encode(hmac.new(b"north", b"1700000000:alice", hashlib.sha1).digest())
    assert turn_password("north", "1700000000:alice") == expected.decode()
    assert turn_password("north", "1700000000:alice") == "Cd/49soE35ICqcJF/bCTn8Z4OyE="


def test_a_credential_names_its_expiry_and_the_did() -> None:
    issued = turn_credential("s3cret", DID, 600, now=lambda: 1_000.5)
    assert issued.username == f"1600:{DID}" and issued.expires == 1600
    assert check_turn_credential("s3cret", issued.username, issued.credential, now=lambda: 1599)


def test_expired_or_forged_credentials_do_not_check() -> None:
    issued = turn_credential("s3cret", DID, 600, now=lambda: 1_000)
    assert not check_turn_credential("s3cret", issued.username, issued.credential, now=lambda: 1601)
    assert not check_turn_credential("other", issued.username, issued.credential, now=lambda: 1001)
    forged = issued.username.replace("1600", "9999")
    assert not check_turn_credential("s3cret", forged, issued.credential, now=lambda: 1001)
    assert not check_turn_credential("s3cret", "never:" + DID, issued.credential)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        turn_credential("", DID, 60)
    with pytest.raises(ValueError, match="TURN_TTL"):
        turn_credential("s", DID, 0)


def test_ice_servers_have_the_rtc_ice_server_shape_and_never_the_secret() -> None:
    servers = ice_servers(["stun:stun.example.org:3478"], ["turn:turn.example.org:3478"],
                          "s3cret", DID, 60, now=lambda: 0)
    assert servers[0] == {"urls": ["stun:stun.example.org:3478"]}
    assert servers[1]["urls"] == ["turn:turn.example.org:3478"]
    assert servers[1]["username"] == f"60:{DID}"
    assert "s3cret" not in repr(servers)
    assert ice_servers([], ["turn:t"], None, DID, 60) == []  # no secret: no TURN entry


def test_ice_urls_are_parsed_and_checked() -> None:
    assert parse_ice_urls("stun:stun.example.org:3478, stun:[::1]", ("stun", "stuns")) == (
        "stun:stun.example.org:3478", "stun:[::1]")
    assert parse_ice_urls("turn:127.0.0.1:3478?transport=udp,turns:t.example.org:5349",
                          ("turn", "turns")) == ("turn:127.0.0.1:3478?transport=udp",
                                                 "turns:t.example.org:5349")
    assert parse_ice_urls("", ("stun",)) == ()
    for bad, schemes in (("http://x", ("stun",)), ("turn:x", ("stun",)), ("stun:x:0", ("stun",)),
                         ("stun:x?transport=udp", ("stun",)), ("turn://x:3478", ("turn",))):
        with pytest.raises(ValueError):
            parse_ice_urls(bad, schemes)


def test_the_issuer_gives_each_did_its_own_credential_and_keeps_the_secret() -> None:
    issuer = IceServerIssuer.from_settings(("stun:s",), ("turn:t",), "s3cret", 60)
    assert issuer is not None and "s3cret" not in repr(issuer)
    other = DID.replace("z6Mki", "z6Mkj")
    first, second = issuer(DID), issuer(other)
    assert first[1]["username"].endswith(DID) and second[1]["username"].endswith(other)
    assert IceServerIssuer.from_settings((), ("turn:t",), None, 60) is None
    assert IceServerIssuer.from_settings((), (), "s3cret", 60) is None


def test_credentials_about_to_expire_are_noticed() -> None:
    servers = ice_servers([], ["turn:t"], "s3cret", DID, 60, now=lambda: 1000)
    assert not credentials_expire(servers, by=1059)
    assert credentials_expire(servers, by=1061)
    assert not credentials_expire([{"urls": ["stun:s"]}], by=10**12)
