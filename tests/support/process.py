"""The one gateway-subprocess wrapper: the real `aiconexus-gateway`, as operators run it.

The process gets a free port chosen here (`--port`, or GATEWAY_PORT for a custom command), so its
addresses are known whatever its banner looks like; it is ready once its startup output names its
URLs and DID, in the text banner or in JSON log lines alike. Two threads drain stdout and stderr
into memory (a full pipe would stall the gateway), so every line stays available to the test.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from signal import SIGCONT, SIGKILL, SIGTERM
from typing import IO

COMMAND = (sys.executable, "-m", "aiconexus_gateway")
WS_URL = re.compile(r"\bwss?://[^\s\"',;)]+")
HTTP_URL = re.compile(r"\bhttps?://[^\s\"',;)]+")
LISTENING = re.compile(r"listening|\"ws_url\"", re.IGNORECASE)  # the text banner, or a JSON record of it
DID = re.compile(r"did:key:z[1-9A-HJ-NP-Za-km-z]+")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _http_of(ws_url: str) -> str:
    """http://host:port of ws://host:port/path (https of wss)."""
    scheme, rest = ws_url.split("://", 1)
    return f"{'https' if scheme == 'wss' else 'http'}://{rest.split('/', 1)[0]}"


class GatewayProcess:
    """A gateway subprocess on 127.0.0.1:`port`; started at construction, ready when `wait` is
    true (the default), stopped by `stop()` (SIGTERM, then SIGKILL after `timeout`).

    `command` replaces `python -m aiconexus_gateway` (the image's CMD, say); then the port goes
    through GATEWAY_PORT instead of `--port`. `env` is added to this process's environment, or
    replaces it when `inherit_env` is false. `ready` is one more pattern the startup output must
    show before the process counts as ready (cluster mode's `cluster:` line).
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None,
                 command: Sequence[str] | None = None, port: int | None = None,
                 cwd: Path | None = None, inherit_env: bool = True, ready: str | None = None,
                 name: str = "gateway", wait: bool = True, startup_timeout: float = 20.0) -> None:
        self.name = name
        self.port = port or free_port()
        self.ready = re.compile(ready) if ready else None
        environment = {**(os.environ if inherit_env else {}), **(env or {}),
                       "PYTHONUNBUFFERED": "1"}
        if command is None:
            argv = [*COMMAND, "--port", str(self.port), *args]
        else:
            argv = [*command, *args]
            environment["GATEWAY_PORT"] = str(self.port)
        self.argv = argv
        self.ws_url = self.http_url = self.did = ""
        self.lines: list[str] = []  # stdout and stderr, in the order they were read
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        self._open_streams = 2
        self.proc = subprocess.Popen(argv, cwd=cwd, env=environment, text=True, bufsize=1,
                                     errors="replace", stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._readers = [
            threading.Thread(target=self._drain, args=(stream, into), daemon=True,
                             name=f"{name}-{label}")
            for stream, into, label in ((self.proc.stdout, self.stdout, "stdout"),
                                        (self.proc.stderr, self.stderr, "stderr"))]
        for reader in self._readers:
            reader.start()
        if wait:
            self.wait_ready(startup_timeout)

    # -- startup -------------------------------------------------------------------------------

    def wait_ready(self, timeout: float = 20.0) -> GatewayProcess:
        """Block until the startup output names the URLs and the DID (and matches `ready`)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._parse_startup():
                if self._open_streams == 0:  # both pipes closed: it exited
                    raise AssertionError(
                        f"{self.name} exited with {self.proc.wait(5)} before it was ready:\n"
                        f"{self.output()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"{self.name} was not ready within {timeout} s:\n{self.output()}")
                self._changed.wait(remaining)
        return self

    def _parse_startup(self) -> bool:
        """The banner: a line saying it listens on our port (printed once the signal handlers are
        in place), with the WebSocket URL (and the HTTP one, else derived), and the DID."""
        for line in self.lines:
            if not self.ws_url and LISTENING.search(line) and f":{self.port}" in line:
                ws = WS_URL.search(line)
                http = HTTP_URL.search(line)
                if ws:
                    self.ws_url = ws.group(0)
                    self.http_url = http.group(0) if http else _http_of(self.ws_url)
            if not self.did and (match := DID.search(line)):
                self.did = match.group(0)
        ready = self.ready is None or any(self.ready.search(line) for line in self.lines)
        return bool(self.ws_url and self.did and ready)

    def _drain(self, stream: IO[str] | None, into: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                into.append(line.rstrip("\n"))
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._open_streams -= 1
            self._changed.notify_all()

    # -- while it runs -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def tls(self) -> bool:
        return self.http_url.startswith("https:")

    def output(self) -> str:
        """Everything it wrote so far, stdout and stderr interleaved as read."""
        with self._changed:
            return "\n".join(self.lines)

    def wait_for_output(self, pattern: str, timeout: float = 10.0) -> str:
        """Block until a line of output matches `pattern`; that line."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if compiled.search(line):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._open_streams == 0:
                    raise AssertionError(
                        f"{self.name} never wrote a line matching {pattern!r}:\n{self.output()}")
                self._changed.wait(remaining)

    def rss(self) -> int:
        """Resident set size in bytes, from /proc."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"VmRSS:\s+(\d+) kB", status)
        assert match, status
        return int(match.group(1)) * 1024

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Block until it exits; its status (TimeoutExpired after `timeout`)."""
        return self.proc.wait(timeout)

    # -- the end -------------------------------------------------------------------------------

    def stop(self, signum: int = SIGTERM, timeout: float = 15.0) -> int:
        """Send `signum` (SIGTERM: a clean drain), wait up to `timeout`; the exit status. Always
        leaves no process behind (SIGKILL if needed) and the output fully read."""
        if self.proc.poll() is None:
            if signum != SIGKILL:
                self.proc.send_signal(SIGCONT)  # a stopped process cannot handle SIGTERM
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for reader in self._readers:
                reader.join(5)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
