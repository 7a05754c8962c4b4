"""Fixtures: the real app (``create_app``) against the fake upstream on a real socket,
with shares in a SQLite file under ``tmp_path``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from alice_py.app import create_app
from alice_py.config import Config
from alice_py.fake import FakeState, RunningFake, start_fake_upstream

UPSTREAM_KEY = "sk-test-0000000000001234"
SECRET = "s3cret"

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    running = await start_fake_upstream()
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
def fake_state(fake: RunningFake) -> FakeState:
    return fake.state


def make_config(fake: RunningFake, tmp_path: Path, **sections: dict[str, Any]) -> Config:
    """No auth and no rate limit unless a test asks for them."""
    base: dict[str, dict[str, Any]] = {
        "upstream": {"base_url": fake.url, "keys": (UPSTREAM_KEY,)},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'alice.db'}"},
        "auth": {"mode": "none", "token": SECRET},
        "limits": {"per_minute": 0},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Config().replace(**base)


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
