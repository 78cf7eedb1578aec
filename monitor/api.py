"""The gateway's HTTP API as seen by the monitor: a thin httpx wrapper around `contract`.

Every way a poll can fail (refused, timed out, dropped, an HTTP error, JSON that is not what
the contract says) comes out as one `PollFailed` carrying a short reason for the status bar,
so the app has a single thing to catch. The httpx client can be passed in (tests, proxies).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, ClassVar

import httpx

from .address import http_base_url
from .cli import DEFAULT_MAX_AGENTS, DEFAULT_TIMEOUT
from .contract import (
    AgentPage,
    Health,
    MalformedResponse,
    Snapshot,
    merge_pages,
    parse_agent_page,
    parse_health,
)
from .credentials import AdminToken
from .formatting import format_seconds

PAGE_SIZE = 100  # the gateway's default page; its maximum is 1000
_NOT_JSON = object()


class PollFailed(Exception):
    """A poll that did not produce data; `reason` is what the status bar shows."""

    state: ClassVar[str] = "error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unreachable(PollFailed):
    """No HTTP answer at all: refused, unknown host, timed out, connection dropped."""

    state = "unreachable"


class Unauthorized(PollFailed):
    """401: the gateway wants its admin token (`ADMIN_TOKEN`) and did not get it.

    Polling again would not help: the token does not change by itself.
    """

    state = "unauthorized"


class BadAnswer(PollFailed):
    """An HTTP answer the monitor cannot use: an error status or malformed JSON."""

    state = "error"


def _connect_reason(exc: BaseException) -> str:
    """Say "connection refused" rather than httpx's "[Errno 111] Connect call failed"."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    if "refused" in text.lower():
        return "connection refused"
    return f"cannot connect ({text or type(exc).__name__})"


class GatewayAPI:
    """Reads `/health` and `/agents` (paged) of one gateway.

    At most `max_agents` agents are fetched per poll, in pages of `page_size`, so a gateway
    with thousands of agents costs a bounded amount per poll; the `Snapshot` knows the total.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        page_size: int = PAGE_SIZE,
        max_agents: int = DEFAULT_MAX_AGENTS,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        token: AdminToken | None = None,
    ) -> None:
        if page_size < 1 or max_agents < 1:
            raise ValueError("page_size and max_agents must be at least 1")
        self.base_url = http_base_url(url)
        self.timeout = timeout
        self.page_size = page_size
        self.max_agents = max_agents
        self._clock = clock
        self._token = token
        # httpx.Headers hides Authorization in its repr (a traceback's locals, a debugger)
        self._headers = httpx.Headers(
            {} if token is None else {"Authorization": token.authorization}
        )
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(trust_env=False)

    async def __aenter__(self) -> GatewayAPI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the httpx client, unless it was lent to us."""
        if self._owns_client:
            await self._client.aclose()

    async def _get(
        self, path: str, params: dict[str, int] | None = None, ok: tuple[int, ...] = (200,)
    ) -> Any:
        url = self.base_url + path
        try:
            try:
                response = await self._client.get(
                    url, params=params, headers=self._headers, timeout=self.timeout
                )
            except httpx.RemoteProtocolError:
                # a kept-alive connection the server (or a proxy) closed meanwhile: a GET can
                # safely be tried once more, on a new connection
                response = await self._client.get(
                    url, params=params, headers=self._headers, timeout=self.timeout
                )
        except httpx.TimeoutException:
            raise Unreachable(f"no answer within {format_seconds(self.timeout)}") from None
        except httpx.ConnectError as exc:
            raise Unreachable(_connect_reason(exc)) from None
        except httpx.HTTPError:
            raise Unreachable("connection lost") from None
        try:
            data = response.json()
        except ValueError:  # json.JSONDecodeError and UnicodeDecodeError both are
            data = _NOT_JSON
        if response.status_code == 401:
            if self._token is None:
                raise Unauthorized(
                    "the gateway requires its admin token, none was sent "
                    "(set ADMIN_TOKEN or use --token-file)"
                )
            raise Unauthorized(
                "the gateway refused the admin token sent (check ADMIN_TOKEN or --token-file)"
            )
        if response.status_code == 404:
            # the gateway has these paths: a 404 means the address is not the gateway's
            raise BadAnswer(
                f"HTTP 404 from {url}; is {self.base_url} the gateway's HTTP address?"
            )
        if response.status_code not in ok:
            detail = ""
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                detail = f": {data['error']}"
            raise BadAnswer(f"HTTP {response.status_code} from {path}{detail}")
        if data is _NOT_JSON:
            raise BadAnswer(f"malformed JSON from {path}")
        return data

    async def health(self) -> Health:
        """`/health`; 503 is an answer too (a draining gateway), when its body says so."""
        data = await self._get("/health", ok=(200, 503))
        try:
            return parse_health(data)
        except MalformedResponse as exc:
            raise BadAnswer(f"unexpected /health: {exc}") from None

    async def agents_page(self, *, limit: int, offset: int) -> AgentPage:
        """One page of `/agents`."""
        data = await self._get("/agents", params={"limit": limit, "offset": offset})
        try:
            return parse_agent_page(data)
        except MalformedResponse as exc:
            raise BadAnswer(f"unexpected /agents: {exc}") from None

    async def agent_pages(self) -> list[AgentPage]:
        """The first pages of `/agents`, up to `max_agents` agents in all."""
        pages: list[AgentPage] = []
        fetched = offset = 0
        # bounded: each round fetches at least one agent or stops
        for _ in range(self.max_agents):
            limit = min(self.page_size, self.max_agents - fetched)
            page = await self.agents_page(limit=limit, offset=offset)
            pages.append(page)
            fetched += len(page.agents)
            offset += len(page.agents)
            if not page.agents or fetched >= self.max_agents or offset >= page.count:
                break
        return pages

    async def snapshot(self) -> Snapshot:
        """One poll: health first (is it up?), then the agents."""
        health = await self.health()
        agents, total = merge_pages(await self.agent_pages())
        return Snapshot(health=health, agents=agents, total=total, taken_at=self._clock())
