"""Node.js for the JavaScript client's tests: find it (>= 20), install clients/js's packages from its
lock file when they are missing, run scripts, and drive tests/js/agent.mjs (a Node agent) from
asyncio code. A missing Node fails under CI and skips elsewhere (tests.conftest.require_tool)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
CLIENT = REPO / "clients" / "js"
HERE = Path(__file__).resolve().parent
MIN_NODE = 20


def node() -> str:
    """The path of a Node.js >= 20 (skip, or fail under CI, when there is none)."""
    path = shutil.which("node")
    version = ""
    if path:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    require_tool(bool(match and int(match.group(1)) >= MIN_NODE),
                 f"Node.js >= {MIN_NODE} is needed for the JavaScript client's tests "
                 f"(found {version or 'none'})")
    assert path is not None
    return path


def node_major() -> int:
    """The major version of `node()`."""
    done = subprocess.run([node(), "--version"], capture_output=True, text=True, timeout=30)
    return int(done.stdout.strip().lstrip("v").split(".")[0])


def node_modules() -> Path:
    """clients/js/node_modules, installed with `npm ci` from the lock file when missing."""
    modules = CLIENT / "node_modules"
    if not (modules / ".package-lock.json").exists() or not (modules / "libsodium-wrappers").exists():
        npm = shutil.which("npm")
        require_tool(npm is not None, "npm is needed to install clients/js's test packages")
        assert npm is not None
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return modules


def run(args: list[str], *, timeout: float = 120, cwd: Path = CLIENT,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


class NodeAgent:
    """tests/js/agent.mjs as a subprocess: `call` sends one command and returns its answer;
    events (invalid messages, connection changes) collect in `events`."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._event_added = asyncio.Event()
        self._stderr: list[str] = []
        self._reader = asyncio.create_task(self._read())
        self._errors = asyncio.create_task(self._read_stderr())

    @classmethod
    async def start(cls) -> NodeAgent:
        process = await asyncio.create_subprocess_exec(
            node(), str(HERE / "agent.mjs"), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=REPO)
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            record = json.loads(line)
            if "event" in record:
                self.events.append(record)
                self._event_added.set()
            else:
                await self._answers.put(record)

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self._stderr.append(line.decode("utf-8", "replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    async def call(self, op: str, wait: float = 20, **fields: Any) -> dict[str, Any]:
        """Run one command; its answer (with "ok")."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        try:
            return await asyncio.wait_for(self._answers.get(), wait)
        except asyncio.TimeoutError:
            raise AssertionError(f"the Node agent did not answer {op} within {wait} s; "
                                 f"stderr:\n{self.stderr}") from None

    async def ok(self, op: str, wait: float = 20, **fields: Any) -> dict[str, Any]:
        """`call`, asserting the command succeeded."""
        answer = await self.call(op, wait, **fields)
        assert answer["ok"], f"{op} failed: {answer}\nstderr:\n{self.stderr}"
        return answer

    async def event(self, kind: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        """The first event of `kind` whose fields include `match` (waiting for it)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for record in self.events:
                if record["event"] == kind and all(record.get(k) == v for k, v in match.items()):
                    return record
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {kind} event {match} within {timeout} s: {self.events}")
            self._event_added.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._event_added.wait(), remaining)

    async def stop(self) -> int:
        """Close stdin (the agent closes its client and exits); its exit status."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            status = await asyncio.wait_for(self.process.wait(), 10)
        except asyncio.TimeoutError:
            self.process.kill()
            status = await self.process.wait()
        await asyncio.gather(self._reader, self._errors, return_exceptions=True)
        return status
