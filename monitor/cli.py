"""The `aiconexus-monitor` command line: options from flags and the environment, then the app.

Only the standard library is imported at module level, so `--help` and `--version` work, and
a missing `monitor` extra is reported in one line, without Textual or httpx installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import __version__
from .address import BadURL, http_base_url
from .credentials import AdminToken, BadToken

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_AGENTS = 200


@dataclass(frozen=True)
class Options:
    url: str
    interval: float
    timeout: float
    max_agents: int
    token: AdminToken | None = None  # hides itself in repr and str


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.1 and 3600 seconds: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100000: {text!r}")
    return value


def parse_args(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Options:
    """Flags win over `GATEWAY_URL` / `MONITOR_INTERVAL` / `ADMIN_TOKEN`, then the defaults."""
    # an empty variable counts as unset, as the gateway reads its own
    env = {key: value for key, value in (os.environ if environ is None else environ).items() if value}
    parser = argparse.ArgumentParser(
        prog="aiconexus-monitor",
        description="Live terminal monitor of an AIConexus gateway (polls /health and /agents).",
        epilog="keys: q quit, r refresh, p pause, / filter, s sort, enter details, ? help",
    )
    parser.add_argument(
        "--url",
        default=env.get("GATEWAY_URL", DEFAULT_URL),
        help="the gateway's HTTP address; ws://host:port/ws or .../health are accepted too "
        f"(env GATEWAY_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--interval",
        type=_positive,
        default=env.get("MONITOR_INTERVAL", str(DEFAULT_INTERVAL)),
        help=f"seconds between polls (env MONITOR_INTERVAL, default {DEFAULT_INTERVAL:g})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=str(DEFAULT_TIMEOUT),
        help=f"seconds to wait for an answer before calling the gateway unreachable "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-agents",
        type=_count,
        default=str(DEFAULT_MAX_AGENTS),
        help=f"fetch at most this many agents per poll (default {DEFAULT_MAX_AGENTS})",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--token",
        metavar="TOKEN",
        help="the gateway's ADMIN_TOKEN, sent as Authorization: Bearer (env ADMIN_TOKEN, "
        "preferred: a flag is visible to other users in the process list)",
    )
    secret.add_argument(
        "--token-file", metavar="PATH", help="read the admin token from this file"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    try:
        url = http_base_url(args.url)
    except BadURL as exc:
        parser.error(str(exc))
    token: AdminToken | None = None
    try:
        if args.token_file is not None:
            token = AdminToken.from_file(args.token_file)
        elif args.token is not None:
            token = AdminToken(args.token)
        elif "ADMIN_TOKEN" in env:
            token = AdminToken(env["ADMIN_TOKEN"])
    except BadToken as exc:
        parser.error(str(exc))
    return Options(
        url=url,
        interval=args.interval,
        timeout=args.timeout,
        max_agents=args.max_agents,
        token=token,
    )


EXTRA_MODULES = frozenset({"textual", "httpx", "rich"})
"""What `pip install 'aiconexus-gateway[monitor]'` adds (rich comes with textual)."""


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one line to print when the monitor's extra is not installed, else None."""
    module = (exc.name or "").partition(".")[0]
    if module not in EXTRA_MODULES:
        return None
    return (
        f"aiconexus-monitor: {module} is not installed; the monitor needs the 'monitor' extra: "
        "pip install 'aiconexus-gateway[monitor]'"
    )


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: `aiconexus-monitor` (setup.py: `monitor.cli:run`)."""
    options = parse_args(argv)
    try:
        from .app import run_monitor
    except ModuleNotFoundError as exc:
        message = missing_extra(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        sys.exit(1)
    sys.exit(asyncio.run(run_monitor(options)))
