"""Fixtures shared by every test folder: the fake OpenAI-compatible upstream as a real HTTP
server in the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from alice_py.fake import FakeState, RunningFake, start_fake_upstream
from tests.redis_support import own_redis, redis_prefix  # noqa: F401  (fixtures for every folder)


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
