"""Async helpers for the cluster tests: SDK agents, HTTP views, bounded waits, message collectors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from tornado.httpclient import AsyncHTTPClient

from aiconexus_gateway import messages
from aiconexus_gateway.client import ConnectionClosed, DIDKey, GatewayClient, Message
from tests.support.waiting import wait_until


class Endpoint(Protocol):
    """A gateway's addresses: a GatewayProcess or an in-process Gateway."""

    @property
    def ws_url(self) -> str: ...

    @property
    def http_url(self) -> str: ...


async def agent(gateway: Endpoint, name: str, key: DIDKey | None = None) -> GatewayClient:
    client = GatewayClient(gateway.ws_url, key or DIDKey.generate(), metadata={"name": name},
                           connect_timeout=5)
    await client.connect()
    return client


async def get_json(url: str) -> tuple[int, dict[str, Any]]:
    response = await AsyncHTTPClient().fetch(url, raise_error=False, request_timeout=5)
    return response.code, json.loads(response.body)


async def get_text(url: str) -> tuple[int, str]:
    response = await AsyncHTTPClient().fetch(url, raise_error=False, request_timeout=5)
    return response.code, response.body.decode()


async def listed(gateway: Endpoint, did: str) -> str | None:
    """The instance `gateway`'s /agents/<did> names, or None when it answers 404."""
    code, body = await get_json(f"{gateway.http_url}/agents/{did}")
    return body["instance"] if code == 200 else None


def signed(client: GatewayClient, to: str, type: str, payload: dict[str, Any]) -> tuple[str, str]:
    """A frame from `client` as it will travel: (exact text, id)."""
    return messages.build(client.key, type, to, payload, now=time.time())


class Inbox:
    """Everything one agent receives, collected in the background (bounded by close())."""

    def __init__(self, client: GatewayClient) -> None:
        self.client = client
        self.messages: list[Message] = []
        self._task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        try:
            async for message in self.client:
                self.messages.append(message)
        except ConnectionClosed:
            pass

    def errors(self) -> dict[str, str]:
        """correlation_id -> ERROR code, for ERRORs from the gateway."""
        return {m.correlation_id: str(m.payload.get("code")) for m in self.messages
                if m.type == "ERROR" and m.sender == self.client.gateway_did and m.correlation_id}

    def ids(self, sender: str | None = None) -> list[str]:
        return [m.id for m in self.messages if sender is None or m.sender == sender]

    def raw(self, sender: str) -> list[str]:
        return [m.raw for m in self.messages if m.sender == sender]

    async def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        return await wait_until(condition, timeout, what, interval=0.01)

    async def close(self) -> None:
        await self.client.close()
        await asyncio.wait_for(asyncio.shield(self._task), 5)
