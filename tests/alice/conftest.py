"""Fixtures: the real app (``create_app``) against the fake upstream on a real socket,
with shares in a SQLite file under ``tmp_path``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.app import create_app
from alice_py.config import Config
from alice_py.fake import RunningFake
from tests.support import app_config

UPSTREAM_KEY = "sk-test-0000000000001234"
SECRET = "s3cret"

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


def make_config(fake: RunningFake, tmp_path: Path, **sections: dict[str, Any]) -> Config:
    """No auth and no rate limit unless a test asks for them."""
    return app_config(
        fake.url, tmp_path, upstream_key=UPSTREAM_KEY, auth_mode="none", secret=SECRET, **sections
    )


@pytest.fixture
def make_client(aiohttp_client: Any, fake: RunningFake, tmp_path: Path) -> MakeClient:
    """``await make_client(auth={"mode": "simple"}, setup=lambda app: ...)``: a client of the real app.
    ``setup`` may replace app state (a limiter with an injected clock) before it starts."""

    async def make(
        setup: Callable[[web.Application], None] | None = None, **sections: dict[str, Any]
    ) -> TestClient[web.Request, web.Application]:
        app = create_app(make_config(fake, tmp_path, **sections))
        if setup is not None:
            setup(app)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[web.Request, web.Application]:
    return await make_client()
