"""TURN for real: coturn (`turnserver`, Debian package coturn) on ephemeral loopback ports with
use-auth-secret; relay-only ICE opens the channel with credentials from aiconexus_gateway/turn.py,
and expired or forged credentials do not."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiconexus_gateway.client.peer import PeerICEFailed
from aiconexus_gateway.server.app import Gateway
from aiconexus_gateway.turn import turn_credential
from tests.conftest import connect_agent, require_tool
from tests.deploy.helpers import COMPOSE_FILE, interpolate, load_yaml
from tests.support.waiting import wait_until

SECRET = "turn-test-secret"
READY = "DB connection success"  # the last startup line: the auth threads are up too


class TurnServer:
    """A coturn process on 127.0.0.1:`port` (UDP), relaying from 127.0.0.1 ports only."""

    def __init__(self, directory: Path, settings: list[str] | None = None) -> None:
        """`settings`: coturn's options (the compose file's), else the test's own; the ports,
        files and loopback-only options below always apply."""
        self.port = _free_udp_and_tcp_port()
        low = random.randrange(40_000, 60_000, 100)
        self.lines: list[str] = []
        self._ready = threading.Event()
        local = {"--listening-port": str(self.port), "--min-port": str(low),
                 "--max-port": str(low + 99), "--pidfile": str(directory / "turn.pid"),
                 "--userdb": str(directory / "turndb")}
        if settings is None:
            settings = ["-n", "--use-auth-secret", f"--static-auth-secret={SECRET}",
                        "--realm=aiconexus.test", "--no-tls", "--no-dtls", "--no-cli",
                        "--log-file=stdout"]
        kept = [option for option in settings if option.partition("=")[0] not in local]
        self.proc = subprocess.Popen(
            ["turnserver", *kept, *(f"{name}={value}" for name, value in local.items()),
             "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--no-tcp", "--no-tcp-relay",
             "--allow-loopback-peers", "--simple-log"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        if not self._ready.wait(15):
            self.stop()
            raise AssertionError("turnserver did not start within 15 s:\n" + "".join(self.lines))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if READY in line:
                self._ready.set()

    def servers(self, user: str, *, secret: str = SECRET, ttl: float = 600,
                issued_at: float | None = None) -> list[dict[str, Any]]:
        """The RTCIceServer list with a TURN REST credential for `user`."""
        now = time.time() if issued_at is None else issued_at
        issued = turn_credential(secret, user, ttl, now=lambda: now)
        return [{"urls": [f"turn:127.0.0.1:{self.port}?transport=udp"],
                 "username": issued.username, "credential": issued.credential}]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _free_udp_and_tcp_port() -> int:
    """A loopback port free for UDP (the TURN listener) and for TCP too: coturn binds its
    listeners on both unless told otherwise, and a taken TCP port made it retry instead of
    serving (an ICE failure in the test)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[TurnServer]:
    require_tool(shutil.which("turnserver") is not None,
                 "turnserver (Debian package coturn) is not installed")
    server = TurnServer(tmp_path)
    yield server
    server.stop()


def compose_coturn_settings(secret: str) -> list[str]:
    """The coturn options of docker-compose.gateway.yml's `turn` profile, as Compose hands them
    over when the shell has TURN_SECRET (the gateway's secret too)."""
    service = load_yaml(COMPOSE_FILE)["services"]["coturn"]
    return [interpolate(str(option), {"TURN_SECRET": secret}) for option in service["command"]]


@pytest.fixture
def compose_turn_server(tmp_path: Path) -> Iterator[TurnServer]:
    require_tool(shutil.which("turnserver") is not None,
                 "turnserver (Debian package coturn) is not installed")
    server = TurnServer(tmp_path, compose_coturn_settings(SECRET))
    yield server
    server.stop()


@pytest.mark.gen_test(timeout=60)
async def test_the_compose_turn_profile_serves_the_gateways_credentials(
        io_loop: object, compose_turn_server: TurnServer) -> None:
    """coturn run with the options of the compose file's `turn` profile (its ports and files
    aside) accepts the credentials the gateway issues from the same TURN_SECRET."""
    await turn_round_trip(compose_turn_server.port, "through the compose profile's coturn")


@pytest.mark.gen_test(timeout=60)
async def test_relay_only_ice_opens_through_coturn_with_turn_rest_credentials(
        gateway: Gateway, turn_server: TurnServer) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    bob.configure_peers(ice_servers=turn_server.servers(bob.did), relay_only=True)
    incoming = bob.peers()
    ours = await alice.connect_peer(bob.did, timeout=20, relay_only=True,
                                    ice_servers=turn_server.servers(alice.did))
    theirs = await incoming.__anext__()
    assert ours.transport == "turn" and theirs.transport == "turn"
    for n in range(20):
        await ours.send(f"via turn {n}")
    assert [await theirs.receive(timeout=10) for _ in range(20)] == [f"via turn {n}"
                                                                     for n in range(20)]
    await theirs.send(b"back")
    assert await ours.receive(timeout=10) == b"back"
    await alice.close()
    await bob.close()


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("credential", ["expired", "forged"])
async def test_expired_or_forged_turn_credentials_do_not_open_a_channel(
        gateway: Gateway, turn_server: TurnServer, credential: str) -> None:
    alice, bob = await connect_agent(gateway), await connect_agent(gateway)
    bad = (turn_server.servers(alice.did, ttl=60, issued_at=time.time() - 3600)
           if credential == "expired" else turn_server.servers(alice.did, secret="not-the-secret"))
    bob.configure_peers(ice_servers=turn_server.servers(bob.did), relay_only=True)
    bob.on_peer(lambda channel: None)
    with pytest.raises(PeerICEFailed):
        await alice.connect_peer(bob.did, timeout=15, relay_only=True, ice_servers=bad)
    # coturn itself refused alice's allocation (bob's, with a good credential, was accepted)
    await wait_until(lambda: any("check_stun_auth" in line and alice.did in line
                                 for line in turn_server.lines), 5,
                     lambda: "coturn's refusal in its log:\n" + "".join(turn_server.lines[-12:]))
    await alice.close()
    await bob.close()


async def turn_round_trip(turn_port: int, text: str) -> None:
    """A gateway that issues credentials for the coturn on `turn_port`; two agents open a channel
    relay-only (the gateway's credentials or nothing), and `text` crosses it."""
    from tests.conftest import gateway_config

    gateway = await Gateway.start(gateway_config(
        turn_urls=(f"turn:127.0.0.1:{turn_port}?transport=udp",), turn_secret=SECRET))
    try:
        alice, bob = await connect_agent(gateway), await connect_agent(gateway)
        bob.configure_peers(relay_only=True)
        incoming = bob.peers()
        ours = await alice.connect_peer(bob.did, timeout=20, relay_only=True)
        theirs = await asyncio.wait_for(incoming.__anext__(), 10)
        assert ours.transport == theirs.transport == "turn"
        await ours.send(text)
        assert await theirs.receive(timeout=10) == text
        await alice.close()
        await bob.close()
    finally:
        await gateway.stop(timeout=2.0)
