#!/usr/bin/env python3
"""A Python agent for the browser example: it answers the page's signed messages and echoes what
the page sends on a WebRTC data channel; it also serves the page itself, on 127.0.0.1 only.

Two commands, from the repository's root (the gateway must allow the page's origin):

    ALLOWED_ORIGINS=http://localhost:8080 make run
    .venv/bin/python examples/browser/python_peer.py

then open the URL it prints (http://localhost:8080/?peer=<its DID>), press Connect, Send, Open.
Needs the `webrtc` extra (aiortc) for the data channel. What it serves, and nothing else: this
folder's index.html at `/`, the JavaScript client (clients/js/src) at `/aiconexus/`, and
libsodium.js's two ES modules at `/libsodium/` when clients/js/node_modules has them (`npm ci` in
clients/js; only the relay fallback's encryption uses them).

Options: --url (the gateway, default ws://127.0.0.1:8000/ws), --http-port (default 8080; 0 picks a
free one), --no-serve (serve the page yourself), --open-channel (also open a channel *to* the page
once it sent a message). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiconexus_gateway.client import (
    DIDKey,
    GatewayClient,
    GatewayConnectionError,
    GatewayError,
    Message,
    gateway_url_for,
)
from aiconexus_gateway.client.peer import PeerChannel, PeerError

HERE = Path(__file__).resolve().parent
CLIENT = HERE.parents[1] / "clients" / "js"
SODIUM = {
    "libsodium-wrappers.mjs": "libsodium-wrappers/dist/modules-esm/libsodium-wrappers.mjs",
    "libsodium.mjs": "libsodium/dist/modules-esm/libsodium.mjs",
}


def page_file(path: str) -> Path | None:
    """The file for a request path, only inside what the example serves; None otherwise."""
    path = path.split("?", 1)[0]
    if path in ("/", "/index.html"):
        return HERE / "index.html"
    if path.startswith("/aiconexus/"):
        name = path[len("/aiconexus/"):]
        source = (CLIENT / "src" / name).resolve()
        if name.endswith(".js") and source.parent == (CLIENT / "src").resolve() and source.is_file():
            return source
    if path.startswith("/libsodium/") and path[len("/libsodium/"):] in SODIUM:
        module = CLIENT / "node_modules" / SODIUM[path[len("/libsodium/"):]]
        return module if module.is_file() else None
    return None


class PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        file = page_file(self.path)
        if file is None:
            self.send_error(404)
            return
        body = file.read_bytes()
        kind = "text/javascript" if file.suffix in (".js", ".mjs") else (
            mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), PageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def echo(channel: PeerChannel) -> None:
    """Echo every message of a channel until it closes."""
    print(f"channel {channel.label!r} from {channel.peer_did} open ({channel.transport})",
          flush=True)
    try:
        async for data in channel:
            text = data if isinstance(data, str) else f"{len(data)} bytes"
            print(f"channel: {text}", flush=True)
            await channel.send(f"python got: {data}" if isinstance(data, str) else data)
    except PeerError as exc:
        print(f"channel ended: {exc}", flush=True)
    print(f"channel {channel.label!r} {channel.state}", flush=True)


async def run(url: str, port: int | None, open_channel: bool) -> None:
    client = GatewayClient(url, DIDKey.generate(), metadata={"name": "python peer"})
    tasks: set[asyncio.Task[None]] = set()

    def spawn(work: Any) -> None:
        task = asyncio.ensure_future(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    opened: set[str] = set()

    async def channel_to(page: str) -> None:
        try:
            spawn(echo(await client.connect_peer(page, "from-python", timeout=20, fallback=True)))
        except PeerError as exc:
            print(f"could not open a channel to {page}: {exc}", flush=True)

    @client.on_message
    async def answer(message: Message) -> None:
        if message.sender == client.gateway_did:
            return
        print(f"{message.type} from {message.sender}: {message.payload}", flush=True)
        if message.type == "INTENT":  # verified against the page's DID; the answer is signed
            await client.send(message.sender, "INTENT", {"echo": message.payload},
                              correlation_id=message.id)
            if open_channel and message.sender not in opened:
                opened.add(message.sender)
                spawn(channel_to(message.sender))

    try:
        import aiortc  # noqa: F401 (only whether it is there)
    except ImportError:
        print("warning: no aiortc, so no data channels (pip install 'aiconexus-gateway[webrtc]'); "
              "signed messages work", flush=True)
    else:
        client.on_peer(lambda channel: spawn(echo(channel)))  # accept the page's channels
    await client.connect()
    print(f"Python agent: {client.did}", flush=True)
    server = serve(port) if port is not None else None
    if server is not None:
        print(f"page: http://localhost:{server.server_address[1]}/?peer={client.did}", flush=True)
    try:
        await client.wait_closed()
    finally:
        if server is not None:
            server.shutdown()
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws", help="the gateway's WebSocket URL")
    parser.add_argument("--http-port", type=int, default=8080,
                        help="serve the page on 127.0.0.1:PORT (default 8080; 0: any free port)")
    parser.add_argument("--no-serve", action="store_true", help="do not serve the page")
    parser.add_argument("--open-channel", action="store_true",
                        help="also open a channel to a page once it sent a message")
    args = parser.parse_args(argv)
    try:
        url = gateway_url_for(args.url)
    except ValueError as exc:
        print(f"error: --url: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run(url, None if args.no_serve else args.http_port, args.open_channel))
    except (GatewayConnectionError, GatewayError) as exc:
        print(f"error: the gateway: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # the port is taken
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
