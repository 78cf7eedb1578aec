"""ICE servers from the gateway: STUN_URLS, TURN_URLS, TURN_SECRET, TURN_TTL; REGISTERED carries
per-agent, time-limited TURN credentials in RTCIceServer shape, and the SDK uses them by itself."""

from __future__ import annotations

import time

import pytest

from aiconexus_gateway.config import ConfigError, load
from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.turn import check_turn_credential
from tests.conftest import connect_agent
from tests.peer.test_turn_server import (  # noqa: F401 (fixture)
    SECRET,
    TurnServer,
    turn_round_trip,
    turn_server,
)

STUN = ("stun:stun.example.org:3478",)
TURN = ("turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349")


@pytest.mark.gen_test(timeout=30)
@pytest.mark.gateway_config(stun_urls=STUN, turn_urls=TURN, turn_secret="gateway-secret",
                            turn_ttl=600.0)
async def test_registered_carries_ice_servers_with_credentials_for_that_agent(
        gateway: Gateway) -> None:
    frames: list[str] = []
    alice = await connect_agent(gateway)
    alice.on_message(lambda message: frames.append(message.raw))
    servers = alice.ice_servers
    assert servers is not None and servers[0] == {"urls": list(STUN)}
    turn = servers[1]
    assert turn["urls"] == list(TURN) and set(turn) == {"urls", "username", "credential"}
    expiry, _, user = turn["username"].partition(":")
    assert user == alice.did and 590 < int(expiry) - time.time() <= 600
    assert check_turn_credential("gateway-secret", turn["username"], turn["credential"])
    bob = await connect_agent(gateway)
    assert bob.ice_servers is not None and bob.ice_servers[1]["username"].endswith(bob.did)
    # fresh ones on demand (PING {"ice_servers": true}); the secret is never sent
    refreshed = await alice.refresh_ice_servers()
    assert refreshed is not None and refreshed[1]["username"].endswith(alice.did)
    assert all("gateway-secret" not in frame for frame in frames)
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=30)
async def test_without_ice_settings_registered_has_no_ice_servers(gateway: Gateway) -> None:
    alice = await connect_agent(gateway)
    assert alice.ice_servers is None
    await alice.ping(payload={"ice_servers": True})  # a plain PONG, nothing else
    assert alice.ice_servers is None
    await alice.close()


def test_the_settings_come_from_flags_and_environment_and_are_checked() -> None:
    config = load(["--stun-urls", "stun:a:3478,stun:b", "--turn-ttl", "120"],
                  {"TURN_URLS": "turn:t:3478", "TURN_SECRET": "from-the-environment"})
    assert config.stun_urls == ("stun:a:3478", "stun:b") and config.turn_urls == ("turn:t:3478",)
    assert config.turn_secret == "from-the-environment" and config.turn_ttl == 120
    assert "from-the-environment" not in repr(config)
    with pytest.raises(ConfigError, match="--stun-urls"):
        load(["--stun-urls", "http://nope"], {})
    with pytest.raises(ConfigError, match="TURN_TTL"):
        load([], {"TURN_TTL": "0"})
    with pytest.raises(ConfigError, match="TURN_SECRET"):
        load(["--turn-urls", "turn:t"], {})
    with pytest.raises(ConfigError) as hidden:
        load(["--turn-secret", " "], {})
    assert "(hidden)" in str(hidden.value)


@pytest.mark.gen_test(timeout=60)
async def test_the_sdk_uses_the_gateway_turn_server_without_being_told(
        io_loop: object, turn_server: TurnServer) -> None:  # noqa: F811
    await turn_round_trip(turn_server.port, "through coturn")  # TURN only: the gateway's credentials
