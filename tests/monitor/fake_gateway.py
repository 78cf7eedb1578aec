"""A stand-in gateway for what the real one never does: answer slowly, answer garbage, or hold
ten thousand agents. It serves the same JSON shapes as the HTTP contract."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from tornado.web import Application, RequestHandler

GATEWAY_DID = "did:key:z6MkfakeGatewayfakeGatewayfakeGatewayfakeGateway1"


def fake_did(index: int) -> str:
    return f"did:key:z6Mk{index:06d}" + "x" * 36


def fake_agent(index: int) -> dict[str, Any]:
    return {
        "did": fake_did(index),
        "connected_at": "2026-11-26T10:00:00.000Z",
        "last_activity": f"2026-11-26T10:00:{index % 60:02d}.000Z",
        "messages_sent": index,
        "messages_received": 2 * index,
        "metadata": {"name": f"agent{index}"},
    }


@dataclass
class FakeGateway:
    """What the fake answers; tests change `mode` while the monitor polls."""

    agent_count: int = 2
    mode: str = "ok"  # ok | malformed | shape | http500 | draining | slow | html
    requests: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # agents served after the numbered ones (e.g. with hostile metadata), and the gateway's DID
    extra_agents: list[dict[str, Any]] = field(default_factory=list)
    gateway_did: str = GATEWAY_DID

    def health(self, status: str = "healthy") -> dict[str, Any]:
        return {
            "status": status,
            "connected_agents": self.agent_count + len(self.extra_agents),
            "timestamp": "2026-11-26T10:01:00.000Z",
            "version": "0.1.0",
            "gateway_did": self.gateway_did,
            "uptime_seconds": 60.0,
        }


class _Handler(RequestHandler):
    def initialize(self, fake: FakeGateway) -> None:
        self.fake = fake

    async def answer(self, body: dict[str, Any]) -> None:
        self.fake.requests.append(self.request.uri or "")
        mode = self.fake.mode
        if mode == "slow":
            # held until the test releases it (bounded, so nothing outlives the test)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.fake.release.wait(), 5)
        if mode == "malformed":
            self.finish('{"status": "healthy", "connected_agents": ')
        elif mode == "html":
            self.set_header("Content-Type", "text/html")
            self.finish("<html><body>502 Bad Gateway</body></html>")
        elif mode == "shape":
            self.finish(json.dumps({"unexpected": True}))
        elif mode == "http500":
            self.set_status(500)
            self.finish(json.dumps({"error": "INTERNAL", "message": "boom"}))
        else:
            self.finish(json.dumps(body))


class HealthHandler(_Handler):
    async def get(self) -> None:
        if self.fake.mode == "draining":
            self.set_status(503)
            await self.answer(self.fake.health("draining"))
        else:
            await self.answer(self.fake.health())


class AgentsHandler(_Handler):
    async def get(self) -> None:
        limit = int(self.get_query_argument("limit", "100"))
        offset = int(self.get_query_argument("offset", "0"))
        count = self.fake.agent_count + len(self.fake.extra_agents)
        end = min(offset + limit, count)
        agents = [
            fake_agent(index)
            if index < self.fake.agent_count
            else self.fake.extra_agents[index - self.fake.agent_count]
            for index in range(offset, end)
        ]
        await self.answer({"agents": agents, "count": count, "limit": limit, "offset": offset})


def make_fake_app(fake: FakeGateway) -> Application:
    deps = {"fake": fake}
    return Application([(r"/health", HealthHandler, deps), (r"/agents", AgentsHandler, deps)])
