"""Fixtures: the real app (``create_app``) on a real socket, the fake upstream as a real HTTP
server, the database in a SQLite file under ``tmp_path``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from alice_py.app import create_app
from alice_py.config import Config
from alice_py.fake import RunningFake
from tests.support import app_config

UPSTREAM_KEY = "sk-test-0000000000001234"
CLIENT_KEY = "sk-client-0000000000005678"
SECRET = "s3cret"
ADMIN_PASSWORD = "admin-pass-1234"

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
MakeServer = Callable[..., Awaitable[TestServer]]


def make_config(fake: RunningFake, tmp_path: Path, **sections: dict[str, Any]) -> Config:
    """No auth and no rate limit unless a test asks for them."""
    return app_config(
        fake.url, tmp_path, upstream_key=UPSTREAM_KEY, auth_mode="none", secret=SECRET, **sections
    )


Setup = Callable[[web.Application], None]


@pytest.fixture
def make_app(fake: RunningFake, tmp_path: Path) -> Callable[..., web.Application]:
    def make(setup: Setup | None = None, **sections: dict[str, Any]) -> web.Application:
        app = create_app(make_config(fake, tmp_path, **sections))
        if setup is not None:
            setup(app)
        return app

    return make


@pytest.fixture
def make_client(aiohttp_client: Any, make_app: Callable[..., web.Application]) -> MakeClient:
    """``await make_client(auth={"mode": "simple"}, setup=lambda app: ...)``: a client of the real app."""

    async def make(
        setup: Setup | None = None, **sections: dict[str, Any]
    ) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = await aiohttp_client(make_app(setup, **sections))
        return client

    return make


@pytest.fixture
def make_server(aiohttp_server: Any, make_app: Callable[..., web.Application]) -> MakeServer:
    """The real app listening on a socket: ``server.make_url("/v1")`` is a base URL for an SDK."""

    async def make(setup: Setup | None = None, **sections: dict[str, Any]) -> TestServer:
        server: TestServer = await aiohttp_server(make_app(setup, **sections))
        return server

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[web.Request, web.Application]:
    return await make_client()
