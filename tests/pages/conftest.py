"""Fixtures: the real app (``create_app``) against the fake upstream, as an HTTP client sees it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.app import create_app
from alice_py.fake import RunningFake
from tests.support import app_config

UPSTREAM_KEY = "sk-test-0000000000001234"
ADMIN_PASSWORD = "correct horse battery staple"

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_client(aiohttp_client: Any, fake: RunningFake, tmp_path: Path) -> MakeClient:
    """``await make_client(admin={"password": "x"}, setup=...)``: a client of the real app; ``setup``
    may replace app state (a limiter with an injected clock) before it starts."""

    async def make(setup: Callable[[web.Application], None] | None = None, **sections: Any) -> Client:
        app = create_app(app_config(fake.url, tmp_path, upstream_key=UPSTREAM_KEY, **sections))
        if setup is not None:
            setup(app)
        client: Client = await aiohttp_client(app)
        return client

    return make
