"""Fixtures: the fake upstream on a real socket in the test's loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from alice_py.fake import RunningFake, start_fake_upstream


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    running = await start_fake_upstream()
    try:
        yield running
    finally:
        await running.close()
