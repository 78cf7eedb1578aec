"""An agent's key file: made with keygen, loaded with DIDKey.load, the same DID on the gateway."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from aiconexus_gateway import keygen
from aiconexus_gateway.client import DIDKey, GatewayClient
from aiconexus_gateway.server.app import Gateway


@pytest.mark.gen_test(timeout=20)
async def test_an_agent_registers_with_the_did_of_its_keygen_file(gateway: Gateway,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "keys" / "alice.key"
    out, err = io.StringIO(), io.StringIO()
    assert keygen.main([str(path)], out=out, err=err) == 0
    did = out.getvalue().strip()
    assert path.stat().st_mode & 0o777 == 0o600
    client = GatewayClient(gateway.ws_url, DIDKey.load(path))
    await client.connect()
    assert client.did == did and gateway.hub.agent(did) is not None
    await client.close()


def test_keygen_refuses_to_replace_an_agent_key_without_force(tmp_path: Path) -> None:
    path = tmp_path / "alice.key"
    DIDKey.generate().save(path)
    err = io.StringIO()
    assert keygen.main([str(path)], out=io.StringIO(), err=err) == 1
    assert "already exists: not overwritten" in err.getvalue() and "--force" in err.getvalue()


def test_load_or_create_gives_an_agent_a_stable_did(tmp_path: Path) -> None:
    path = tmp_path / "bob.key"
    first = DIDKey.load_or_create(path)
    assert DIDKey.load_or_create(path).did == first.did


def test_a_file_that_is_not_a_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match=r"notes\.txt: not a readable DID key file"):
        DIDKey.load(path)
