"""`python -m aiconexus_gateway.keygen`, run as a user runs it: the key file a cluster shares.

Every gateway of a cluster loads the same key, so the cluster has one DID; these tests run the
command as a subprocess and then start the gateway the way the image does with that key file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from aiconexus_gateway.keys import DIDKey

from .helpers import get_json, run_image_cmd

DID_PREFIX = "did:key:z6Mk"
TIMEOUT = 30


def keygen(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aiconexus_gateway.keygen", *map(str, args)],
                          capture_output=True, text=True, timeout=TIMEOUT, check=False, cwd=cwd)


def created(path: Path) -> str:
    """Create the key file; its DID (the whole of stdout)."""
    result = keygen(path)
    assert result.returncode == 0, result.stderr
    did = result.stdout.strip()
    assert result.stdout == did + "\n"
    return did


def test_creates_a_key_file_readable_by_its_owner_only_and_prints_its_did(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    did = created(path)
    assert did.startswith(DID_PREFIX)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DIDKey.load(path).did == did
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.key"]  # no staging file left


def test_each_run_makes_a_new_key(tmp_path: Path) -> None:
    assert created(tmp_path / "a.key") != created(tmp_path / "b.key")


def test_creates_missing_parent_directories_private(tmp_path: Path) -> None:
    path = tmp_path / "deploy" / "keys" / "gateway.key"
    did = created(path)
    assert DIDKey.load(path).did == did
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_relative_path_is_taken_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "deploy" / "keys").mkdir(parents=True)
    result = keygen("deploy/keys/gateway.key", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    did = result.stdout.strip()
    assert DIDKey.load(tmp_path / "deploy" / "keys" / "gateway.key").did == did


def test_refuses_to_overwrite_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    created(path)
    before = path.read_bytes()
    result = keygen(path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{path} already exists: not overwritten" in result.stderr
    assert "--force" in result.stderr
    assert path.read_bytes() == before


def test_refuses_to_overwrite_any_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a key\n")
    result = keygen(path)
    assert result.returncode == 1
    assert path.read_text() == "not a key\n"


def test_force_replaces_the_key_with_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    old = created(path)
    result = keygen(path, "--force")
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip()
    assert new.startswith(DID_PREFIX) and new != old
    assert DIDKey.load(path).did == new
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_show_prints_the_did_of_an_existing_key_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "gateway.key"
    did = created(path)
    path.chmod(0o400)
    before = path.read_bytes()
    result = keygen("--show", path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == did + "\n"
    assert path.read_bytes() == before


def test_show_of_a_key_written_by_the_gateway_library(tmp_path: Path) -> None:
    key = DIDKey.generate()
    key.save(tmp_path / "gateway.key")
    assert keygen("--show", tmp_path / "gateway.key").stdout == key.did + "\n"


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    ("{}\n", "not a readable DID key file"),
    ('{"seed": "00"}\n', "not a readable DID key file"),
])
def test_show_of_a_missing_or_bad_file_fails_clearly(tmp_path: Path, content: str | None,
                                                     message: str) -> None:
    path = tmp_path / "gateway.key"
    if content is not None:
        path.write_text(content)
    result = keygen("--show", path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert (path.exists()) == (content is not None)  # --show never creates a file


@pytest.mark.parametrize("args", [[], ["--show"], ["--show", "a.key", "b.key"],
                                  ["--show", "a.key", "--force"], ["--frobnicate", "a.key"]])
def test_bad_usage_exits_2_with_the_usage(tmp_path: Path, args: list[str]) -> None:
    result = keygen(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_help_explains_the_shared_key() -> None:
    result = keygen("--help")
    assert result.returncode == 0
    assert "--force" in result.stdout and "--show" in result.stdout
    assert "same" in result.stdout and "DID" in result.stdout


def test_unwritable_directory_fails_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = keygen(blocker / "gateway.key")  # a parent that is a file: cannot be created
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write")


def test_concurrent_runs_make_exactly_one_key(tmp_path: Path) -> None:
    """Several instances told to make the same file at once: one wins, the others refuse, and
    the file holds the winner's key."""
    path = tmp_path / "gateway.key"
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: keygen(path), range(6)))
    winners = [r for r in results if r.returncode == 0]
    assert len(winners) == 1, [r.stderr for r in results]
    assert all(r.returncode == 1 and "already exists" in r.stderr
               for r in results if r.returncode != 0)
    assert DIDKey.load(path).did == winners[0].stdout.strip()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway.key"]


def test_gateway_started_with_the_key_file_announces_its_did(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "gateway.key"
    did = created(path)
    with run_image_cmd(tmp_path, GATEWAY_KEY_FILE=str(path)) as gateway:
        status, body = get_json(f"{gateway.http_url}/health")
        assert status == 200
        assert body["gateway_did"] == did
        assert gateway.stop() == 0
        assert f"gateway DID: {did}" in gateway.stdout


def test_every_instance_given_one_read_only_key_has_the_same_did(tmp_path: Path) -> None:
    """What the cluster deployments do: one key file, mounted read-only into each replica."""
    keys = tmp_path / "secrets"
    did = created(keys / "gateway.key")
    (keys / "gateway.key").chmod(0o400)
    keys.chmod(0o500)
    before = (keys / "gateway.key").read_bytes()
    try:
        with ExitStack() as stack:
            replicas = []
            for name in ("replica-1", "replica-2", "replica-3"):
                workdir = tmp_path / name
                workdir.mkdir()
                replicas.append(stack.enter_context(
                    run_image_cmd(workdir, GATEWAY_KEY_FILE=str(keys / "gateway.key"))))
            dids = {get_json(f"{replica.http_url}/health")[1]["gateway_did"]
                    for replica in replicas}
        assert dids == {did}
        assert (keys / "gateway.key").read_bytes() == before
        assert sorted(p.name for p in keys.iterdir()) == ["gateway.key"]
    finally:
        keys.chmod(0o700)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_gateway_refuses_a_key_file_it_cannot_read(tmp_path: Path) -> None:
    """A key the gateway's user cannot read stops it at once (instead of a new DID)."""
    path = tmp_path / "gateway.key"
    created(path)
    path.chmod(0)
    result = subprocess.run([sys.executable, "-m", "aiconexus_gateway", "--port", "0",
                             "--key-file", str(path)],
                            capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert result.returncode == 2
    assert "not a readable DID key file" in result.stderr
