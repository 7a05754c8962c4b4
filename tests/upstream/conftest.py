"""Fixtures: the fake upstream as a real HTTP server, a client session, a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from alice_py.fake import FakeState, create_fake_upstream
from alice_py.upstream.client import OpenAIClient
from tests.support import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state() -> FakeState:
    return FakeState()


@pytest.fixture
async def fake_url(aiohttp_server: Any, state: FakeState) -> str:
    server: TestServer = await aiohttp_server(create_fake_upstream(state))
    return str(server.make_url("/v1"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def client(session: aiohttp.ClientSession, fake_url: str) -> AsyncIterator[OpenAIClient]:
    upstream = OpenAIClient(session, fake_url, connect_timeout=2.0, timeout=5.0)
    yield upstream
    await upstream.close()
