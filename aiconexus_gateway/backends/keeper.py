"""The heartbeat keeper: a small process that refreshes one instance's heartbeat key in Redis.

Why a process. The writer refreshes the key too, but on a saturated host a gateway process can
stall for many seconds of wall time while alive: its event loop behind a backlog of handshakes,
or a full garbage collection of a large heap holding the GIL (on 2 cores shared by 20 busy
processes, a worker got ~5% of a core, so 1 s of collection took ~20 s). A key refreshed from
inside that process lapsed, the other instances reaped a live worker, its agents vanished from
the cluster while still connected, and re-publishing them loaded the host further. The keeper
refreshes the key while its gateway process exists and is not stopped, so the key means
"the process runs", which is what reaping needs: a killed gateway closes the keeper's stdin
(the keeper exits), a stopped one (SIGSTOP, state T) is seen in /proc and not refreshed.

Protocol on stdin, one line each: the settings as JSON first (never on the command line: the
URL may hold a password), then "1" (refresh from now on) or "0" (stop refreshing); end of file
ends the keeper. Run as `python -m aiconexus_gateway.backends.keeper`.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import sys
import time
from typing import Any


def parent_stopped(pid: int) -> bool:
    """True while process `pid` is stopped (SIGSTOP, a debugger); False where /proc is missing."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] in (b"T", b"t")
    except (OSError, IndexError):
        return False


def run(settings: dict[str, Any], commands: Commands) -> None:
    from redis import Redis
    from redis.exceptions import RedisError

    interval = float(settings["interval"])
    client = Redis.from_url(settings["url"], protocol=2, socket_timeout=max(1.0, interval),
                            socket_connect_timeout=1.0, health_check_interval=0,
                            client_name=settings.get("name"))
    key, value = settings["key"], settings["value"]
    ttl_ms, parent = int(settings["ttl_ms"]), int(settings["parent"])
    active = False
    next_refresh = time.monotonic()
    try:
        while True:
            line = commands.next(max(0.0, next_refresh - time.monotonic()))
            if line is None:  # time to refresh
                next_refresh = time.monotonic() + interval
                if active and not parent_stopped(parent) and os.getppid() == parent:
                    # Redis trouble: the gateway's writer notices it and reconnects
                    with contextlib.suppress(RedisError, OSError):
                        client.set(key, value, px=ttl_ms)
            elif line == b"":
                return  # the gateway closed our stdin, or died
            else:
                active = line.strip() == b"1"
    finally:
        client.close()


class Commands:
    """Lines from a pipe, waiting at most a given time for the next one (select on the raw fd:
    no buffered reader hiding lines from select)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def next(self, timeout: float | None) -> bytes | None:
        """The next line; b"" at end of file; None when `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.closed:
                return b""
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                self.closed = True
                if not self.buffer:
                    return b""
                self.buffer += b"\n"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line + b"\n"


def main() -> None:
    commands = Commands(sys.stdin.fileno())
    first = commands.next(None)
    if not first:
        return
    with contextlib.suppress(KeyboardInterrupt):
        run(json.loads(first), commands)


if __name__ == "__main__":
    main()
