"""HTTP endpoints for operators: /health, /agents, /agents/<did>, /metrics. JSON errors everywhere.

Every GET endpoint answers HEAD too (uptime checkers, `curl -I`). /agents is the one expensive
view (megabytes of JSON at the largest page): each page is built at most once per
AGENTS_CACHE_TTL seconds (`PageCache`), and the time building pages costs is charged to the
asking address's HTTP work budget (`ratelimit.WorkBudget`), which answers 429 when spent.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from time import monotonic, perf_counter
from typing import Any

from tornado.web import HTTPError, RequestHandler

from ..access import bearer_token_ok
from ..admission import retry_after_header
from ..cards import CAPABILITY, MAX_NAME
from ..hub import Hub
from ..metrics import CONTENT_TYPE
from ..ratelimit import WorkBudget

MAX_PAGE = 1000
DEFAULT_PAGE = 100
MAX_OFFSET = 2**31 - 1  # views.MAX_OFFSET: no offset beyond reaches a slice or a Redis index
_WHOLE = re.compile(r"[0-9]{1,12}")  # ASCII digits only (int() takes any Unicode digit)

AGENTS_CACHE_TTL = 1.0  # seconds a built /agents page is served as it is
AGENTS_CACHE_PAGES = 64  # distinct (limit, offset) pages kept at most
# Seconds of page building per second each address may cost (10% of a core), after a burst of
# one second: a monitor polling a 1,000-agent page every second uses a fraction of it.
HTTP_WORK_RATE = 0.1
HTTP_WORK_BURST = 1.0


# (limit, offset, agents here, capability, name_prefix)
PageKey = tuple[int, int, int, str | None, str | None]


class PageCache:
    """Built /agents bodies by (limit, offset, agents here), each served for AGENTS_CACHE_TTL s."""

    __slots__ = ("_pages", "ttl")

    def __init__(self, ttl: float = AGENTS_CACHE_TTL) -> None:
        self.ttl = ttl
        self._pages: dict[PageKey, tuple[float, str]] = {}

    def get(self, key: PageKey, now: float) -> str | None:
        entry = self._pages.get(key)
        if entry is None or now - entry[0] > self.ttl:
            return None
        return entry[1]

    def put(self, key: PageKey, body: str, now: float) -> None:
        pages = self._pages
        if len(pages) >= AGENTS_CACHE_PAGES:
            for stale in [k for k, (built, _) in pages.items() if now - built > self.ttl]:
                del pages[stale]
            if len(pages) >= AGENTS_CACHE_PAGES:
                del pages[next(iter(pages))]
        pages[key] = (now, body)


class HTTPBudget:
    """The HTTP API's shared state: the /agents page cache and the per-address work budget.
    One per application (make_app), passed to the handlers through `initialize`."""

    def __init__(self) -> None:
        self.pages = PageCache()
        self.work = WorkBudget(HTTP_WORK_RATE, HTTP_WORK_BURST)


class JSONHandler(RequestHandler):
    """Base: JSON bodies, JSON errors (404 and 405 included), no caching."""

    def initialize(self, hub: Hub, admin_token: str | None = None,
                   budget: HTTPBudget | None = None) -> None:
        self.hub = hub
        self.admin_token = admin_token  # set on the endpoints ADMIN_TOKEN protects
        self.budget = budget or HTTPBudget()

    def head(self, *args: Any, **kwargs: Any) -> Any:
        """HEAD is GET without the body (Tornado drops it): uptime checkers, `curl -I`."""
        return self.get(*args, **kwargs)

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
        self.finish(json.dumps(body, ensure_ascii=False) + "\n")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        code = getattr(error, "error_code", None) or HTTPStatus(status_code).name
        message = getattr(error, "message", None) or HTTPStatus(status_code).phrase
        if status_code == 405:
            message = f"{self.request.method} is not allowed here; use GET or HEAD"
        if status_code == 401:  # after send_error's clear(), which drops earlier headers
            self.set_header("WWW-Authenticate", 'Bearer realm="aiconexus-gateway"')
        for name, value in getattr(error, "headers", {}).items():
            self.set_header(name, value)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": code, "message": message}) + "\n")


class APIError(HTTPError):
    """An HTTP error with a machine-readable code."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, "%s", message)
        self.error_code = code
        self.message = message
        self.headers = headers or {}  # set on the answer (Retry-After...)


class HealthHandler(JSONHandler):
    async def get(self) -> None:
        health = await self.hub.health_report()
        self.write_json(health, 503 if health["status"] == "draining" else 200)


def _whole(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    if not _WHOLE.fullmatch(value.strip()):
        raise ValueError(f"{name} must be a whole number in ASCII digits; got {value[:40]!r}")
    return int(value)


def page_arguments(limit: str | None, offset: str | None) -> tuple[int, int]:
    """Validated `?limit=&offset=`; ValueError says what is wrong."""
    lim = _whole("limit", limit, DEFAULT_PAGE)
    off = _whole("offset", offset, 0)
    if not 1 <= lim <= MAX_PAGE:
        raise ValueError(f"limit must be from 1 to {MAX_PAGE}")
    if off > MAX_OFFSET:
        raise ValueError(f"offset must be from 0 to {MAX_OFFSET}")
    return lim, off


def filter_arguments(capability: str | None, name_prefix: str | None
                     ) -> tuple[str | None, str | None]:
    """Validated `?capability=&name_prefix=` (the card filters, as in DISCOVER)."""
    if capability is not None and CAPABILITY.match(capability) is None:
        raise ValueError("capability must be 1-64 characters of A-Z a-z 0-9 . _ : / + -")
    if name_prefix is not None and not 0 < len(name_prefix) <= MAX_NAME:
        raise ValueError(f"name_prefix must be 1-{MAX_NAME} characters")
    return capability, name_prefix


class AgentsHandler(JSONHandler):
    async def get(self) -> None:
        try:
            limit, offset = page_arguments(self.get_query_argument("limit", None),
                                           self.get_query_argument("offset", None))
            capability, name_prefix = filter_arguments(
                self.get_query_argument("capability", None),
                self.get_query_argument("name_prefix", None))
        except ValueError as exc:
            raise APIError(400, "BAD_REQUEST", str(exc)) from None
        budget = self.budget
        now = monotonic()
        # an arrival or departure here: rebuilt
        key = (limit, offset, len(self.hub.registry), capability, name_prefix)
        body = budget.pages.get(key, now)
        if body is None:
            ip = str(self.request.remote_ip)
            if budget.work.over(ip, now):
                retry = budget.work.retry_after(ip, now)
                raise APIError(429, "RATE_LIMITED",
                               f"/agents pages cost this address more than {HTTP_WORK_RATE:g} s of "
                               f"work per second; retry after {retry:.1f} s, or page less often",
                               {"Retry-After": retry_after_header(retry)})
            started = perf_counter()
            report = await self.hub.agents_report(limit, offset, capability=capability,
                                                  name_prefix=name_prefix)
            body = json.dumps(report, ensure_ascii=False) + "\n"
            budget.work.charge(ip, perf_counter() - started, now)
            budget.pages.put(key, body, monotonic())
        self.finish(body)


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
