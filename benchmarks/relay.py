"""A bare Tornado relay: parse JSON, look up `to`, forward. No protocol, no checks.

This is the framework ceiling of scenario (6): whatever the gateway adds on top of Tornado's own
frame handling shows as the distance between the two. Clients name themselves in the query string
(`/ws?id=<did>`); a message goes to the connection named by its `to`, unchanged.

    python -m benchmarks.relay --port 0
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler


class RelayHandler(WebSocketHandler):
    def initialize(self, peers: dict[str, RelayHandler]) -> None:
        self.peers = peers
        self.name = ""

    def open(self) -> None:
        self.set_nodelay(True)  # as the gateway does
        self.name = self.get_argument("id")
        self.peers[self.name] = self

    def on_message(self, message: str | bytes) -> None:
        target = self.peers.get(json.loads(message)["to"])
        if target is not None:
            target.write_message(message)

    def on_close(self) -> None:
        if self.peers.get(self.name) is self:
            del self.peers[self.name]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app = Application([(r"/ws", RelayHandler, {"peers": {}})])
    sockets = bind_sockets(args.port, "127.0.0.1", backlog=1024)
    server = HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    print(f"bare Tornado relay listening on ws://127.0.0.1:{port}/ws", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.stop()


if __name__ == "__main__":
    asyncio.run(main())
