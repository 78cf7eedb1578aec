"""Fixtures for the monitor tests; the real gateway comes from tests/conftest.py (`gateway`)."""

from __future__ import annotations

import pytest
from tornado.web import Application

from .fake_gateway import FakeGateway, make_fake_app


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def app(fake: FakeGateway) -> Application:
    """pytest-tornado's `http_server` serves this: the fake gateway."""
    return make_fake_app(fake)


@pytest.fixture
def fake_url(http_server: object, http_port: int) -> str:
    return f"http://127.0.0.1:{http_port}"
