"""`python -m aiconexus_gateway.keygen PATH`: make an Ed25519 key file, a gateway's or an agent's.

An agent loads its file with `DIDKey.load(PATH)` and keeps its DID across runs (docs/sdk.md).

Every instance of a cluster loads the same GATEWAY_KEY_FILE, so the cluster has one gateway DID:
agents check the DID that signs the CHALLENGE and may reconnect to any instance. The file is made
once, before the instances start; instances left to create it themselves would each make their own
key, or race to write the same file.

    python -m aiconexus_gateway.keygen deploy/keys/gateway.key     create it; print the DID
    python -m aiconexus_gateway.keygen deploy/keys/gateway.key --force   replace it (new DID)
    python -m aiconexus_gateway.keygen --show deploy/keys/gateway.key    the DID of a key file

Exit status: 0 done, 1 refused or failed (the message says why), 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from .keys import DIDKey

PROG = "python -m aiconexus_gateway.keygen"


class KeygenError(Exception):
    """A refusal or failure, reported as one line and exit status 1."""


class KeyExistsError(KeygenError):
    """The key file exists already: it is the cluster's identity, so it is not replaced."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} already exists: not overwritten. Keep it (its DID is the identity of the "
            f"gateway or agent that uses it, and every gateway of a cluster must use the same "
            f"key), or replace it with --force: the DID then changes, and whoever checks it must "
            f"be told the new one.")


def create(path: Path, *, force: bool = False) -> DIDKey:
    """A new key written to `path` (mode 0600, parent directories made as needed).

    Without `force` an existing file is never replaced, even one that appears while the key is
    being written: the key is saved under a temporary name and hard-linked to `path`, which fails
    when `path` exists. With `force` it is saved over `path` in one atomic rename."""
    key = DIDKey.generate()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if force:
        key.save(path)
        return key
    if path.exists() or path.is_symlink():
        raise KeyExistsError(path)
    fd, staging_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    os.close(fd)
    staging = Path(staging_name)
    try:
        key.save(staging)
        try:
            os.link(staging, path)
        except OSError as exc:  # exists, or no hard links on this file system: check, rename
            if isinstance(exc, FileExistsError) or path.exists():
                raise KeyExistsError(path) from None
            os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return key


def show(path: Path) -> DIDKey:
    """The key in an existing key file."""
    if not path.exists():
        raise KeygenError(f"{path} does not exist (create it with: {PROG} {path})")
    try:
        return DIDKey.load(path)
    except ValueError as exc:
        raise KeygenError(str(exc)) from None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Create an Ed25519 key file, readable by its owner only, and print its "
                    "DID: the gateway's key (GATEWAY_KEY_FILE; give every instance of a cluster "
                    "the same file, so the cluster has one gateway DID) or an agent's (the SDK "
                    "loads it with DIDKey.load(PATH)).",
    )
    parser.add_argument("path", nargs="?", type=Path, metavar="PATH",
                        help="the key file to create")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing key file (the gateway DID changes)")
    parser.add_argument("--show", type=Path, metavar="PATH",
                        help="print the DID of an existing key file and change nothing")
    args = parser.parse_args(argv)
    if args.show is not None and (args.path is not None or args.force):
        parser.error("--show takes one key file and no other argument")
    if args.show is None and args.path is None:
        parser.error("give the key file to create (PATH) or --show PATH")
    return args


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Run the command; the DID goes to `out` alone (for scripts), everything else to `err`."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = parse_args(argv)
    try:
        if args.show is not None:
            key = show(args.show)
        else:
            key = create(args.path, force=args.force)
            print(f"wrote {args.path} (mode 0600); its DID:", file=err)
    except KeygenError as exc:
        print(f"error: {exc}", file=err)
        return 1
    except OSError as exc:
        print(f"error: cannot write {args.path}: {exc.strerror or exc}", file=err)
        return 1
    print(key.did, file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
