"""Descriptors are a counted limit (issue 11): the HTTP side keeps within its share and answers 503
over it; an exhausted accept (EMFILE) is logged once per interval, without tracebacks or a
spinning core, and the gateway serves again as soon as descriptors are free; slow request headers
time out."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiconexus_gateway.server.app import Gateway
from tests.reliability.support import fetch
from tests.support.process import GatewayProcess
from tests.support.waiting import wait_until

# The gateway with a hard descriptor limit of 128: 9 HTTP connections at once (server/app.py
# Capacity.plan), 87 WebSocket connections.
LIMITED = [sys.executable, "-c",
           "import resource, runpy, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)); "
           "sys.argv[0] = 'aiconexus-gateway'; runpy.run_module('aiconexus_gateway', "
           "run_name='__main__')"]


@pytest.fixture
def limited_gateway() -> Iterator[GatewayProcess]:
    process = GatewayProcess("--log-level", "INFO", command=LIMITED)
    yield process
    process.stop(signal.SIGKILL)


def idle_connections(port: int, count: int) -> list[socket.socket]:
    """TCP connections that never send a request (they hold a descriptor each)."""
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]


@pytest.mark.gen_test(timeout=30)
async def test_over_its_share_of_descriptors_the_http_side_answers_503_then_recovers(
        limited_gateway: GatewayProcess) -> None:
    line = limited_gateway.wait_for_output("descriptors: ")
    assert "descriptors: 128;" in line and "9 HTTP connections" in line
    held = idle_connections(limited_gateway.port, 9)
    try:
        async def refused() -> bool:
            status, headers, body = await fetch(limited_gateway.http_url + "/health")
            return status == 503 and json.loads(body)["error"] == "GATEWAY_FULL" and \
                headers["Retry-After"] == "1"
        await wait_until(refused, 10, "a 503 GATEWAY_FULL while 9 idle connections are held")
    finally:
        for sock in held:
            sock.close()

    async def healthy() -> bool:
        status, _, _ = await fetch(limited_gateway.http_url + "/health")
        return status == 200
    await wait_until(healthy, 10, "/health answered again once the idle connections closed")
    limited_gateway.wait_for_output("refused a connection with 503")


def open_descriptors(pid: int) -> list[int]:
    return sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.gen_test(timeout=40)
async def test_an_exhausted_accept_is_logged_once_without_tracebacks_and_serving_resumes() -> None:
    process = GatewayProcess("--log-level", "INFO")
    clients: list[socket.socket] = []
    try:
        process.wait_for_output("descriptors: ")
        pid = process.pid
        before = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        fds = open_descriptors(pid)
        holes = fds[-1] + 1 - len(fds)
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (fds[-1] + 1, before[1]))
        for _ in range(holes + 3):  # the kernel completes them; accept(2) then finds no descriptor
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", process.port))
            clients.append(client)
        process.wait_for_output("cannot accept connections")
        cpu = cpu_seconds(pid)
        started = time.monotonic()
        await asyncio.sleep(1.0)  # the exhaustion lasts a second: what does it cost?
        assert cpu_seconds(pid) - cpu < 0.5 * (time.monotonic() - started), "a spinning core"
        resource.prlimit(pid, resource.RLIMIT_NOFILE, before)
        status, _, _ = await fetch(process.http_url + "/health")
        assert status == 200
        output = process.output()
        assert "Traceback" not in output, output[-3000:]
        assert output.count("cannot accept connections") == 1, output[-3000:]
    finally:
        for client in clients:
            client.close()
        process.stop(signal.SIGKILL)


@pytest.mark.gen_test(timeout=20)
@pytest.mark.gateway_config(challenge_timeout=1.0)
async def test_request_headers_that_never_complete_are_cut_at_the_header_timeout(
        gateway: Gateway) -> None:
    """HEADER_TIMEOUT (10 s; the challenge timeout when shorter, 1 s here) bounds how long a
    connection may hold a descriptor without finishing its request."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    started = time.monotonic()
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no answer
    elapsed = time.monotonic() - started
    writer.close()
    assert 0.9 < elapsed < 4.0, elapsed
