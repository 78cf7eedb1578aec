"""aiconexus_gateway/turn.py: the TURN REST scheme coturn's use-auth-secret checks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from aiconexus_gateway.turn import (
    check_turn_credential,
    ice_servers,
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
