"""HTTP endpoints for operators: /health, /agents, /agents/<did>, /metrics. JSON errors everywhere."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from tornado.web import HTTPError, RequestHandler

from ..hub import Hub
from ..limits import bearer_token_ok
from ..metrics import CONTENT_TYPE

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class JSONHandler(RequestHandler):
    """Base: JSON bodies, JSON errors (404 and 405 included), no caching."""

    def initialize(self, hub: Hub, admin_token: str | None = None) -> None:
        self.hub = hub
        self.admin_token = admin_token  # set on the endpoints ADMIN_TOKEN protects

    def prepare(self) -> None:
        if self.admin_token is not None and not bearer_token_ok(
                self.request.headers.get("Authorization"), self.admin_token):
            raise APIError(401, "UNAUTHORIZED",
                           "this endpoint requires the header Authorization: Bearer <ADMIN_TOKEN>")

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, body: dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(body, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        code = getattr(error, "error_code", None) or HTTPStatus(status_code).name
        message = getattr(error, "message", None) or HTTPStatus(status_code).phrase
        if status_code == 405:
            message = f"{self.request.method} is not allowed here; use GET"
        if status_code == 401:  # after send_error's clear(), which drops earlier headers
            self.set_header("WWW-Authenticate", 'Bearer realm="aiconexus-gateway"')
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": code, "message": message}))


class APIError(HTTPError):
    """An HTTP error with a machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, "%s", message)
        self.error_code = code
        self.message = message


class HealthHandler(JSONHandler):
    async def get(self) -> None:
        health = await self.hub.health_report()
        self.write_json(health, 503 if health["status"] == "draining" else 200)


def page_arguments(limit: str | None, offset: str | None) -> tuple[int, int]:
    """Validated `?limit=&offset=`; ValueError says what is wrong."""
    try:
        lim = DEFAULT_PAGE if limit is None else int(limit)
        off = 0 if offset is None else int(offset)
    except ValueError:
        raise ValueError("limit and offset must be whole numbers") from None
    if not 1 <= lim <= MAX_PAGE:
        raise ValueError(f"limit must be from 1 to {MAX_PAGE}")
    if off < 0:
        raise ValueError("offset must be 0 or more")
    return lim, off


class AgentsHandler(JSONHandler):
    async def get(self) -> None:
        try:
            limit, offset = page_arguments(self.get_query_argument("limit", None),
                                           self.get_query_argument("offset", None))
        except ValueError as exc:
            raise APIError(400, "BAD_REQUEST", str(exc)) from None
        self.write_json(await self.hub.agents_report(limit, offset))


class AgentHandler(JSONHandler):
    async def get(self, did: str) -> None:
        agent = await self.hub.agent_report(did)
        if agent is None:
            raise APIError(404, "UNKNOWN_AGENT", f"no agent {did!r} is connected")
        self.write_json(agent)


class MetricsHandler(JSONHandler):
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.hub.metrics.exposition())


class NotFoundHandler(JSONHandler):
    def prepare(self) -> None:
        raise APIError(404, "NOT_FOUND",
                       f"no such endpoint {self.request.path!r}; try /health, /agents, /metrics or /ws")
